# Two entry points for a fresh machine (Python 3.11, x86_64, CPU):
#   make demo   installs into .venv and runs the lite demo (offline)
#   make test   installs into .venv (with dev tools) and runs lint, types and the tests
#   make compose-test  builds and runs the docker-compose stack, checks it, tears it down
#                      (installs Docker with apt-get if missing; root; not part of CI)
# They install requirements.lock: the lean CPU set (CPU torch, plain onnxruntime; ~2.7 GB).
# The GPU decoder's set (CUDA torch, onnxruntime-gpu; ~7.4 GB) is requirements-gpu.lock:
#   make LOCK=requirements-gpu.lock install     (or demo, test; docs/install.md)
PYTHON ?= python3.11
VENV ?= .venv
LOCK ?= requirements.lock
# torch and torchvision are installed first, in a pip call of their own: for a lock that pins
# a CPU torch (2.13.0+cpu) pip also asks the PyTorch CPU index, else it finds them in its
# find-links (a local wheel store) or on PyPI. An unreachable index then costs pip's retries
# for these two (~8 s each), not for every package of the lock.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PINS = $(shell grep -E '^(torch|torchvision)==' $(LOCK))
TORCH_FROM = $(if $(findstring +cpu,$(TORCH_PINS)),--extra-index-url $(TORCH_INDEX))
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-cpus install lint proto eval clean compose-test

# A venv of the other build (CUDA torch where the lock pins CPU torch, or the reverse) is not
# converted in place: that would leave 3 GB of CUDA libraries, or both onnxruntime builds (one
# module name), behind, under whatever still runs from it.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@have=$$($(BIN)/python -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null); \
	want=$$(sed -n 's/^torch==//p' $(LOCK)); \
	case "$$have" in *+cpu) hb=CPU;; "") hb=;; *) hb=CUDA;; esac; \
	case "$$want" in *+cpu) wb=CPU;; *) wb=CUDA;; esac; \
	if [ -n "$$hb" ] && [ "$$hb" != "$$wb" ]; then \
	  echo "$(VENV) holds torch $$have (a $$hb build); $(LOCK) installs torch $$want ($$wb)." >&2; \
	  echo "Start a fresh venv (rm -rf $(VENV), then run this again), or keep this one with" >&2; \
	  echo "make LOCK=$(if $(findstring gpu,$(LOCK)),requirements.lock,requirements-gpu.lock) $(or $(MAKECMDGOALS),install)  (docs/install.md)." >&2; \
	  exit 1; \
	fi
	$(PIP) install --quiet --no-deps $(TORCH_FROM) $(TORCH_PINS) || { \
	  echo "$(TORCH_PINS): not found$(if $(TORCH_FROM), on $(TORCH_INDEX) nor) in pip's indexes and find-links." >&2; \
	  echo "Put the wheel in a folder and set PIP_FIND_LINKS to it, or see docs/install.md." >&2; exit 1; }
	$(PIP) install --quiet -r $(LOCK)
	$(PIP) install --quiet --no-deps -e .
	$(BIN)/semlink weights perceptual
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/semlink demo

lint: $(STAMP)
	$(BIN)/ruff check shared services tests tools bench
	$(BIN)/ruff format --check shared services tests tools bench
	$(BIN)/mypy

# The same picture on every machine (issue 13.1): after the suite (the machine's native CPU
# capability, one torch thread per core), the tests whose results come from torch's float
# kernels (golden restorer output, lite and sedic packets, learned codecs, batched decodes
# equal to single ones) run again under ATEN_CPU_CAPABILITY=default and with 1 and 2 torch
# threads. VVC-only Kodak runs are left out
# (ffmpeg does not read these settings). tests/test_cross_machine.py encodes under one
# capability and decodes under the other.
CPU_TESTS := tests/test_golden.py tests/test_codec.py tests/test_learned_codecs.py \
	tests/test_decode_batch.py

test: $(STAMP) lint
	$(BIN)/pytest
	$(MAKE) --no-print-directory test-cpus

test-cpus: $(STAMP)
	@set -e; for run in "native 1" "default 1" "default 2"; do \
	  set -- $$run; \
	  echo "== $(CPU_TESTS): ATEN_CPU_CAPABILITY=$$1, $$2 torch thread(s)"; \
	  if [ $$1 = native ]; then cap=; else cap=$$1; fi; \
	  env $${cap:+ATEN_CPU_CAPABILITY=$$cap} OMP_NUM_THREADS=$$2 \
	    $(BIN)/pytest -q -p no:cacheprovider -k "not kodak" $(CPU_TESTS); \
	done

proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=shared --pyi_out=shared proto/semlink/v1/packet.proto
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=shared --pyi_out=shared --grpc_python_out=shared proto/semlink/v1/encoder.proto proto/semlink/v1/decoder.proto proto/semlink/v1/link.proto

compose-test: $(STAMP)
	$(BIN)/python tools/compose_test.py

eval: $(STAMP)
	$(BIN)/semlink eval ../shared/data/kodak --bpp 0.02,0.03,0.05 -o out/eval

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
