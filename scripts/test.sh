#!/usr/bin/env bash
# The whole test suite, as CI runs it. Each part starts what it needs (Consul clusters on
# loopback, workers) and stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
export WF_CONSUL_BIN="$root/.cache/consul/bin/consul"
python -m pytest -q -p no:cacheprovider tests
if [ -x scripts/sanity.sh ]; then scripts/sanity.sh; fi
if [ -x scripts/molecule.sh ]; then scripts/molecule.sh; fi
