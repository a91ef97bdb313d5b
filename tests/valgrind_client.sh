#!/bin/sh
# Runs tests/valgrind_client.c (linked with gomalloc built with VALGRIND=1)
# under memcheck and checks that each planted bug is reported where it is.
# Usage: tests/valgrind_client.sh BINARY
bin=$1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --leak-check=full --errors-for-leak-kinds=definite "$bin" >/dev/null 2>"$log"
pass=0 fail=0
expect() {
    if grep -qE "$2" "$log"; then
        echo "ok $1"; pass=$((pass + 1))
    else
        echo "FAIL $1: no line matching /$2/"; fail=$((fail + 1))
    fi
}
expect overrun-write "Address 0x[0-9a-f]+ is 0 bytes after a block of size 20 alloc'd"
expect use-after-free "Address 0x[0-9a-f]+ is 32 bytes inside a block of size 64 free'd"
expect large-overrun "Address 0x[0-9a-f]+ is 0 bytes after a block of size 100,000 alloc'd"
expect leak "definitely lost: 100 bytes in 1 blocks"
expect error-count "ERROR SUMMARY: [4-9] errors"
if grep -q "Conditional jump or move depends on uninitialised" "$log"; then
    echo "FAIL no-false-reports: memcheck flagged gomalloc's own code"; fail=$((fail + 1))
else
    echo "ok no-false-reports"; pass=$((pass + 1))
fi
[ "$fail" = 0 ] || sed -n '1,80p' "$log"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
