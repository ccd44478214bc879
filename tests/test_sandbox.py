"""pkt.evaluation.sandbox.run: known-answer programs, a hostile suite, and a mixed batch on two workers.

Every hostile program must come back not passed, the test process must survive, the next program must
still be evaluated, and files outside the sandbox must be untouched. Short limits keep the file fast;
no timings are asserted. Runs use the fork server (the default) unless a test says otherwise; the last
section checks the server itself: reuse, loss during a run, shutdown, and the same setup as a spawned runner.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pkt.evaluation.sandbox.run import (
    SANDBOX_UID_RANGE,
    SandboxLimits,
    SandboxResult,
    close_fork_servers,
    humaneval_program,
    mbpp_program,
    run_program,
    run_programs,
)

LIMITS = SandboxLimits(timeout_s=3.0, cpu_s=5, memory_mb=512, max_processes=32, max_file_mb=1)
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs the privilege drop, which is only possible as root")

GOOD = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n"
WRONG = "def add(a, b):\n    return a - b\n\nassert add(2, 3) == 5\n"
PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def prog(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def assert_still_working() -> None:
    """The sandbox keeps evaluating after a hostile program."""
    assert run_program(GOOD, LIMITS).passed


def leftover_processes(result: SandboxResult) -> list[int]:
    """Processes still owned by the private uid the run was given (none to look for when not root)."""
    match = re.search(r"uid/gid (\d+)/", result.isolation)
    if match is None or int(match.group(1)) not in SANDBOX_UID_RANGE:
        return []
    uid, pids = int(match.group(1)), []
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


# ------------------------------------------------------------------------------------ known answers --
def test_humaneval_correct_solution_passes():
    result = run_program(humaneval_program(PROMPT, "    return a + b\n", TEST, "add"), LIMITS)
    assert result.status == "pass", result
    assert result.passed


def test_humaneval_wrong_solution_fails_with_assertion_line():
    program = humaneval_program(PROMPT, "    return a * b\n", TEST, "add")
    result = run_program(program, LIMITS)
    assert result.status == "fail"
    assert result.reason.startswith("AssertionError at line 7"), result.reason  # first assert in check()
    assert "AssertionError" in result.stderr


def test_mbpp_programs():
    tests = ["assert square(3) == 9", "assert square(0) == 0"]
    setup = "import math"
    assert run_program(mbpp_program("def square(x):\n    return x * x", tests, setup), LIMITS).passed
    wrong = run_program(mbpp_program("def square(x):\n    return x + x", tests), LIMITS)
    assert wrong.status == "fail" and wrong.reason.startswith("AssertionError at line 4"), wrong.reason


def test_syntax_error_is_reported():
    result = run_program("def add(a, b)\n    return a + b\n", LIMITS)
    assert result.status in {"fail", "error"}
    assert "SyntaxError at line 1" in result.reason


def test_runtime_error_and_closed_stdin():
    assert run_program("1 / 0\n", LIMITS).reason == "ZeroDivisionError at line 1: division by zero"
    assert run_program("x = input()\n", LIMITS).reason.startswith("EOFError at line 1")


def test_ordinary_stdlib_use_passes_under_the_guard():
    program = prog(
        """
        import asyncio, collections, dataclasses, enum, functools, heapq, logging, math, re, typing
        P = collections.namedtuple("P", "x y")
        T = typing.TypeVar("T")
        Color = enum.Enum("Color", "RED GREEN")
        logging.getLogger("x").warning("visible on stderr")

        @dataclasses.dataclass
        class Box:
            v: int

        @functools.lru_cache(maxsize=None)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def gen():
            yield from range(3)

        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        try:
            raise KeyError("handled")
        except KeyError as exc:
            assert exc.args == ("handled",)
        assert P(1, 2).y == 2 and Color.RED.value == 1 and Box(3).v == 3 and fib(30) == 832040
        assert sorted(heapq.nsmallest(2, [5, 1, 3])) == [1, 3] and list(gen()) == [0, 1, 2]
        assert asyncio.run(double(21)) == 42
        assert re.findall(r"\\d+", "a1b22") == ["1", "22"] and math.isclose(math.pi, 3.14159, rel_tol=1e-5)
        print("done")
        """
    )
    result = run_program(program, LIMITS)
    assert result.passed, result
    assert result.stdout == "done\n"


def test_result_is_a_json_record():
    result = run_program(GOOD, LIMITS)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["status"] == "pass" and set(record) >= {
        "status",
        "reason",
        "duration_s",
        "stdout",
        "stderr",
    }
    assert SandboxResult(**record) == result
    with pytest.raises(ValueError):
        SandboxResult("passed", "", 0.0)
    with pytest.raises(ValueError):
        SandboxLimits(timeout_s=0)


# ---------------------------------------------------------------------------------------- hostile --
# Catch the guard's own frame in a signal handler and look through every reachable frame for the nonce
# (this worked against a guard that kept the nonce in a closure variable), then try to hand it in.
SIGNAL_FRAME_ATTACK = prog(
    """
    import os, signal, sys
    found = []
    def handler(sig, frame):
        while frame is not None and not found:
            for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
                if isinstance(value, (bytes, bytearray, str)) and "pass " in str(value):
                    found.append(value)
            frame = frame.f_back
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.00005, 0.00005)
    for _ in range(20000):
        try:
            sys.audit("pkt.evaluation.sandbox.run.probe")
        except RuntimeError:
            pass
        if found:
            break
    signal.setitimer(signal.ITIMER_REAL, 0)
    for fd in range(3, 64):
        for value in found:
            try:
                os.write(fd, value if isinstance(value, (bytes, bytearray)) else value.encode())
            except OSError:
                pass
    os._exit(0)
    """
)
# Jump over a failing assert with a trace function (in plain Python this exits 0).
SETTRACE_JUMP = prog(
    """
    import sys
    def jump(frame, event, arg):
        if event == "line" and frame.f_lineno == 7:
            frame.f_lineno = 8
        return jump
    def check(candidate):
        assert candidate(2) == 5
        return True
    sys.settrace(jump)
    check(abs)
    sys.settrace(None)
    """
)
HOSTILE = {
    "endless_loop": ("while True:\n    pass\n", "timeout"),
    "fork_bomb": (
        prog(
            """
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """
        ),
        None,
    ),
    "memory_hog": ("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))\n", "fail"),
    "huge_print": ("while True:\n    print('x' * 1000)\n", "fail"),
    "huge_file": (
        "with open('big.bin', 'wb') as fh:\n    while True:\n        fh.write(b'x' * 65536)\n",
        "fail",
    ),
    "os_exit_0": (GOOD.replace("assert", "import os\nos._exit(0)\nassert").replace("== 5", "== 6"), "fail"),
    "sys_exit_0": ("import sys\nsys.exit(0)\nassert 1 == 2\n", "fail"),
    "print_passed": (
        "import os, sys\nprint('passed')\nsys.stdout.flush()\nos._exit(0)\nassert False\n",
        "fail",
    ),
    "patch_assertion_error": (
        "import builtins\nclass Fake(Exception):\n    pass\nbuiltins.AssertionError = Fake\nassert 1 == 2\n",
        "fail",
    ),
    "patch_builtins": (
        prog(
            """
            import builtins, os
            builtins.print = lambda *a, **k: None
            builtins.exit = builtins.quit = lambda *a: os._exit(0)
            builtins.__import__ = lambda *a, **k: None
            exit(0)
            assert False
            """
        ),
        "fail",
    ),
    "system_exit_in_test": (
        "def check(candidate):\n    raise SystemExit(0)\n    assert candidate(1) == 2\n\ncheck(abs)\n",
        "fail",
    ),
    "runner_frames": ("import sys\nframe = sys._getframe(1)\nprint(frame.f_locals)\n", "fail"),
    "traceback_frames": (
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    e.__traceback__.tb_frame\n",
        "fail",
    ),
    "settrace_skips_assert": (SETTRACE_JUMP, "fail"),
    "gc_scan": ("import gc\nprint(len(gc.get_objects()))\n", "fail"),
    "forged_token": (
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, b'\\npass ' + b'0' * 32 + b'\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)\n",
        "fail",
    ),
    "forged_control_event": ("import sys\nsys.audit('pkt.evaluation.sandbox.run.finish')\nassert False\n", "fail"),
    "call_runner_execute": (
        "import __main__\n__main__._execute(compile('x = 1', 'y', 'exec'), {})\nimport os\nos._exit(0)\n",
        "fail",
    ),
    "ctypes": ("import ctypes\nctypes.CDLL(None)\n", "fail"),
    "signal_handler_frames": (SIGNAL_FRAME_ATTACK, "fail"),
    "thread_forges_finish": (
        prog(
            """
            import os, sys, threading
            def forge():
                try:
                    sys.audit("pkt.evaluation.sandbox.run.finish")
                finally:
                    os._exit(0)
            threading.Thread(target=forge).start()
            threading.Event().wait(5)
            """
        ),
        "fail",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_does_not_pass(name, tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep")
    program, expected = HOSTILE[name]
    result = run_program(program, LIMITS)
    assert not result.passed, result
    assert result.status in {"fail", "timeout", "error"}
    if expected is not None:
        assert result.status == expected, result
    assert sentinel.read_text() == "keep"
    assert not leftover_processes(result)
    assert_still_working()


def test_limit_reasons():
    assert "SIGXCPU" in run_program("while True:\n    pass\n", SandboxLimits(timeout_s=5, cpu_s=1)).reason
    assert "MemoryError" in run_program("x = bytearray(10**10)\n", LIMITS).reason
    assert "SIGXFSZ" in run_program(HOSTILE["huge_print"][0], LIMITS).reason


@needs_root
def test_cannot_write_outside(tmp_path):
    target = tmp_path / "pwned.txt"
    for program in (
        f"open({str(target)!r}, 'w').write('pwned')\n",
        "open('../escape.txt', 'w').write('x')\n",
    ):
        result = run_program(program, LIMITS)
        assert not result.passed, result
    assert not target.exists()
    assert_still_working()


@needs_root
def test_cannot_delete_outside(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    result = run_program(f"import os\nos.remove({str(victim)!r})\n", LIMITS)
    assert not result.passed
    assert victim.read_text() == "precious"
    assert_still_working()


@pytest.mark.parametrize("sig", [9, 19])  # SIGKILL, SIGSTOP
def test_killing_the_parent_does_not_stop_the_evaluation(sig):
    program = f"import os, time\nos.kill(os.getppid(), {sig})\ntime.sleep(0.2)\nassert 1 == 1\n"
    result = run_program(program, LIMITS)
    assert not result.passed, result
    assert_still_working()


def test_killing_the_process_group_does_not_stop_the_evaluation():
    result = run_program("import os\nos.killpg(os.getpgid(0), 9)\nassert 1 == 1\n", LIMITS)
    assert not result.passed, result
    assert_still_working()


@needs_root
def test_privileges_are_dropped():
    program = "import os\nassert os.getuid() != 0 and os.geteuid() != 0\nprint(os.getuid())\n"
    result = run_program(program, LIMITS)
    assert result.passed, result
    assert "privileges dropped" in result.isolation


def test_network_is_isolated_where_namespaces_are_allowed():
    probe = run_program(GOOD, LIMITS)
    if "network namespace" not in probe.isolation:
        pytest.skip(f"no network namespace here: {probe.isolation}")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"
        result = run_program(program, LIMITS)
    assert not result.passed, result
    assert "OSError" in result.reason or "Error" in result.reason


# ------------------------------------------------------------------------------------------ batch --
def test_batch_on_two_workers_keeps_order_and_statuses():
    programs = [
        GOOD,
        WRONG,
        HOSTILE["endless_loop"][0],
        HOSTILE["os_exit_0"][0],
        HOSTILE["huge_print"][0],
        HOSTILE["sys_exit_0"][0],
        "import os\nos.kill(os.getppid(), 9)\n",
        HOSTILE["fork_bomb"][0],
        humaneval_program(PROMPT, "    return a + b\n", TEST, "add"),
        "def f(:\n",
    ]
    results = run_programs(programs, LIMITS, workers=2)
    statuses = [r.status for r in results]
    assert statuses[:7] == ["pass", "fail", "timeout", "fail", "fail", "fail", "fail"], results
    assert statuses[7] in {"fail", "timeout"}
    assert statuses[8:] == ["pass", "error"]
    assert [r.status for r in run_programs([GOOD, WRONG], LIMITS, workers=1)] == ["pass", "fail"]


# ------------------------------------------------------------------------------------- fork server --
# Prints the supervisor's pid and its parent's (the fork server's, or ours for a spawned runner).
SERVER_PIDS = prog(
    """
    import os
    with open(f"/proc/{os.getppid()}/stat") as fh:
        print(os.getppid(), fh.read().rsplit(")", 1)[1].split()[1])
    """
)


def supervisor_and_parent(**kwargs) -> tuple[int, int]:
    result = run_program(SERVER_PIDS, LIMITS, **kwargs)
    assert result.passed, result
    supervisor, parent = result.stdout.split()
    return int(supervisor), int(parent)


def proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
    except OSError:
        return None
    return state, int(ppid)


def running(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state[0] not in "ZX"


def wait_until_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not running(pid)


def test_one_fork_server_serves_many_programs():
    runs = [supervisor_and_parent() for _ in range(4)]
    servers = {server for _, server in runs}
    assert len(servers) == 1 and len({supervisor for supervisor, _ in runs}) == 4, runs
    server = servers.pop()
    assert server != os.getpid() and proc_state(server) == ("S", os.getpid())  # our child, idle
    supervisor, parent = supervisor_and_parent(fork_server=False)
    assert parent == os.getpid() and supervisor != server  # the one-shot runner is our own child


def test_forked_and_spawned_supervisors_set_up_the_same_process():
    program = prog(
        """
        import os, sys
        print(sorted(os.environ), os.environ["HOME"] == os.environ["TMPDIR"] == os.getcwd())
        print(len(os.listdir("/proc/self/fd")), os.getpgid(0) == os.getpid(), os.getsid(0) == os.getppid())
        print(open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0], sys.argv, __name__)
        """
    )
    forked, spawned = (run_program(program, LIMITS, fork_server=f) for f in (True, False))
    assert forked.passed and spawned.passed, (forked, spawned)
    assert forked.stdout == spawned.stdout, (forked.stdout, spawned.stdout)
    assert forked.stdout.splitlines()[:2] == ["['HOME', 'LANG', 'PATH', 'TMPDIR'] True", "5 True True"]  # 0-2, chan, ls
    assert re.sub(r"\d+", "N", forked.isolation) == re.sub(r"\d+", "N", spawned.isolation)  # a fresh uid each


def test_programs_forked_from_one_server_get_fresh_randomness():
    program = "import os, random\nprint(random.getrandbits(64), os.urandom(8).hex())\n"
    outputs = [run_program(program, LIMITS).stdout for _ in range(3)]
    assert all(outputs) and len(set(outputs)) == 3, outputs  # `random` is first imported after the fork


def test_program_that_kills_its_supervisor_or_fork_server_fails_and_the_next_passes():
    supervisor_kill = "import os\nos.kill(os.getppid(), 9)\nassert 1 == 1\n"
    server_kill = prog(
        """
        import os
        with open(f"/proc/{os.getppid()}/stat") as fh:
            os.kill(int(fh.read().rsplit(")", 1)[1].split()[1]), 9)  # refused as root, a real kill otherwise
        assert 1 == 1
        """
    )
    for program in (supervisor_kill, server_kill):
        result = run_program(program, LIMITS)
        assert not result.passed and result.status in {"fail", "error"}, result
        assert not leftover_processes(result)
        assert_still_working()


def test_fork_server_killed_during_a_run_fails_it_and_a_new_server_takes_over():
    _, server = supervisor_and_parent()
    killer = threading.Timer(0.3, os.kill, (server, signal.SIGKILL))
    killer.start()
    try:  # would pass if the server survived
        result = run_program("import os, time\nprint(os.getuid(), flush=True)\ntime.sleep(1.2)\n", LIMITS)
    finally:
        killer.join()
    assert result.status == "fail" and "fork server" in result.reason, result
    uid = int(result.stdout.split()[0])
    if uid in SANDBOX_UID_RANGE:  # the run's processes were SIGKILLed all the same (init reaps them)
        marker = SandboxResult("fail", "", 0.0, isolation=f"uid/gid {uid}/{uid}")
        deadline = time.monotonic() + 5.0
        while leftover_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not leftover_processes(marker)
    _, new_server = supervisor_and_parent()
    assert new_server != server and not running(server)


def test_two_workers_give_the_same_verdicts_as_one():
    limits = SandboxLimits(timeout_s=1.0, cpu_s=5, memory_mb=512, max_processes=32, max_file_mb=1)
    programs = [
        GOOD,
        WRONG,
        HOSTILE["endless_loop"][0],
        "def f(:\n",
        HOSTILE["sys_exit_0"][0],
        humaneval_program(PROMPT, "    return a + b\n", TEST, "add"),
        "import time\ntime.sleep(5)\n",
        "1 / 0\n",
        HOSTILE["os_exit_0"][0],
        GOOD.replace("2, 3) == 5", "20, 3) == 23"),
    ]
    one = [(r.status, r.reason) for r in run_programs(programs, limits, workers=1)]
    two = [(r.status, r.reason) for r in run_programs(programs, limits, workers=2)]
    assert one == two, (one, two)
    statuses = ["pass", "fail", "timeout", "error", "fail", "pass", "timeout", "fail", "fail", "pass"]
    assert [status for status, _ in one] == statuses, one


def test_no_fork_server_is_left_behind():
    _, server = supervisor_and_parent()
    close_fork_servers()
    assert proc_state(server) is None  # exited at EOF and reaped by us
    assert supervisor_and_parent()[1] != server  # the next run starts a new one
    close_fork_servers()
    # A parent killed without any cleanup: the kernel closes its socket end, the server sees EOF and exits.
    code = "import os, sys\nfrom pkt.evaluation.sandbox.run import run_program\n"
    code += "print(run_program(sys.argv[1]).stdout, flush=True)\n"
    code += "os.kill(os.getpid(), 9)\n"
    child = subprocess.run([sys.executable, "-c", code, SERVER_PIDS], capture_output=True, text=True, timeout=60)
    assert child.returncode == -9, child.stderr
    orphan = int(child.stdout.split()[1])
    assert wait_until_gone(orphan), proc_state(orphan)
