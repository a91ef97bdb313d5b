#!/bin/sh
# profile.sh — the sampled heap profile read back by pprof (make test-profile).
# tests/profile_sites.c holds known amounts at known sites; `go tool pprof -top`
# (Debian's golang-go) must rank them and give their in-use bytes within 10%
# of the truth, leave freed blocks out of the in-use view and keep them in
# the allocation view, also when the profile is written at exit with threads
# running, by a fork child, and for python3 under LD_PRELOAD.
# Usage: tests/profile.sh PROFILE_SITES LIBRARY
set -u
bin=$1
lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {
    name=$1; shift
    if "$@" >"$tmp/out" 2>&1; then echo "ok   $name"; else echo "FAIL $name"; sed 's/^/     /' "$tmp/out"; fail=1; fi
}
command -v go >/dev/null || { echo "FAIL go (golang-go) is not installed"; exit 1; }
export GOCACHE="$tmp/gocache" GOFLAGS=-mod=mod

# pprof -top's rows as "function bytes" (flat), for one sample index.
top() {  # profile index
    go tool pprof -top -sample_index="$2" "$bin" "$1" 2>/dev/null |
        python3 -c '
import re, sys
units = {"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)(B|kB|MB|GB)\s+[\d.]+%\s+[\d.]+%\s+\S+\s+[\d.]+%\s+(\S+)", line)
    if m:
        print(m.group(3), int(float(m.group(1)) * units[m.group(2)]))'
}

# In use: hold_big 48 MiB (50331 x 1000 B), hold_large 8 MiB, hold_small
# 6 MiB (2097 x 3000 B), in that order; churn's blocks were all freed.
sites_ok() {  # profile
    top "$1" inuse_space > "$tmp/inuse"
    top "$1" alloc_space > "$tmp/alloc"
    cat "$tmp/inuse"
    python3 - "$tmp/inuse" "$tmp/alloc" <<'PY'
import sys
inuse = dict(l.split() for l in open(sys.argv[1]))
alloc = dict(l.split() for l in open(sys.argv[2]))
truth = {"hold_big": 50331 * 1000, "hold_large": 32 << 18, "hold_small": 2097 * 3000}
order = [f for f in inuse if f in truth]
assert order == ["hold_big", "hold_large", "hold_small"], order
for f, want in truth.items():
    got = int(inuse[f])
    assert abs(got - want) <= want / 10, (f, got, want)
assert "churn" not in inuse, "freed blocks in the in-use view"
assert int(alloc.get("churn", 0)) > (32 << 20) / 2, ("churn allocations", alloc.get("churn"))
PY
}

export GOMALLOC_PROFILE_RATE=4096   # a sample per 4 KiB: hold_small (the smallest site) gets ~1,100 samples, sd ~2%
check "gm_profile_write in one thread" "$bin" x "$tmp/a.pb"
check "  pprof ranks the sites, in use within 10%, freed blocks only in alloc_space" sites_ok "$tmp/a.pb"
check "GOMALLOC_PROFILE at exit, three threads churning beside the sites" sh -c \
    "GOMALLOC_PROFILE='$tmp/b.%p.pb' '$bin' threads && test -s \"\$(ls '$tmp'/b.*.pb)\""
check "  the same read back" sites_ok "$(ls "$tmp"/b.*.pb 2>/dev/null | head -1)"
check "gm_profile_write in a fork child" "$bin" fork "$tmp/c.pb"
check "  the same read back" sites_ok "$tmp/c.pb"
unset GOMALLOC_PROFILE_RATE
check "sampling off: gm_profile_write writes a profile with no samples" sh -c \
    "'$bin' x '$tmp/d.pb' && go tool pprof -top '$bin' '$tmp/d.pb' 2>&1 | grep -q 'of 0 total'"
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
check "python3 under LD_PRELOAD: the profile at exit reads back" sh -c \
    "GOMALLOC_PROFILE='$tmp/py.%p.pb' LD_PRELOAD='$lib' '$py' -c 'x = [bytes(5000) for i in range(20000)]' &&
     go tool pprof -top -sample_index=alloc_space '$py' '$tmp'/py.*.pb 2>&1 | grep -q 'Type: alloc_space'"
exit $fail
