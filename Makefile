# berth: build, run, test, bench. Every target installs the Debian packages it needs.

CARGO ?= cargo
APT_RUN  := iproute2 nftables
APT_TEST := $(APT_RUN) busybox-static docker-registry containerd runc
APT_BENCH := $(APT_TEST) hyperfine
PREFIX ?= /usr/local

# Installs missing Debian packages (quietly; refreshes the package lists only if needed).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq $$missing; }; \
	fi
endef

.PHONY: all build release run test lint unit bench deps-run deps-test deps-bench install clean

all: build

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --release --workspace --bins

deps-run:
	$(call apt_install,$(APT_RUN))

deps-test:
	$(call apt_install,$(APT_TEST))

deps-bench:
	$(call apt_install,$(APT_BENCH))

## Start berthd with the embedded defaults (root /var/lib/berth, socket /run/berth/berthd.sock).
run: deps-run release
	./target/release/berthd $(ARGS)

## Everything CI checks: formatting, lints, unit, conformance and integration tests.
test: deps-test lint
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Side-by-side benchmarks against containerd + runc, printing ratios.
bench: deps-bench release
	$(CARGO) run --release -p berth-integration --bin berth-bench -- $(ARGS)

install: release
	install -m 0755 target/release/berthd target/release/berthctl target/release/berth-shim $(PREFIX)/bin/

clean:
	$(CARGO) clean
