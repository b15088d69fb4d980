#!/usr/bin/env bash
# The engine suites N times in a row beside CPU-spinning processes (issue 22's "green 10 times
# under load"): `scripts/stress-tests.sh [ROUNDS] [SPINNERS] [pytest args...]`, defaults 10 and 2,
# tests/engine and tests/unit/engine.  Stops at the first red round; prints each round's result.
#
# WF_STRESS_LANES=L (default 1) runs the rounds in L lanes at once, each lane's rounds one after
# the other (lane l runs rounds l, l+L, ...): every suite then runs beside the spinners AND the
# other lanes' suites, a heavier load than the spinners alone, in 1/L of the wall time on a
# machine whose suites mostly wait.  A lane stops at its first red round.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
export WF_CONSUL_BIN="$root/.cache/consul/bin/consul"
rounds=${1:-10}
spinners=${2:-2}
lanes=${WF_STRESS_LANES:-1}
shift $(($# < 2 ? $# : 2))
[ $# -gt 0 ] || set -- tests/engine tests/unit/engine
pids=()
lane_pids=()
trap 'kill "${pids[@]}" "${lane_pids[@]}" 2>/dev/null || true' EXIT
for ((i = 0; i < spinners; i++)); do
  python -c 'while True: pass' &
  pids+=($!)
done

lane() {
  local r start log
  for ((r = $1; r <= rounds; r += lanes)); do
    start=$SECONDS
    log="$root/.cache/stress-round-$r.log"
    if python -m pytest -q -p no:cacheprovider -p no:randomly "${@:2}" > "$log" 2>&1; then
      echo "round $r (lane $1): $(tail -1 "$log") ($((SECONDS - start)) s, ended $(date +%T))"
    else
      echo "round $r (lane $1): FAILED ($((SECONDS - start)) s), log: .cache/stress-round-$r.log"
      grep -E '^(FAILED|ERROR)' "$log" || true
      return 1
    fi
  done
}

for ((l = 1; l <= lanes; l++)); do
  lane "$l" "$@" &
  lane_pids+=($!)
done
status=0
for p in "${lane_pids[@]}"; do
  wait "$p" || status=1
done
exit $status
