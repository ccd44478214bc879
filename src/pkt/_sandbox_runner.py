"""Trusted runner for :mod:`pkt.sandbox`, started as ``python -I -S -B _sandbox_runner.py`` in a new session.

Stdlib only, no ``pkt`` imports: it runs right next to untrusted code. stdin carries one JSON config (limits,
uid/gid, fd numbers, program, nonce); it is read to EOF and replaced by /dev/null, so the nonce is never in
argv, the environment or the source. This process, the *supervisor*, isolates what the OS allows, becomes a
child subreaper and forks the *program process* into its own process group; it enforces the wall-clock
timeout, kills every leftover process and reports (program pgid, then how it ended) on ``report_fd``, which
the program never holds. The program process sets rlimits, drops privileges and ``exec``s the program; on
``chan_fd`` it writes a failure reason or, from the ``_install_guard`` audit hook once the runner's own
``exec`` call returned normally, ``pass <nonce>``.
"""

import builtins
import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import sys
import time
import types

_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 4, 36, 38
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
_PROGRAM_FILE = "<program>"
# Imported before the privilege drop when the drop would leave the Python install unreadable.
_PRELOAD = ("array asyncio bisect cmath collections copy dataclasses datetime decimal enum fractions functools hashlib"
            " heapq itertools linecache logging math numbers operator random re statistics string textwrap"
            " traceback typing unicodedata")
# Denied while the program runs: routes to the guard's code object (and so the nonce) and statement
# skipping (settrace + f_lineno). See pkt.sandbox "Known limits".
_DENIED_EVENTS = frozenset({"sys.settrace", "sys.setprofile", "sys._getframe", "sys._current_frames",
                            "sys._current_exceptions", "gc.get_objects", "gc.get_referrers", "gc.get_referents"})
_FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code"})
_LIBC = ctypes.CDLL(None, use_errno=True)


def _libc_call(name: str, *args: object) -> None:
    """Call a libc function that returns 0 on success; raise OSError with errno otherwise."""
    if getattr(_LIBC, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _prctl(option: int, value: int, required: bool = True) -> None:
    with contextlib.suppress(*(() if required else (OSError,))):
        _libc_call("prctl", option, *(ctypes.c_ulong(v) for v in (value, 0, 0, 0)))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if text is None else text.encode() for text in (source, target, fstype, data)]
    _libc_call("mount", enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3])


def _isolate(cfg: dict) -> list[str]:
    """Enter namespaces and hide the host file system where allowed; return notes on what applied."""
    if cfg["uid"] is None:
        return ["no privilege drop (not root)", _user_netns()]
    notes = [f"privileges dropped to uid/gid {cfg['uid']}/{cfg['gid']}"]
    try:
        _libc_call("unshare", _CLONE_NEWNET)
        notes.append("network namespace (no interfaces up)")
    except OSError as exc:
        notes.append(f"network NOT isolated ({exc.strerror})")
    try:
        _libc_call("unshare", _CLONE_NEWNS)
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        _mask_file_system(cfg)
        notes.append("mount namespace: workdir, /tmp, /var/tmp, /dev/shm are private tmpfs")
    except OSError as exc:  # our cwd is still the on-disk workdir the parent made
        notes.append(f"mount isolation failed ({exc.strerror}): workdir on disk, /tmp shared")
        masks, shared = _masks(cfg["workdir"])
        if set(masks) - shared:  # e.g. a pyenv under a 0700 /root: the dropped uid can import nothing new
            cfg["preload"] = True
            notes.append("Python install not readable by the sandbox uid: only preloaded stdlib modules")
    return notes


def _user_netns() -> str:
    """Unprivileged network isolation: a user namespace mapping our own ids, plus a network namespace."""
    uid, gid = os.getuid(), os.getgid()
    try:
        _libc_call("unshare", _CLONE_NEWUSER | _CLONE_NEWNET)
        maps = {"setgroups": "deny", "uid_map": f"{uid} {uid} 1", "gid_map": f"{gid} {gid} 1"}
        for name, text in maps.items():
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    except OSError as exc:
        return f"network NOT isolated ({exc.strerror})"
    return "network namespace via user namespace"


def _masks(workdir: str) -> tuple[dict[str, set[str]], set[str]]:
    """Directories to cover with a tmpfs -> entries to bind back. Shared temp dirs are always covered; an
    ancestor of the Python install that the sandbox uid cannot search (a 0700 /root holding a pyenv) is
    covered too, keeping only the entries on the way to Python (the rest of /root disappears)."""
    shared = {os.path.realpath(d) for d in _SHARED_TMP if os.path.isdir(d)}
    masks: dict[str, set[str]] = {d: set() for d in shared}
    python = [*sys.path, sys.prefix, sys.base_prefix, sys.executable, os.path.realpath(sys.executable)]
    for path in sorted({os.path.realpath(p) for p in python if p and os.path.exists(p)} | {workdir}):
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            parent, child = "/" + "/".join(parts[:depth]), parts[depth]
            if parent in shared:
                if path != workdir:  # the workdir gets a fresh mount point instead
                    masks[parent].add(child)
            elif not os.stat(parent).st_mode & 0o001:
                masks.setdefault(parent, set()).add(child)
    return masks, shared


def _mask_file_system(cfg: dict) -> None:
    """Cover the masks with tmpfs, bind the kept entries back, and mount a private tmpfs workdir."""
    workdir, mb = cfg["workdir"], cfg["max_file_mb"]
    masks, shared = _masks(workdir)
    keep = {f"{d}/{c}": os.open(f"{d}/{c}", os.O_PATH) for d in masks for c in masks[d]}
    try:
        for directory in sorted(masks):
            opts = f"mode=1777,size={mb}m" if directory in shared else "mode=755,size=1m"
            _mount("tmpfs", directory, "tmpfs", _MS_NOSUID | _MS_NODEV, opts + ",nr_inodes=10000")
            for child in masks[directory]:
                path, source = f"{directory}/{child}", f"/proc/self/fd/{keep[f'{directory}/{child}']}"
                if os.path.isdir(source):
                    os.mkdir(path)
                else:
                    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
                _mount(source, path, None, _MS_BIND | _MS_REC)
    finally:
        for fd in keep.values():
            os.close(fd)
    os.makedirs(workdir, exist_ok=True)
    opts = f"mode=700,uid={cfg['uid']},gid={cfg['gid']},size={4 * mb}m,nr_inodes=10000"
    _mount("tmpfs", workdir, "tmpfs", _MS_NOSUID | _MS_NODEV, opts)
    os.chdir(workdir)


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


def _read_config() -> dict:
    """The parent's JSON config from stdin, which is then replaced by /dev/null."""
    chunks = []
    while chunk := os.read(0, 1 << 16):
        chunks.append(chunk)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return json.loads(b"".join(chunks))


def _write_json(fd: int, record: dict) -> None:
    os.write(fd, b"\n" + json.dumps(record).encode() + b"\n")


def main() -> None:
    cfg = _read_config()
    sys.path.extend(cfg["site_dirs"])  # started with -S: installed packages without running site/.pth
    notes = _isolate(cfg)
    _prctl(_PR_SET_DUMPABLE, 0, required=False)  # no /proc/<pid>/mem or ptrace by a same-uid program
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, required=False)
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
    audit("pkt.sandbox.arm", here(0))
    try:
        run(code, namespace)
    except catch as exc:
        audit("pkt.sandbox.abort")
        return exc
    audit("pkt.sandbox.finish")
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
        if event.startswith("pkt.sandbox."):
            if event == "pkt.sandbox.arm" and state == "idle":
                state, exec_frame = "armed", args[0]
            elif state == "armed" and 0 <= run_lasti < exec_frame.f_lasti:
                if event == "pkt.sandbox.finish":
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
        _prctl(_PR_SET_NO_NEW_PRIVS, 1, required=False)  # setuid binaries gain nothing
        _prctl(_PR_SET_DUMPABLE, 0, required=False)  # setuid() resets it; keep /proc/self/mem closed
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
