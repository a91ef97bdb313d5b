#!/usr/bin/env python3
"""Benchmark runner for gomalloc: wall time, CPU time and peak RSS of every
workload under glibc, gomalloc, jemalloc, mimalloc and tcmalloc.

    python3 bench/run.py bench [--quick] [--runs N] [--allocs a,b] [--only w,..]
                           [--scale X] [--extra NAME=LIB.so] [--output NAME]
    python3 bench/run.py insn  [--update-baseline] [--allocs a,b]
    python3 bench/run.py report [--quick] [--output NAME]

bench  builds the workloads in bench/*.c (cc -O2 -pthread) into bench/work/,
       generates the inputs of the real-program workloads, then runs each
       workload once under glibc to warm up, then under each allocator
       interleaved (glibc, gomalloc, jemalloc,
       ..., then again), several runs.  Each run goes through GNU time for
       user/sys time, peak RSS and minor page faults; wall time is measured
       here.  A workload that prints a line "ops N" also gets operations per
       second.  Prints one Markdown table per workload, the thread scaling of
       the workloads that report operations, the geometric means of the
       ratios to glibc and the run-to-run spread, and writes bench/results/:
           latest.md, latest-runs.csv, latest-summary.csv, latest.png
       (quick.* for --quick, partial.* when --only or --allocs picks a
       subset, so neither replaces the committed full result; --output NAME
       chooses the name).
insn   counts instructions per malloc+free pair with callgrind: fastpath in
       pair mode is run with N1 and N2 pairs and (Ir(N2)-Ir(N1))/(N2-N1) is
       reported, so start-up cost cancels; the share counted in the fastpath
       binary itself (loop, calls, PLT jumps) is printed once, so the
       allocators' own cost is the figure minus it.  Writes bench/results/insn.csv and
       compares gomalloc against bench/insn-baseline.csv (rewritten with
       --update-baseline).
report redraws the tables, summary and chart from the raw runs of the last
       bench run (latest-runs.csv, or quick-runs.csv with --quick).

An allocator whose library is missing is skipped with a notice.  A run that
exits non-zero, crashes, times out or prints different output than glibc is
reported as FAILED, and the runner goes on.  Standard library only.
"""
import argparse
import concurrent.futures
import csv
import datetime
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
WORK = os.path.join(BENCH, "work")
BIN = os.path.join(WORK, "bin")
RESULTS = os.path.join(BENCH, "results")
FLOOR_SO = os.path.join(BIN, "insn_floor.so")
LIBDIR = "/usr/lib/x86_64-linux-gnu"
GNU_TIME = "/usr/bin/time"

# name -> (library or None for the system allocator, Debian package)
ALLOCATORS = [
    ("glibc", None, "libc6"),
    ("gomalloc", os.path.join(ROOT, "lib", "libgomalloc.so"), None),
    ("jemalloc", LIBDIR + "/libjemalloc.so.2", "libjemalloc2"),
    ("mimalloc", LIBDIR + "/libmimalloc.so.2", "libmimalloc2.0"),
    ("tcmalloc", LIBDIR + "/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
]

C_WORKLOADS = ["fastpath", "churn", "realloc", "larson", "prodcons",
               "falseshare", "threadchurn", "large", "bufgrow",
               "largechurn", "threadscale", "xmalloc", "nbody", "rptest",
               "alloctest", "cachethrash", "cfrac", "espresso", "liveset",
               "strappend", "shuffle",
               "forkbench"]
COLORS = {"gomalloc": "#d62728", "jemalloc": "#9467bd",
          "mimalloc": "#2ca02c", "tcmalloc": "#1f77b4"}
INSN_SIZES = [16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 32768, 262144]
INSN_N1, INSN_N2 = 200000, 400000
INSN_PROBE, INSN_BUDGET = 2000, 200e6


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- workloads

class Workload:
    """One benchmark: argv (absolute paths), whether output must match glibc."""

    def __init__(self, name, argv, same_output=False):
        self.name, self.argv, self.same_output = name, argv, same_output


def python_exe():
    # The distribution's interpreter, not a version-manager shim script.
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
        else shutil.which("python3")


def define_workloads(quick, scale=1.0):
    """The workload list.  Scale 1 is ~0.3-1.5 s per run under glibc."""
    s = (0.5 if quick else 1.0) * scale
    b = lambda w: os.path.join(BIN, w)
    fmt = lambda x: "%g" % x
    out = []
    # Pairs per size: glibc's batch mode slows down sharply past its
    # per-thread cache (1032 bytes), so the big size gets far fewer.
    pairs = {32: 40e6, 64: 40e6, 512: 25e6, 8192: 0.6e6}
    for size in ([64] if quick else [32, 512, 8192]):
        n = int(pairs[size] * s)
        out.append(Workload("fastpath-%d" % size, [b("fastpath"), str(size),
                                                  str(n)]))
    out.append(Workload("churn-1", [b("churn"), "1", fmt(s)]))
    if not quick:
        out.append(Workload("churn-4", [b("churn"), "4", fmt(s)]))
    out.append(Workload("realloc", [b("realloc"), "1", fmt(s)]))
    for w in ["larson", "prodcons", "falseshare", "threadchurn"]:
        for t in ([4] if quick and w == "falseshare" else
                  [1, 4] if quick else [1, 2, 4]):
            out.append(Workload("%s-%d" % (w, t), [b(w), str(t), fmt(s)]))
    out.append(Workload("large", [b("large"), "1", fmt(s)]))
    out.append(Workload("bufgrow", [b("bufgrow"), "1", fmt(s)]))
    out += published_patterns(quick, s, b, fmt)
    py = python_exe()
    out.append(Workload("python", [py, os.path.join(BENCH, "pyheavy.py"),
                                   fmt(s)], same_output=True))
    funcs, rows = int(120 * s), int(200000 * s)
    out.append(Workload("gcc", ["gcc", "-O2", "-c", gen_input("c", funcs),
                                "-o", "/dev/null"]))
    out.append(Workload("sqlite", ["sqlite3", ":memory:",
                                   ".read " + gen_input("sql", rows)],
                        same_output=True))
    return out


def published_patterns(quick, s, b, fmt):
    """Workloads rebuilt after published allocator benchmarks (see README)."""
    out = []
    # largechurn: 5..25 MiB as published; 1..4 MiB stays below every
    # allocator's direct-mapping threshold; 24..40 MiB straddles gomalloc's
    # 32 MiB huge-block threshold (half the work: it is the slowest).  QUICK
    # keeps only the small one, a fifth of the time of the others.
    if not quick:
        out.append(Workload("largechurn", [b("largechurn"), "1", fmt(s)]))
    out.append(Workload("largechurn-small", [b("largechurn"), "1", fmt(s),
                                             "1", "4"]))
    if not quick:
        out.append(Workload("largechurn-huge", [b("largechurn"), "1",
                                                fmt(s / 2), "24", "40"]))
    # threadscale: the same work per thread at every thread count.
    for t in ([1, 2] if quick else [1, 2, 4]):
        out.append(Workload("threadscale-%d" % t, [b("threadscale"), str(t),
                                                   fmt(s)]))
    for t in ([2] if quick else [1, 2]):
        out.append(Workload("xmalloc-%d" % t, [b("xmalloc"), str(t),
                                               fmt(s)]))
    out.append(Workload("nbody", [b("nbody"), "1", fmt(s)], same_output=True))
    out.append(Workload("rptest-2", [b("rptest"), "2", fmt(s)]))
    for t in ([2] if quick else [1, 2]):
        out.append(Workload("alloctest-%d" % t, [b("alloctest"), str(t),
                                                 fmt(s)]))
    if not quick:
        out.append(Workload("cachethrash-1", [b("cachethrash"), "1",
                                              fmt(s)]))
    out.append(Workload("cfrac", [b("cfrac"), "1", fmt(s)], same_output=True))
    out.append(Workload("espresso", [b("espresso"), "1", fmt(s)],
                        same_output=True))
    for w in ["liveset", "strappend", "shuffle"]:
        out.append(Workload(w, [b(w), "1", fmt(s)]))
    return out


def gen_input(kind, n):
    """Generates (once) a real-program input in bench/work/; returns its path."""
    path = os.path.join(WORK, "big-%d.%s" % (n, kind))
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(BENCH, "gen.py"), kind,
                        str(n), path], check=True)
    return path


def build():
    """Compiles each bench/<workload>.c into bench/work/bin when out of date
    (forkbench too, for forkcmp.py)."""
    os.makedirs(BIN, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    hdr = os.path.join(BENCH, "common.h")
    for w in C_WORKLOADS:
        src, exe = os.path.join(BENCH, w + ".c"), os.path.join(BIN, w)
        if os.path.exists(exe) and os.path.getmtime(exe) >= max(
                os.path.getmtime(src), os.path.getmtime(hdr)):
            continue
        log("cc -O2 -pthread %s" % os.path.relpath(src, ROOT))
        subprocess.run([cc, "-O2", "-pthread", "-Wall", "-o", exe, src,
                        "-lm"], check=True)
    src = os.path.join(BENCH, "insn_floor.c")
    if not os.path.exists(FLOOR_SO) or \
            os.path.getmtime(FLOOR_SO) < os.path.getmtime(src):
        log("cc -O2 -shared %s" % os.path.relpath(src, ROOT))
        subprocess.run([cc, "-O2", "-fPIC", "-shared", "-Wall", "-o",
                        FLOOR_SO, src], check=True)


def available_allocators(wanted, extra=()):
    """The allocators to run: ALLOCATORS (filtered by wanted) plus extra
    NAME=PATH pairs, e.g. another build of gomalloc to compare against.  An
    extra with a built-in name replaces that allocator's library (e.g.
    gomalloc=/tmp/base/lib/libgomalloc.so: a fixed build while lib/ is being
    rebuilt)."""
    out, extra = [], [s.partition("=") for s in extra]
    wanted = wanted and wanted + [name for name, _, _ in extra]
    for name, _, path in extra:
        known = [i for i, a in enumerate(ALLOCATORS) if a[0] == name]
        if known:
            ALLOCATORS[known[0]] = (name, os.path.abspath(path), None)
        else:
            ALLOCATORS.append((name, os.path.abspath(path), None))
    for name, lib, pkg in ALLOCATORS:
        if wanted and name not in wanted:
            continue
        if lib and not os.path.exists(lib):
            log("notice: skipping %s (%s not found)" % (name, lib))
            continue
        out.append((name, lib, pkg))
    return out


def alloc_env(lib):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    env["LC_ALL"] = "C"
    return env


# ---------------------------------------------------------------- one run

class Run:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def describe_failure(rc, stderr, timefile_text):
    m = re.search(r"terminated by signal (\d+)", timefile_text)
    if m:
        sig = int(m.group(1))
        try:
            return "signal %d (%s)" % (sig, signal.Signals(sig).name)
        except ValueError:
            return "signal %d" % sig
    if rc < 0:
        return "signal %d" % -rc
    lines = [l for l in stderr.decode(errors="replace").splitlines()
             if l.strip() and "exited with non-zero" not in l]
    return "exit %d%s" % (rc, (": " + lines[-1][:120]) if lines else "")


def run_once(wl, lib, timeout):
    """Runs wl under lib through GNU time; returns a Run."""
    fd, tfile = tempfile.mkstemp(prefix="gmbench-", suffix=".time")
    os.close(fd)
    cmd = [GNU_TIME, "-o", tfile, "-f", "GMTIME %e %U %S %M %R"] + wl.argv
    t0 = time.perf_counter()
    status, detail = "ok", ""
    proc = subprocess.Popen(cmd, env=alloc_env(lib), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=WORK,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        status, detail = "FAILED", "timeout after %g s" % timeout
    wall = time.perf_counter() - t0
    with open(tfile, errors="replace") as f:
        ttext = f.read()
    os.unlink(tfile)
    m = re.search(r"GMTIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)", ttext)
    user, sys_, rss, minflt = (float(m.group(2)), float(m.group(3)),
                               int(m.group(4)), int(m.group(5))) if m else \
        (math.nan, math.nan, 0, math.nan)
    if status == "ok" and proc.returncode != 0:
        status, detail = "FAILED", describe_failure(proc.returncode, err,
                                                    ttext)
    ops = re.search(rb"^ops (\d+)$", out, re.M)
    return Run(wall=wall, user=user, sys=sys_, rss_kb=rss, minflt=minflt,
               ops=int(ops.group(1)) if ops else None, status=status,
               detail=detail, output=out)


# ---------------------------------------------------------------- summary

def median(xs):
    return statistics.median(xs) if xs else math.nan


def geomean(xs):
    xs = [x for x in xs if x > 0 and not math.isnan(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else math.nan


class Cell:
    """All runs of one workload under one allocator, and their medians."""

    def __init__(self, runs):
        self.runs = runs
        ok = [r for r in runs if r.status == "ok"]
        bad = [r for r in runs if r.status != "ok"]
        self.failed = bool(bad)
        self.detail = bad[0].detail if bad else ""
        self.nfail = len(bad)
        self.time = median([r.wall for r in ok])
        self.user = median([r.user for r in ok])
        self.sys = median([r.sys for r in ok])
        self.rss = median([r.rss_kb for r in ok]) / 1024.0
        self.minflt = median([r.minflt for r in ok
                              if not math.isnan(r.minflt)])
        self.mops = median([r.ops / r.wall / 1e6 for r in ok
                            if r.ops and r.wall > 0])
        walls = [r.wall for r in ok]
        self.spread = max(walls) / min(walls) if len(walls) > 1 else math.nan


def summarize(workloads, allocs, runs):
    """runs[(wl, alloc)] -> list of Run; returns {(wl, alloc): Cell}."""
    return {(w.name, a[0]): Cell(runs[(w.name, a[0])])
            for w in workloads for a in allocs}


def ratios(cells, wname, aname, names):
    c, g = cells[(wname, aname)], cells.get((wname, "glibc"))
    ok = lambda x: x is not None and not x.failed
    tr = c.time / g.time if ok(c) and ok(g) else math.nan
    rr = c.rss / g.rss if ok(c) and ok(g) and g.rss > 0 else math.nan
    others = [cells[(wname, n)].time for n in names
              if n != aname and ok(cells[(wname, n)])]
    br = c.time / min(others) if ok(c) and others else math.nan
    return tr, br, rr


def command_line(w):
    return " ".join(a.replace(ROOT + "/", "") for a in w.argv)


def f2(x, fmt="%.2f"):
    return "–" if x is None or math.isnan(x) else fmt % x


def count(x):
    """A page-fault count, short: 812, 35.2k, 1.43M."""
    if x is None or math.isnan(x):
        return "–"
    if x < 10000:
        return "%d" % round(x)
    if x < 1e6:
        return "%.1fk" % (x / 1e3)
    return "%.2fM" % (x / 1e6)


def markdown(workloads, allocs, cells, meta, runs_per):
    names = [a[0] for a in allocs]
    L = ["# gomalloc benchmark results", ""]
    L += ["- %s: %s" % (k, v) for k, v in meta]
    L += ["- runs: %d per workload and allocator, interleaved; times are "
          "medians of wall time in seconds; RSS is the median of the peak "
          "RSS (MiB) and faults the median count of minor page faults, both "
          "from GNU time" % runs_per, ""]
    for w in workloads:
        has_ops = any(not math.isnan(cells[(w.name, n)].mops) for n in names)
        L += ["## %s" % w.name, "", "`%s`" % command_line(w), ""]
        L += ["| allocator | time (s) | ×glibc | ×best other | max RSS (MiB) "
              "| RSS ×glibc | minor faults | user (s) | sys (s) |" +
              (" Mops/s |" if has_ops else ""),
              "|---|" + "---:|" * (8 + has_ops)]
        for n in names:
            c = cells[(w.name, n)]
            if c.failed:
                L.append("| %s | FAILED | %d/%d runs: %s |" % (
                    n, c.nfail, len(c.runs), c.detail.replace("|", "/")) +
                    " |" * (6 + has_ops))
                continue
            tr, br, rr = ratios(cells, w.name, n, names)
            L.append("| %s | %.3f | %s | %s | %.1f | %s | %s | %.2f | %.2f |"
                     % (n, c.time, f2(tr), f2(br), c.rss, f2(rr),
                        count(c.minflt), c.user, c.sys) +
                     (" %s |" % f2(c.mops) if has_ops else ""))
        L.append("")
    L += scaling_section(workloads, names, cells)
    L += geomean_section(workloads, names, cells)
    L += noise_section(workloads, names, cells)
    return "\n".join(L) + "\n"


def scaling_section(workloads, names, cells):
    """For workloads that report operations and run at several thread counts
    with the same work per thread (NAME-1, NAME-2, ...): throughput per
    allocator and its ratio to one thread."""
    groups = {}
    for w in workloads:
        m = re.match(r"(.*)-(\d+)$", w.name)
        if m and any(not math.isnan(cells[(w.name, n)].mops) for n in names):
            groups.setdefault(m.group(1), {})[int(m.group(2))] = w.name
    L = []
    for base, by_t in groups.items():
        ts = sorted(by_t)
        if 1 not in by_t or len(ts) < 2:
            continue
        L += ["## Thread scaling: %s" % base, "",
              "Throughput (million operations per second) with the same work "
              "per thread at each thread count, and its ratio to one thread. "
              "Perfect scaling makes the ratio equal to the thread count, up "
              "to the number of cores (%d here)." % (os.cpu_count() or 0), "",
              "| allocator | " + " | ".join("Mops/s %dT" % t for t in ts) +
              " | " + " | ".join("%dT/1T" % t for t in ts[1:]) + " |",
              "|---|" + "---:|" * (2 * len(ts) - 1)]
        for n in names:
            mops = {t: (math.nan if cells[(by_t[t], n)].failed
                        else cells[(by_t[t], n)].mops) for t in ts}
            L.append("| %s | %s | %s |" % (
                n, " | ".join(f2(mops[t]) for t in ts),
                " | ".join(f2(mops[t] / mops[1]) for t in ts[1:])))
        L.append("")
    return L


def geomean_section(workloads, names, cells):
    L = ["## Geometric means of the ratios to glibc", "",
         "| allocator | time ×glibc | peak RSS ×glibc | workloads | failed |",
         "|---|---:|---:|---:|---:|"]
    for n in names:
        rs = [ratios(cells, w.name, n, names) for w in workloads]
        t = [r[0] for r in rs if not math.isnan(r[0])]
        m = [r[2] for r in rs if not math.isnan(r[2])]
        nf = sum(cells[(w.name, n)].failed for w in workloads)
        L.append("| %s | %s | %s | %d | %d |" % (n, f2(geomean(t), "%.3f"),
                                                 f2(geomean(m), "%.3f"),
                                                 len(t), nf))
    L += ["", "Lower is better; a failed workload is left out of its "
          "allocator's means.", ""]
    return L


def noise_section(workloads, names, cells):
    sp = [(cells[(w.name, n)].spread, w.name, n) for w in workloads
          for n in names if not math.isnan(cells[(w.name, n)].spread)]
    if not sp:
        return []
    sp.sort()
    med = statistics.median(s for s, _, _ in sp)
    worst = sp[-1]
    return ["## Noise", "",
            "Spread between repeated runs (max/min wall time of the runs of "
            "one workload under one allocator): median %.2f over %d "
            "workload/allocator pairs, worst %.2f (%s under %s).  Time ratios "
            "closer to 1 than about %.0f%% are within the noise of this "
            "machine." % (med, len(sp), worst[0], worst[1], worst[2],
                          (med - 1) * 100), ""]


# ---------------------------------------------------------------- metadata

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def metadata(allocs):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = sh(["git", "rev-parse", "--short", "HEAD"]) or "none"
    if sh(["git", "status", "--porcelain", "--", "alloc", "LD_PRELOAD",
           "include", "bench", ":!bench/results"]):
        commit += "-dirty"
    meta = [("date", datetime.datetime.now().astimezone().isoformat(
                timespec="seconds")),
            ("machine", "%s CPUs, %s" % (os.cpu_count(), cpu)),
            ("kernel", platform.release()),
            ("git commit", commit)]
    vers = []
    for name, lib, pkg in allocs:
        if pkg:
            v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
            vers.append("%s %s (%s)" % (name, v or "?", pkg))
        elif lib == FLOOR_SO:
            vers.append("%s (bench/insn_floor.c @ %s)" % (name, commit))
        elif lib and not lib.startswith(ROOT + "/lib/"):
            vers.append("%s (%s)" % (name, lib))
        else:
            vers.append("%s @ %s" % (name, commit))
    meta.append(("allocators", "; ".join(vers)))
    return meta


def write_csv_with_meta(path, meta, header, rows):
    with open(path + ".tmp", "w", newline="") as f:
        for k, v in meta:
            f.write("# %s: %s\n" % (k, v))
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- chart

def chart_data(dat, workloads, names, others, cells):
    """Two gnuplot data blocks (time, then RSS ratios): a row per workload,
    a column per allocator, '?' where the allocator failed."""
    with open(dat, "w") as f:
        for panel in (0, 2):
            f.write("workload " + " ".join(others) + "\n")
            for w in workloads:
                vals = [ratios(cells, w.name, n, names)[panel] for n in others]
                f.write(w.name + " " + " ".join(
                    "?" if math.isnan(v) else "%.4f" % v for v in vals) + "\n")
            f.write("\n\n")


def chart(prefix, workloads, names, cells, title):
    """Clustered bars: time and peak-RSS ratio to glibc, one panel each."""
    if not shutil.which("gnuplot"):
        log("notice: gnuplot not found, no chart")
        return
    others = [n for n in names if n != "glibc"]
    dat = prefix + ".dat"
    chart_data(dat, workloads, names, others, cells)
    colors = ", ".join('"%s"' % COLORS.get(n, "gray50") for n in others)
    # Log scale with bars growing from 1 (glibc) up or down, so 2x slower
    # and 2x faster look alike; each panel spans its data in powers of two.
    k = len(others)
    bw = 0.8 / k
    xpos = "($0 + (i - 2 - ({k} - 1) / 2.) * {bw})".format(k=k, bw=bw)
    plot = ('plot for [i=2:{last}] "{dat}" index {ix} using '
            + xpos + ':(column(i)):(' + xpos + ' - {hw}):(' + xpos +
            ' + {hw}):(column(i) < 1 ? column(i) : 1):'
            '(column(i) > 1 ? column(i) : 1) with boxxyerror '
            'title columnhead(i) lc rgb col[i-1], '
            '"{dat}" index {ix} using ($0 - 1):(NaN):xtic(1) notitle, '
            '1 with lines lc "black" dt 2 notitle\n'
            'unset logscale y\n')
    panels = []
    for ix, panel in enumerate((0, 2)):
        vals = [ratios(cells, w.name, n, names)[panel] for w in workloads
                for n in others]
        vals = [v for v in vals if v > 0 and not math.isnan(v)] or [1]
        lo = 2.0 ** min(-1, math.floor(math.log2(min(vals))))
        hi = 2.0 ** max(1, math.ceil(math.log2(max(vals))))
        tics = ", ".join('"%s" %r' % (("1/%d" % round(1 / t)) if t < 1 else
                                       "%d" % t, t)
                         for t in (2.0 ** e for e in range(
                             int(math.log2(lo)), int(math.log2(hi)) + 1)))
        panels.append(("set logscale y 2\nset yrange [%r:%r]\n"
                       "set ytics (%s)\n" % (lo / 1.1, hi * 1.1, tics)) +
                      plot.format(last=k + 1, dat=dat, ix=ix, hw=bw / 2))
    gp = """
set terminal pngcairo size {w},1000 font "sans,10"
set output "{png}"
set datafile missing "?"
set style fill solid 0.85 border -1
set xtics rotate by -35 scale 0 font ",9"
set xrange [-0.6:{xmax}]
set key outside right top vertical
set grid ytics
array col[{k}] = [{colors}]
set multiplot layout 2,1 title "{title}"
set title "Wall time / glibc (median of runs; log scale; lower is better; FAILED runs have no bar)"
set ylabel "time / glibc"
{plot0}
set title "Peak RSS / glibc (median of runs; log scale; lower is better)"
set ylabel "peak RSS / glibc"
{plot1}
unset multiplot
""".format(w=max(1000, 14 * len(workloads) * (k + 1)), png=prefix + ".png",
           k=k, colors=colors, title=title, xmax=len(workloads) - 0.4,
           plot0=panels[0], plot1=panels[1])
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode != 0:
        log("notice: gnuplot failed: " + r.stderr.strip()[-300:])
    os.unlink(dat)


# ---------------------------------------------------------------- bench

def cmd_bench(args):
    build()
    allocs = available_allocators(args.allocs, args.extra)
    workloads = define_workloads(args.quick, args.scale)
    if args.only:
        workloads = [w for w in workloads
                     if any(w.name.startswith(o) for o in args.only)]
    nruns = args.runs or (3 if args.quick else 5)
    names = [a[0] for a in allocs]
    log("allocators: %s; %d workloads, %d runs each" % (
        " ".join(names), len(workloads), nruns))
    runs, t_start = {}, time.time()
    for w in workloads:
        warm = run_once(w, None, args.timeout)     # page cache, sanity
        expect = warm.output if warm.status == "ok" else None
        line = "%-16s" % w.name
        for k in range(nruns):
            for name, lib, _ in allocs:
                r = run_once(w, lib, args.timeout)
                if w.same_output and r.status == "ok":
                    if expect is None and name == "glibc":
                        expect = r.output
                    elif expect is not None and r.output != expect:
                        r.status, r.detail = "FAILED", "output differs " \
                            "from glibc"
                runs.setdefault((w.name, name), []).append(r)
                line += "." if r.status == "ok" else "F"
        log(line)
    log("benchmark took %.0f s" % (time.time() - t_start))
    report(args, workloads, allocs, runs, nruns)


def report(args, workloads, allocs, runs, nruns, meta=None):
    names = [a[0] for a in allocs]
    cells = summarize(workloads, allocs, runs)
    if meta is None:
        meta = metadata(allocs) + [("mode", ("QUICK" if args.quick
                                             else "full") +
                                    (", subset" if subset(args) else ""))]
    md = markdown(workloads, allocs, cells, meta, nruns)
    print(md)
    os.makedirs(RESULTS, exist_ok=True)
    prefix = result_prefix(args)
    with open(prefix + ".md", "w") as f:
        f.write(md)
    raw = [[w.name, n, i + 1, "%.6f" % r.wall, r.user, r.sys, r.rss_kb,
            "" if math.isnan(r.minflt) else "%d" % r.minflt,
            "" if r.ops is None else r.ops, r.status, r.detail,
            command_line(w)]
           for w in workloads for n in names
           for i, r in enumerate(runs[(w.name, n)])]
    write_csv_with_meta(prefix + "-runs.csv", meta,
                        ["workload", "allocator", "run", "wall_s", "user_s",
                         "sys_s", "maxrss_kb", "minflt", "ops", "status",
                         "detail", "command"],
                        raw)
    summ = []
    for w in workloads:
        for n in names:
            c = cells[(w.name, n)]
            tr, br, rr = ratios(cells, w.name, n, names)
            summ.append([w.name, n, "FAILED" if c.failed else "ok",
                         f2(c.time, "%.4f"), f2(tr, "%.4f"), f2(br, "%.4f"),
                         f2(c.rss, "%.1f"), f2(rr, "%.4f"),
                         f2(c.minflt, "%.0f"), f2(c.mops, "%.3f"), f2(c.user),
                         f2(c.sys), f2(c.spread, "%.3f"), c.detail])
    write_csv_with_meta(prefix + "-summary.csv", meta,
                        ["workload", "allocator", "status", "median_wall_s",
                         "time_vs_glibc", "time_vs_best_other",
                         "median_maxrss_mib", "rss_vs_glibc", "median_minflt",
                         "mops_per_s", "median_user_s", "median_sys_s",
                         "spread_max_over_min", "failure"],
                        summ)
    chart(prefix, workloads, names, cells, "gomalloc benchmarks, %s, %s" % (
        dict(meta)["machine"], dict(meta)["date"][:10]))
    log("wrote %s.{md,png} %s-{runs,summary}.csv" % (
        os.path.relpath(prefix, ROOT), os.path.relpath(prefix, ROOT)))


def subset(args):
    return bool(getattr(args, "only", None) or getattr(args, "allocs", None))


def result_prefix(args):
    """bench/results/NAME: --output NAME, else quick for --quick, partial for
    a run restricted by --only or --allocs (so that neither overwrites the
    committed full result), else latest."""
    name = args.output or ("quick" if args.quick else
                           "partial" if subset(args) else "latest")
    return os.path.join(RESULTS, name)


def cmd_report(args):
    """Redraws the tables and chart from the raw runs of the last run."""
    prefix = result_prefix(args)
    meta, rows = [], []
    with open(prefix + "-runs.csv") as f:
        for line in f:
            if line.startswith("# "):
                k, _, v = line[2:].rstrip("\n").partition(": ")
                meta.append((k, v))
            else:
                rows.append(line)
    runs, wnames, anames, cmds = {}, [], [], {}
    for row in csv.DictReader(rows):
        w, a = row["workload"], row["allocator"]
        cmds[w] = (row.get("command") or "").split()
        wnames += [w] if w not in wnames else []
        anames += [a] if a not in anames else []
        runs.setdefault((w, a), []).append(Run(
            wall=float(row["wall_s"]), user=float(row["user_s"]),
            sys=float(row["sys_s"]), rss_kb=int(row["maxrss_kb"]),
            minflt=float(row.get("minflt") or "nan"),
            ops=int(row["ops"]) if row.get("ops") else None,
            status=row["status"], detail=row["detail"], output=b""))
    workloads = [Workload(n, cmds[n]) for n in wnames]
    allocs = [(a, None, None) for a in anames]
    nruns = max(len(v) for v in runs.values())
    report(args, workloads, allocs, runs, nruns, meta)


# ---------------------------------------------------------------- insn

def object_ir(text, path):
    """Instructions executed in the code of one object (an executable or a
    library) in a callgrind output file: the self cost of its functions."""
    names, cur, total, skip = {}, None, 0, False
    for line in text.splitlines():
        if line.startswith(("ob=", "cob=")):
            # "(id) name" defines a compressed name, "(id)" uses it; cob=
            # lines (callees' objects) define names that ob= lines reuse.
            m = re.match(r"c?ob=(?:\((\d+)\))?\s*(.*)", line)
            key, name = m.group(1), m.group(2)
            if key and name:
                names[key] = name
            if line.startswith("ob="):
                cur = names.get(key, name) if key else name
        elif line.startswith("calls="):
            skip = True   # the next cost line is the call's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
            elif cur == path:
                parts = line.split()
                if len(parts) > 1:
                    total += int(parts[1])
    return total


def callgrind_ir(lib, size, n):
    """Total instructions of one fastpath pair-mode run under callgrind, and
    those spent in the fastpath binary itself (its loop, and the calls and
    PLT jumps to malloc and free): (total, harness)."""
    fd, out = tempfile.mkstemp(prefix="gmcg-", suffix=".out")
    os.close(fd)
    cmd = ["valgrind", "--tool=callgrind", "--trace-children=no",
           "--callgrind-out-file=" + out, os.path.join(BIN, "fastpath"),
           str(size), str(n), "pair"]
    r = subprocess.run(cmd, env=alloc_env(lib), capture_output=True)
    try:
        with open(out) as f:
            text = f.read()
    finally:
        os.unlink(out)
    m = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    if r.returncode != 0 or not m:
        tail = r.stderr.decode(errors="replace").strip().splitlines()[-1:]
        return None, "exit %d %s" % (r.returncode, " ".join(tail)[:100])
    return (int(m.group(1)), object_ir(text, os.path.join(BIN, "fastpath"))), ""


def insn_pair_cost(lib, size, n1, n2, harness=None):
    """Instructions per pair; with harness (a list), appends the share of
    them spent in the benchmark binary."""
    i1, err = callgrind_ir(lib, size, n1)
    i2, err2 = (None, "") if i1 is None else callgrind_ir(lib, size, n2)
    if i1 is None or i2 is None:
        return None, err or err2
    if harness is not None:
        harness.append((i2[1] - i1[1]) / (n2 - n1))
    return (i2[0] - i1[0]) / (n2 - n1), ""


def insn_one(lib, size):
    """Instructions per pair.  A cheap probe (INSN_PROBE and twice that)
    first: when a pair is very costly (an allocator that returns a large block
    to the OS on every free), N1 and N2 shrink so that no run exceeds about
    INSN_BUDGET instructions."""
    harness = []
    per, err = insn_pair_cost(lib, size, INSN_PROBE, 2 * INSN_PROBE, harness)
    if per is None:
        return None, err, None
    n2 = INSN_N2
    if per * n2 > INSN_BUDGET:
        n2 = max(2 * INSN_PROBE, int(INSN_BUDGET / max(per, 1)) // 1000 * 1000)
    if n2 == 2 * INSN_PROBE:
        return per, "", harness[-1]
    per, err = insn_pair_cost(lib, size, n2 // 2, n2, harness)
    return per, err, harness[-1] if harness else None


def read_baseline(path):
    base = {}
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(l for l in f if not l.startswith("#")):
                base[int(row["size"])] = float(row["gomalloc"])
    return base


def cmd_insn(args):
    if not shutil.which("valgrind"):
        sys.exit("bench-insn needs valgrind")
    build()
    allocs = available_allocators(args.allocs, args.extra)
    if not args.allocs or "floor" in args.allocs:
        allocs.append(("floor", FLOOR_SO, None))
    names = [a[0] for a in allocs]
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        for name, lib, _ in allocs:
            for size in INSN_SIZES:
                jobs[(name, size)] = ex.submit(insn_one, lib, size)
    res = {k: v.result()[:2] for k, v in jobs.items()}
    harness = [v.result()[2] for v in jobs.values() if v.result()[2] is not None]
    basefile = os.path.join(BENCH, "insn-baseline.csv")
    base = read_baseline(basefile)
    head = ["size"] + names + (["gomalloc vs baseline"]
                               if "gomalloc" in names else [])
    lines = ["Instructions per malloc+free pair: callgrind Ir of "
             "'fastpath SIZE N pair', (Ir(N2) - Ir(N1)) / (N2 - N1), N1=%d, "
             "N2=%d (fewer when a pair is so costly that a run would pass "
             "%.0fM instructions)" % (INSN_N1, INSN_N2, INSN_BUDGET / 1e6),
             "", "The benchmark's own share of each pair (its loop, the two calls "
             "and their PLT jumps, counted in the fastpath binary): %s "
             "instructions; the rest is the allocator's." %
             ("%.1f" % statistics.median(harness) if harness else "unknown"),
             "", "floor: bench/insn_floor.c, fast paths that only look up a "
             "class and pop or push a thread's list, no checks and no "
             "bookkeeping: the least a thread-caching allocator can count "
             "here.",
             "", "| " + " | ".join(head) + " |",
             "|" + "---:|" * len(head)]
    rows = []
    for size in INSN_SIZES:
        cells = []
        for n in names:
            v, err = res[(n, size)]
            cells.append("FAILED (%s)" % err if v is None else "%.1f" % v)
        if "gomalloc" in names:
            v = res[("gomalloc", size)][0]
            b = base.get(size)
            cells.append("no baseline" if b is None else "–" if v is None
                         else "%+.1f (%+.0f%%)" % (v - b, 100 * (v - b) / b))
        lines.append("| %d | %s |" % (size, " | ".join(cells)))
        rows.append([size] + ["" if res[(n, size)][0] is None else
                              "%.2f" % res[(n, size)][0] for n in names])
    print("\n".join(lines) + "\n")
    os.makedirs(RESULTS, exist_ok=True)
    meta = metadata(allocs)
    write_csv_with_meta(os.path.join(RESULTS, "insn.csv"), meta,
                        ["size"] + names, rows)
    log("wrote bench/results/insn.csv")
    if args.update_baseline:
        if "gomalloc" not in names or any(
                res[("gomalloc", s)][0] is None for s in INSN_SIZES):
            sys.exit("cannot update the baseline: no gomalloc result")
        brow = [[s, "%.2f" % res[("gomalloc", s)][0]] for s in INSN_SIZES]
        write_csv_with_meta(basefile, [m for m in meta
                                       if m[0] in ("date", "git commit")],
                            ["size", "gomalloc"], brow)
        log("wrote bench/insn-baseline.csv")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["bench", "insn", "report"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--runs", type=int, default=0)
    p.add_argument("--allocs", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--only", type=lambda s: [x for x in s.split(",") if x],
                   help="workload name prefixes")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies the work of every workload")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds before a run is killed and counted FAILED")
    p.add_argument("--update-baseline", action="store_true")
    p.add_argument("--extra", action="append", default=[],
                   metavar="NAME=LIB.so",
                   help="also run under this LD_PRELOAD library")
    p.add_argument("--output", metavar="NAME",
                   help="write bench/results/NAME.* (default: latest, quick "
                   "with --quick, partial with --only or --allocs)")
    args = p.parse_args()
    if not os.path.exists(GNU_TIME) and args.command == "bench":
        sys.exit("bench needs GNU time (%s, package 'time')" % GNU_TIME)
    {"bench": cmd_bench, "insn": cmd_insn, "report": cmd_report}[
        args.command](args)


if __name__ == "__main__":
    main()
