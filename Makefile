# Makefile - mqim: an instant-messaging backend on a stock Mosquitto broker.
#
#   make            build everything into build/
#   make run        install missing packages, build, start Mosquitto with the plugin
#   make test       install missing packages, build, run unit + integration tests
#   make test-unit | test-integration | test-faults | fuzz | valgrind | install | clean
#
# Sources are picked up by directory, so adding a file needs no edit here:
#   common/*.c   -> build/libmqimcommon.a   (shared by plugin, client, tools)
#   plugin/*.c   -> build/mqim_plugin.so and build/libmqim_plugin.a
#   client/*.c   -> build/libmqim.so and build/libmqim.a
#   tools/X/*.c  -> build/X
#   tests/unit/test_*.c, tests/integration/test_*.c -> build/tests/...

include config.mk

PKGS_COMMON := msgpack sqlite3 libargon2 libcjson openssl
PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS_COMMON) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS_COMMON) 2>/dev/null)
PAHO_LIBS   := -lpaho-mqtt3as
CMOCKA_LIBS := -lcmocka
JWT_LIBS    := $(shell pkg-config --libs libjwt 2>/dev/null)

CPPFLAGS += $(PKG_CFLAGS)

COMMON_SRC := $(wildcard common/*.c)
PLUGIN_SRC := $(wildcard plugin/*.c)
CLIENT_SRC := $(wildcard client/*.c)
MQIMCTL_SRC := $(wildcard tools/mqimctl/*.c)
MQIM_SRC   := $(wildcard tools/mqim/*.c)
SUPPORT_SRC := $(wildcard tests/support/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
# The attack catalogue: its helpers and the raw MQTT codec of tools/bench.
ATTACK_SRC := $(if $(wildcard tools/bench/mqtt_raw.c),$(wildcard tests/attacks/test_*.c))
ATTACK_LIB_SRC := $(filter-out tests/attacks/test_%.c,$(wildcard tests/attacks/*.c)) \
              tools/bench/mqtt_raw.c
# The fault suite: its proxy and world helpers, one runner binary per test_*.c.
FAULT_SRC  := $(if $(CLIENT_SRC),$(wildcard tests/faults/test_*.c))
FAULT_LIB_SRC := $(filter-out tests/faults/test_%.c,$(wildcard tests/faults/*.c))

OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
UOBJ = $(patsubst %.c,$(BUILD)/uobj/%.o,$(1))

COMMON_LIB := $(BUILD)/libmqimcommon.a
PLUGIN_SO  := $(BUILD)/mqim_plugin.so
PLUGIN_A   := $(BUILD)/libmqim_plugin.a
PLUGIN_UA  := $(BUILD)/libmqim_plugin_unit.a
CLIENT_SO  := $(BUILD)/libmqim.so
CLIENT_A   := $(BUILD)/libmqim.a
MQIMCTL    := $(BUILD)/mqimctl
MQIM       := $(BUILD)/mqim
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRC))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
ATTACK_BINS := $(patsubst tests/attacks/%.c,$(BUILD)/tests/attacks/%,$(ATTACK_SRC))
FAULT_BINS := $(patsubst tests/faults/%.c,$(BUILD)/tests/faults/%,$(FAULT_SRC))

TOOLS := $(if $(MQIMCTL_SRC),$(MQIMCTL)) $(if $(MQIM_SRC),$(MQIM))
CLIENT_TARGETS := $(if $(CLIENT_SRC),$(CLIENT_SO) $(CLIENT_A) $(BUILD)/mqim.pc)

.PHONY: all plugin client tools tests deps run certs test test-unit test-integration \
        test-attacks test-faults fuzz valgrind install uninstall clean

all: plugin client tools tests

plugin: $(PLUGIN_SO) $(PLUGIN_A)
client: $(CLIENT_TARGETS)
tools: $(TOOLS)
tests: $(UNIT_BINS) $(INTEG_BINS) $(ATTACK_BINS) $(FAULT_BINS)

deps:
	$(Q)sh mk/deps.sh

# ---- objects -------------------------------------------------------------

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# Unit-test objects: same sources, allocations routed to cmocka's checked
# allocator so that every unit test is also a leak test.
$(BUILD)/uobj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC(unit) $<")
	$(Q)$(CC) $(CPPFLAGS) -DMQIM_UNIT_TEST $(ALL_CFLAGS) -c $< -o $@

# ---- libraries -----------------------------------------------------------

$(COMMON_LIB): $(call OBJ,$(COMMON_SRC))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(PLUGIN_A): $(call OBJ,$(PLUGIN_SRC))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(PLUGIN_UA): $(call UOBJ,$(PLUGIN_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

$(PLUGIN_SO): $(call OBJ,$(PLUGIN_SRC)) $(COMMON_LIB) plugin/plugin.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(call OBJ,$(PLUGIN_SRC)) $(COMMON_LIB) \
	    -Wl,--version-script=plugin/plugin.map $(LDFLAGS) $(PKG_LIBS) $(JWT_LIBS)

$(CLIENT_A): $(call OBJ,$(CLIENT_SRC)) $(call OBJ,$(COMMON_SRC))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(CLIENT_SO): $(call OBJ,$(CLIENT_SRC)) $(COMMON_LIB) client/libmqim.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ -Wl,-soname,libmqim.so.0 $(call OBJ,$(CLIENT_SRC)) \
	    $(COMMON_LIB) -Wl,--version-script=client/libmqim.map $(LDFLAGS) \
	    $(PAHO_LIBS) $(PKG_LIBS) -lpthread

$(BUILD)/mqim.pc: client/mqim.pc.in Makefile config.mk
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|$(MQIM_VERSION)|' $< > $@

# ---- programs ------------------------------------------------------------

$(MQIMCTL): $(call OBJ,$(MQIMCTL_SRC)) $(COMMON_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS) $(PAHO_LIBS) $(PKG_LIBS) $(JWT_LIBS) -lpthread

$(MQIM): $(call OBJ,$(MQIM_SRC)) $(CLIENT_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS) $(PAHO_LIBS) $(PKG_LIBS) -lpthread

# ---- tests ---------------------------------------------------------------

$(BUILD)/tests/unit/%: tests/unit/%.c $(PLUGIN_UA) $(COMMON_LIB) $(if $(CLIENT_SRC),$(CLIENT_A))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) -Iplugin -Iclient -DMQIM_UNIT_TEST $(ALL_CFLAGS) -o $@ $< \
	    $(PLUGIN_UA) $(if $(CLIENT_SRC),$(CLIENT_A)) $(COMMON_LIB) $(LDFLAGS) \
	    $(CMOCKA_LIBS) $(PAHO_LIBS) $(PKG_LIBS) -lpthread

$(BUILD)/tests/integration/%: tests/integration/%.c $(call OBJ,$(SUPPORT_SRC)) $(COMMON_LIB) $(if $(CLIENT_SRC),$(CLIENT_A))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) -Itests/support -Iclient $(ALL_CFLAGS) -o $@ $< \
	    $(call OBJ,$(SUPPORT_SRC)) $(if $(CLIENT_SRC),$(CLIENT_A)) $(COMMON_LIB) \
	    $(LDFLAGS) $(CMOCKA_LIBS) $(PAHO_LIBS) $(PKG_LIBS) $(JWT_LIBS) -lpthread

$(call OBJ,$(ATTACK_LIB_SRC)): CPPFLAGS += -Itests/support -Itools/bench

$(BUILD)/tests/attacks/%: tests/attacks/%.c $(call OBJ,$(SUPPORT_SRC) $(ATTACK_LIB_SRC)) $(COMMON_LIB) $(if $(CLIENT_SRC),$(CLIENT_A))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) -Itests/support -Itests/attacks -Itools/bench -Iclient $(ALL_CFLAGS) \
	    -o $@ $< $(call OBJ,$(SUPPORT_SRC) $(ATTACK_LIB_SRC)) $(if $(CLIENT_SRC),$(CLIENT_A)) \
	    $(COMMON_LIB) $(LDFLAGS) $(CMOCKA_LIBS) $(PAHO_LIBS) $(PKG_LIBS) $(JWT_LIBS) -lpthread

$(call OBJ,$(FAULT_LIB_SRC)): CPPFLAGS += -Itests/support -Itests/faults

$(BUILD)/tests/faults/%: tests/faults/%.c $(call OBJ,$(SUPPORT_SRC) $(FAULT_LIB_SRC)) $(COMMON_LIB) $(CLIENT_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) -Itests/support -Itests/faults -Iclient $(ALL_CFLAGS) -o $@ $< \
	    $(call OBJ,$(SUPPORT_SRC) $(FAULT_LIB_SRC)) $(CLIENT_A) $(COMMON_LIB) $(LDFLAGS) \
	    $(CMOCKA_LIBS) $(PAHO_LIBS) $(PKG_LIBS) $(JWT_LIBS) -lpthread

# MQIM_FAULTS=fast: the fault suite's quick subset at small sizes (see
# tests/faults/test_faults.c); `make test-faults` runs every case.
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(if $(FUZZ_SRC),$(MAKE) --no-print-directory fuzz-smoke)
	$(Q)MQIM_BUILD_DIR=$(BUILD) MQIM_FAULTS=fast sh tests/run.sh $(UNIT_BINS) $(INTEG_BINS) $(ATTACK_BINS) $(FAULT_BINS)

test-unit: all
	$(Q)MQIM_BUILD_DIR=$(BUILD) sh tests/run.sh $(UNIT_BINS)

test-integration: all
	$(Q)MQIM_BUILD_DIR=$(BUILD) sh tests/run.sh $(INTEG_BINS)

# tests/attacks/ (MQIM_ATTACK_FULL=1 runs the heavy cases at full size).
test-attacks: all
	$(Q)MQIM_BUILD_DIR=$(BUILD) sh tests/run.sh $(ATTACK_BINS)

# tests/faults/ in full, about 10 minutes; the results table also goes to
# $(BUILD)/faults-table.md (docs/reliability.md keeps a copy).
test-faults: all
	$(Q)MQIM_BUILD_DIR=$(BUILD) MQIM_FAULTS=full MQIM_FAULTS_TABLE=$(BUILD)/faults-table.md sh tests/run.sh $(FAULT_BINS)

# ---- fuzzing (clang libFuzzer) -------------------------------------------

FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
              -DMQIM_ENV_CROSSCHECK

$(BUILD)/fuzz/%: tests/fuzz/%.c $(COMMON_SRC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) -std=c11 $(FUZZ_FLAGS) -o $@ $< $(COMMON_SRC) $(PKG_LIBS)

fuzz: deps $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do \
	  n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  seeds=tests/fuzz/corpus/$${n#fuzz_}; [ -d $$seeds ] || seeds=; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	      $(BUILD)/fuzz/corpus-$$n $$seeds || exit 1; \
	done

# A short run of every fuzzer, part of `make test`.
fuzz-smoke: $(FUZZ_BINS)
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=8

# ---- run, install --------------------------------------------------------

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)sh mk/run.sh $(if $(TLS),tls)

# Development CA, server and client certificates in data/certs.
certs: deps
	$(Q)sh tools/mqim-certs.sh data/certs

# The integration suite with every broker under valgrind; one log per broker
# process in $(BUILD)/valgrind, judged by mk/valgrind-check.sh (memory errors
# anywhere, definite leaks whose stack names the plugin).
valgrind: all
	$(Q)rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	$(Q)MQIM_BROKER_WRAPPER="valgrind --leak-check=full --num-callers=30 --log-file=$(abspath $(BUILD))/valgrind/%p.log" \
	    MQIM_BUILD_DIR=$(BUILD) sh tests/run.sh $(INTEG_BINS); rc=$$?; \
	    sh mk/valgrind-check.sh $(BUILD)/valgrind && exit $$rc

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(PLUGIN_SO) $(DESTDIR)$(PLUGINDIR)/
	$(if $(CLIENT_SRC),install -m 0644 $(CLIENT_A) $(DESTDIR)$(LIBDIR)/)
	$(if $(CLIENT_SRC),install -m 0755 $(CLIENT_SO) $(DESTDIR)$(LIBDIR)/libmqim.so.0)
	$(if $(CLIENT_SRC),ln -sf libmqim.so.0 $(DESTDIR)$(LIBDIR)/libmqim.so)
	$(if $(CLIENT_SRC),install -m 0644 include/mqim.h $(DESTDIR)$(INCDIR)/)
	$(if $(CLIENT_SRC),install -m 0644 $(BUILD)/mqim.pc $(DESTDIR)$(LIBDIR)/pkgconfig/)
	install -m 0644 mosquitto.conf README.md docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS))) \
	    $(DESTDIR)$(PLUGINDIR)/mqim_plugin.so $(DESTDIR)$(LIBDIR)/libmqim.* \
	    $(DESTDIR)$(INCDIR)/mqim.h $(DESTDIR)$(LIBDIR)/pkgconfig/mqim.pc
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:

# ---- benchmark: make bench, make bench-icount (docs/performance.md) -------
#
#   make bench                   A/B/C comparison, 7 interleaved rounds (~15 min)
#   make bench BENCH_QUICK=1     a two-minute smoke run
#   make bench BENCH_ROUNDS=9    more rounds
#   make bench-icount            broker instructions per message (callgrind)
#   make soak                    10 minutes of steady load: is broker memory
#                                flat once the dedup window is full?
#   make soak SOAK_SECONDS=120   a shorter one (SOAK_RATE=R messages/s)
# Not part of `make test`.  Each rewrites its section of docs/performance.md.

BENCH_SRC := $(wildcard tools/bench/*.c)
BENCH     := $(BUILD)/mqim-bench
BENCH_OBJ := $(call OBJ,$(BENCH_SRC)) $(BUILD)/obj/plugin/dedup.o
BENCH_ROUNDS ?=
BENCH_QUICK  ?=
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 3000

$(call OBJ,$(BENCH_SRC)): CPPFLAGS += -Iplugin

$(BENCH): $(BENCH_OBJ) $(COMMON_LIB) $(if $(CLIENT_SRC),$(CLIENT_A))
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(BENCH_OBJ) $(if $(CLIENT_SRC),$(CLIENT_A)) $(COMMON_LIB) $(LDFLAGS) \
	    $(PAHO_LIBS) $(PKG_LIBS) $(JWT_LIBS) -lm -lpthread

bench: all $(BENCH)
	$(Q)$(BENCH) compare --build $(BUILD) --write docs/performance.md \
	    $(if $(BENCH_QUICK),--quick) $(if $(BENCH_ROUNDS),--rounds $(BENCH_ROUNDS))

bench-icount: all $(BENCH)
	$(Q)$(BENCH) icount --build $(BUILD) --write docs/performance.md

soak: all $(BENCH)
	$(Q)$(BENCH) soak --build $(BUILD) --duration $(SOAK_SECONDS) --rate $(SOAK_RATE) \
	    --write docs/performance.md

.PHONY: bench bench-icount soak
