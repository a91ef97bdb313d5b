# tests/stress.mk — stress tests and real programs; included by the top-level Makefile.
#
# Uses from the Makefile: CC, TEST_CFLAGS, LIB_SO, and its checks variant of the core
# (build/checks/libgomalloc-core.a, gm_ API only).
#
#   build/tests/stress_*         the stress tests against the gm_ API, linked with the
#                                core built with the validators (build/checks/, GM_CHECKS=1)
#   build/tests/libc_<name>      the same sources (and test_api) built with
#                                -DGM_TEST_LIBC_NAMES: they call malloc, free, ... and
#                                link no gomalloc; run them under LD_PRELOAD=$(LIB_SO)
#   make test-stress             runs the gm_ binaries, then the libc_ ones under LD_PRELOAD, then
#                                a few again with guarded sampling at a high rate
#   make test-programs           tests/programs.sh: python3, gcc, git, sqlite3, sort, perl
#
# GM_STRESS_SCALE (a float, default 1) multiplies the stress iteration counts;
# STRESS_RUN is a command prefix for every run (e.g. STRESS_RUN="valgrind -q").
# build/tests/test_api (gm_ names) is built and run by the Makefile's unit tests.

STRESS_NAMES     := stress_threads stress_thread_churn stress_fork
STRESS_BINS      := $(addprefix build/tests/,$(STRESS_NAMES))
STRESS_LIBC_BINS := $(addprefix build/tests/libc_,test_api $(STRESS_NAMES))
STRESS_LDLIBS    := -lcmocka -pthread
STRESS_NOBUILTIN := -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc \
                    -fno-builtin-realloc -fno-builtin-memalign -fno-builtin-posix_memalign
GM_STRESS_SCALE  ?= 1
STRESS_RUN       ?=

.PHONY: test-stress test-programs

STRESS_CORE_LIB  := build/checks/libgomalloc-core.a
$(STRESS_BINS): build/tests/%: tests/%.c tests/api_names.h tests/stress_util.h include/gomalloc.h $(STRESS_CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(STRESS_NOBUILTIN) $< -o $@ $(STRESS_CORE_LIB) $(STRESS_LDLIBS)

$(STRESS_LIBC_BINS): build/tests/libc_%: tests/%.c tests/api_names.h tests/stress_util.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(STRESS_NOBUILTIN) -DGM_TEST_LIBC_NAMES $< -o $@ $(STRESS_LDLIBS)

test-stress: $(STRESS_BINS) $(STRESS_LIBC_BINS) $(LIB_SO)
	@set -e; for t in $(STRESS_BINS); do \
	  echo "== $$t"; GM_STRESS_SCALE=$(GM_STRESS_SCALE) $(STRESS_RUN) $$t; done
	@set -e; for t in $(STRESS_LIBC_BINS); do \
	  echo "== LD_PRELOAD=$(LIB_SO) $$t"; \
	  GM_STRESS_SCALE=$(GM_STRESS_SCALE) LD_PRELOAD=$(abspath $(LIB_SO)) $(STRESS_RUN) $$t; done
	@set -e; for t in $(STRESS_BINS) build/tests/libc_stress_threads; do \
	  echo "== GOMALLOC_GUARD_RATE=2 $$t"; pre=; case $$t in *libc_*) pre=$(abspath $(LIB_SO));; esac; \
	  GOMALLOC_GUARD_RATE=2 GM_STRESS_SCALE=0.3 LD_PRELOAD=$$pre $(STRESS_RUN) $$t; done

test-programs: $(LIB_SO)
	tests/programs.sh $(abspath $(LIB_SO))
