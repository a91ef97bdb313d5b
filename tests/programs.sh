#!/usr/bin/env bash
# programs.sh — run real, allocation-heavy programs under gomalloc and compare
# their output with a run on glibc's malloc.
#
#   tests/programs.sh [path/to/libgomalloc.so]
#
# The library defaults to $GOMALLOC_LIB, else lib/libgomalloc.so next to this
# directory.  Each case runs the same workload twice, in its own directory:
# once without LD_PRELOAD (the reference) and once with LD_PRELOAD=<library>;
# the outputs must be identical and both runs must exit 0 within $TIMEOUT
# seconds.  One line per case (`ok NAME` or `FAIL NAME: why`), then
# `N passed, N failed`; the exit status is non-zero if anything failed.
#
# How we know gomalloc was really in use: the gomalloc run also sets
# LD_DEBUG=bindings with LD_DEBUG_OUTPUT into a file per process, and the case
# passes only if (a) the program named by the case (its binary or its own
# shared library, e.g. cc1 for gcc, libsqlite3 for sqlite3) bound `malloc` to
# the gomalloc library, and (b) no process of the run bound malloc, free, calloc
# or realloc to libc.so.6 (which would mean two heaps in one process).  This
# works for every dynamically linked program and all of its child processes
# without changing them.  Separately, the `exports` case checks with nm -D that
# the library exports the full set of malloc names, and `python3-ctypes` checks
# that a preloaded process can resolve gm_usable_size through dlsym.
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB=${1:-${GOMALLOC_LIB:-$here/../lib/libgomalloc.so}}
TIMEOUT=${TIMEOUT:-300}
passed=0
failed=0

ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

if [ ! -f "$LIB" ]; then
    fail library "$LIB not found (build it with make, or pass its path)"
    finish
fi
LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gomalloc-programs.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/input" "$WORK/dbg"
cd "$WORK" || exit 1
export LC_ALL=C

# need PROGRAM [PACKAGE]: installs PACKAGE with apt-get if PROGRAM is missing.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if command -v apt-get >/dev/null 2>&1; then
        apt-get install -y "${2:-$1}" >/dev/null 2>&1
    fi
    command -v "$1" >/dev/null 2>&1
}

# run MODE NAME CMD...: runs CMD in $WORK/MODE/NAME, stdout to out, stderr to err.
run() {
    local mode=$1 name=$2 dir
    shift 2
    dir=$WORK/$mode/$name
    mkdir -p "$dir"
    if [ "$mode" = gm ]; then
        (cd "$dir" && env LD_PRELOAD="$LIB" LD_DEBUG=bindings \
            LD_DEBUG_OUTPUT="$WORK/dbg/$name" timeout "$TIMEOUT" "$@" >out 2>err)
    else
        (cd "$dir" && env -u LD_PRELOAD timeout "$TIMEOUT" "$@" >out 2>err)
    fi
}

# used_gomalloc NAME REGEX: checks the bindings logged by the gomalloc run.
used_gomalloc() {
    local name=$1 re=$2 files
    files=$(ls "$WORK/dbg/$name".* 2>/dev/null) || { echo "no LD_DEBUG output"; return 1; }
    # shellcheck disable=SC2086
    if grep -hE "to [^ ]*/libc\.so\.6 \[[0-9]+\]: normal symbol \`(malloc|free|calloc|realloc)'" \
        $files | head -1 | sed 's/^ *[0-9]*:[[:space:]]*//' | grep .; then
        return 1
    fi
    # shellcheck disable=SC2086
    if ! grep -hF "to $LIB [0]: normal symbol \`malloc'" $files |
        grep -qE "binding file [^ ]*($re)[^ ]* \["; then
        echo "no '$re' binding of malloc to $LIB"
        return 1
    fi
}

# compare NAME REGEX CMD...: the whole case.
compare() {
    local name=$1 re=$2 why status
    shift 2
    run glibc "$name" "$@"
    status=$?
    if [ "$status" -ne 0 ]; then
        fail "$name" "reference run (glibc) failed with status $status: $(tail -1 "$WORK/glibc/$name/err")"
        return
    fi
    run gm "$name" "$@"
    status=$?
    if [ "$status" -ne 0 ]; then
        fail "$name" "exit status $status under gomalloc: $(tail -1 "$WORK/gm/$name/err")"
        return
    fi
    if ! cmp -s "$WORK/glibc/$name/out" "$WORK/gm/$name/out"; then
        why=$(diff "$WORK/glibc/$name/out" "$WORK/gm/$name/out" | head -3 | tr '\n' ' ')
        fail "$name" "output differs from glibc: $why"
        return
    fi
    if ! [ -s "$WORK/gm/$name/out" ]; then
        fail "$name" "no output"
        return
    fi
    if ! why=$(used_gomalloc "$name" "$re"); then
        fail "$name" "gomalloc not in use: $why"
        return
    fi
    ok "$name"
}

# ---- the library itself ------------------------------------------------------

case_exports() {
    local missing="" s syms
    syms=$(nm -D --defined-only "$LIB" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//')
    for s in malloc free calloc realloc reallocarray aligned_alloc posix_memalign memalign \
        valloc pvalloc malloc_usable_size __libc_malloc __libc_free __libc_calloc \
        __libc_realloc __libc_memalign __libc_valloc __libc_pvalloc mallinfo mallinfo2 \
        malloc_trim malloc_stats malloc_info mallopt gm_malloc gm_free gm_usable_size; do
        printf '%s\n' "$syms" | grep -qx "$s" || missing="$missing $s"
    done
    if [ -n "$missing" ]; then fail exports "not exported:$missing"; else ok exports; fi
}

# ---- workloads ---------------------------------------------------------------

cat >"$WORK/input/churn.py" <<'EOF'
import random, zlib
random.seed(12345)
d, crc = {}, 0
for r in range(20):
    words = []
    for i in range(20000):
        k = "k%d_%d" % (random.randrange(100000), r)
        d[k] = [random.random() for _ in range(random.randrange(8))]
        words.append(k * (i % 5))
    for k in list(d)[: len(d) // 3]:
        del d[k]
    s = "".join(sorted(words[:3000]))
    crc = zlib.crc32(s.encode(), crc)
    crc = zlib.crc32(repr(sorted(d.items())[:200]).encode(), crc)
    t = {i: str(i) * (i % 13) for i in range(30000)}
    crc = zlib.crc32(",".join(t[i] for i in range(0, 30000, 7)).encode(), crc)
print(len(d), crc)
EOF

cat >"$WORK/input/churn.pl" <<'EOF'
use strict; use warnings;
srand(42);
my (%h, @a, $sum);
$sum = 0;
for my $r (1 .. 20) {
    for my $i (1 .. 20000) {
        my $k = "k" . int(rand(100000)) . "_$r";
        $h{$k} = [ map { $_ * $i } 1 .. ($i % 7) + 1 ];
        push @a, $k x (($i % 4) + 1);
    }
    my @ks = sort keys %h;
    delete @h{ @ks[0 .. $#ks / 3] };
    @a = splice(@a, -5000) if @a > 20000;
    my $s = join(",", @ks[0 .. 199], scalar(@a), map { scalar @{ $h{$_} } } grep { exists $h{$_} } @ks[-300 .. -1]);
    $sum = ($sum * 31 + unpack("%32C*", $s)) % 4294967291;
}
print scalar(keys %h), " $sum\n";
EOF

# A C file of about 360 KB: many structs, functions with switches and loops, tables.
gen_c() {
    awk 'BEGIN {
        for (i = 0; i < 400; i++) {
            printf "struct s%d { int a; long b; char c[%d]; double d[%d]; };\n", i, 8 + i % 40, 1 + i % 5
            printf "static const int tab%d[] = {", i
            for (j = 0; j < 24; j++) printf " %d,", (i * 7919 + j * 104729) % 100003
            printf " 0 };\n"
            printf "int f%d(int x, struct s%d *p) {\n  int r = %d;\n", i, i, i
            printf "  for (int k = 0; k < x; k++) {\n    switch ((k + x) %% 6) {\n"
            for (j = 0; j < 6; j++)
                printf "    case %d: r += tab%d[(k + %d) %% 24] * p->a - (int)p->b / (k + %d); break;\n", j, i, j, j + 1
            printf "    }\n    p->d[k %% %d] += r * 0.5;\n  }\n", 1 + i % 5
            printf "  return r ^ (int)p->c[x %% %d] ^ (int)p->d[%d];\n}\n", 8 + i % 40, i % (1 + i % 5)
        }
    }' >"$WORK/input/big.c"
}

gen_sort_input() {
    awk 'BEGIN { srand(7); for (i = 0; i < 150000; i++)
        printf "%d %s-%x %d\n", int(rand() * 1e9), substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26, 5), i * 2654435761 % 4294967296, i }' \
        >"$WORK/input/lines.txt"
}

gen_sql() {
    awk 'BEGIN {
        print "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);"
        print "BEGIN;"
        for (i = 1; i <= 120000; i++)
            printf "INSERT INTO t VALUES(%d, %d, \"n%07d-%s\", %d.%02d);\n", i, (i * 7919) % 997, (i * 104729) % 1000003, substr("qwertyuiopasdfghjkl", 1 + i % 13, 6), i % 1000, i % 97
        print "COMMIT;"
        print "CREATE INDEX t_grp ON t(grp, name);"
        print "SELECT grp, count(*), sum(val), min(name), max(name) FROM t GROUP BY grp ORDER BY grp;"
        print "SELECT name, val FROM t WHERE grp BETWEEN 10 AND 40 ORDER BY name DESC, id LIMIT 3000;"
        print "SELECT substr(name, 10, 3) AS p, count(*), avg(val) FROM t GROUP BY p ORDER BY count(*) DESC, p LIMIT 100;"
        print "CREATE TABLE u AS SELECT grp, group_concat(name, \",\") AS names FROM (SELECT grp, name FROM t ORDER BY id) GROUP BY grp;"
        print "SELECT grp, length(names), substr(names, 1, 40) FROM u ORDER BY length(names) DESC, grp;"
        print "UPDATE t SET name = name || name WHERE id % 3 = 0;"
        print "DELETE FROM t WHERE id % 5 = 0;"
        print "SELECT count(*), sum(length(name)) FROM t;"
        print "SELECT a.grp, count(*) FROM t a JOIN u b ON a.grp = b.grp WHERE a.id % 11 = 0 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 50;"
    }' >"$WORK/input/work.sql"
}

# The git workload, as one script so that every git process runs under the
# same allocator; fixed names and dates make the hashes reproducible.
cat >"$WORK/input/git.sh" <<'EOF'
set -e
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Author GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME=Committer GIT_COMMITTER_EMAIL=committer@example.com
git init -q -b main repo
cd repo
mkdir d00 d01 d02 d03 d04 d05 d06 d07 d08 d09 d10 d11 d12 d13 d14 d15 d16 d17 d18 d19
for c in 1 2 3 4 5 6 7 8 9 10; do
    awk -v c=$c 'BEGIN { for (i = 0; i < 250; i++) {
        f = sprintf("d%02d/f%03d.txt", i % 20, i)
        for (j = 0; j < 40 + (i * c) % 60; j++) printf "line %d of file %d, commit %d %s\n", j, i, (j % 7 == 0 ? c : 0), (j % 3 ? "alpha" : "beta") > f
        close(f) } }'
    export GIT_AUTHOR_DATE="2020-01-$(printf %02d $c)T12:00:00Z" GIT_COMMITTER_DATE="2020-01-$(printf %02d $c)T12:30:00Z"
    git add -A
    git commit -q -m "commit $c"
done
git log --stat
git gc --quiet
git fsck --no-progress
git log --format='%H %T %s' --numstat
git rev-list --objects --all | sort
git cat-file -p HEAD~5:d03/f003.txt
EOF

case_python3() {
    need python3 || { fail python3 "python3 not installed"; return; }
    local py
    py=$(python3 -c 'import sys; print(sys.executable)')
    compare python3 "python" env PYTHONHASHSEED=0 "$py" "$WORK/input/churn.py"
    # dlsym in a preloaded process finds the gm_ API only if the library is loaded.
    if env LD_PRELOAD="$LIB" "$py" -c 'import ctypes; ctypes.CDLL(None).gm_usable_size' \
        2>/dev/null; then
        ok python3-ctypes
    else
        fail python3-ctypes "gm_usable_size not found through dlsym in a preloaded python3"
    fi
}

case_gcc() {
    need gcc || { fail gcc "gcc not installed"; return; }
    need objdump binutils || { fail gcc "objdump not installed"; return; }
    gen_c
    compare gcc "cc1" sh -c 'gcc -O2 -S -o - "$1" && gcc -O1 -c -o big.o "$1" && objdump -d big.o' \
        sh "$WORK/input/big.c"
}

case_git() {
    need git || { fail git "git not installed"; return; }
    compare git "git" sh "$WORK/input/git.sh"
}

case_sqlite3() {
    need sqlite3 || { fail sqlite3 "sqlite3 not installed"; return; }
    gen_sql
    compare sqlite3 "sqlite3" sh -c 'sqlite3 work.db <"$1"' sh "$WORK/input/work.sql"
}

case_sort() {
    need sort coreutils || { fail sort "sort not installed"; return; }
    gen_sort_input
    compare sort "sort" sh -c 'sort "$1" && sort -n "$1" && sort -S 1M -k2,2 -k3,3 "$1"' \
        sh "$WORK/input/lines.txt"
}

case_perl() {
    need perl || { fail perl "perl not installed"; return; }
    compare perl "perl" perl "$WORK/input/churn.pl"
}

case_exports
case_python3
case_gcc
case_git
case_sqlite3
case_sort
case_perl
finish
