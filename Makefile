# Buzón - build, test, run.  See README.md.
#
#   make            bin/smtpd bin/mailadm (and the other daemons as they exist)
#   make test       unit tests (cmocka) + integration tests (pytest)
#   make asan       the same tests against an AddressSanitizer+UBSan build
#   make fuzz       libFuzzer targets in build-fuzz/ (clang); make fuzz-smoke runs them briefly
#   make run        a demo instance in ./run/ on loopback ports
#   make deps       install every Debian package the build, tests and benchmarks need

CC      ?= cc
BUILD   ?= build
BINDIR  ?= bin
PYTHON  ?= /usr/bin/python3

PKGS    := openssl sqlite3 libsasl2 libxcrypt zlib opendkim
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# libev ships no .pc file on Debian 12
EV_LIBS := -lev
# MX lookups (res_nquery, ns_parserr) live in libresolv; libspf2 and
# libopendmarc ship no .pc file either
RESOLV_LIBS := -lresolv -lspf2 -lopendmarc

CFLAGS  ?= -O2 -g
override CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
           -Wvla -fno-strict-aliasing -D_GNU_SOURCE -pthread $(PKG_CFLAGS) $(EXTRA_CFLAGS)
override LDFLAGS += -pthread $(EXTRA_LDFLAGS)
LIBS    := $(PKG_LIBS) $(EV_LIBS) $(RESOLV_LIBS)

COMMON_SRC := $(wildcard common/*.c) $(wildcard store/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBBUZON   := $(BUILD)/libbuzon.a

# Each program directory with a main.c becomes bin/NAME; its other files
# go into an archive the unit tests can link against.
PROGS := $(foreach d,smtpd imapd pop3d admin,$(if $(wildcard $(d)/main.c),$(d)))
# Directories with sources (a daemon's modules can be unit-tested before
# its main.c exists; only directories with main.c become programs).
LIBDIRS := $(foreach d,smtpd imapd pop3d admin,$(if $(wildcard $(d)/*.c),$(d)))
progname = $(if $(filter admin,$(1)),mailadm,$(1))
BINS := $(foreach p,$(PROGS),$(BINDIR)/$(call progname,$(p)))

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

DEPFLAGS = -MMD -MP

.PHONY: all test unit integration asan fuzz fuzz-smoke run deps clean bench
all: $(BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIBBUZON): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

define lib_rules
$(1)_SRC := $$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c))
$(1)_OBJ := $$($(1)_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/lib$(1).a: $$($(1)_OBJ)
	@rm -f $$@
	ar rcs $$@ $$^
endef
define prog_rules
$(BINDIR)/$(call progname,$(1)): $(BUILD)/$(1)/main.o $(BUILD)/lib$(1).a $(LIBBUZON)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $$@ $$^ $(LIBS)
endef
$(foreach p,$(LIBDIRS),$(eval $(call lib_rules,$(p))))
$(foreach p,$(PROGS),$(eval $(call prog_rules,$(p))))

PROG_LIBS := $(foreach p,$(LIBDIRS),$(BUILD)/lib$(p).a)

$(BUILD)/tests/%: tests/unit/%.c $(PROG_LIBS) $(LIBBUZON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -I. -o $@ $< \
	    $(PROG_LIBS) $(LIBBUZON) $(LDFLAGS) $(LIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all
	BUZON_BIN=$(abspath $(BINDIR)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test: all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

# AddressSanitizer + UBSan: a separate tree so the normal build is untouched.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan BINDIR=build-asan/bin CFLAGS="$(ASAN_FLAGS)" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" test

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	$(MAKE) CC=clang BUILD=build-fuzz BINDIR=build-fuzz/bin \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
	    build-fuzz/libbuzon.a $(foreach p,$(LIBDIRS),build-fuzz/lib$(p).a)
	@mkdir -p build-fuzz/fuzz
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	    echo "clang $$f -> build-fuzz/fuzz/$$n"; \
	    clang -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. $(PKG_CFLAGS) \
	      -o build-fuzz/fuzz/$$n $$f $(foreach p,$(LIBDIRS),build-fuzz/lib$(p).a) \
	      build-fuzz/libbuzon.a $(LIBS) -pthread; done

FUZZ_SECONDS ?= 20
fuzz-smoke: fuzz
	@set -e; for f in build-fuzz/fuzz/*; do echo "== $$f ($(FUZZ_SECONDS)s)"; \
	    c=tests/fuzz/corpus/$$(basename $$f); mkdir -p build-fuzz/corpus-$$(basename $$f); \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -print_final_stats=0 -artifact_prefix=build-fuzz/ \
	      build-fuzz/corpus-$$(basename $$f) $$( [ -d $$c ] && echo $$c ) 2>&1 | tail -n 3; done

run: all
	@sh conf/demo.sh

bench: all
	$(PYTHON) bench/smtp_inbound
	$(PYTHON) bench/smtp_inbound_policy
	$(PYTHON) bench/smtp_outbound
	$(PYTHON) bench/imap_idle --connections 10000 --fast-hash
	$(PYTHON) bench/imap_mix --clients 1,10,50 --transports tls \
	    --modes mix,fetch --session-clients 10 --hash sha512crypt
	$(PYTHON) bench/pop3

DEBS := build-essential pkg-config clang libclang-rt-14-dev \
	libev-dev libssl-dev libsasl2-dev libsasl2-modules libsqlite3-dev \
	libspf2-dev libopendkim-dev libopendmarc-dev libcrypt-dev libcmocka-dev zlib1g-dev \
	python3 python3-pytest python3-dnslib python3-dkim \
	swaks libnet-ssleay-perl libio-socket-ssl-perl netcat-openbsd openssl sqlite3 curl isync fetchmail mutt unbound postfix procps iproute2 publicsuffix

deps:
	@if [ "$$(id -u)" != 0 ]; then \
	    echo "make deps installs Debian packages and must run as root: sudo make deps"; exit 1; fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBS)

clean:
	rm -rf build build-asan build-fuzz bin

# Only our compilers' dependency files: build/bench/ holds unpacked Debian
# packages (Dovecot for the benchmarks) with directories like init.d.
-include $(shell find $(BUILD) -path '$(BUILD)/bench' -prune -o -name '*.d' -type f -print 2>/dev/null)
