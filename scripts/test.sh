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

# ansible-core versions (docs/decisions.md): .venv holds 2.19, on which everything runs; the
# oldest version the collection claims (meta/runtime.yml's requires_ansible, '>=2.17.0') gets
# ansible-test sanity and units and a real run of the built collection's modules, from
# .cache/ansible-core-X.Y/ (scripts/core-venv.sh; setup.sh or the first use creates it).  The
# release series between them get ansible-test sanity (each ansible-core the collection claims).
oldest_core=$(scripts/core-venv.sh --oldest)
main_core=$(python -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))')

# tests/unit/plugins/modules/ runs under ansible-test units (scripts/units.sh), isolated from the
# controller's code as on a managed host; pytest runs everything else, once (docs/decisions.md).
# pytest in two processes at once (docs/decisions.md): the tests that take fixed loopback
# resources (Consul clusters, sshd machines, fixed ports: marker `loopback`, tests/conftest.py)
# mostly wait on TTLs, outages and Raft, the others mostly compute; run one after the other
# they took 26 minutes.  Each part runs its tests one at a time, so no two tests of the
# loopback part share an address.  The loopback part's log is printed when both have ended.
pytest_parts() {
  local log="$root/.cache/pytest-loopback.log" rc=0 pid
  mkdir -p "$root/.cache"
  python -m pytest -q -p no:cacheprovider --durations=15 -m loopback "$@" > "$log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true' INT TERM
  echo "-- the other tests:"
  python -m pytest -q -p no:cacheprovider --durations=15 -m "not loopback" "$@" || rc=1
  wait "$pid" || rc=1
  trap - INT TERM
  echo "-- the loopback tests:"
  cat "$log"
  return "$rc"
}
step pytest pytest_parts tests --ignore=tests/unit/plugins/modules
step "units-$main_core" scripts/units.sh
step readme-check scripts/readme-check.sh
# The engine's shape (issue 22): file length, complexity, import circles, mypy --strict; what is not
# met yet is listed in scripts/engine_debt.txt, which may only shrink.
step engine-checks python scripts/engine_checks.py
step lint scripts/lint.sh
step "sanity-$main_core" scripts/sanity.sh
if [ "$oldest_core" != "$main_core" ]; then
  step "sanity-$oldest_core" scripts/sanity.sh --core "$oldest_core"
  for ((minor = ${oldest_core#*.} + 1; minor < ${main_core#*.}; minor++)); do
    step "sanity-${main_core%%.*}.$minor" scripts/sanity.sh --core "${main_core%%.*}.$minor"
  done
  step "units-$oldest_core" scripts/units.sh --core "$oldest_core"
  step "modules-on-$oldest_core" scripts/core-smoke.sh "$oldest_core"
fi
if [ -x scripts/molecule.sh ]; then step molecule scripts/molecule.sh; fi
