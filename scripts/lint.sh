#!/usr/bin/env bash
# The collection's lint checks, as CI runs them (scripts/test.sh):
#   ansible-lint --profile production    (configuration: .ansible-lint, kept findings: .ansible-lint-ignore)
#   antsibull-changelog lint              (changelogs/fragments and changelogs/changelog.yaml)
#   scripts/role_specs.py --check         (argument_specs and docs/roles.md generated from the defaults)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -x .venv/bin/ansible-lint ]; then export PATH="$root/.venv/bin:$PATH"; fi
ansible-lint --profile production --nocolor -q
antsibull-changelog lint
python3 scripts/role_specs.py --check
echo "lint: ansible-lint (production), changelog fragments and role specs clean"
