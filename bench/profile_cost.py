#!/usr/bin/env python3
"""What the sampled heap profile costs: every C workload of `make bench` run
under gomalloc with GOMALLOC_PROFILE set and without, interleaved (off, on,
off, on, ...), RUNS times; CPU time (user + sys, from wait4) and peak RSS
(GNU time) of each, the median ratios on/off per workload with the spread
of the per-run ratios, and their geometric means.

    python3 bench/profile_cost.py [--runs N] [--lib PATH] [--only w,...] [--csv FILE]
    python3 bench/profile_cost.py --callgrind [--scale X] [--lib PATH] [--only w,...]

The workloads are bench/run.py's (built by it into bench/work/bin); the
real programs (python, gcc, sqlite) are left out.  The profile is written
at exit, as a program run with GOMALLOC_PROFILE would, to a temporary file.
With --callgrind, each workload runs once each way under callgrind instead
(at --scale, 0.1 by default: callgrind is some 50 times slower), and the
ratio is of instructions executed: a figure the machine's load does not
move, where CPU time on a shared machine moves by several percent from run
to run.  Standard library only.
"""
import argparse
import csv
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def environment(lib, profile, tmp):
    env = dict(os.environ, LD_PRELOAD=lib, LC_ALL="C")
    env.pop("GOMALLOC_PROFILE", None)
    env.pop("GOMALLOC_PROFILE_RATE", None)
    if profile:
        env["GOMALLOC_PROFILE"] = os.path.join(tmp, "profile.pb")
    return env


def instructions(w, lib, profile, tmp):
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--fair-sched=yes"]
                       + w.argv, env=environment(lib, profile, tmp), cwd=run.WORK,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    m = re.search(rb"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit("%s failed under callgrind (profile %s)" % (w.name, "on" if profile else "off"))
    return int(m.group(1))


def callgrind_table(wls, lib, tmp):
    print("| workload | instructions off | instructions on | on/off |")
    print("|---|---|---|---|")
    ratios = []
    for w in wls:
        off, on = instructions(w, lib, False, tmp), instructions(w, lib, True, tmp)
        ratios.append(on / off)
        print("| %s | %d | %d | %+.2f%% |" % (w.name, off, on, 100 * (on / off - 1)), flush=True)
    print("\ngeometric mean over %d workloads: instructions %+.2f%%" % (len(ratios), 100 * (geomean(ratios) - 1)))


def one(w, lib, profile, tmp):
    env = environment(lib, profile, tmp)
    tfile = os.path.join(tmp, "time")
    p = subprocess.Popen([run.GNU_TIME, "-o", tfile, "-f", "RSS %M"] + w.argv, env=env, cwd=run.WORK,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)   # rusage of time and the workload it waited for
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("%s failed (profile %s)" % (w.name, "on" if profile else "off"))
    with open(tfile) as f:
        rss = int(re.search(r"RSS (\d+)", f.read()).group(1))
    return ru.ru_utime + ru.ru_stime, rss


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lib", default=os.path.join(run.ROOT, "lib", "libgomalloc.so"))
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--csv", help="also write every run here")
    ap.add_argument("--callgrind", action="store_true", help="count instructions instead")
    ap.add_argument("--scale", type=float, help="work per run (1: make bench's; --callgrind: 0.1)")
    args = ap.parse_args()
    run.build()
    scale = args.scale if args.scale else 0.1 if args.callgrind else 1.0
    wls = [w for w in run.define_workloads(False, scale) if w.name not in ("python", "gcc", "sqlite")]
    if args.only:
        wls = [w for w in wls if w.name in args.only.split(",")]
    if args.callgrind:
        with tempfile.TemporaryDirectory(prefix="gm-profile-cost-") as tmp:
            callgrind_table(wls, args.lib, tmp)
        return
    runs = {w.name: [] for w in wls}
    with tempfile.TemporaryDirectory(prefix="gm-profile-cost-") as tmp:
        for r in range(args.runs):
            for w in wls:
                off, on = one(w, args.lib, False, tmp), one(w, args.lib, True, tmp)
                runs[w.name].append((off, on))
                run.log("run %d %-18s cpu %.3f %.3f  rss %d %d" % (r + 1, w.name, off[0], on[0], off[1], on[1]))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["workload", "run", "cpu_off", "cpu_on", "rss_off_kb", "rss_on_kb"])
            for name, rs in runs.items():
                for i, (off, on) in enumerate(rs):
                    out.writerow([name, i + 1, off[0], on[0], off[1], on[1]])
    print("| workload | CPU off s | CPU on s | CPU on/off (runs' spread) | RSS off KiB | RSS on KiB | RSS on/off |")
    print("|---|---|---|---|---|---|---|")
    cpu_ratios, rss_ratios = [], []
    for name, rs in runs.items():
        c0, c1 = statistics.median(x[0][0] for x in rs), statistics.median(x[1][0] for x in rs)
        m0, m1 = statistics.median(x[0][1] for x in rs), statistics.median(x[1][1] for x in rs)
        per = sorted(on[0] / off[0] for off, on in rs)
        cpu_ratios.append(c1 / c0)
        rss_ratios.append(m1 / m0)
        print("| %s | %.3f | %.3f | %+.1f%% (%+.1f .. %+.1f) | %d | %d | %+.1f%% |" % (
            name, c0, c1, 100 * (c1 / c0 - 1), 100 * (per[0] - 1), 100 * (per[-1] - 1), m0, m1,
            100 * (m1 / m0 - 1)))
    # The same mean taken over each run alone: how much it moves from run to run.
    per_run = sorted(geomean([rs[i][1][0] / rs[i][0][0] for rs in runs.values()]) for i in range(args.runs))
    print("\ngeometric mean over %d workloads, %d runs each: CPU time %+.1f%% (single runs' means %+.1f .. %+.1f), "
          "peak RSS %+.1f%%" % (len(cpu_ratios), args.runs, 100 * (geomean(cpu_ratios) - 1),
                                100 * (per_run[0] - 1), 100 * (per_run[-1] - 1), 100 * (geomean(rss_ratios) - 1)))


if __name__ == "__main__":
    main()
