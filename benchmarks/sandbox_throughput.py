"""Throughput of ``pkt.evaluation.sandbox.run.run_programs``: one spawned runner per program vs the fork
server, side by side.

Builds N small correct programs (HumanEval-style solution + asserts, a little CPU work each), warms up both
paths, then for each worker count times the same batch alternately with ``fork_server=False`` (a fresh
``python -I -S -B runner.py`` per program) and ``fork_server=True`` (the default: supervisors forked
from a long-lived server) for a few rounds, and prints the best programs/second of each and their ratio.
Every program must pass, or the numbers would be meaningless.

    python benchmarks/sandbox_throughput.py --n 60 --rounds 2 --workers 1 2
"""

from __future__ import annotations

import argparse
import time

from pkt.evaluation.sandbox.run import SandboxLimits, humaneval_program, run_programs

PROMPT = 'def solve(n: int) -> int:\n    """Sum of the primes below n."""\n'
COMPLETION = "    return sum(p for p in range(2, n) if all(p % d for d in range(2, int(p ** 0.5) + 1)))\n"
TEST = "def check(candidate):\n    assert candidate(10) == 17\n    assert candidate({n}) == {expected}\n"


def primes_below(n: int) -> int:
    return sum(p for p in range(2, n) if all(p % d for d in range(2, int(p**0.5) + 1)))


def build(n: int) -> list[str]:
    """N distinct correct programs (different test sizes, so each does slightly different work)."""
    sizes = [500 + 37 * i for i in range(n)]
    tests = [TEST.format(n=s, expected=primes_below(s)) for s in sizes]
    return [humaneval_program(PROMPT, COMPLETION, test, "solve") for test in tests]


def timed(programs: list[str], limits: SandboxLimits, workers: int, fork_server: bool) -> float:
    """Programs per second for one pass over the batch; fails loudly if any program did not pass."""
    start = time.perf_counter()
    results = run_programs(programs, limits, workers=workers, fork_server=fork_server)
    elapsed = time.perf_counter() - start
    bad = [r for r in results if not r.passed]
    if bad:
        raise SystemExit(f"{len(bad)} programs did not pass, e.g. {bad[0].status}: {bad[0].reason}")
    return len(programs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="programs per batch")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds per path and worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-program wall-clock limit (s)")
    args = parser.parse_args()

    limits = SandboxLimits(timeout_s=args.timeout)
    programs = build(args.n)
    for fork_server in (False, True):  # warm-up: page cache, imports, the first fork servers
        probe = run_programs(programs[:4], limits, workers=max(args.workers), fork_server=fork_server)
    print(f"isolation: {probe[0].isolation}")
    print(f"programs: {args.n}  rounds: {args.rounds}  (best round shown; programs/s)")
    print(f"{'workers':>7}  {'spawn per program':>17}  {'fork server':>11}  {'ratio':>6}")
    for workers in args.workers:
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for fork_server in (False, True):
                rates[fork_server].append(timed(programs, limits, workers, fork_server))
        spawn, fork = max(rates[False]), max(rates[True])
        print(f"{workers:>7}  {spawn:>17.1f}  {fork:>11.1f}  {fork / spawn:>5.2f}x")
        for fork_server, label in ((False, "spawn"), (True, "fork server")):
            print(f"{'':>9}{label} rounds: {', '.join(f'{r:.1f}' for r in rates[fork_server])}")


if __name__ == "__main__":
    main()
