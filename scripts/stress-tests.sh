#!/usr/bin/env bash
# The engine suites N times in a row beside CPU-spinning processes (issue 22's "green 10 times
# under load"): `scripts/stress-tests.sh [ROUNDS] [SPINNERS] [pytest args...]`, defaults 10 and 2,
# tests/engine and tests/unit/engine.  Stops at the first red round; prints each round's result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
export WF_CONSUL_BIN="$root/.cache/consul/bin/consul"
rounds=${1:-10}
spinners=${2:-2}
shift $(($# < 2 ? $# : 2))
[ $# -gt 0 ] || set -- tests/engine tests/unit/engine
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for ((i = 0; i < spinners; i++)); do
  python -c 'while True: pass' &
  pids+=($!)
done
for ((r = 1; r <= rounds; r++)); do
  start=$SECONDS
  if python -m pytest -q -p no:cacheprovider "$@" > "$root/.cache/stress-round-$r.log" 2>&1; then
    echo "round $r: $(tail -1 "$root/.cache/stress-round-$r.log") ($((SECONDS - start)) s)"
  else
    echo "round $r: FAILED ($((SECONDS - start)) s), log: .cache/stress-round-$r.log"
    grep -E '^(FAILED|ERROR)' "$root/.cache/stress-round-$r.log" || true
    exit 1
  fi
done
