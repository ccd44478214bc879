"""Throughput of ``pkt.sandbox.run_programs`` with 1 worker and with 2 workers, side by side in one run.

Builds N small correct programs (HumanEval-style solution + asserts, a little CPU work each), warms up,
then times the same batch alternately with workers=1 and workers=2 for a few rounds and prints the best
programs/second of each and their ratio. Every program must pass, or the numbers would be meaningless.

    python benchmarks/sandbox_throughput.py --n 60 --rounds 2
"""

from __future__ import annotations

import argparse
import time

from pkt.sandbox import SandboxLimits, humaneval_program, run_programs

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


def timed(programs: list[str], limits: SandboxLimits, workers: int) -> float:
    """Programs per second for one pass over the batch; fails loudly if any program did not pass."""
    start = time.perf_counter()
    results = run_programs(programs, limits, workers=workers)
    elapsed = time.perf_counter() - start
    bad = [r for r in results if not r.passed]
    if bad:
        raise SystemExit(f"{len(bad)} programs did not pass, e.g. {bad[0].status}: {bad[0].reason}")
    return len(programs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="programs per batch")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds per worker count")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-program wall-clock limit (s)")
    args = parser.parse_args()

    limits = SandboxLimits(timeout_s=args.timeout)
    programs = build(args.n)
    probe = run_programs(programs[:2], limits, workers=1)  # warm-up (page cache, imports)
    print(f"isolation: {probe[0].isolation}")
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            rates[workers].append(timed(programs, limits, workers))
    one, two = max(rates[1]), max(rates[2])
    print(f"programs: {args.n}  rounds: {args.rounds}")
    print(f"workers=1: {one:7.1f} programs/s  (rounds: {', '.join(f'{r:.1f}' for r in rates[1])})")
    print(f"workers=2: {two:7.1f} programs/s  (rounds: {', '.join(f'{r:.1f}' for r in rates[2])})")
    print(f"ratio 2/1: {two / one:.2f}x")


if __name__ == "__main__":
    main()
