# tests/fuzz.mk — API fuzzing, out-of-memory tests and the soak run; included by the
# top-level Makefile (-include tests/fuzz.mk).
#
#   make test-fuzz    builds the libFuzzer harness (tests/fuzz_api.c) with clang and runs it
#                     for FUZZ_SECONDS (default 60) from a temporary copy of tests/fuzz/corpus;
#                     fails on the first crash (the input is left in build/fuzz/crash-*)
#   make fuzz         the same for FUZZ_SECONDS (default 600); new inputs go to build/fuzz-corpus
#   make test-oom     tests/test_oom.c (fault injection, RLIMIT_AS) natively, under valgrind
#                     and rebuilt with ASan+UBSan
#   make soak         the stress binaries ($(STRESS_BINS)) in a loop for SOAK_SECONDS (default
#                     600) with GM_STRESS_SCALE=1; stops at the first failure
#
# Uses from the Makefile: BASE_CFLAGS, CORE_SRC, CORE_HDR, STRESS_BINS (tests/stress.mk).
# The harness links a copy of the core compiled by clang into build/fuzz/ with the
# Makefile's flags plus coverage instrumentation (-fsanitize=fuzzer-no-link) and UBSan,
# so the fuzzer is guided by the allocator's own branches.  clang and libclang-rt-14-dev
# are installed with apt-get when missing.

FUZZ_CC        ?= clang
FUZZ_SAN       := -fsanitize=undefined -fno-sanitize-recover=undefined
FUZZ_BASE      := $(if $(BASE_CFLAGS),$(filter-out -Werror -O%,$(BASE_CFLAGS)),\
                    -std=c11 -Wall -Wextra -g -fPIC -pthread -fvisibility=hidden \
                    -ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-free \
                    -fno-builtin-calloc -fno-builtin-realloc -Iinclude -Ialloc)
FUZZ_CORE_SRC  := $(if $(CORE_SRC),$(CORE_SRC),$(wildcard alloc/*.c))
FUZZ_CORE_HDR  := $(if $(CORE_HDR),$(CORE_HDR),$(wildcard alloc/*.h) include/gomalloc.h)
FUZZ_CORE_OBJ  := $(patsubst alloc/%.c,build/fuzz/obj/%.o,$(FUZZ_CORE_SRC))
FUZZ_CORE      := build/fuzz/libgomalloc-core.a
FUZZ_BIN       := build/fuzz/fuzz_api
FUZZ_CORPUS    := tests/fuzz/corpus
FUZZ_FLAGS     := -rss_limit_mb=2048 -max_len=8192 -timeout=120 -print_final_stats=1 \
                  -artifact_prefix=build/fuzz/
FUZZ_APT_PKGS  := clang libclang-rt-14-dev
SOAK_SECONDS   ?= 600

.PHONY: fuzz-deps test-fuzz fuzz test-oom soak

fuzz-deps:
	@missing=""; for p in $(FUZZ_APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root or install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build/fuzz/obj/%.o: alloc/%.c $(FUZZ_CORE_HDR) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_BASE) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

$(FUZZ_CORE): $(FUZZ_CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

# ASan covers the harness's own memory; gomalloc's blocks come from mmap, which ASan
# treats as ordinary addressable memory, so the two do not conflict.
$(FUZZ_BIN): tests/fuzz_api.c $(FUZZ_CORE) include/gomalloc.h | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -Wall -Wextra -g -O1 -fsanitize=fuzzer,address $(FUZZ_SAN) \
	  -Iinclude -Ialloc $< -o $@ $(FUZZ_CORE) -pthread

test-fuzz: FUZZ_SECONDS ?= 60
test-fuzz: $(FUZZ_BIN)
	@tmp=$$(mktemp -d); cp $(FUZZ_CORPUS)/* $$tmp/; \
	echo "== $(FUZZ_BIN) for $(FUZZ_SECONDS) s"; \
	ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BIN) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) $$tmp \
	  >build/fuzz/test-fuzz.log 2>&1; rc=$$?; rm -rf $$tmp; \
	tail -n 15 build/fuzz/test-fuzz.log; \
	if [ $$rc != 0 ]; then echo "test-fuzz: FAILED (exit $$rc), log: build/fuzz/test-fuzz.log" >&2; \
	  grep -m5 -E "fuzz_api:|ERROR|SUMMARY|runtime error|Test unit written" build/fuzz/test-fuzz.log >&2; fi; \
	exit $$rc

fuzz: FUZZ_SECONDS ?= 600
fuzz: $(FUZZ_BIN)
	@mkdir -p build/fuzz-corpus
	ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BIN) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	  build/fuzz-corpus $(FUZZ_CORPUS)

# ---- out-of-memory tests --------------------------------------------------------
# build/tests/test_oom comes from the Makefile's build/tests/test_% rule, the ASan
# build from its SAN_VARIANT rule (build/asan/tests/%).
test-oom: build/tests/test_oom build/asan/tests/test_oom
	@echo "== build/tests/test_oom"; build/tests/test_oom
	@echo "== valgrind build/tests/test_oom"; \
	  valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=no build/tests/test_oom
	@echo "== asan build/asan/tests/test_oom"; \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 build/asan/tests/test_oom

# ---- soak ----------------------------------------------------------------------
soak: $(STRESS_BINS)
	@mkdir -p build/soak; end=$$(( $$(date +%s) + $(SOAK_SECONDS) )); rounds=0; \
	echo "soak: $(STRESS_BINS) for $(SOAK_SECONDS) s"; \
	while [ $$(date +%s) -lt $$end ]; do \
	  for t in $(STRESS_BINS); do \
	    if ! GM_STRESS_SCALE=1 $$t >build/soak/last.log 2>&1; then \
	      cat build/soak/last.log; \
	      echo "soak: FAILED: $$t in round $$((rounds + 1)) after $$rounds rounds passed" >&2; \
	      exit 1; \
	    fi; \
	  done; \
	  rounds=$$((rounds + 1)); \
	done; \
	echo "soak: $$rounds rounds passed in $(SOAK_SECONDS) s"
