#!/usr/bin/env bash
# Sets up a new machine for this project: a virtualenv (.venv) with the engine and the test tools,
# a second one with the oldest ansible-core the collection claims (scripts/core-venv.sh, for
# scripts/test.sh's sanity and module run on it), a Consul binary (scripts/install-consul.sh) and
# an unpacked OpenSSH server for the loopback test machines (scripts/install-sshd.sh).
# Idempotent: a second run only checks.  PYTHON=/path/to/python3 picks the interpreter of a new
# .venv (default: python3 on PATH); an optimized build runs the engine faster (docs/benchmarks.md).
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
oldest_core=$(scripts/core-venv.sh --oldest)
oldest_bin=$(scripts/core-venv.sh "$oldest_core")
scripts/install-consul.sh >/dev/null
scripts/install-sshd.sh >/dev/null
ansible_version=$(.venv/bin/ansible --version 2>/dev/null | sed -n 1p)
consul_version=$(.cache/consul/bin/consul version | sed -n 1p)
sshd_version=$(.cache/sshd/bin/sshd -V 2>&1 | sed -n 1p | cut -d, -f1)
oldest_version=$("$oldest_bin/python" -c 'from ansible.release import __version__ as v; print(v)')
echo "setup: $(.venv/bin/python --version), $ansible_version (oldest claimed: ansible-core $oldest_version), $consul_version, sshd $sshd_version"
