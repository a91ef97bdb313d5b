#!/bin/sh
# tests/install.sh — `make install` into a temporary DESTDIR, then adopt that
# copy, and only that copy, the ways a project would (make test-install):
#
#   layout      the files, the soname chain, no libstdc++ dependency, every
#               operator new/delete and the sized frees exported
#   pkg-config  a C program built with --cflags --libs (shared, found through
#               the rpath the README documents) and with --static; the
#               archive before the sources, with -Wl,-u,malloc
#   CMake       find_package(gomalloc) and both imported targets
#   C++         every operator form, preloaded, linked and static, bound to
#               gomalloc (dladdr in the program, LD_DEBUG=bindings here);
#               GOMALLOC_DEBUG=1 checks every sized delete
#   sized free  right sizes, and wrong ones reported in debug mode
#   settings    the messages for bad values and names, GOMALLOC_VERBOSE=1
#   run         the installed gomalloc-run finds the installed library
#   dlopen      tests/dlopen_gm.c against the installed library
#   man         groff -man -ww -z and man -l of each page: no warnings
#   uninstall   make uninstall leaves no file behind
#
# Usage: tests/install.sh   (from anywhere; MAKE, CC and CXX are honoured)
# Prints "ok ..." / "FAIL ..." per check and "N passed, M failed".

set -u
root=$(cd "$(dirname "$0")/.." && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
CXX=${CXX:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
prefix=/usr/local
libdir=$prefix/lib
staged=$dest$libdir
pass=0
fail=0

ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
# check NAME COMMAND...: ok if the command succeeds; its output shown if not.
check() {
    name=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then
        ok "$name"
    else
        bad "$name"
        sed 's/^/    /' "$tmp/out" | head -40
    fi
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit
}

# The version, from the one place that defines it.
version=$(awk '$2 ~ /^GOMALLOC_VERSION_(MAJOR|MINOR|PATCH)$/ { v = v (v == "" ? "" : ".") $3 }
               END { print v }' "$root/include/gomalloc.h")
major=${version%%.*}

# Nothing from the environment steers the library or the tools; messages in
# plain English; any core dump of the abort checks lands in $tmp.
for v in $(env | sed -n 's/^\(GOMALLOC_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset LD_PRELOAD LD_LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH MANPATH
LC_ALL=C
export LC_ALL
cd "$tmp" || exit 1

# ---- install ------------------------------------------------------------------
if ! $MAKE -C "$root" --no-print-directory install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
    bad "make install DESTDIR=..."
    sed 's/^/    /' "$tmp/install.log" | tail -30
    finish
fi
ok "make install DESTDIR=$dest"

layout() {
    for f in bin/gomalloc-run bin/gomalloc-stat include/gomalloc.h lib/libgomalloc.a lib/libgomalloc.so.$version \
             lib/pkgconfig/gomalloc.pc lib/cmake/gomalloc/gomalloc-config.cmake \
             lib/cmake/gomalloc/gomalloc-config-version.cmake share/man/man3/gomalloc.3 \
             share/man/man1/gomalloc-run.1 share/man/man3/gm_malloc.3; do
        [ -f "$dest$prefix/$f" ] || { echo "missing $prefix/$f"; return 1; }
    done
    [ "$(readlink "$staged/libgomalloc.so")" = "libgomalloc.so.$major" ] &&
        [ "$(readlink "$staged/libgomalloc.so.$major")" = "libgomalloc.so.$version" ] ||
        { ls -l "$staged"; return 1; }
    readelf -d "$staged/libgomalloc.so.$version" | grep -q "Library soname: \[libgomalloc.so.$major\]"
}
check "layout: libgomalloc.so -> .so.$major -> .so.$version (soname .so.$major), archive, header, .pc, CMake, man" layout

no_cxx_runtime() {
    readelf -d "$staged/libgomalloc.so.$version" | grep NEEDED
    ! readelf -d "$staged/libgomalloc.so.$version" | grep NEEDED | grep -Eq 'libstdc\+\+|libgcc_s'
}
check "libgomalloc.so needs no libstdc++ (readelf -d)" no_cxx_runtime

OPERATORS="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t
_ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
_ZdlPv _ZdaPv _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvm _ZdaPvm _ZdlPvSt11align_val_t
_ZdaPvSt11align_val_t _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t
_ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t"
exported() {
    nm -D --defined-only "$staged/libgomalloc.so.$version" | awk '$2 == "T" { print $3 }' >"$tmp/syms"
    for s in $OPERATORS free_sized free_aligned_sized gm_free_sized gm_free_aligned_sized \
             gm_good_size gm_version malloc free; do
        grep -qx "$s" "$tmp/syms" || { echo "not exported: $s"; return 1; }
    done
}
check "nm -D: all 20 operator new/delete forms, free_sized, gm_good_size, gm_version exported" exported

# ---- pkg-config ---------------------------------------------------------------------
# The staged copy: its .pc says /usr/local; the sysroot maps that to $dest.
PKG_CONFIG_LIBDIR=$staged/pkgconfig
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
pc_libdir=$(pkg-config --variable=libdir gomalloc)
case $pc_libdir in "$dest"/*) ;; *) pc_libdir=$dest$pc_libdir ;; esac
check "pkg-config --modversion gomalloc is $version" \
    test "$(pkg-config --modversion gomalloc)" = "$version"
CFLAGS_T="-std=gnu11 -Wall -Wextra -Werror -O1 -g -fno-builtin"
src=$root/tests/sized_free.c

shared_pc() {
    # shellcheck disable=SC2046
    $CC $CFLAGS_T "$src" -o "$tmp/sized_shared" $(pkg-config --cflags --libs gomalloc) \
        -Wl,-rpath,"$pc_libdir" &&
        readelf -d "$tmp/sized_shared" | grep -q "NEEDED.*\[libgomalloc.so.$major\]" &&
        "$tmp/sized_shared"
}
check "C, shared: cc prog.c \$(pkg-config --cflags --libs gomalloc) -Wl,-rpath,LIBDIR runs on gomalloc" shared_pc

static_pc() {
    # shellcheck disable=SC2046
    $CC $CFLAGS_T -static "$src" -o "$tmp/sized_static" \
        $(pkg-config --static --cflags --libs gomalloc) &&
        ! readelf -d "$tmp/sized_static" 2>/dev/null | grep -q NEEDED &&
        "$tmp/sized_static"
}
check "C, static: cc -static prog.c \$(pkg-config --static --cflags --libs gomalloc)" static_pc

archive_first() {
    # The archive before the sources: -u malloc (pkg-config --static's) pulls its malloc in.
    $CC $CFLAGS_T -I"$dest$prefix/include" -o "$tmp/archive_first" "$pc_libdir/libgomalloc.a" \
        "$src" -Wl,-u,malloc -pthread &&
        ! readelf -d "$tmp/archive_first" | grep -q 'libgomalloc' &&
        nm "$tmp/archive_first" | grep -q ' T gm_malloc$' && "$tmp/archive_first"
}
check "C, archive placed before the sources with -Wl,-u,malloc gets gomalloc" archive_first

archive_only() {
    # Only gomalloc static (-l:libgomalloc.a), the C library shared.
    # shellcheck disable=SC2046
    $CC $CFLAGS_T "$src" -o "$tmp/archive_only" $(pkg-config --cflags gomalloc) -L"$pc_libdir" \
        -l:libgomalloc.a -Wl,-u,malloc -pthread &&
        ! readelf -d "$tmp/archive_only" | grep -q libgomalloc && "$tmp/archive_only"
}
check "C, -l:libgomalloc.a -Wl,-u,malloc: gomalloc static, libc shared" archive_only

# ---- sized free and the version -------------------------------------------------
check "free_sized right sizes under GOMALLOC_DEBUG=1 (and GOMALLOC_THREAD_CACHE_KIB=0 without)" \
    sh -c "GOMALLOC_DEBUG=1 '$tmp/sized_shared' && GOMALLOC_THREAD_CACHE_KIB=0 '$tmp/sized_shared'"

# expect_abort NAME REGEX COMMAND...: the command dies of SIGABRT, its stderr matching REGEX.
expect_abort() {
    name=$1 re=$2
    shift 2
    "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    status=$?
    if [ "$status" = 134 ] && grep -Eq "$re" "$tmp/stderr"; then
        ok "$name"
    else
        bad "$name (status $status)"
        sed 's/^/    /' "$tmp/stderr" | head -5
    fi
}
expect_abort "GOMALLOC_DEBUG=1: free_sized with a wrong size is reported" \
    '^gomalloc: free_sized\(\): wrong size for 0x[0-9a-f]+: 24 given, 20 requested$' \
    env GOMALLOC_DEBUG=1 "$tmp/sized_shared" wrong-size
expect_abort "GOMALLOC_DEBUG=1: free_aligned_sized with a wrong alignment is reported" \
    '^gomalloc: free_aligned_sized\(\): wrong alignment for 0x[0-9a-f]+: [0-9]+ given$' \
    env GOMALLOC_DEBUG=1 "$tmp/sized_shared" wrong-align
check "without debug mode a wrong size frees like free" \
    sh -c "'$tmp/sized_shared' wrong-size | grep -qx freed"
check "gm_version() = GOMALLOC_VERSION_STRING = $version" \
    sh -c "'$tmp/sized_shared' version | grep -qx '$version $version $version'"

# ---- CMake ----------------------------------------------------------------------------
cmake_project() {
    proj=$tmp/cmake-project
    mkdir -p "$proj"
    cp "$src" "$proj/prog.c"
    cat >"$proj/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.13)
project(adopt_gomalloc C)
find_package(gomalloc $((major + 1)) QUIET)
if(gomalloc_FOUND)
  message(FATAL_ERROR "gomalloc $version accepted a request for major version $((major + 1))")
endif()
find_package(gomalloc $version REQUIRED)
message(STATUS "gomalloc \${gomalloc_VERSION}, gomalloc-run at \${GOMALLOC_RUN}")
if(NOT EXISTS "\${GOMALLOC_RUN}")
  message(FATAL_ERROR "GOMALLOC_RUN: \${GOMALLOC_RUN} does not exist")
endif()
add_executable(prog_shared prog.c)
target_link_libraries(prog_shared PRIVATE gomalloc::gomalloc)
add_executable(prog_static prog.c)
target_link_libraries(prog_static PRIVATE gomalloc::gomalloc-static)
EOF
    env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR \
        cmake -S "$proj" -B "$proj/build" -DCMAKE_PREFIX_PATH="$dest$prefix" \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Debug &&
        cmake --build "$proj/build" &&
        readelf -d "$proj/build/prog_shared" | grep -q "NEEDED.*\[libgomalloc.so.$major\]" &&
        ! readelf -d "$proj/build/prog_static" | grep -q libgomalloc &&
        "$proj/build/prog_shared" && "$proj/build/prog_static"
}
check "CMake: find_package(gomalloc $version), gomalloc::gomalloc and gomalloc::gomalloc-static" cmake_project

# ---- C++ ---------------------------------------------------------------------------------
cxx_src=$root/tests/cxx_operators.cc
CXXFLAGS_T="-std=c++17 -Wall -Wextra -Werror -O1 -g"
# bound_to_gomalloc LOG: every binding of an operator new/delete symbol in
# the LD_DEBUG=bindings log goes to libgomalloc, none to libstdc++.
bound_to_gomalloc() {
    grep -E "normal symbol \`_Z(nw|na|dl|da)" "$1" >"$tmp/ops" || { echo "no operator bindings"; return 1; }
    if grep -v 'libgomalloc' "$tmp/ops"; then
        echo "operators bound elsewhere (above)"
        return 1
    fi
    grep -q "binding file [^ ]*libstdc++[^ ]* .* to [^ ]*libgomalloc.*_Znwm" "$tmp/ops" ||
        { echo "libstdc++'s own operator new calls do not bind to gomalloc"; return 1; }
}

cxx_preload() {
    $CXX $CXXFLAGS_T "$cxx_src" -o "$tmp/cxx_plain" &&
        LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/bind-pre" LD_PRELOAD="$staged/libgomalloc.so.$major" \
            "$tmp/cxx_plain" &&
        bound_to_gomalloc "$(ls "$tmp"/bind-pre.* | head -1)"
}
check "C++ under LD_PRELOAD: every operator form is gomalloc's (dladdr, LD_DEBUG=bindings)" cxx_preload

cxx_linked() {
    # shellcheck disable=SC2046
    $CXX $CXXFLAGS_T "$cxx_src" -o "$tmp/cxx_linked" $(pkg-config --cflags --libs gomalloc) \
        -Wl,-rpath,"$pc_libdir" &&
        LD_DEBUG=bindings LD_DEBUG_OUTPUT="$tmp/bind-linked" "$tmp/cxx_linked" &&
        bound_to_gomalloc "$(ls "$tmp"/bind-linked.* | head -1)" &&
        GOMALLOC_DEBUG=1 "$tmp/cxx_linked" >/dev/null
}
check "C++ linked with pkg-config: every operator form is gomalloc's, sized deletes exact in debug mode" cxx_linked

cxx_static() {
    # -rdynamic: the program looks gm_usable_size up with dlsym.
    $CXX $CXXFLAGS_T -rdynamic "$cxx_src" -o "$tmp/cxx_static" "$pc_libdir/libgomalloc.a" \
        -Wl,-u,malloc -pthread &&
        nm "$tmp/cxx_static" | grep -q ' T _Znwm$' && "$tmp/cxx_static"
}
check "C++ linked with libgomalloc.a: the operators are the program's own" cxx_static

expect_abort "GOMALLOC_DEBUG=1: a sized delete with a wrong size is reported" \
    '^gomalloc: operator delete\(\): wrong size for 0x[0-9a-f]+: 24 given, 20 requested$' \
    env GOMALLOC_DEBUG=1 "$tmp/cxx_linked" wrong-size

# ---- settings -------------------------------------------------------------------------
# settings_say EXPECTED VAR=VALUE...: stderr of a preloaded /bin/true, exactly.
settings_say() {
    expected=$1
    shift
    got=$(env -i "$@" LD_PRELOAD="$staged/libgomalloc.so.$major" /bin/true 2>&1)
    if [ "$got" = "$expected" ]; then
        return 0
    fi
    printf 'expected: %s\n     got: %s\n' "$expected" "$got"
    return 1
}
settings() {
    settings_say 'gomalloc: GOMALLOC_RETAIN_PERCENT: out of range 0..100000: "200000"' \
        GOMALLOC_RETAIN_PERCENT=200000 &&
    settings_say 'gomalloc: GOMALLOC_RETAIN_PERCENT: not a number: "abc"' \
        GOMALLOC_RETAIN_PERCENT=abc &&
    settings_say 'gomalloc: GOMALLOC_DECAY_MS: out of range 0..3600000: "3600001"' \
        GOMALLOC_DECAY_MS=3600001 &&
    settings_say 'gomalloc: GOMALLOC_DECAY_MS: out of range 0..3600000: "-1"' GOMALLOC_DECAY_MS=-1 &&
    settings_say 'gomalloc: GOMALLOC_THREAD_CACHE_KIB: out of range 0..1048576: "1048577"' \
        GOMALLOC_THREAD_CACHE_KIB=1048577 &&
    settings_say 'gomalloc: GOMALLOC_SCAVENGE: not 0 or 1: "yes"' GOMALLOC_SCAVENGE=yes &&
    settings_say 'gomalloc: GOMALLOC_MADVISE: not dontneed or free: "never"' GOMALLOC_MADVISE=never &&
    settings_say 'gomalloc: GOMALLOC_SCAVANGE: unknown setting, ignored (did you mean GOMALLOC_SCAVENGE?)' \
        GOMALLOC_SCAVANGE=0 &&
    settings_say 'gomalloc: GOMALLOC_DEBGU: unknown setting, ignored (did you mean GOMALLOC_DEBUG?)' \
        GOMALLOC_DEBGU=1 &&
    settings_say '' GOMALLOC_THREAD_CACHE_KIB=0 GOMALLOC_DECAY_MS=0 GOMALLOC_RETAIN_PERCENT=100000 \
        GOMALLOC_LIB=/elsewhere GOMALLOC_VERBOSE=0 GOMALLOC_MADVISE=free GOMALLOC_SCAVENGE=0 &&
    settings_say "gomalloc: version $version, settings in force:
gomalloc:   GOMALLOC_SCAVENGE=1 (default)
gomalloc:   GOMALLOC_RETAIN_PERCENT=5 (default)
gomalloc:   GOMALLOC_DECAY_MS=250 (environment)
gomalloc:   GOMALLOC_MADVISE=dontneed (default)
gomalloc:   GOMALLOC_THREAD_CACHE_KIB=0 (environment)
gomalloc:   GOMALLOC_DEBUG=0 (default)
gomalloc:   GOMALLOC_GUARD_RATE=200000 (default)
gomalloc:   GOMALLOC_GUARD_CATCH=overflow (default)
gomalloc:   GOMALLOC_VERBOSE=1 (environment)
gomalloc:   GOMALLOC_STATS=0 (default)
gomalloc:   GOMALLOC_STATS_FILE= (default)
gomalloc:   GOMALLOC_HEAPMAP= (default)
gomalloc:   GOMALLOC_PROFILE= (default)
gomalloc:   GOMALLOC_PROFILE_RATE=524288 (default)" GOMALLOC_VERBOSE=1 GOMALLOC_DECAY_MS=250 \
        GOMALLOC_THREAD_CACHE_KIB=0
}
check "settings: out of range names the range, unknown names the nearest, GOMALLOC_VERBOSE=1" settings

once() {
    # One report however many allocations follow, also in a multithreaded C++ program.
    n=$(env GOMALLOC_SCAVANGE=0 "$tmp/cxx_linked" 2>&1 >/dev/null | grep -c 'unknown setting')
    [ "$n" = 1 ] || { echo "reported $n times"; return 1; }
}
check "an unknown setting is reported once" once

# ---- gomalloc-run -------------------------------------------------------------------------
run=$dest$prefix/bin/gomalloc-run
check "gomalloc-run --version: $version and the installed library" sh -c \
    "'$run' --version | grep -qx 'gomalloc-run $version' &&
     '$run' --version | grep -qx 'library: $staged/libgomalloc.so.$major'"
check "gomalloc-run of the installed tree preloads the installed library" sh -c \
    "test \"\$('$run' sh -c 'echo \$LD_PRELOAD')\" = '$staged/libgomalloc.so.$major' &&
     '$run' '$tmp/cxx_plain' >/dev/null &&
     GOMALLOC_VERBOSE=1 '$run' /bin/true 2>&1 | grep -qx 'gomalloc: version $version, settings in force:'"
check "gomalloc-run with no library says so (status 127)" sh -c \
    "GOMALLOC_LIB=/nonexistent/libgomalloc.so '$run' true 2>&1; test \$? = 127"
check "gomalloc-stat, installed: the report on stderr, report and heap map in its folder" sh -c \
    "'$dest$prefix/bin/gomalloc-stat' -o '$tmp/gs' '$tmp/cxx_plain' >/dev/null 2>'$tmp/gs.err' &&
     grep -q '^class  object' '$tmp/gs.err' && ls '$tmp'/gs/stats.*.txt '$tmp'/gs/heapmap.*.svg >/dev/null"

# ---- dlopen ------------------------------------------------------------------------------
check "dlopen: gm_ functions through dlsym; dlclose leaves it loaded" sh -c \
    "$CC $CFLAGS_T -pthread '$root/tests/dlopen_gm.c' -o '$tmp/dlopen_gm' &&
     '$tmp/dlopen_gm' '$staged/libgomalloc.so.$major'"

# ---- manual pages -----------------------------------------------------------------------
man_pages() {
    for page in "$root/man/gomalloc.3" "$root/man/gomalloc-run.1"; do
        w=$(groff -man -ww -z "$page" 2>&1)
        [ -z "$w" ] || { echo "groff -ww $page: $w"; return 1; }
    done
    for page in man3/gomalloc.3 man1/gomalloc-run.1; do
        f=$dest$prefix/share/man/$page
        w=$(MANWIDTH=80 man -l "$f" 2>&1 >"$tmp/man.txt")
        [ -z "$w" ] || { echo "man -l $page: $w"; return 1; }
        grep -q "gomalloc $version" "$tmp/man.txt" || { echo "$page: no version"; return 1; }
    done
    MANWIDTH=80 man -M "$dest$prefix/share/man" 3 gm_free_sized 2>&1 | grep -q 'GOMALLOC(3)' ||
        { echo "man gm_free_sized does not show gomalloc(3)"; return 1; }
}
check "man pages: groff -man -ww -z and man -l without warnings, versioned; gm_* names link" man_pages

# ---- uninstall --------------------------------------------------------------------------
uninstall() {
    $MAKE -C "$root" --no-print-directory uninstall DESTDIR="$dest" >"$tmp/uninstall.log" 2>&1 ||
        { cat "$tmp/uninstall.log"; return 1; }
    left=$(find "$dest" ! -type d)
    [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}
check "make uninstall leaves no file behind" uninstall

finish
