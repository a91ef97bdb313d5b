#!/bin/sh
# stats.sh — the statistics' reports from outside (make test-stats): the C
# library's names in a linked program (tests/stats_override.c), and
# GOMALLOC_STATS and GOMALLOC_HEAPMAP at the exit of python3 under LD_PRELOAD.
# Usage: tests/stats.sh BUILD_DIR LIBRARY
set -u
bin=$1/stats_override
lib=$2
root=$(cd "$(dirname "$0")/.." && pwd -P)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {
    name=$1; shift
    if "$@" >"$tmp/out" 2>&1; then echo "ok   $name"; else echo "FAIL $name"; sed 's/^/     /' "$tmp/out"; fail=1; fi
}
# The interpreter itself, not a wrapper script (pyenv's shims are shell
# scripts, whose own processes would write reports too).
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
script='
import ctypes
d = {i: bytes(600 + i % 3000) for i in range(20000)}
ctypes.CDLL(None).malloc_stats()
'

check "mallinfo2 agrees with gm_get_memstats" "$bin" mallinfo
check "malloc_info to open_memstream: whole, parses" sh -c "'$bin' info-memstream > '$tmp/m.xml' && xmllint --noout '$tmp/m.xml'"
check "malloc_info to stdout parses; options != 0 refused" sh -c "'$bin' info-stdout | xmllint --noout -"
check "malloc_stats prints totals and the class table" sh -c \
    "'$bin' stats 2>&1 >/dev/null | grep -q '^in use by the program' && '$bin' stats 2>&1 | grep -q '^class  object'"
check "GOMALLOC_STATS=1 under python3: the report at exit, on stderr" sh -c \
    "GOMALLOC_STATS=1 LD_PRELOAD='$lib' '$py' -c 'pass' 2>&1 >/dev/null | grep -q '^threads with a cache'"
check "GOMALLOC_STATS=json under python3: one object that json.tool parses" sh -c \
    "GOMALLOC_STATS=json LD_PRELOAD='$lib' '$py' -c 'x = [bytes(700) for i in range(5000)]' 2>'$tmp/s.json' &&
     python3 -m json.tool '$tmp/s.json' >/dev/null &&
     python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"allocs\"] >= 5000, d[\"allocs\"]' '$tmp/s.json'"
check "GOMALLOC_STATS=yes is refused with the values allowed" sh -c \
    "GOMALLOC_STATS=yes LD_PRELOAD='$lib' /bin/true 2>&1 | grep -qx 'gomalloc: GOMALLOC_STATS: not 0, 1 or json: \"yes\"'"
check "GOMALLOC_HEAPMAP under python3: well-formed SVG, renders with spans drawn" sh -c \
    "GOMALLOC_HEAPMAP='$tmp/map.%p.svg' LD_PRELOAD='$lib' '$py' -c '$script' 2>/dev/null &&
     f=\$(ls '$tmp'/map.*.svg) && xmllint --noout \$f && grep -q 'class=\"c[0-9]* o[0-9]\"' \$f &&
     rsvg-convert -o '$tmp/map.png' \$f && test -s '$tmp/map.png'"
check "gomalloc-stat: the report on stderr, reports and maps in its folder, the command's status" sh -c \
    "'$root/LD_PRELOAD/gomalloc-stat' -o '$tmp/gs' '$py' -c 'import sys; x = [bytes(900) for i in range(3000)]; sys.exit(3)' \
         >/dev/null 2>'$tmp/gs.err'; test \$? = 3 &&
     grep -q '^gomalloc-stat: process [0-9]*, at exit:' '$tmp/gs.err' && grep -q '^class  object' '$tmp/gs.err' &&
     grep -q 'reports, heap maps and heap profiles in $tmp/gs' '$tmp/gs.err' && ls '$tmp'/gs/profile.*.pb >/dev/null &&
     xmllint --noout '$tmp'/gs/heapmap.*.svg && grep -q '^in use by the program' '$tmp'/gs/stats.*.txt"
check "gomalloc-stat names its folder after the command when not told" sh -c \
    "cd '$tmp' && '$root/LD_PRELOAD/gomalloc-stat' /bin/true 2>'$tmp/gs2.err' &&
     grep -q 'gomalloc-stat: .* $tmp/gomalloc-stat.true.[0-9]*' '$tmp/gs2.err'"
exit $fail
