# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= data/demo
DEMO_RESULTS ?= results/demo

.PHONY: demo test lint typecheck install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The demo: build the offline dataset, train a MobileNetV2 teacher and matcher, distill three
# MobileNetV2 students (none, kd, sembridge) with the `mini` protocol, score them on the test
# split with the leaderboard evaluator and print the table (about 2 minutes after set-up).
demo: $(STAMP)
	$(VENV)/bin/msrgb build-dataset --out $(DEMO_OUT)
	$(VENV)/bin/msrgb benchmark --data $(DEMO_OUT) --protocol mini --pairs M/M \
		--methods none,kd,sembridge --seeds 0 --out $(DEMO_RESULTS) --quiet

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) lint typecheck
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
