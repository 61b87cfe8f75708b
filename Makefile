# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOCKLAB := $(BIN)/socklab

.PHONY: demo test lint typecheck unit integration examples image deps test-deps venv bench clean

# An editable install compiles nothing, and with PYTHONDONTWRITEBYTECODE (set on many CI
# machines) Python never caches socklab's bytecode: compiled here, every command starts
# ~40 ms sooner.
venv: $(BIN)/.installed
$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q src >/dev/null
	touch $@

# mmdebstrap builds the node image's Debian rootfs from this host's own apt sources;
# chromium (Debian's) checks the HTML report in the tests.
deps:
	@command -v mmdebstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq mmdebstrap >/dev/null; }

test-deps: deps
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

image: venv deps
	$(SOCKLAB) image build

demo: image
	$(SOCKLAB) run
	$(SOCKLAB) up labs/hello.yml
	$(SOCKLAB) status labs/hello.yml
	$(SOCKLAB) exec labs/hello.yml client-1 -- getent hosts server echo
	$(SOCKLAB) exec labs/hello.yml client-1 -- python3 -c 'import socket; print(socket.gethostbyname_ex("echo"), socket.getfqdn())'
	$(SOCKLAB) down labs/hello.yml

lint: venv
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q tests/unit

integration: image
	$(BIN)/pytest -q tests/integration

# the pytest plugin's examples, as a user runs them: serial and with two xdist workers
examples: image
	$(BIN)/pytest -q -p no:cacheprovider examples/pytest
	$(BIN)/pytest -q -p no:cacheprovider -n 2 examples/pytest

# two pytest-xdist workers, a test file each at a time (a file's module-scoped labs stay in
# one worker); every test lab has a name and subnets of its own, so they never collide.
# The Swarm tests run alone afterwards: `docker swarm init`/`leave` change the whole daemon.
SWARM_TESTS := tests/integration/test_swarm.py
test: lint typecheck test-deps image
	$(BIN)/pytest -q -n 2 --dist loadfile --ignore=$(SWARM_TESTS) tests; rc=$$?; [ $$rc -eq 5 ] && rc=0; \
	$(BIN)/pytest -q $(SWARM_TESTS); rc2=$$?; [ $$rc2 -eq 5 ] && rc2=0; \
	[ $$rc -ne 0 ] && exit $$rc; exit $$rc2

# every row of issue 14, socklab against its baseline side by side: runs/bench.json
# (BENCH_ARGS=--big adds 500 nodes; a few minutes without it)
bench: image
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	-$(SOCKLAB) down --all
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
