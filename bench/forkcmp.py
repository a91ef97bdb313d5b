#!/usr/bin/env python3
"""How long fork() takes under each allocator: bench/forkbench.c, idle and
beside busy threads, interleaved, as a table.

Usage: python3 bench/forkcmp.py [--quick] [--allocs glibc,gomalloc,...]
                                [--runs N] [--forks N] [--mib N] [--busy 0,1,4]

Each run builds a heap of about MIB MiB of small blocks (16 B to 2 KiB, every
byte written), starts 0, 1 or 4 threads that allocate and free small blocks
in a loop, forks FORKS times and reports the median time of the parent's
fork() call, the median count of page faults the forking thread took inside
it and the median CPU time it spent there.  The table gives, per allocator
and thread count, the median over runs of those medians, the spread of the
run medians (max/min), and the time against glibc's.  Runs are interleaved
(one of each allocator, then again), so a slow moment of a shared machine
falls on all of them.  With more runnable threads than CPUs the wall time is
mostly the forking thread waiting for a CPU; the CPU time and the faults say
what fork itself cost.  Writes bench/results/fork.md and fork.csv.
"""
import argparse, csv, os, re, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the allocators, their libraries, the build step)

BUSY = [0, 1, 4]
LINE = re.compile(r"^fork ([\d.]+) ([\d.]+) ([\d.]+) faults ([\d.]+) "
                  r"cpu_ms ([\d.]+)$", re.M)


def run_one(exe, lib, busy, mib, forks):
    p = subprocess.run([exe, str(busy), str(mib), str(forks)], env=run.alloc_env(lib),
                       capture_output=True, text=True, timeout=600)
    m = LINE.search(p.stdout)
    if p.returncode != 0 or not m:
        return None
    return {"ms": float(m.group(1)), "faults": float(m.group(4)),
            "cpu_ms": float(m.group(5))}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--allocs", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--runs", type=int, default=0)
    p.add_argument("--forks", type=int, default=100)
    p.add_argument("--mib", type=int, default=230)
    p.add_argument("--busy", type=lambda s: [int(x) for x in s.split(",") if x],
                   default=BUSY, help="busy-thread counts, e.g. 0,1,4")
    args = p.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    # glibc always: the ratios are to it.
    libs = {name: lib for name, lib, _ in run.ALLOCATORS}
    names = [n for n in libs if (n == "glibc" or not args.allocs or
                                 n in args.allocs) and
             (libs[n] is None or os.path.exists(libs[n]))]
    run.build()
    exe = os.path.join(run.BIN, "forkbench")
    res = {}
    t0 = time.time()
    for busy in args.busy:
        for k in range(runs):
            for n in names:
                r = run_one(exe, libs[n], busy, args.mib, args.forks)
                res.setdefault((busy, n), []).append(r)
        print("forkcmp: %d busy threads done (%.0f s)" % (busy, time.time() - t0),
              file=sys.stderr, flush=True)

    def med(busy, n, key):
        xs = [r[key] for r in res[(busy, n)] if r]
        return statistics.median(xs) if xs else float("nan")

    def spread(busy, n):
        xs = [r["ms"] for r in res[(busy, n)] if r]
        return max(xs) / min(xs) if len(xs) > 1 and min(xs) > 0 else float("nan")

    lines = ["# fork() under each allocator", "",
             "`python3 bench/forkcmp.py%s`: a heap of %d MiB of small blocks, %d "
             "forks per run, %d interleaved runs; medians over runs of each run's "
             "median.  *ms*: the parent's fork() call, wall time; *cpu ms*: the "
             "forking thread's CPU time in it; *faults*: page faults it took "
             "there; *spread*: max/min of the run medians (ms)." % (
                 " --quick" if args.quick else "", args.mib, args.forks, runs), ""]
    rows = []
    for busy in args.busy:
        lines += ["## %d busy thread%s" % (busy, "" if busy == 1 else "s"), "",
                  "| allocator | ms | ×glibc | cpu ms | ×glibc | faults | spread |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        g_ms, g_cpu = med(busy, "glibc", "ms"), med(busy, "glibc", "cpu_ms")
        for n in names:
            ms, cpu, fl = med(busy, n, "ms"), med(busy, n, "cpu_ms"), med(busy, n, "faults")
            lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.2f |" % (
                n, ms, ms / g_ms, cpu, cpu / g_cpu, fl, spread(busy, n)))
            rows.append([busy, n, "%.3f" % ms, "%.3f" % (ms / g_ms), "%.3f" % cpu,
                         "%.3f" % (cpu / g_cpu), "%.0f" % fl, "%.3f" % spread(busy, n)])
        lines.append("")
    md = "\n".join(lines)
    print(md)
    os.makedirs(run.RESULTS, exist_ok=True)
    with open(os.path.join(run.RESULTS, "fork.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run.RESULTS, "fork.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["busy_threads", "allocator", "median_ms", "ms_vs_glibc",
                    "median_cpu_ms", "cpu_vs_glibc", "median_faults", "spread"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
