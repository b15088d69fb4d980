# Two commands for a new machine (see README): `make demo` and `make test`.
.PHONY: setup demo test test-fast sanity molecule bench clean

setup:
	scripts/setup.sh

demo: setup
	scripts/demo.sh

# Everything CI runs: unit, Space contract (embedded and a real 3-server Consul), engine,
# failure and Ansible integration tests, ansible-test sanity, molecule scenarios.
test: setup
	scripts/test.sh

test-fast: setup
	.venv/bin/python -m pytest -q -m "not consul and not slow"

bench: setup
	.venv/bin/python bench/run.py

clean:
	rm -rf .cache/demo .cache/cluster tests/output
