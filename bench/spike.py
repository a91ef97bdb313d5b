#!/usr/bin/env python3
"""RSS over time of bench/spike.c under each allocator: CSV and a chart.

Usage: python3 bench/spike.py [--quick] [--allocs glibc,gomalloc,...]
Writes bench/results/spike.csv (allocator, seconds, rss_mib) and
bench/results/spike.png, and prints a table: peak RSS, and RSS 1 s, 2.5 s and
3 s after each drop, as a share of the peak; and the CPU time of the threads
other than the program's own (spike.c has one thread: any other is the
allocator's, gomalloc's scavenger), which is what returning memory in the
background costs.
"""
import argparse, csv, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
LIBS = {
    "glibc": None,
    "gomalloc": os.path.join(ROOT, "lib", "libgomalloc.so"),
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
}


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


CLK_TCK = os.sysconf("SC_CLK_TCK")


def helper_cpu(pid, seen):
    """Records in seen the CPU seconds (user + system) of every thread of pid
    but the main one, as last read."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        if tid == str(pid):
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            seen[tid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass


def sample(binary, lib, cycles, mib, idle_ms, period=0.05):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    start = time.monotonic()
    proc = subprocess.Popen([binary, str(cycles), str(mib), str(idle_ms)], env=env,
                            stdout=subprocess.PIPE, text=True)
    points, helpers = [], {}
    while proc.poll() is None:
        r = rss_mib(proc.pid)
        if r is not None:
            points.append((time.monotonic() - start, r))
        helper_cpu(proc.pid, helpers)
        time.sleep(period)
    if proc.returncode != 0:
        raise RuntimeError(f"spike exited with {proc.returncode}")
    frees = [float(line.split()[1]) - start for line in proc.stdout.read().splitlines()
             if line.startswith("free ")]
    return points, frees, sum(helpers.values())


def drops(points, frees):
    """(peak, RSS 1, 2.5 and 3 s after the free began) for each cycle."""
    out = []
    for t in frees:
        peak = max((r for pt, r in points if pt <= t), default=0)
        out.append((peak, at(points, t + 1.0), at(points, t + 2.5), at(points, t + 3.0)))
    return out


def at(points, t):
    best = None
    for pt, r in points:
        if pt <= t:
            best = r
    return best


def plot(csv_path, png_path, allocs, title):
    lines = ", ".join(
        f"'{csv_path}' using 2:(strcol(1) eq '{a}' ? $3 : 1/0) with lines lw 2 title '{a}'"
        for a in allocs)
    script = f"""set terminal pngcairo size 1000,500 font ',10'
set output '{png_path}'
set datafile separator ','
set key outside right
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
set title '{title}' noenhanced
set grid
plot {lines}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--allocs", default="glibc,gomalloc,jemalloc,mimalloc,tcmalloc")
    args = ap.parse_args()
    work = os.path.join(HERE, "work")
    os.makedirs(work, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    binary = os.path.join(work, "spike")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(HERE, "spike.c")], check=True)
    cycles, mib, idle = (1, 300, 3500) if args.quick else (3, 700, 3500)
    allocs = [a for a in args.allocs.split(",")
              if LIBS.get(a, "") is None or os.path.exists(LIBS[a])]
    csv_path = os.path.join(RESULTS, "spike-quick.csv" if args.quick else "spike.csv")
    png_path = csv_path[:-4] + ".png"
    rows = []
    print("| allocator | peak MiB | RSS 1 s after the free began | 2.5 s after | 3 s after |")
    print("|---|---|---|---|---|")
    cpu = {}
    for a in allocs:
        points, frees, cpu[a] = sample(binary, LIBS[a], cycles, mib, idle)
        rows += [(a, f"{t:.3f}", f"{r:.1f}") for t, r in points]
        for peak, r1, r25, r3 in drops(points, frees):
            pct = lambda r: f"{r:.0f} MiB ({100 * r / peak:.0f}%)" if r is not None else "-"
            print(f"| {a} | {peak:.0f} | {pct(r1)} | {pct(r25)} | {pct(r3)} |")
    print()
    print("CPU time of the allocator's own threads over the whole run: " +
          ", ".join(f"{a} {s:.2f} s" for a, s in cpu.items()))
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["allocator", "seconds", "rss_mib"])
        w.writerows(rows)
    plot(csv_path, png_path, allocs,
         f"RSS over time: build {mib} MiB, free it all, idle {idle / 1000:.1f} s, "
         f"{cycles} time(s), no malloc_trim")
    print(f"wrote {csv_path} and {png_path}")


if __name__ == "__main__":
    sys.exit(main())
