# tests/glibc.mk — glibc's malloc test behaviours, in our own tests
# (tests/glibc/README.md); included by the top-level Makefile.
#
# Uses from the Makefile: CC, LIB_SO.
#
#   build/glibc/linked/NAME   tests/glibc/NAME.c linked with -lgomalloc (shared)
#   build/glibc/plain/NAME    the same source without gomalloc, for LD_PRELOAD
#                             and for the glibc reference run
#   make test-glibc           both gomalloc modes (what `make test` runs)
#   make test-glibc-ref       the plain builds on glibc's malloc: all must pass
#
# GT_FORK_RUNS (default 20) sets how often each fork case runs in a row.

GLIBC_TEST_NAMES  := $(notdir $(basename $(wildcard tests/glibc/*.c)))
GLIBC_TEST_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -O1 -g -pthread -fno-builtin
GLIBC_LINKED_BINS := $(addprefix build/glibc/linked/,$(GLIBC_TEST_NAMES))
GLIBC_PLAIN_BINS  := $(addprefix build/glibc/plain/,$(GLIBC_TEST_NAMES))

.PHONY: test-glibc test-glibc-ref

build/glibc/linked/%: tests/glibc/%.c tests/glibc/check.h $(LIB_SO)
	@mkdir -p $(@D)
	$(CC) $(GLIBC_TEST_CFLAGS) $< -o $@ -Llib -lgomalloc -Wl,-rpath,$(CURDIR)/lib

build/glibc/plain/%: tests/glibc/%.c tests/glibc/check.h
	@mkdir -p $(@D)
	$(CC) $(GLIBC_TEST_CFLAGS) $< -o $@

test-glibc: $(GLIBC_LINKED_BINS) $(GLIBC_PLAIN_BINS) $(LIB_SO)
	tests/glibc/run.sh --linked build/glibc/linked --preload build/glibc/plain $(abspath $(LIB_SO))

test-glibc-ref: $(GLIBC_PLAIN_BINS)
	tests/glibc/run.sh --glibc build/glibc/plain
