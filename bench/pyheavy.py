"""Allocation-heavy Python workload, run as: python3 pyheavy.py SCALE

Builds and discards dicts, lists, tuples and strings the way an
interpreter-heavy program does (parsing records, indexing them, string
formatting, sorting).  The interpreter's own allocator (pymalloc) serves small
objects from arenas, so what the system allocator sees are arena mappings,
strings and containers above 512 bytes, and dict/list resizes.  Prints a
checksum that must be identical under every allocator; exits 1 if an internal
consistency check fails.
"""
import sys


def rng(seed):
    x = seed or 1
    while True:
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        yield x


def build_records(r, n):
    records = []
    for i in range(n):
        v = next(r)
        name = "user%06d-%s" % (i, "x" * (v % 40))
        tags = [("t%d" % ((v >> k) % 97)) for k in range(v % 7)]
        records.append({"id": i, "name": name, "score": v % 1000,
                        "tags": tags, "blob": "%x" % v * (1 + v % 9)})
    return records


def index_records(records):
    by_tag = {}
    for rec in records:
        for t in rec["tags"]:
            by_tag.setdefault(t, []).append(rec["id"])
    return by_tag


def round_trip(r, n):
    records = build_records(r, n)
    by_tag = index_records(records)
    text = "\n".join("%d,%s,%d" % (x["id"], x["name"], x["score"])
                     for x in records)
    parsed = [line.split(",") for line in text.split("\n")]
    if len(parsed) != n or parsed[-1][0] != str(n - 1):
        print("pyheavy: parse mismatch", file=sys.stderr)
        sys.exit(1)
    top = sorted(records, key=lambda x: (x["score"], x["name"]))[:50]
    s = sum(x["score"] for x in top) + sum(len(v) for v in by_tag.values())
    s += sum(len(x["blob"]) for x in records) % 100003
    return s


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    r = rng(12345)
    total = 0
    keep = []
    for rnd in range(max(1, int(24 * scale))):
        total = (total * 31 + round_trip(r, 12000)) % (1 << 61)
        keep.append({k: str(k) * 3 for k in range(rnd * 500)})
        if len(keep) > 6:
            keep.pop(0)
    print("pyheavy checksum %d" % total)


main()
