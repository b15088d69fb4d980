#!/usr/bin/env bash
# A virtual environment holding a given ansible-core release series, for the checks that run the
# collection on each ansible-core it claims (scripts/sanity.sh --core, scripts/core-smoke.sh).
#
#   scripts/core-venv.sh X.Y        prints the environment's bin directory
#   scripts/core-venv.sh --oldest   prints the oldest X.Y the collection claims (meta/runtime.yml's
#                                   requires_ansible, '>=X.Y.Z'), creating nothing
#
# .cache/ansible-core-X.Y/ gets ansible-core X.Y.* (the newest of the series the package index
# offers) and nothing else, created by the first call with ${PYTHON:-python3} and reused after;
# ansible-core brings PyYAML, the only thing the engine needs for the embedded Space.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
core=${1:?usage: scripts/core-venv.sh X.Y (an ansible-core release series, e.g. 2.17) | --oldest}
if [ "$core" = --oldest ]; then
  oldest=$(sed -n "s/^requires_ansible: *['\"]\{0,1\}>= *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p" "$root/meta/runtime.yml")
  if [ -z "$oldest" ]; then
    echo "core-venv: no requires_ansible '>=X.Y...' in meta/runtime.yml" >&2
    exit 1
  fi
  echo "$oldest"
  exit 0
fi
case $core in
  [0-9]*.[0-9]*) ;;
  *) echo "core-venv: $core is not an ansible-core release series (X.Y)" >&2; exit 2 ;;
esac
venv="$root/.cache/ansible-core-$core"
stamp="$venv/.wf-installed"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  mkdir -p "$root/.cache"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "ansible-core==$core.*" >&2
  touch "$stamp"
fi
got=$("$venv/bin/python" -c 'from ansible.release import __version__ as v; print(v)')
case $got in
  "$core".*) ;;
  *) echo "core-venv: $venv holds ansible-core $got, not $core" >&2; exit 1 ;;
esac
echo "$venv/bin"
