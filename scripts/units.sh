#!/usr/bin/env bash
# ansible-test units on the module tests (tests/unit/plugins/modules/), through
# scripts/ansible-test.sh (the temporary collection tree, the offline pip bootstrap, --core).
#
#   scripts/units.sh [--core X.Y] [ansible-test units options...]
#        (default: --venv --python 3.11 tests/unit/plugins/modules/)
#
# What this adds to the plain pytest run: ansible-test runs the tests of modules/ isolated from
# the controller's code, as the modules run on a managed host (ansible.module_utils importable,
# ansible.cli, ansible.parsing and the rest not), in a virtual environment of its own made from
# its pinned test requirements and tests/unit/requirements.txt.  A module that imported
# controller code would pass under plain pytest and fail here.  scripts/test.sh therefore runs the
# module tests here and leaves tests/unit/plugins/modules/ out of its pytest run
# (docs/decisions.md); the module tests that need the controller (Vault files made with
# ansible-vault) live in tests/unit/plugins/, where pytest runs them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
core=()
if [ "${1:-}" = --core ]; then
  core=(--core "${2:?--core wants an ansible-core release series, e.g. 2.17}")
  shift 2
fi
if [ $# -eq 0 ]; then
  set -- --venv --python 3.11 tests/unit/plugins/modules/
fi
exec "$root/scripts/ansible-test.sh" ${core[@]+"${core[@]}"} units "$@"
