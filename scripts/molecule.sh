#!/usr/bin/env bash
# The molecule scenarios (molecule/: default, kill_worker, kill_consul_server, ssh_hosts), as CI
# runs them (top-level molecule/, the project's layout: docs/decisions.md).  Each
# scenario creates three test hosts on this machine (127.0.0.11-13, one root directory each under
# the scenario's ephemeral directory), converges them with
# playbooks/site.yml, verifies and destroys them.  Needs Consul's default ports (8300-8302, 8500)
# and 8765 free on those addresses; ssh_hosts also needs port 22 free on 127.0.0.61-63 (its SSH
# machines, real sshd servers from scripts/install-sshd.sh).
#   scripts/molecule.sh                 all scenarios
#   scripts/molecule.sh -s kill_worker  one scenario (any `molecule test` option)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -x .venv/bin/molecule ]; then export PATH="$root/.venv/bin:$PATH"; fi
scripts/install-consul.sh >/dev/null
if [ $# -eq 0 ]; then set -- --all; fi
exec molecule test "$@"
