# The README's statistics and heap map: a python3 heap with small strings,
# buffers of many sizes and a few big arrays, reported while it is live.
#   LD_PRELOAD=lib/libgomalloc.so /usr/bin/python3 docs/heapmap-demo.py
import array, ctypes, random
random.seed(19)
names = {f"user-{i}": "x" * random.randint(520, 4000) for i in range(40000)}
buffers = [bytearray(random.choice((20, 60, 200, 900)) << 10) for _ in range(300)]
tables = [array.array("q", range(n)) for n in (300_000, 1_000_000, 5_000_000)]
del buffers[::3]
libc = ctypes.CDLL(None)
libc.malloc_stats()
libc.gm_heapmap_write(b"docs/heapmap-python.svg")
print([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0], end="")
