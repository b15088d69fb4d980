#!/usr/bin/env bash
# The whole test suite, as CI runs it. Each part starts what it needs (Consul clusters on
# loopback, workers) and stops it.  Each step prints its duration.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
export WF_CONSUL_BIN="$root/.cache/consul/bin/consul"

step() {  # step NAME COMMAND...: run it, print how long it took
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: $((SECONDS - start)) s"
}

step pytest python -m pytest -q -p no:cacheprovider tests
step readme-check scripts/readme-check.sh
step lint scripts/lint.sh
if [ -x scripts/sanity.sh ]; then step sanity scripts/sanity.sh; fi
if [ -x scripts/molecule.sh ]; then step molecule scripts/molecule.sh; fi
