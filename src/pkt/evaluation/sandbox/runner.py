"""Trusted runner for :mod:`pkt.evaluation.sandbox.run`: the *supervisor* of one run, or a *fork server* that
makes them.

Stdlib only, no ``pkt`` imports: it runs right next to untrusted code. Started as ``python -I -S -B
runner.py`` in a new session with a minimal environment, it works in one of two modes:

* **One-shot**: stdin carries one JSON config (limits, uid/gid, fd numbers, program, nonce, environment); it is
  read to EOF and replaced by /dev/null, and this process supervises that one run.
* **Fork server** (``--fork-server FD``): FD is one end of a ``SOCK_SEQPACKET`` socketpair with the parent, and
  the process imports everything once, then serves one request at a time and never runs untrusted code:
  ``run`` with five fds attached (SCM_RIGHTS: config, stdout, stderr, chan, report) -> ``pid N``: it forks a
  supervisor and closes its copies of the fds; ``reap N`` -> ``exit CODE``: SIGKILL the process group N (the
  supervisor's, unreaped until now, so its id cannot have been reused) and reap N; anything else, or a
  failed fork, -> ``error TEXT``. It exits at EOF (the parent closed its end or died) without waiting for
  supervisors still running; they finish their runs on their own, as in one-shot mode. The forked supervisor
  closes the socket and every fd it was not given, calls ``setsid``, puts /dev/null, stdout, stderr, chan
  and report on fds 0-4, reads the config from its fd (so this server never holds a nonce), chdirs to the
  workdir, sets the environment, and then does exactly what a one-shot runner does (:func:`supervise`).

The supervisor isolates what the OS allows (namespaces and mounts: ``isolation.py`` next to this
file, imported by path since ``-I`` leaves this directory off ``sys.path``), becomes a child subreaper and
forks the *program process* into its own process group; it enforces the wall-clock timeout, kills every
leftover process and reports (program pgid, then how it ended) on ``report_fd``, which the program never
holds. The program process sets rlimits, drops privileges and ``exec``s the program; on ``chan_fd`` it
writes a failure reason or, from the ``_install_guard`` audit hook once the runner's own ``exec`` call
returned normally, ``pass <nonce>``.
"""

import builtins
import contextlib
import fcntl
import json
import os
import resource
import select
import signal
import socket
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I left our own directory out
try:
    from isolation import isolate, prctl
finally:
    del sys.path[0]

_PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 4, 36, 38
_PROGRAM_FILE = "<program>"
# Imported before the privilege drop when the drop would leave the Python install unreadable.
_PRELOAD = ("array asyncio bisect cmath collections copy dataclasses datetime decimal enum fractions functools hashlib"
            " heapq itertools linecache logging math numbers operator random re statistics string textwrap"
            " traceback typing unicodedata")
# Denied while the program runs: routes to the guard's code object (and so the nonce) and statement
# skipping (settrace + f_lineno). See pkt.evaluation.sandbox.run "Known limits".
_DENIED_EVENTS = frozenset({"sys.settrace", "sys.setprofile", "sys._getframe", "sys._current_frames",
                            "sys._current_exceptions", "gc.get_objects", "gc.get_referrers", "gc.get_referents"})
_FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code"})


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """True once ``pid`` has exited (left unreaped, so its pgid stays ours), False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd is None:
                time.sleep(min(left, 0.005))
            else:
                select.select([pidfd], [], [], left)
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _kill_everything(pgid: int, private_uid: int | None) -> None:
    """SIGKILL the program's process group, then (as root) every process of the run's private uid via a
    helper that becomes that uid and calls kill(-1): both are atomic against a fork bomb, unlike a walk."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if private_uid is None:
        return
    helper = os.fork()
    if helper == 0:
        try:
            os.setgid(private_uid)
            os.setuid(private_uid)
            os.kill(-1, signal.SIGKILL)  # every process we may signal, i.e. the private uid's, except us
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


def _sweep() -> None:
    """SIGKILL and reap every remaining descendant: as a subreaper we inherit orphans, even after setsid."""
    listing = f"/proc/self/task/{os.getpid()}/children"
    for _ in range(100_000):
        try:
            with open(listing) as fh:
                pids = [int(p) for p in fh.read().split()]
        except OSError:  # no CONFIG_PROC_CHILDREN: the group and uid kills have to do
            pids = []
        for pid in pids:  # our unreaped children: their pids cannot be reused
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not reaped:
            if not pids:
                return
            time.sleep(0.001)


def _read_config(fd: int) -> dict:
    """The parent's JSON config, read to EOF from ``fd``."""
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return json.loads(b"".join(chunks))


def _write_json(fd: int, record: dict) -> None:
    os.write(fd, b"\n" + json.dumps(record).encode() + b"\n")


def supervise(cfg: dict) -> None:
    """One run, with fds 0-2, ``chan_fd``, ``report_fd``, cwd and environment in place; never returns."""
    sys.path.extend(cfg["site_dirs"])  # started with -S: installed packages without running site/.pth
    notes = isolate(cfg)
    prctl(_PR_SET_DUMPABLE, 0, required=False)  # no /proc/<pid>/mem or ptrace by a same-uid program
    prctl(_PR_SET_CHILD_SUBREAPER, 1, required=False)
    pid = os.fork()
    if pid == 0:
        os.close(cfg["report_fd"])
        try:
            os.setpgid(0, 0)
            _program_process(cfg)
        finally:
            os._exit(70)
    cfg.pop("nonce")
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also here, so the group exists before we might kill it
    _write_json(cfg["report_fd"], {"pgid": pid})  # for the parent, should it have to clean up after us
    exited = _wait_exit(pid, cfg["timeout_s"])
    _kill_everything(pid, cfg["uid"] if cfg["private_uid"] else None)
    _, status = os.waitpid(pid, 0)
    _sweep()
    report: dict = {"timeout": not exited, "isolation": notes}
    if os.WIFSIGNALED(status):
        report["signal"] = os.WTERMSIG(status)
    else:
        report["exit"] = os.waitstatus_to_exitcode(status)
    _write_json(cfg["report_fd"], report)
    os._exit(0)  # skip interpreter teardown


def main() -> None:
    if sys.argv[1:2] == ["--fork-server"]:
        _serve(int(sys.argv[2]))
    cfg = _read_config(0)
    devnull = os.open(os.devnull, os.O_RDONLY)  # the nonce's pipe is gone before the program exists
    os.dup2(devnull, 0)
    os.close(devnull)
    supervise(cfg)


# --------------------------------------------------------------------------------------- fork server --
def _serve(sock_fd: int) -> None:
    """Answer ``run`` / ``reap`` requests (module doc) one at a time until EOF; never returns."""
    prctl(_PR_SET_DUMPABLE, 0, required=False)  # a same-uid program (not root) cannot ptrace us
    sock = socket.socket(fileno=sock_fd)
    children: set[int] = set()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 256, 8)
        except OSError:
            break
        if not data:
            break
        words = data.decode("ascii", "replace").split()
        try:
            if words == ["run"] and len(fds) == 5:
                pid = os.fork()
                if pid == 0:
                    _supervise_forked(sock, fds)
                children.add(pid)
                reply = f"pid {pid}"
            elif len(words) == 2 and words[0] == "reap" and words[1].isdigit() and int(words[1]) in children:
                pid = int(words[1])
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # pid is our unreaped child: the group cannot be reused
                status = os.waitpid(pid, 0)[1]
                children.discard(pid)
                reply = f"exit {os.waitstatus_to_exitcode(status)}"
            else:
                reply = "error bad request"
        except OSError as exc:
            reply = f"error {exc}"
        finally:
            for fd in fds:
                os.close(fd)
        try:
            sock.send(reply.encode())
        except OSError:
            break
    os._exit(0)


def _supervise_forked(sock: socket.socket, fds: list[int]) -> None:
    """In a fresh fork of the fork server: set up fds, session, cwd and environment, then supervise."""
    try:
        sock.detach()  # closed below by number; the object must never close a reused number
        os.setsid()
        config_fd, *streams = fds
        os.lseek(config_fd, 0, os.SEEK_SET)
        cfg = _read_config(config_fd)
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in (os.open(os.devnull, os.O_RDONLY), *streams)]
        for number, fd in enumerate(moved):  # 0: /dev/null, 1: stdout, 2: stderr, 3: chan, 4: report
            os.dup2(fd, number)
        os.closerange(len(moved), max(os.sysconf("SC_OPEN_MAX"), 1024))
        cfg["chan_fd"], cfg["report_fd"] = 3, 4
        os.chdir(cfg["workdir"])
        os.environ.clear()
        os.environ.update(cfg["env"])
        del sys.argv[1:]
        supervise(cfg)
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(70)


# -------------------------------------------------------------------------------------- program side --
def _apply_limits(cfg: dict) -> None:
    """RLIMITs for this process and its children; never above an existing hard limit."""
    mb = 1024 * 1024
    for res, soft, hard in (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1),  # SIGXCPU at soft, SIGKILL at hard
        (resource.RLIMIT_AS, cfg["memory_mb"] * mb, cfg["memory_mb"] * mb),
        (resource.RLIMIT_NPROC, cfg["max_processes"], cfg["max_processes"]),
        (resource.RLIMIT_FSIZE, cfg["max_file_mb"] * mb, cfg["max_file_mb"] * mb),
    ):
        current = resource.getrlimit(res)[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(res, (soft, hard))


def _drop_privileges(uid: int | None, gid: int | None) -> None:
    """Become the sandbox uid/gid for good (real, effective and saved ids) when started as root."""
    if uid is None or gid is None:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise OSError(0, "privilege drop did not take effect")


def _execute(
    code: types.CodeType, namespace: dict, run=exec, audit=sys.audit, here=sys._getframe, catch=BaseException
) -> BaseException | None:
    """Run the program; return its exception, or None after telling the guard that it completed.

    Builtins are bound as defaults, so a program patching ``builtins`` cannot change this function.
    """
    audit("pkt.evaluation.sandbox.run.arm", here(0))
    try:
        run(code, namespace)
    except catch as exc:
        audit("pkt.evaluation.sandbox.run.abort")
        return exc
    audit("pkt.evaluation.sandbox.run.finish")
    return None


def _install_guard(nonce: str, chan_fd: int) -> None:
    """Audit hook that writes ``pass <nonce>`` once the runner's ``_execute`` frame reports completion.

    Untrusted code can see this hook's frame (e.g. the frame handed to a signal handler), so neither its
    locals nor its closure hold the secret or any state the program could change: the secret is a
    bytearray planted in the hook's own ``co_consts`` (reachable only through ``f_code``, ``__code__`` or
    gc, all denied while armed) and wiped after use, and "finish"/"abort" count only while the
    ``_execute`` frame has moved past its ``run`` call (``f_lasti``), which the program cannot fake.
    """
    write, to_bytes, size, denied, frame_attrs = os.write, bytes, len, _DENIED_EVENTS, _FRAME_ATTRS
    value_error, runtime_error, attribute_error = ValueError, RuntimeError, AttributeError
    state, exec_frame, run_lasti = "idle", None, -1

    def guard(event: str, args: tuple) -> None:
        nonlocal state, exec_frame, run_lasti
        if event.startswith("pkt.evaluation.sandbox.run."):
            if event == "pkt.evaluation.sandbox.run.arm" and state == "idle":
                state, exec_frame = "armed", args[0]
            elif state == "armed" and 0 <= run_lasti < exec_frame.f_lasti:
                if event == "pkt.evaluation.sandbox.run.finish":
                    write(chan_fd, to_bytes("<pkt-sandbox-secret>"))
                "<pkt-sandbox-secret>"[:] = to_bytes(size("<pkt-sandbox-secret>"))  # zeroed in place
                state = "done"
            else:
                raise runtime_error("sandbox: control event raised by untrusted code")
        elif state == "armed":
            if event == "exec" and run_lasti < 0:  # the runner's own exec: its frame now sits on `run`
                run_lasti = exec_frame.f_lasti
            elif event == "object.__getattr__" and args[1] in frame_attrs:
                raise attribute_error(f"sandbox: {args[1]} is denied")  # hasattr() callers cope
            elif event in denied or event.startswith("ctypes."):
                error_type = value_error if event == "sys._getframe" else runtime_error
                raise error_type(f"sandbox: {event} is denied")
        elif state == "done" and event.startswith("ctypes."):  # no memory scans for stale nonce copies
            raise runtime_error(f"sandbox: {event} is denied")

    secret = bytearray(f"\npass {nonce}\n".encode())
    consts = tuple(secret if c == "<pkt-sandbox-secret>" else c for c in guard.__code__.co_consts)
    guard.__code__ = guard.__code__.replace(co_consts=consts)
    sys.addaudithook(guard)


def _describe(exc: BaseException) -> str:
    """Reason text such as "AssertionError at line 3: message", using the innermost program line."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised before the program completed"
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _PROGRAM_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    text = type(exc).__name__ + (f" at line {line}" if line else "")
    message = str(exc)
    return f"{text}: {message}" if message else text


def _program_process(cfg: dict) -> None:
    """Limits, privilege drop, compile, guarded exec; exits 0 only after a normal completion."""
    chan_fd, source, nonce = cfg["chan_fd"], cfg.pop("program"), cfg.pop("nonce")
    for name in _PRELOAD.split() if cfg.get("preload") else ():
        with contextlib.suppress(ImportError):
            __import__(name)
    try:
        _apply_limits(cfg)
        _drop_privileges(cfg["uid"], cfg["gid"])
        prctl(_PR_SET_NO_NEW_PRIVS, 1, required=False)  # setuid binaries gain nothing
        prctl(_PR_SET_DUMPABLE, 0, required=False)  # setuid() resets it; keep /proc/self/mem closed
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; we want a clear kill instead
    except (OSError, ValueError) as exc:
        _write_json(chan_fd, {"kind": "error", "reason": f"sandbox setup failed: {exc}"})
        os._exit(71)
    try:
        code = compile(source, _PROGRAM_FILE, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, SyntaxError) else ""
        reason = f"{type(exc).__name__}{where}: {getattr(exc, 'msg', exc)}"
        _write_json(chan_fd, {"kind": "error", "reason": reason})
        os._exit(1)
    module = types.ModuleType("__sandbox__")  # not "__main__": `if __name__ == "__main__":` blocks stay off
    module.__dict__["__builtins__"] = builtins
    sys.modules["__sandbox__"] = module
    streams, exit_now = (sys.stdout, sys.stderr), os._exit
    _install_guard(nonce, chan_fd)
    del nonce, cfg
    error = _execute(code, module.__dict__)
    if error is not None:
        try:
            reason = _describe(error)
        except BaseException as exc:  # a hostile exception must not crash us
            reason = f"{type(error).__name__} (could not describe it: {type(exc).__name__})"
        _write_json(chan_fd, {"kind": "fail", "reason": reason})
    try:  # best effort from here on: the verdict is already decided
        if error is not None:
            import linecache  # only now: most programs pass and need neither
            import traceback

            linecache.cache[_PROGRAM_FILE] = (len(source), None, source.splitlines(True), _PROGRAM_FILE)
            traceback.print_exception(error, limit=-30)  # innermost frames; deep recursion stays cheap
        for stream in streams:
            stream.flush()
    except BaseException:
        pass
    exit_now(0 if error is None else 1)


if __name__ == "__main__":
    main()
