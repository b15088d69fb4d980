#!/usr/bin/env bash
# The main job: install the example application (19 node instances) on the embedded Space with
# local workers, then print the run's summary and the states of the node instances.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export WF_SPACE=${WF_SPACE:-$root/.cache/demo/space.db}
mkdir -p "$(dirname "$WF_SPACE")"
rm -f "$WF_SPACE" "$WF_SPACE-wal" "$WF_SPACE-shm"
wfctl=.venv/bin/wfctl
$wfctl model examples/seed_example/app.yaml seed_example
$wfctl instantiate seed_example demo
$wfctl workflow install seed_example demo --wait --workers ${WF_WORKERS:-2}
$wfctl status seed_example demo
