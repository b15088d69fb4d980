#!/usr/bin/env bash
# ansible-test sanity on the collection (scripts/ansible-test.sh: the temporary collection tree,
# the offline pip bootstrap, the choice of ansible-core).
#
#   scripts/sanity.sh [--core X.Y] [ansible-test sanity options...]      (default: --python 3.11)
#
# Without --core, the ansible-core on PATH (scripts/test.sh: .venv, 2.19); --core X.Y runs
# ansible-core X.Y.* from .cache/ansible-core-X.Y/ (created on first use).  Each version reads its
# own tests/sanity/ignore-X.Y.txt (ansible-test wants one per version).  The versions README.md
# claims are those this passes on; scripts/test.sh runs it on the oldest and on 2.19
# (docs/decisions.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
core=()
if [ "${1:-}" = --core ]; then
  core=(--core "${2:?--core wants an ansible-core release series, e.g. 2.17}")
  shift 2
fi
if [ $# -eq 0 ]; then
  set -- --python 3.11
fi
exec "$root/scripts/ansible-test.sh" ${core[@]+"${core[@]}"} sanity "$@"
