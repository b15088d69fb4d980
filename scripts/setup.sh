#!/usr/bin/env bash
# Sets up a new machine for this project: a virtualenv (.venv) with the engine and the test tools,
# and a Consul binary (scripts/install-consul.sh). Idempotent: a second run only checks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.wf-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel >&2
  .venv/bin/python -m pip install -q -e ".[test]" >&2
  touch "$stamp"
fi
scripts/install-consul.sh >/dev/null
ansible_version=$(.venv/bin/ansible --version 2>/dev/null | sed -n 1p)
consul_version=$(.cache/consul/bin/consul version | sed -n 1p)
echo "setup: $(.venv/bin/python --version), $ansible_version, $consul_version"
