#!/bin/sh
# tests/layers.sh — checks gomalloc's layer rule against the objects.
#
#   tests/layers.sh alloc/internal.h OBJECT...
#
# The layers, top to bottom, are the list in alloc/internal.h that follows
# the line "Layers, top to bottom", one per line (" *   NAME   what it is"),
# NAME being an object's file name without .o.  Every object given must be in
# the list.  For each object, every gm_ symbol it leaves undefined (nm -u)
# must be defined (nm --defined-only) by an object listed below it: a call,
# or a read of a global, into a layer above it (or beside it, in a file of
# the same layer: there is one file per layer) fails the check.  A symbol
# defined by two objects (malloc.o and override.o, which compiles malloc.c
# in) counts as the lower one's.  Inline helpers compile into their callers,
# so what they reach is checked as the caller's.
#
# Prints one line per upward reference and exits 1 if there is any; the last
# line is "N passed, M failed" over the objects.
set -u
header=$1
shift
[ $# -gt 0 ] || { echo "usage: $0 alloc/internal.h OBJECT..." >&2; exit 2; }

layers=$(awk '
    /Layers, top to bottom/ { on = 1; next }
    on && /^ \*   [a-z_]+ / { print $2; listed = 1; next }
    on && listed { exit }
' "$header")
[ -n "$layers" ] || { echo "layers: no layer list found in $header" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$layers" | awk '{ print $1, NR }' > "$tmp/ranks"

unlisted=0
: > "$tmp/defs"
: > "$tmp/refs"
for obj in "$@"; do
    name=$(basename "$obj" .o)
    if ! grep -q "^$name " "$tmp/ranks"; then
        echo "layers: $obj is in no layer: add $name to the list in $header" >&2
        unlisted=$((unlisted + 1))
        continue
    fi
    nm --defined-only "$obj" | awk -v o="$name" '$3 ~ /^gm_/ && $2 ~ /[A-Z]/ { print $3, o }' >> "$tmp/defs"
    nm -u "$obj" | awk -v o="$name" '$2 ~ /^gm_/ { print o, $2 }' >> "$tmp/refs"
done

awk -v unlisted="$unlisted" -v total="$#" '
    FILENAME == ARGV[1] { rank[$1] = $2; next }
    FILENAME == ARGV[2] {   # symbol, definer: keep the lowest definer
        if (!($1 in def) || rank[$2] > rank[def[$1]]) def[$1] = $2
        next
    }
    $2 in def {             # user, symbol (one defined outside the objects: not ours)
        d = def[$2]
        if (rank[d] <= rank[$1]) {
            printf "layers: %s calls up into %s: %s is listed above it\n", $1, $2, d
            bad[$1] = 1
        }
    }
    END {
        failed = unlisted
        for (o in bad) failed++
        printf "%d passed, %d failed\n", total - failed, failed
        exit failed > 0 ? 1 : 0
    }
' "$tmp/ranks" "$tmp/defs" "$tmp/refs"
