# bench/bench.mk — benchmark targets, included by the top-level Makefile.
#
#   make bench                 full run (~20 min on 2 cores): every workload
#                              under glibc, gomalloc, jemalloc, mimalloc and
#                              tcmalloc, 5 interleaved runs; writes
#                              bench/results/latest.{md,png} latest-*.csv
#   make bench QUICK=1         reduced set, 3 runs (~3 min); writes quick.*
#   make bench-insn            instructions per malloc+free pair (callgrind),
#                              compared with bench/insn-baseline.csv
#   make bench-insn-baseline   rewrite bench/insn-baseline.csv (also:
#                              make bench-insn UPDATE=1)
#   make bench-fork            fork() time beside a 230 MiB heap, idle and
#                              with 1 and 4 busy threads (bench/forkcmp.py,
#                              ~3 min); writes bench/results/fork.{md,csv}
#   make bench-clean           remove built workloads and generated inputs
#
# Variables: ALLOCS=glibc,gomalloc,...  (subset of allocators)
#            ONLY=larson,sqlite          (workload name prefixes)
#            RUNS=N                      (runs per workload and allocator)
#            SCALE=X                     (multiplies every workload's work)
#            OUTPUT=name                 (write bench/results/name.*; a run
#                                         with ONLY or ALLOCS writes partial.*
#                                         unless told otherwise)
# Missing tools and allocator packages are installed with apt-get when the
# recipe runs as root; an allocator still missing is skipped with a notice.

LIB_SO ?= lib/libgomalloc.so
BENCH_PY ?= python3
BENCH_PKGS := libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 gnuplot-nox \
              time valgrind sqlite3 python3 gcc

BENCH_ARGS := $(if $(QUICK),--quick) $(if $(ALLOCS),--allocs $(ALLOCS)) \
              $(if $(ONLY),--only $(ONLY)) $(if $(RUNS),--runs $(RUNS)) \
              $(if $(SCALE),--scale $(SCALE)) $(if $(OUTPUT),--output $(OUTPUT))

.PHONY: bench bench-insn bench-insn-baseline bench-clean bench-deps bench-fork

# Installs only what is missing; apt-get update runs only if an install is
# needed.  Waits for a concurrent apt/dpkg instead of failing on its lock.
bench-deps:
	@missing=""; for p in $(BENCH_PKGS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "bench: installing$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then \
	        apt-get -o DPkg::Lock::Timeout=600 update -q && \
	        DEBIAN_FRONTEND=noninteractive apt-get \
	            -o DPkg::Lock::Timeout=600 install -y -q $$missing \
	        || echo "bench: apt-get failed; missing allocators are skipped"; \
	    else \
	        echo "bench: not root, cannot install:$$missing"; \
	    fi; \
	fi

bench: bench-deps $(LIB_SO)
	$(BENCH_PY) bench/run.py bench $(BENCH_ARGS)

bench-fork: bench-deps $(LIB_SO)
	$(BENCH_PY) bench/forkcmp.py $(if $(QUICK),--quick) \
	    $(if $(ALLOCS),--allocs $(ALLOCS)) $(if $(RUNS),--runs $(RUNS))

bench-insn: bench-deps $(LIB_SO)
	$(BENCH_PY) bench/run.py insn $(if $(ALLOCS),--allocs $(ALLOCS)) \
	    $(if $(UPDATE),--update-baseline)

bench-insn-baseline: bench-deps $(LIB_SO)
	$(BENCH_PY) bench/run.py insn --update-baseline

bench-clean:
	rm -rf bench/work
