# config.mk - build knobs for mqim.  Override on the command line:
#   make SANITIZE=address,undefined test     sanitizer build
#   make COVERAGE=1 test                      gcov instrumentation
#   make V=1                                  show every command
#   make install PREFIX=/usr DESTDIR=/tmp/pkg

PREFIX    ?= /usr/local
DESTDIR   ?=
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
BINDIR    ?= $(PREFIX)/bin
PLUGINDIR ?= $(LIBDIR)/mqim
DOCDIR    ?= $(PREFIX)/share/doc/mqim

CC        ?= cc
FUZZ_CC   ?= clang
BUILD     ?= build

MQIM_VERSION := 0.1.0

WARN      := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
             -Wmissing-prototypes -Wno-unused-parameter
OPT       ?= -O2 -g
CFLAGS    ?=
CPPFLAGS  += -D_GNU_SOURCE -Iinclude -Icommon
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -MMD -MP $(CFLAGS)
LDFLAGS   ?=

ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=$(SANITIZE)
# third-party leaks only (paho, the broker): see the file
export LSAN_OPTIONS = suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
endif
ifneq ($(COVERAGE),)
ALL_CFLAGS += --coverage
LDFLAGS    += --coverage
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif
