"""The verdicts of bench/serve.sh and bench/s3.sh from the rows their rounds wrote.

    python3 bench/report.py RESULTS --case ID=TITLE… --name SERVER=TITLE… \
        --check CASE,OURS,THEIRS,TARGET[,p99]…

RESULTS has one row a run: `case server round requests/s p99-ms cpu-µs-per-request errors`
(cpu `-` when not measured). Each check compares OURS's requests/s against THEIRS's on CASE,
round by round (each round ran both, one after the other); the verdict is on the median of those
ratios, printed with each round's ratio, the ratio of the two medians, and the medians of the
rounds where the proxy went first and where the peer did. `p99` also asks OURS's median p99 to be no
worse. A check misses when the ratio is below TARGET or any of its runs had errors (refused
connections, answers other than 2xx/3xx): such a run measures something else. Exits 1 if any
check missed.
"""

import argparse
import statistics
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--case", action="append", default=[])
    p.add_argument("--name", action="append", default=[])
    p.add_argument("--check", action="append", default=[])
    a = p.parse_args()
    cases = dict(c.split("=", 1) for c in a.case)
    names = dict(n.split("=", 1) for n in a.name)
    rows = [line.split() for line in open(a.results) if line.strip()]

    def runs(case, server):
        return {int(r[2]): r for r in rows if r[0] == case and r[1] == server}

    def median(case, server, column):
        values = [float(r[column]) for r in runs(case, server).values() if r[column] != "-"]
        return statistics.median(values) if values else float("nan")

    print("%-34s %-26s %10s %9s %9s %7s" % ("case", "server", "req/s", "p99 (ms)", "CPU µs/r", "errors"))
    seen = []
    for r in rows:
        if (r[0], r[1]) not in seen:
            seen.append((r[0], r[1]))
    for case, server in seen:
        errors = sum(int(r[6]) for r in runs(case, server).values())
        cpu = median(case, server, 5)
        print("%-34s %-26s %10.0f %9.2f %9s %7d" % (
            cases.get(case, case), names.get(server, server), median(case, server, 3),
            median(case, server, 4), "-" if cpu != cpu else "%.1f" % cpu, errors))

    missed = False
    for check in a.check:
        case, ours, theirs, target, *flags = check.split(",")
        target = float(target)
        mine, peer = runs(case, ours), runs(case, theirs)
        rounds = sorted(set(mine) & set(peer))
        by_round = {n: float(mine[n][3]) / max(float(peer[n][3]), 1e-9) for n in rounds}
        # The verdict is on the median of the rounds' own ratios: the two runs of a round are
        # next to each other, so other work on the machine weighs on both alike.
        ratio = statistics.median(by_round.values())
        of_medians = median(case, ours, 3) / median(case, theirs, 3)
        p99_ok = median(case, ours, 4) <= median(case, theirs, 4)
        errors = sum(int(r[6]) for r in (*mine.values(), *peer.values()))
        ok = ratio >= target and ("p99" not in flags or p99_ok) and errors == 0
        missed = missed or not ok
        # Odd rounds ran the proxy first, even ones its peer (see the scripts).
        first = [by_round[n] for n in rounds if n % 2 == 1]
        second = [by_round[n] for n in rounds if n % 2 == 0]
        order = ""
        if first and second:
            order = (f"; median with the proxy first {statistics.median(first):.2f}, "
                     f"with {names.get(theirs, theirs)} first {statistics.median(second):.2f}")
        p99_note = ""
        if "p99" in flags:
            better = sum(float(mine[n][4]) <= float(peer[n][4]) for n in rounds)
            p99_note = f"; p99 no worse in {better} of {len(rounds)}"
        verdict = "ok" if ok else "MISSED"
        if errors:
            verdict += f" ({errors} errors: not a fair run)"
        print(f"{cases.get(case, case)}: {names.get(ours, ours)} {ratio:.2f}× "
              f"{names.get(theirs, theirs)} (target ≥ {target:g}×{', p99 no worse' if 'p99' in flags else ''}"
              f"): {verdict}; round by round {' '.join(f'{by_round[n]:.2f}' for n in rounds)}"
              f" (ratio of the medians {of_medians:.2f}){order}{p99_note}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
