# gomalloc — build, test and benchmark.
#
#   make              lib/libgomalloc.so, lib/libgomalloc.a (and the core archive)
#   make test         installs missing Debian packages, then every test below
#   make test-unit    cmocka unit tests, one per layer, and the API tests
#   make test-link    a program linked with -lgomalloc, shared and static, gets gomalloc
#   make test-stress  threaded, thread-churn and fork stress tests (gm_ API and LD_PRELOAD)
#   make test-programs real programs under LD_PRELOAD compared with glibc runs
#   make test-valgrind unit and stress tests under memcheck
#   make test-valgrind-client  a buggy program linked with a VALGRIND=1 archive: memcheck reports it
#   make VALGRIND=1   libraries with memcheck client requests (objects in build/obj-valgrind)
#   make test-asan    unit and stress tests with ASan+UBSan (gm_ API)
#   make test-tsan    threaded stress tests with TSan (gm_ API)
#   make test-oom     out-of-memory tests (fault injection, RLIMIT_AS), also under valgrind and ASan
#   make test-fuzz    a one-minute libFuzzer run over the gm_ API (make fuzz: ten minutes)
#   make soak         the stress tests in a loop for SOAK_SECONDS (600)
#   make bench        allocator comparison (bench/bench.mk); QUICK=1 for a short run
#   make CC=clang     builds with clang

CC      ?= cc
OPT     ?= -O2
WARN    := -Wall -Wextra -Werror
NOBUILTIN := -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc \
             -fno-builtin-realloc -fno-builtin-memalign -fno-builtin-posix_memalign
BASE_CFLAGS := -std=c11 $(WARN) -g -fPIC -pthread -fvisibility=hidden \
               -fno-semantic-interposition -ftls-model=initial-exec $(NOBUILTIN) \
               -Iinclude -Ialloc
CFLAGS  ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
# make VALGRIND=1: the libraries carry memcheck client requests.
ifeq ($(VALGRIND),1)
ALL_CFLAGS += -DGM_VALGRIND=1
endif

CORE_SRC := $(wildcard alloc/*.c)
CORE_HDR := $(wildcard alloc/*.h) include/gomalloc.h

LIB_SO     := lib/libgomalloc.so
LIB_A      := lib/libgomalloc.a
CORE_LIB   := build/libgomalloc-core.a
OBJ_DIR    := build/obj$(if $(filter 1,$(VALGRIND)),-valgrind)
CORE_OBJ   := $(patsubst alloc/%.c,$(OBJ_DIR)/%.o,$(CORE_SRC))
OVERRIDE_OBJ := $(OBJ_DIR)/override.o

# Tests and their flags (used by tests/stress.mk too).
TEST_CFLAGS := -std=gnu11 $(WARN) -g -O1 -pthread -Iinclude -Ialloc
TEST_LIBS   := -lcmocka -pthread
APT_PKGS    := libcmocka-dev valgrind gcc make git sqlite3 perl python3 time

.PHONY: all clean test test-unit test-stress test-programs test-valgrind test-asan \
        test-tsan test-valgrind-client test-link deps
.DEFAULT_GOAL := all

all: $(LIB_SO) $(LIB_A) $(CORE_LIB)

$(OBJ_DIR)/%.o: alloc/%.c $(CORE_HDR) | $(OBJ_DIR)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OVERRIDE_OBJ): LD_PRELOAD/override.c alloc/malloc.c $(CORE_HDR) | $(OBJ_DIR)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

# The libraries take override.o, which compiles malloc.c in, instead of malloc.o.
LIB_OBJ := $(filter-out $(OBJ_DIR)/malloc.o,$(CORE_OBJ)) $(OVERRIDE_OBJ)

# Switching between plain and VALGRIND=1 builds relinks the libraries.
VARIANT_STAMP := build/variant-$(if $(filter 1,$(VALGRIND)),valgrind,plain)
$(VARIANT_STAMP):
	@mkdir -p build && rm -f build/variant-* && touch $@

$(LIB_A): $(LIB_OBJ) $(VARIANT_STAMP) | lib
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

$(LIB_SO): $(LIB_OBJ) $(VARIANT_STAMP) | lib
	$(CC) -shared -pthread -Wl,-z,now -Wl,-soname,libgomalloc.so -o $@ $(LIB_OBJ)

$(OBJ_DIR) build/tests lib:
	mkdir -p $@

# ---- dependencies -----------------------------------------------------------
# Installs what is missing, as root, so a fresh Debian machine needs nothing else.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root or install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# ---- size classes -----------------------------------------------------------
build/mksizeclasses: tools/mksizeclasses.c | $(OBJ_DIR)
	$(CC) -std=c11 -O2 $(WARN) -o $@ $<

# ---- unit tests (cmocka, one file per layer) --------------------------------
UNIT_NAMES := test_sizeclass test_lock test_fixalloc test_pagemap test_mheap test_mcentral \
              test_mcache test_pagecache test_scavenger test_detect test_api
UNIT_BINS  := $(addprefix build/tests/,$(UNIT_NAMES))

build/tests/test_sizeclass: tests/test_sizeclass.c alloc/sizeclasses.h build/mksizeclasses | build/tests
	$(CC) $(TEST_CFLAGS) $< -o $@ $(TEST_LIBS)

build/tests/test_%: tests/test_%.c $(CORE_LIB) | build/tests
	$(CC) $(TEST_CFLAGS) $< -o $@ $(CORE_LIB) $(TEST_LIBS)

test-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

-include tests/stress.mk
-include tests/glibc.mk
-include tests/fuzz.mk
-include bench/bench.mk

# ---- sanitizer and valgrind variants ----------------------------------------
# The core and the tests are rebuilt with the sanitizer under build/<variant>/;
# they use the gm_ API only (a sanitizer brings its own malloc).
SAN_FLAGS_asan := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_FLAGS_tsan := -fsanitize=thread
SAN_FLAGS_vgclient := -DGM_VALGRIND=1
# test_detect's children misuse memory on purpose: UBSan would stop them first.
# stress_fork is left out: gcc 12's ASan runtime does not lock its own allocator
# around fork(), so a child can deadlock inside ASan's malloc (seen with gdb:
# SizeClassAllocator64::GetFromAllocator waiting on a mutex a parent thread held).
ASAN_TESTS := $(filter-out test_sizeclass test_detect,$(UNIT_NAMES)) stress_threads stress_thread_churn
# TSan cannot follow a child that starts threads after a multithreaded fork.
TSAN_TESTS := test_lock stress_threads stress_thread_churn

define SAN_VARIANT
build/$(1)/obj/%.o: alloc/%.c $$(CORE_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) -O1 $$(SAN_FLAGS_$(1)) -c $$< -o $$@
build/$(1)/libgomalloc-core.a: $$(patsubst alloc/%.c,build/$(1)/obj/%.o,$$(CORE_SRC))
	rm -f $$@ && ar rcs $$@ $$^
build/$(1)/tests/%: tests/%.c build/$(1)/libgomalloc-core.a
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) $$(SAN_FLAGS_$(1)) $$< -o $$@ build/$(1)/libgomalloc-core.a $$(TEST_LIBS)
build/$(1)/obj/override.o: LD_PRELOAD/override.c alloc/malloc.c $$(CORE_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) -O1 $$(SAN_FLAGS_$(1)) -c $$< -o $$@
build/$(1)/libgomalloc.a: $$(filter-out build/$(1)/obj/malloc.o,$$(patsubst alloc/%.c,build/$(1)/obj/%.o,$$(CORE_SRC))) build/$(1)/obj/override.o
	rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call SAN_VARIANT,asan))
$(eval $(call SAN_VARIANT,tsan))
$(eval $(call SAN_VARIANT,vgclient))


# A buggy program linked statically with a VALGRIND=1 archive: memcheck must
# report each bug (tests/valgrind_client.sh).
build/vgclient/valgrind_client: tests/valgrind_client.c build/vgclient/libgomalloc.a
	$(CC) -g -O0 -fno-builtin $< -o $@ build/vgclient/libgomalloc.a -pthread
test-valgrind-client: build/vgclient/valgrind_client
	tests/valgrind_client.sh $<

test-asan: $(addprefix build/asan/tests/,$(ASAN_TESTS))
	@set -e; for t in $^; do echo "== asan $$t"; \
	  GM_STRESS_SCALE=0.2 ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

test-tsan: $(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@set -e; for t in $^; do echo "== tsan $$t"; \
	  GM_STRESS_SCALE=0.1 TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" $$t; done

test-valgrind: $(UNIT_BINS) $(STRESS_BINS)
	@set -e; for t in $^; do echo "== valgrind $$t"; \
	  GM_STRESS_SCALE=0.05 valgrind -q --error-exitcode=99 --leak-check=no $$t; done

# A program linked with -lgomalloc, shared and static, gets gomalloc.
build/tests/link_shared: tests/link_smoke.c $(LIB_SO) | build/tests
	$(CC) $(TEST_CFLAGS) -fno-builtin $< -o $@ -Llib -lgomalloc -Wl,-rpath,$(CURDIR)/lib
build/tests/link_static: tests/link_smoke.c $(LIB_A) | build/tests
	$(CC) $(TEST_CFLAGS) -fno-builtin $< -o $@ $(LIB_A) -pthread
test-link: build/tests/link_shared build/tests/link_static
	@set -e; for t in $^; do echo "== $$t"; $$t; done

test: deps all
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-link
	$(MAKE) --no-print-directory test-glibc
	$(MAKE) --no-print-directory test-stress
	$(MAKE) --no-print-directory test-programs
	$(MAKE) --no-print-directory test-valgrind
	$(MAKE) --no-print-directory test-valgrind-client
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-tsan
	$(MAKE) --no-print-directory test-oom
	$(MAKE) --no-print-directory test-fuzz

clean:
	rm -rf build lib
