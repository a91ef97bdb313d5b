#!/usr/bin/env bash
# run.sh — run the glibc-behaviour tests (tests/glibc/*.c, see README.md here)
# in one or more modes and report one line per case and mode.
#
#   tests/glibc/run.sh [--linked DIR] [--preload DIR LIB] [--glibc DIR]
#
#   --linked DIR        DIR holds the tests linked with -lgomalloc; each must find
#                       gomalloc behind malloc (GT_ALLOCATOR=gomalloc)
#   --preload DIR LIB   DIR holds the tests built without gomalloc; they run with
#                       LD_PRELOAD=LIB and must find gomalloc behind malloc
#   --glibc DIR         the same plain tests, without gomalloc: every case must
#                       pass on glibc's own malloc, which shows the tests are right
#
# Modes run in the order given.  Every run goes through `timeout` (GT_TIMEOUT
# seconds, 30 by default; a hang fails); the fork cases run GT_FORK_RUNS times
# in a row (default 20) and stop at the first failure.  GT_ONLY="name ..."
# limits the run to those cases.  Output: `ok NAME (mode)` or
# `FAIL NAME (mode): reason` per case, then `N passed, M failed`; the exit
# status is non-zero if any case failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
FORK_CASES=" fork_stdio_deadlock fork_in_signal fork_in_signal_threads "
FORK_RUNS=${GT_FORK_RUNS:-20}
# Seconds before a run counts as hung.  The fork cases detect their own
# deadlocks after 10 s and say so; this catches everything else.
TIMEOUT=${GT_TIMEOUT:-30}
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

usage() {
    echo "usage: $0 [--linked DIR] [--preload DIR LIB] [--glibc DIR]" >&2
    exit 2
}

is_fork_case() { [[ $FORK_CASES == *" $1 "* ]]; }

# The reason for a failed run, from its exit status, how long it took and its
# output: the test's own "FAIL: ..." line if it wrote one, else what ended it.
reason() {
    local rc=$1 seconds=$2 line
    line=$(grep -m1 '^FAIL: ' "$out")
    if [ -n "$line" ]; then
        echo "${line#FAIL: }"
    elif [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "$seconds" -ge "$TIMEOUT" ]; }; then
        echo "timed out after ${TIMEOUT} s (hung)"
    elif [ "$rc" -gt 128 ]; then
        line=$(grep -m1 . "$out")
        echo "killed by SIG$(kill -l $((rc - 128)))${line:+: $line}"
    else
        line=$(grep . "$out" | tail -n1)
        echo "exit $rc${line:+: $line}"
    fi
}

# run_once MODE BINARY: one run of a test, output in $out; returns its status.
# The subshell's own stderr is dropped: it only carries the shell's "Killed"
# notice when a test's watchdog ends it, and the reason is reported anyway.
run_once() {
    local mode=$1 bin=$2
    (
        case $mode in
        linked) export GT_ALLOCATOR=gomalloc ;;
        preload) export GT_ALLOCATOR=gomalloc LD_PRELOAD=$preload_lib ;;
        glibc) export GT_ALLOCATOR=glibc ;;
        esac
        timeout -k 5 "$TIMEOUT" "$bin" >"$out" 2>&1
    ) 2>/dev/null
}

# run_case MODE DIR NAME: one line for the case, after all its runs.
run_case() {
    local mode=$1 dir=$2 name=$3 runs=1 i rc start
    is_fork_case "$name" && runs=$FORK_RUNS
    if [ ! -x "$dir/$name" ]; then
        echo "FAIL $name ($mode): $dir/$name is missing (build it first)"
        failed=$((failed + 1))
        return
    fi
    for ((i = 1; i <= runs; i++)); do
        start=$SECONDS
        run_once "$mode" "$dir/$name"
        rc=$?
        if [ "$rc" -ne 0 ]; then
            local when=""
            [ "$runs" -gt 1 ] && when="run $i of $runs: "
            echo "FAIL $name ($mode): $when$(reason "$rc" $((SECONDS - start)))"
            failed=$((failed + 1))
            return
        fi
    done
    echo "ok $name ($mode)"
    passed=$((passed + 1))
}

run_mode() {
    local mode=$1 dir=$2 src name
    for src in "$here"/*.c; do
        name=$(basename "$src" .c)
        [ -z "${GT_ONLY:-}" ] || [[ " $GT_ONLY " == *" $name "* ]] || continue
        run_case "$mode" "$dir" "$name"
    done
}

modes=()
while [ $# -gt 0 ]; do
    case $1 in
    --linked) [ $# -ge 2 ] || usage; modes+=("linked:$2"); shift 2 ;;
    --preload) [ $# -ge 3 ] || usage; modes+=("preload:$2"); preload_lib=$3; shift 3 ;;
    --glibc) [ $# -ge 2 ] || usage; modes+=("glibc:$2"); shift 2 ;;
    *) usage ;;
    esac
done
[ ${#modes[@]} -gt 0 ] || usage
if [ -n "${preload_lib:-}" ] && [ ! -f "$preload_lib" ]; then
    echo "no library at $preload_lib" >&2
    exit 2
fi

for m in "${modes[@]}"; do
    run_mode "${m%%:*}" "${m#*:}"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
