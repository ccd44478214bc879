"""Run untrusted generated Python (HumanEval / MBPP completions + tests) and decide pass@1 verdicts.

Each program runs in its own process tree under a trusted supervisor (``runner.py``; its docstring
has the protocols) in a new session: fresh working directory (deleted afterwards), stdin on /dev/null, a minimal
environment (PATH, LANG, HOME = TMPDIR = the workdir), RLIMIT_CPU/AS/NPROC/FSIZE from :class:`SandboxLimits`
(and RLIMIT_CORE = 0), a wall-clock timeout, and afterwards SIGKILL for every process it left behind. The
program runs as module ``__sandbox__`` (so ``if __name__ == "__main__":`` blocks stay off, as in the
reference harnesses) under ``python -I -S``, with our site-packages on ``sys.path`` (``.pth`` files are
not processed).

Isolation actually applied (recorded per run in ``SandboxResult.isolation``):

* **As root** (CI): a fresh uid/gid from :data:`SANDBOX_UID_RANGE` per run (65534 if that range is not mapped
  in our user namespace), so RLIMIT_NPROC stops fork bombs, root-owned files and processes (the caller, the
  fork server, the supervisor) are out of reach, and cleanup can kill that uid's processes atomically. Plus a
  network namespace (no interfaces up) and a private mount namespace where the workdir, /tmp, /var/tmp and
  /dev/shm are small fresh tmpfs mounts and any directory the uid cannot search on the way to the Python
  install (a 0700 /root holding pyenv) is covered, keeping only the Python entries. Where unshare/mount is
  refused (a container without CAP_SYS_ADMIN) the run goes on with a note: workdir on disk (owned by the uid,
  under a root-owned 0711 dir), /tmp and /dev/shm shared, network open, and - if the Python install is
  unreadable for the uid - only a preloaded set of stdlib modules importable.
* **Not root**: no privilege drop is possible, and the result says so. The program runs as the caller's uid
  and can read, write and signal whatever the caller can; RLIMIT_NPROC counts all of that uid's processes; a
  user + network namespace is tried. ``os.kill(os.getppid(), 9)`` hits the supervisor (and its parent's
  pid the fork server), not the caller: the run fails, the program's process group is killed and the
  evaluation goes on (a program that calls ``setsid`` before killing its supervisor can outlive the run).

Fork server: starting a fresh ``python -I -S -B runner.py`` (and its imports) per program cost most
of a run, so by default each worker thread borrows a long-lived *fork server* from a pool: the same runner
started once with ``--fork-server``, a minimal environment and a new session, which forks one supervisor per
program. The parent sends the config in a memfd plus the output, channel and report files over a Unix
socketpair (SCM_RIGHTS) and gets the supervisor's pid; it waits on a pidfd (the supervisor stays unreaped),
and then the server SIGKILLs the supervisor's process group and reaps it, so the ids cannot be reused in
between, as with a direct child. The server never holds a nonce or runs untrusted code; it exits when the
parent closes its socket or dies, and :func:`close_fork_servers` / interpreter exit close the pool. If it
dies or stops answering during a run, the supervisor is killed through its pidfd, the leftovers are swept
as for a dead runner, the run fails (never passes), and the next run starts a new server.
``fork_server=False`` spawns one runner per program instead (the reference for the benchmark).

Pass rule: ``passed`` only if the runner's ``exec`` of the program returned normally (every statement ran, so
every assertion held) AND the program process exited 0. Completion is proven by a per-run random nonce, given
to the supervisor in its config (stdin or memfd; never argv, env or source) and written to a private channel
by an audit hook when the runner - not the program - reports completion. ``sys.exit(0)``, ``os._exit(0)``,
printing "passed", ``raise SystemExit(0)`` in a test, or patching ``builtins`` / ``AssertionError`` all fail.

Known limits:

* The in-process guard is defence in depth, not a proof. While the program runs it denies
  ``sys._getframe`` (as ValueError, which ``typing``/``enum``/``logging`` tolerate), ``sys.settrace``/
  ``setprofile``, ``gc`` object walks, ``tb_frame``/``f_code``/generator frames and ctypes, so programs
  that print tracebacks, use ``inspect``, debuggers or ctypes fail. A program that reads raw process memory
  some other way (a C extension such as numpy over an arbitrary address, crafted bytecode via marshal)
  could still find the nonce and forge a pass.
* The sandbox cannot judge tests: returning an object whose ``__eq__`` is always true, or shadowing a
  builtin / patching a module the tests use, passes.
* Memory is capped per process (``max_processes`` x ``memory_mb`` for a tree). Disk is capped per file,
  and in total only with the tmpfs workdir. Other processes' /proc entries (command lines) stay readable.
* Status and reason of a failing run are advisory (the program can choose how it fails, never to pass).
* Supervisors forked from one server share its start-up state: address-space layout (ASLR) and the str hash
  seed are the same for every program that server runs (each one-shot runner got fresh ones).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import site
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from pkt.evaluation.sandbox.pool import (
    RUNNER_ARGV,
    ServerLost,
    close_fork_servers,  # noqa: F401 - part of this module's interface
    pidfd_exited,
    return_server,
    take_server,
)

STATUSES = ("pass", "fail", "timeout", "error")
SANDBOX_UID_RANGE = range(2_000_000, 3_000_000)
_NOBODY = 65534  # fallback when SANDBOX_UID_RANGE is not mapped in our user namespace
_GRACE_S = 2.0  # + timeout/4: runner start-up and cleanup allowance before the parent's backstop kill
_TAIL_CHARS = 2000
_SIGNAL_NOTES = {
    signal.SIGXCPU: "CPU time limit",
    signal.SIGXFSZ: "output file size limit",
    signal.SIGKILL: "CPU hard limit, out of memory or killed",
    signal.SIGSEGV: "segmentation fault (often stack exhaustion)",
}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits: wall clock (whole tree), CPU seconds, address space, processes, file size."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 16

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {value}")


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class SandboxResult:
    """Verdict for one program; ``to_dict()`` is one JSONL record."""

    status: str  # one of STATUSES
    reason: str
    duration_s: float
    stdout: str = ""  # tails, at most _TAIL_CHARS each
    stderr: str = ""
    isolation: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def humaneval_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """HumanEval convention: prompt + completion, then the test block and ``check(entry_point)``."""
    return f"{prompt}{completion}\n\n{test}\n\ncheck({entry_point})\n"


def mbpp_program(code: str, test_list: Sequence[str], test_setup_code: str = "") -> str:
    """MBPP convention: the code, the setup code, then each assert on its own line."""
    return "\n".join([code, test_setup_code, *test_list]) + "\n"


def run_programs(
    programs: Sequence[str], limits: SandboxLimits = DEFAULT_LIMITS, workers: int = 2, *, fork_server: bool = True
) -> list[SandboxResult]:
    """Run many programs, ``workers`` at a time (threads, each waiting on its own process); order kept."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    run = functools.partial(run_program, limits=limits, fork_server=fork_server)
    if workers == 1 or len(programs) < 2:
        return [run(p) for p in programs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(run, programs))


def run_program(program: str, limits: SandboxLimits = DEFAULT_LIMITS, *, fork_server: bool = True) -> SandboxResult:
    """Run one full program (solution + tests); it passes iff it completes without exception (module doc).

    ``fork_server=False`` (or a system without pidfd/memfd) spawns a fresh runner instead of forking one.
    """
    start = time.monotonic()
    ids = _sandbox_ids()
    try:
        with contextlib.ExitStack() as stack:
            tmp = tempfile.TemporaryDirectory(prefix="pkt-sandbox-", ignore_cleanup_errors=True)
            base = stack.enter_context(tmp)
            files = [stack.enter_context(tempfile.TemporaryFile()) for _ in ("out", "err", "chan", "report")]
            workdir = _make_workdir(os.path.realpath(base), ids)
            nonce = secrets.token_hex(16)
            launch = _launch_forked if fork_server and _fork_server_usable() else _launch
            try:
                returncode, backstop = launch(program, limits, workdir, ids, nonce, files)
            except ServerLost as exc:
                duration = round(time.monotonic() - start, 4)
                return SandboxResult("fail", str(exc), duration, _tail_text(files[0]), _tail_text(files[1]))
            return _verdict(limits, returncode, backstop, nonce, files, time.monotonic() - start)
    except OSError as exc:
        return SandboxResult("error", f"sandbox could not run the program: {exc}", time.monotonic() - start)


def _sandbox_ids() -> tuple[int, int] | None:
    """A fresh unprivileged uid (= gid) for one run when we are root; None when no drop is possible."""
    if os.geteuid() != 0:
        return None
    uid = SANDBOX_UID_RANGE.start + secrets.randbelow(len(SANDBOX_UID_RANGE))
    return (uid, uid) if _id_mapped(uid) else (_NOBODY, _NOBODY)


@functools.cache
def _mapped_ranges() -> tuple[tuple[int, int], ...]:
    """[lo, hi) id ranges present in both our uid_map and gid_map (the whole space outside a userns)."""
    ranges = []
    for name in ("uid_map", "gid_map"):
        try:
            text = Path(f"/proc/self/{name}").read_text()
        except OSError:
            return ((0, 2**32 - 1),)
        rows = [tuple(int(x) for x in line.split()) for line in text.splitlines() if line.strip()]
        ranges.append(tuple((inside, inside + count) for inside, _, count in rows))
    return tuple((a, b) for a, b in ranges[0] if any(c <= a and b <= d for c, d in ranges[1]))


def _id_mapped(uid: int) -> bool:
    return any(lo <= uid < hi for lo, hi in _mapped_ranges())


def _make_workdir(base: str, ids: tuple[int, int] | None) -> str:
    """``base/w``: base stays root-owned 0711 so ``..`` is not writable; w belongs to the sandbox uid."""
    workdir = os.path.join(base, "w")
    os.mkdir(workdir, 0o700)
    if ids is not None:
        os.chmod(base, 0o711)
        os.chown(workdir, *ids)
    return workdir


def _config(
    program: str, limits: SandboxLimits, workdir: str, ids: tuple[int, int] | None, nonce: str, fds: tuple[int, int]
) -> dict:
    """The runner's JSON config (never in argv or the environment: it holds the nonce)."""
    return {
        **asdict(limits),
        "program": program,
        "nonce": nonce,
        "workdir": workdir,
        "env": {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"},
        "uid": ids[0] if ids else None,
        "gid": ids[1] if ids else None,
        "private_uid": ids is not None and ids[0] in SANDBOX_UID_RANGE,
        "site_dirs": _site_dirs(),
        "chan_fd": fds[0],
        "report_fd": fds[1],
    }


def _launch(
    program: str,
    limits: SandboxLimits,
    workdir: str,
    ids: tuple[int, int] | None,
    nonce: str,
    files: list[IO[bytes]],
) -> tuple[int, bool]:
    """Spawn a one-shot runner, hand it its config on stdin, wait; return (exit code, backstop fired)."""
    out, err, chan, report = files
    config = _config(program, limits, workdir, ids, nonce, (chan.fileno(), report.fileno()))
    proc = subprocess.Popen(
        RUNNER_ARGV,
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=err,
        pass_fds=(chan.fileno(), report.fileno()),
        cwd=workdir,
        env=config["env"],
        start_new_session=True,
    )
    backstop = True
    try:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(json.dumps(config).encode())
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        backstop = not _exited(proc, _backstop_s(limits))
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # unreaped runner: its pgid cannot have been reused
        if proc.wait() != 0 or backstop:  # the runner could not clean up after the program: we do
            _kill_orphans(files[3], ids)
    return proc.returncode, backstop


@functools.cache
def _site_dirs() -> tuple[str, ...]:
    """Our site-packages directories, so that sandboxed programs can import installed packages (numpy)."""
    return tuple(p for p in site.getsitepackages() if os.path.isdir(p))


def _backstop_s(limits: SandboxLimits) -> float:
    return 1.25 * limits.timeout_s + _GRACE_S


def _exited(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for the runner to exit *without reaping it* (pidfd), so killpg afterwards is race-free."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return pidfd_exited(pidfd, timeout_s)
    finally:
        os.close(pidfd)


@functools.cache
def _fork_server_usable() -> bool:
    """pidfd_open (wait for a non-child), pidfd_send_signal and memfd_create exist and work here."""
    if not all(hasattr(m, n) for m, n in ((os, "pidfd_open"), (os, "memfd_create"), (signal, "pidfd_send_signal"))):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


def _launch_forked(
    program: str,
    limits: SandboxLimits,
    workdir: str,
    ids: tuple[int, int] | None,
    nonce: str,
    files: list[IO[bytes]],
) -> tuple[int, bool]:
    """Have a pooled fork server fork a supervisor, wait, kill + reap; return (exit code, backstop fired)."""
    config = json.dumps(_config(program, limits, workdir, ids, nonce, (3, 4))).encode()
    server, healthy, pidfd = take_server(), False, None
    deadline = time.monotonic() + _backstop_s(limits)
    try:
        with open(os.memfd_create("pkt-sandbox-config"), "wb") as config_file:  # the server never reads it
            config_file.write(config)
            config_file.flush()
            word, rest = server.ask("run", [config_file.fileno(), *(f.fileno() for f in files)])
        if word != "pid":
            healthy = True
            raise OSError(f"sandbox fork server: {word} {rest}")
        pidfd = os.pidfd_open(int(rest))  # the supervisor stays unreaped until we ask: no pid reuse
        backstop = not pidfd_exited(pidfd, _backstop_s(limits), server.sock)  # (socket: EOF, early)
        word, rest = server.ask(f"reap {rest}")  # the server SIGKILLs its process group, then reaps it
        if word != "exit":
            raise ServerLost(f"sandbox fork server could not reap the supervisor: {rest}")
        healthy = True
    except BaseException as exc:
        if pidfd is not None:  # a supervisor that lost its server still times out, kills and sweeps: let it
            left = deadline - time.monotonic() if isinstance(exc, ServerLost) else 0.0
            if not pidfd_exited(pidfd, max(0.0, left)):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # by pidfd: right process even if reparented
        _kill_orphans(files[3], ids)
        raise
    finally:
        if pidfd is not None:
            os.close(pidfd)
        return_server(server, healthy)
    returncode = int(rest)
    if returncode != 0 or backstop:  # the supervisor could not clean up after the program: we do
        _kill_orphans(files[3], ids)
    return returncode, backstop


def _kill_orphans(report: IO[bytes], ids: tuple[int, int] | None) -> None:
    """After a runner died or hung: SIGKILL the program's process group (the runner reports its pgid first)
    and, as root, every process of the run's private uid (never the shared 65534), stopping them all first
    so that a fork bomb cannot refill while we walk /proc."""
    pgids = [r["pgid"] for r in _json_lines(_read(report)) if isinstance(r.get("pgid"), int)]
    if pgids and pgids[0] > 1 and pgids[0] != os.getpgrp():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgids[0], signal.SIGKILL)
    if ids is None or ids[0] not in SANDBOX_UID_RANGE:
        return
    stopped: set[int] = set()
    for _ in range(100):
        found = set()
        for entry in os.scandir("/proc"):
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and entry.stat().st_uid == ids[0]:
                    found.add(int(entry.name))
        if found <= stopped:
            break
        for pid in found - stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= found
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _read(handle: IO[bytes], tail: int | None = None) -> bytes:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0 if tail is None else max(0, size - tail))
    return handle.read()


def _tail_text(handle: IO[bytes]) -> str:
    return _read(handle, 4 * _TAIL_CHARS).decode("utf-8", "replace")[-_TAIL_CHARS:]


def _json_lines(data: bytes) -> list[dict]:
    records = []
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def _signal_reason(number: int) -> str:
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"killed by signal {number}"
    note = _SIGNAL_NOTES.get(sig)
    return f"killed by {sig.name}" + (f": {note}" if note else "")


def _verdict(
    limits: SandboxLimits,
    returncode: int,
    backstop: bool,
    nonce: str,
    files: list[IO[bytes]],
    duration: float,
) -> SandboxResult:
    """Turn the runner's report, the program's channel and exit codes into a SandboxResult."""
    out, err, chan, report_file = files
    finals = [r for r in _json_lines(_read(report_file)) if "timeout" in r]  # the first line is the pgid
    report = finals[-1] if finals else None
    isolation = "; ".join(report.get("isolation", [])) if report else ""

    def result(status: str, reason: str) -> SandboxResult:
        return SandboxResult(status, reason, round(duration, 4), _tail_text(out), _tail_text(err), isolation)

    if report is None:
        if backstop:
            return result("timeout", f"wall-clock timeout {limits.timeout_s:g}s (runner unresponsive)")
        if returncode < 0:
            name = _signal_reason(-returncode).split(":")[0]
            return result("fail", f"sandbox supervisor {name} (did the program signal its parent?)")
        return result("error", f"sandbox runner failed with exit status {returncode}")
    if report.get("timeout"):
        return result("timeout", f"wall-clock timeout {limits.timeout_s:g}s")
    if "signal" in report:
        return result("fail", _signal_reason(int(report["signal"])))
    channel = _read(chan)
    code = report.get("exit")
    if code == 0 and f"pass {nonce}".encode() in channel.splitlines():
        return result("pass", "completed: every statement ran and every assertion held")
    notes = [r for r in _json_lines(channel) if isinstance(r.get("reason"), str)]
    if notes:
        return result("error" if notes[-1].get("kind") == "error" else "fail", notes[-1]["reason"][:500])
    if code == 0:
        return result("fail", "exited with status 0 before the tests completed (no completion token)")
    return result("fail", f"exited with status {code}")
