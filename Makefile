# gomalloc — build, install, test and benchmark.  `make help` prints the
# lines below that start with "make" (one per target; keep them one line).
#
#   make                     lib/libgomalloc.so (.so.MAJOR, .so.MAJOR.MINOR.PATCH) and lib/libgomalloc.a
#   make install             install into PREFIX (/usr/local): library, archive, header, pkg-config, CMake, gomalloc-run, gomalloc-stat, man pages
#   make uninstall           remove what make install put there (same PREFIX, LIBDIR, DESTDIR)
#   make help                this list
#   make test                install missing Debian packages (as root), then every test below
#   make test-unit           cmocka unit tests, one per layer, and the API tests
#   make test-layers         no object calls a layer above it (the list in alloc/internal.h, from nm)
#   make test-link           a program linked with -lgomalloc, shared and static, gets gomalloc
#   make test-stats          malloc_stats, malloc_info, mallinfo2, GOMALLOC_STATS and GOMALLOC_HEAPMAP
#   make test-profile        the sampled heap profile, read back by go tool pprof
#   make test-install        install into a temporary DESTDIR and adopt that copy: pkg-config, CMake, C++, man
#   make test-glibc          glibc's malloc test behaviours, linked and preloaded
#   make test-glibc-ref      the same tests on glibc's own malloc (all must pass)
#   make test-stress         threaded, thread-churn and fork stress tests (gm_ API and LD_PRELOAD)
#   make test-programs       real programs under LD_PRELOAD compared with glibc runs
#   make test-valgrind       unit and stress tests under memcheck
#   make test-valgrind-client  a buggy program linked with a VALGRIND=1 archive: memcheck reports it
#   make test-asan           unit and stress tests with ASan+UBSan (gm_ API)
#   make test-tsan           threaded stress tests with TSan (gm_ API)
#   make test-oom            out-of-memory tests (fault injection, RLIMIT_AS), also under valgrind and ASan
#   make test-fuzz           a one-minute libFuzzer run over the gm_ API
#   make fuzz                the same for ten minutes
#   make soak                the stress tests in a loop for SOAK_SECONDS (600)
#   make bench               allocator comparison, ~20 min (bench/bench.mk); QUICK=1: ~3 min
#   make bench-insn          instructions per malloc+free pair under callgrind, against bench/insn-baseline.csv
#   make bench-insn-baseline the same, rewriting bench/insn-baseline.csv
#   make bench-fork          fork() time beside a 230 MiB heap, idle and with busy threads, ~1 min
#   make bench-clean         remove the built workloads and generated inputs
#   make deps                install the Debian packages the tests need (as root)
#   make clean               remove build/ and lib/
#
# Variables: CC (CC=clang builds with clang), CXX (one small C++ file: g++),
# OPT (-O2), VALGRIND=1 (libraries with memcheck client requests, objects in
# build/obj-valgrind; a plain `make` afterwards rebuilds the normal ones),
# CHECKS=1 (the invariant validators of config.h's GM_CHECKS, objects in
# build/obj-checks; the ASan and gm_ stress tests build their own checked core),
# PREFIX, DESTDIR, BINDIR, LIBDIR, INCLUDEDIR, MANDIR for install/uninstall.
#
# The version is GOMALLOC_VERSION_MAJOR/MINOR/PATCH in include/gomalloc.h,
# nowhere else: the soname, gomalloc.pc, the CMake package, gomalloc-run and
# the manual pages take it from there.

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
# make CHECKS=1: the validators run each time a slow path drops a lock.
ifeq ($(CHECKS),1)
ALL_CFLAGS += -DGM_CHECKS=1
endif

CXX     ?= g++
# The C++ operators' one catch (LD_PRELOAD/cxx_catch.cc): no libstdc++ is
# linked, its runtime symbols are weak (checked below).
CXX_FLAGS := -std=c++11 $(WARN) -g -fPIC -fvisibility=hidden $(OPT)

CORE_SRC := $(wildcard alloc/*.c)
CORE_HDR := $(wildcard alloc/*.h) include/gomalloc.h

VERSION_PART = $(shell awk '$$2 == "GOMALLOC_VERSION_$(1)" { print $$3 }' include/gomalloc.h)
VERSION_MAJOR := $(call VERSION_PART,MAJOR)
VERSION_MINOR := $(call VERSION_PART,MINOR)
VERSION_PATCH := $(call VERSION_PART,PATCH)
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME        := libgomalloc.so.$(VERSION_MAJOR)

# lib/libgomalloc.so -> libgomalloc.so.MAJOR -> libgomalloc.so.MAJOR.MINOR.PATCH
LIB_SO     := lib/libgomalloc.so
LIB_SONAME := lib/$(SONAME)
LIB_REAL   := lib/libgomalloc.so.$(VERSION)
LIB_A      := lib/libgomalloc.a
CORE_LIB   := build/libgomalloc-core.a
OBJ_DIR    := build/obj$(if $(filter 1,$(VALGRIND)),-valgrind)$(if $(filter 1,$(CHECKS)),-checks)
CORE_OBJ   := $(patsubst alloc/%.c,$(OBJ_DIR)/%.o,$(CORE_SRC))
OVERRIDE_OBJ := $(OBJ_DIR)/override.o
CXX_OBJ    := $(OBJ_DIR)/cxx_catch.o

# Tests and their flags (used by tests/stress.mk too).
TEST_CFLAGS := -std=gnu11 $(WARN) -g -O1 -pthread -Iinclude -Ialloc
TEST_LIBS   := -lcmocka -pthread
APT_PKGS    := libcmocka-dev valgrind gcc g++ make git sqlite3 perl python3 time \
               binutils pkgconf cmake groff-base man-db libxml2-utils librsvg2-bin golang-go

.PHONY: all clean test test-unit test-layers test-stress test-stats test-profile test-programs test-valgrind test-asan \
        test-tsan test-valgrind-client test-link deps help install uninstall
.DEFAULT_GOAL := all

all: $(LIB_SO) $(LIB_A) $(CORE_LIB)

help:
	@sed -n 's/^#   \(make .*\)/\1/p' $(firstword $(MAKEFILE_LIST))

$(OBJ_DIR)/%.o: alloc/%.c $(CORE_HDR) | $(OBJ_DIR)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# -fexceptions: a C++ exception passes through the operators (cxx_new.c).
$(OVERRIDE_OBJ): LD_PRELOAD/override.c LD_PRELOAD/cxx_new.c alloc/malloc.c $(CORE_HDR) | $(OBJ_DIR)
	$(CC) $(ALL_CFLAGS) -fexceptions -c $< -o $@

# Every symbol it leaves undefined must be weak, or a C program linking
# gomalloc would need libstdc++.
WEAK_ONLY_CHECK = if nm -u $@ | grep -q ' U '; then \
	  echo "$@: C++ runtime symbols must be weak:" >&2; nm -u $@ | grep ' U ' >&2; rm -f $@; exit 1; fi
$(CXX_OBJ): LD_PRELOAD/cxx_catch.cc | $(OBJ_DIR)
	$(CXX) $(CXX_FLAGS) $(CXXFLAGS) -c $< -o $@
	@$(WEAK_ONLY_CHECK)

$(CORE_LIB): $(CORE_OBJ) $(VARIANT_STAMP)
	rm -f $@ && ar rcs $@ $(CORE_OBJ)

# The libraries take override.o, which compiles malloc.c in, instead of malloc.o.
LIB_OBJ := $(filter-out $(OBJ_DIR)/malloc.o,$(CORE_OBJ)) $(OVERRIDE_OBJ) $(CXX_OBJ)

# Switching between plain, VALGRIND=1 and CHECKS=1 builds relinks the libraries.
VARIANT_STAMP := build/variant-$(if $(filter 1,$(VALGRIND)),valgrind,plain)$(if $(filter 1,$(CHECKS)),-checks)
$(VARIANT_STAMP):
	@mkdir -p build && rm -f build/variant-* && touch $@

$(LIB_A): $(LIB_OBJ) $(VARIANT_STAMP) | lib
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

# -z nodelete: dlclose leaves it loaded (its scavenger thread, fork handlers
# and thread-exit destructor point into it).
$(LIB_REAL): $(LIB_OBJ) $(VARIANT_STAMP) | lib
	$(CC) -shared -pthread -Wl,-z,now -Wl,-z,nodelete -Wl,-soname,$(SONAME) -o $@ $(LIB_OBJ)
$(LIB_SONAME): $(LIB_REAL)
	ln -sfn $(notdir $<) $@
$(LIB_SO): $(LIB_SONAME)
	ln -sfn $(notdir $<) $@

$(OBJ_DIR) build/tests lib:
	mkdir -p $@

# ---- install ------------------------------------------------------------------
# make install [PREFIX=/usr/local] [LIBDIR=$(PREFIX)/lib] [DESTDIR=staging root]
# Paths written into the installed files are the final ones (without
# DESTDIR); gomalloc-run and the CMake package also find their files
# relative to their own place, so a staged or moved tree works too.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR   ?= $(LIBDIR)/cmake/gomalloc
INSTALL    ?= install
LDCONFIG   ?= ldconfig
# Manual pages gomalloc(3) also answers to (each a one-line .so page; not
# free_sized, whose page belongs to the C library's manual).
MAN3_LINKS := gm_malloc gm_free gm_calloc gm_realloc gm_reallocarray gm_aligned_alloc \
              gm_posix_memalign gm_memalign gm_valloc gm_pvalloc gm_usable_size gm_free_sized \
              gm_free_aligned_sized gm_good_size gm_release gm_get_stats gm_print_stats \
              gm_version gm_get_memstats gm_print_stats_json gm_heapmap_write gm_profile_write
INSTALLED_FILES := $(addprefix $(LIBDIR)/,libgomalloc.so.$(VERSION) $(SONAME) libgomalloc.so \
                     libgomalloc.a) \
                   $(INCLUDEDIR)/gomalloc.h $(PKGCONFIGDIR)/gomalloc.pc \
                   $(CMAKEDIR)/gomalloc-config.cmake $(CMAKEDIR)/gomalloc-config-version.cmake \
                   $(BINDIR)/gomalloc-run $(BINDIR)/gomalloc-stat $(MANDIR)/man1/gomalloc-run.1 $(MANDIR)/man3/gomalloc.3 \
                   $(addprefix $(MANDIR)/man3/,$(addsuffix .3,$(MAN3_LINKS)))
# The loader's cache, when installing for real as root.
RUN_LDCONFIG = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; \
	then $(LDCONFIG); fi
SUBST_VERSION = -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(VERSION_MAJOR)|g'

install: $(LIB_SO) $(LIB_A)
	$(INSTALL) -d $(addprefix $(DESTDIR),$(LIBDIR) $(INCLUDEDIR) $(BINDIR) $(PKGCONFIGDIR) \
	  $(CMAKEDIR) $(MANDIR)/man1 $(MANDIR)/man3)
	$(INSTALL) -m 755 $(LIB_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sfn libgomalloc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libgomalloc.so
	$(INSTALL) -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 644 include/gomalloc.h $(DESTDIR)$(INCLUDEDIR)/
	sed $(SUBST_VERSION) -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' pkgconfig/gomalloc.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/gomalloc.pc
	sed $(SUBST_VERSION) \
	  -e "s|@INCLUDEDIR_FROM_LIBDIR@|$$(realpath -m --relative-to=$(LIBDIR) $(INCLUDEDIR))|" \
	  -e "s|@BINDIR_FROM_LIBDIR@|$$(realpath -m --relative-to=$(LIBDIR) $(BINDIR))|" \
	  cmake/gomalloc-config.cmake.in > $(DESTDIR)$(CMAKEDIR)/gomalloc-config.cmake
	sed $(SUBST_VERSION) cmake/gomalloc-config-version.cmake.in \
	  > $(DESTDIR)$(CMAKEDIR)/gomalloc-config-version.cmake
	sed -e "s|'@GOMALLOC_VERSION@'|'$(VERSION)'|" -e "s|'@GOMALLOC_SONAME@'|'$(SONAME)'|" \
	  -e "s|'@GOMALLOC_LIBDIR@'|'$(LIBDIR)'|" \
	  -e "s|'@GOMALLOC_LIBDIR_FROM_BINDIR@'|'$$(realpath -m --relative-to=$(BINDIR) $(LIBDIR))'|" \
	  LD_PRELOAD/gomalloc-run > $(DESTDIR)$(BINDIR)/gomalloc-run
	chmod 755 $(DESTDIR)$(BINDIR)/gomalloc-run
	$(INSTALL) -m 755 LD_PRELOAD/gomalloc-stat $(DESTDIR)$(BINDIR)/
	sed '/^\.TH /s|"gomalloc"|"gomalloc $(VERSION)"|' man/gomalloc.3 > $(DESTDIR)$(MANDIR)/man3/gomalloc.3
	sed '/^\.TH /s|"gomalloc"|"gomalloc $(VERSION)"|' man/gomalloc-run.1 \
	  > $(DESTDIR)$(MANDIR)/man1/gomalloc-run.1
	for n in $(MAN3_LINKS); do echo '.so man3/gomalloc.3' > $(DESTDIR)$(MANDIR)/man3/$$n.3; done
	@$(RUN_LDCONFIG)

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true
	@$(RUN_LDCONFIG)

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
UNIT_NAMES := test_sizeclass test_lock test_pagebits test_fixalloc test_pagemap test_mheap test_mcentral \
              test_mcache test_pagecache test_scavenger test_detect test_api test_options test_guard \
              test_report_io test_stats test_heapmap_svg test_profile_pb test_unwind
UNIT_BINS  := $(addprefix build/tests/,$(UNIT_NAMES))

build/tests/test_sizeclass: tests/test_sizeclass.c alloc/sizeclasses.h build/mksizeclasses | build/tests
	$(CC) $(TEST_CFLAGS) $< -o $@ $(TEST_LIBS)

build/tests/test_%: tests/test_%.c $(CORE_LIB) | build/tests
	$(CC) $(TEST_CFLAGS) $< -o $@ $(CORE_LIB) $(TEST_LIBS)

# test_guard checks the stacks guarded sampling records: it needs libgcc's unwinder.
build/tests/test_guard: TEST_LIBS += -Wl,--push-state,--no-as-needed -lgcc_s -Wl,--pop-state

# Guarded sampling picks random blocks: the unit tests, which count and place
# blocks exactly, run with it off (test_guard sets its own rate; the stress
# tests and the real programs run with the default and with a high rate).
test-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; GOMALLOC_GUARD_RATE=0 $$t; done

# Every object of the libraries and the core archive against the layer list.
test-layers: $(CORE_OBJ) $(OVERRIDE_OBJ) $(CXX_OBJ)
	tests/layers.sh alloc/internal.h $^

-include tests/stress.mk
-include tests/install.mk
-include tests/glibc.mk
-include tests/fuzz.mk
-include bench/bench.mk

# ---- sanitizer and valgrind variants ----------------------------------------
# The core and the tests are rebuilt with the sanitizer under build/<variant>/;
# they use the gm_ API only (a sanitizer brings its own malloc).
SAN_FLAGS_asan := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                  -DGM_CHECKS=1
# The gm_ stress tests run on a core built with the validators (GM_CHECKS).
SAN_FLAGS_checks := -DGM_CHECKS=1
SAN_FLAGS_tsan := -fsanitize=thread
SAN_FLAGS_vgclient := -DGM_VALGRIND=1
# test_detect's and test_guard's children misuse memory on purpose: UBSan or
# ASan's own SIGSEGV handler would stop them first.
# stress_fork is left out: gcc 12's ASan runtime does not lock its own allocator
# around fork(), so a child can deadlock inside ASan's malloc (seen with gdb:
# SizeClassAllocator64::GetFromAllocator waiting on a mutex a parent thread held).
# test_heapmap_svg, test_profile_pb and test_unwind count malloc calls by defining malloc itself
# (tests/count_malloc.h),
# which ASan's own malloc forbids.
ASAN_TESTS := $(filter-out test_sizeclass test_detect test_guard test_heapmap_svg test_profile_pb test_unwind,$(UNIT_NAMES)) \
              stress_threads stress_thread_churn
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
build/$(1)/obj/override.o: LD_PRELOAD/override.c LD_PRELOAD/cxx_new.c alloc/malloc.c $$(CORE_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(BASE_CFLAGS) -O1 $$(SAN_FLAGS_$(1)) -fexceptions -c $$< -o $$@
build/$(1)/obj/cxx_catch.o: LD_PRELOAD/cxx_catch.cc
	@mkdir -p $$(@D)
	$$(CXX) $$(CXX_FLAGS) $$(SAN_FLAGS_$(1)) -c $$< -o $$@
build/$(1)/libgomalloc.a: $$(filter-out build/$(1)/obj/malloc.o,$$(patsubst alloc/%.c,build/$(1)/obj/%.o,$$(CORE_SRC))) build/$(1)/obj/override.o build/$(1)/obj/cxx_catch.o
	rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call SAN_VARIANT,asan))
$(eval $(call SAN_VARIANT,tsan))
$(eval $(call SAN_VARIANT,vgclient))
$(eval $(call SAN_VARIANT,checks))


# A buggy program linked statically with a VALGRIND=1 archive: memcheck must
# report each bug (tests/valgrind_client.sh).
build/vgclient/valgrind_client: tests/valgrind_client.c build/vgclient/libgomalloc.a
	$(CC) -g -O0 -fno-builtin $< -o $@ build/vgclient/libgomalloc.a -pthread
test-valgrind-client: build/vgclient/valgrind_client
	tests/valgrind_client.sh $<

test-asan: $(addprefix build/asan/tests/,$(ASAN_TESTS))
	@set -e; for t in $^; do echo "== asan $$t"; \
	  GM_STRESS_SCALE=0.2 GOMALLOC_GUARD_RATE=0 ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

test-tsan: $(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@set -e; for t in $^; do echo "== tsan $$t"; \
	  GM_STRESS_SCALE=0.1 TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" $$t; done

test-valgrind: $(UNIT_BINS) $(STRESS_BINS)
	@set -e; for t in $^; do echo "== valgrind $$t"; \
	  GM_STRESS_SCALE=0.05 GOMALLOC_GUARD_RATE=0 valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=no $$t; done

# A program linked with -lgomalloc, shared and static, gets gomalloc.
build/tests/link_shared: tests/link_smoke.c $(LIB_SO) | build/tests
	$(CC) $(TEST_CFLAGS) -fno-builtin $< -o $@ -Llib -lgomalloc -Wl,-rpath,$(CURDIR)/lib
build/tests/link_static: tests/link_smoke.c $(LIB_A) | build/tests
	$(CC) $(TEST_CFLAGS) -fno-builtin $< -o $@ $(LIB_A) -pthread
test-link: build/tests/link_shared build/tests/link_static
	@set -e; for t in $^; do echo "== $$t"; $$t; done

# The reports behind the C library's names, and at exit under python3.
build/tests/stats_override: tests/stats_override.c $(LIB_SO) | build/tests
	$(CC) $(TEST_CFLAGS) -fno-builtin $< -o $@ -Llib -lgomalloc -Wl,-rpath,$(CURDIR)/lib
test-stats: build/tests/stats_override $(LIB_SO)
	tests/stats.sh build/tests $(CURDIR)/$(LIB_SO)

# The sampled heap profile, read back by go tool pprof (golang-go).
build/tests/profile_sites: tests/profile_sites.c $(LIB_SO) | build/tests
	$(CC) $(TEST_CFLAGS) -fno-builtin -fno-omit-frame-pointer $< -o $@ -Llib -lgomalloc -Wl,-rpath,$(CURDIR)/lib
test-profile: build/tests/profile_sites $(LIB_SO)
	tests/profile.sh build/tests/profile_sites $(CURDIR)/$(LIB_SO)

test: deps all
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-layers
	$(MAKE) --no-print-directory test-link
	$(MAKE) --no-print-directory test-stats
	$(MAKE) --no-print-directory test-profile
	$(MAKE) --no-print-directory test-install
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
