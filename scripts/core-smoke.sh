#!/usr/bin/env bash
# The collection's modules, run for real on a given ansible-core: sanity reads the code, this runs it.
#
#   scripts/core-smoke.sh X.Y        (e.g. 2.17)
#
# In the environment of scripts/core-venv.sh X.Y: build the collection with that ansible-galaxy,
# install the tarball into a temporary collections path; the three playbooks must pass
# --syntax-check and ansible-doc -t role must read each role's argument specs (the roles do not run
# here: they need hosts, molecule runs them on the main ansible-core); then, on a temporary
# embedded Space,
#   - an ad-hoc ditrit.workflows.tosca_model (upload of examples/seed_example/app.yaml),
#   - ditrit.workflows.run_install by its FQCN (tosca_model, tosca_instance, tosca_workflow install
#     with workers in the module, tosca_instance_info; no library, so tosca_library is skipped),
#     twice: the second run must change nothing,
#   - ditrit.workflows.run_uninstall with wf_remove_instance=true.
# Each playbook's recap must show failed=0, the install 19 node instances started, the uninstall 19
# deleted.  Exits non-zero on the first failure.  10 to 40 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
core=${1:?usage: scripts/core-smoke.sh X.Y}
bin=$("$root/scripts/core-venv.sh" "$core")
export PATH="$bin:$PATH"
echo "core-smoke: $(ansible --version | sed -n 1p)"

work=$(mktemp -d "${TMPDIR:-/tmp}/wf-core-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0
export ANSIBLE_HOME="$work/ansible-home" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp"
space="$work/space/space.db"

cd "$root"
ansible-galaxy collection build --force --output-path "$work" . >/dev/null
ansible-galaxy collection install --force -p "$work/collections" "$work"/ditrit-workflows-*.tar.gz >/dev/null
cd "$work"   # nothing of the checkout from here on: the installed collection only

recap() {  # recap LOG: the localhost recap line, failing unless failed=0
  local line
  line=$(grep -E '^localhost +:' "$1" || true)
  echo "  $line"
  case $line in *" failed=0 "*) ;; *) cat "$1" >&2; return 1 ;; esac
}

echo "- the playbooks parse, the roles' argument specs read"
for pb in site run_install run_uninstall; do
  ansible-playbook --syntax-check "ditrit.workflows.$pb" > syntax.log 2>&1 || { cat syntax.log >&2; exit 1; }
done
for role in consul_cluster wf_engine wf_manager wf_service wf_worker; do
  ansible-doc -t role "ditrit.workflows.$role" > role.log 2>&1 || { cat role.log >&2; exit 1; }
  if grep -q WARNING role.log; then cat role.log >&2; exit 1; fi
done
echo "  site, run_install, run_uninstall: syntax ok; ansible-doc -t role: 5 roles"

echo "- ad-hoc tosca_model"
ansible localhost -m ditrit.workflows.tosca_model \
  -a "name=smoke src=$root/examples/seed_example/app.yaml space=$space" > adhoc.log 2>&1 \
  || { cat adhoc.log >&2; exit 1; }
grep -q 'CHANGED' adhoc.log || { cat adhoc.log >&2; echo "core-smoke: the upload changed nothing" >&2; exit 1; }
sed -n 1p adhoc.log | sed 's/^/  /'

echo "- ditrit.workflows.run_install"
ansible-playbook ditrit.workflows.run_install -e "wf_space=$space" > install1.log 2>&1 || { cat install1.log >&2; exit 1; }
recap install1.log
grep -q 'install seed_example/demo: succeeded' install1.log && grep -q '19 node instances: 19 started' install1.log \
  || { cat install1.log >&2; echo "core-smoke: the install did not succeed" >&2; exit 1; }

echo "- ditrit.workflows.run_install again (changes nothing)"
ansible-playbook ditrit.workflows.run_install -e "wf_space=$space" > install2.log 2>&1 || { cat install2.log >&2; exit 1; }
recap install2.log
grep -qE '^localhost +:.* changed=0 ' install2.log || { cat install2.log >&2; echo "core-smoke: the second install changed something" >&2; exit 1; }

echo "- ditrit.workflows.run_uninstall"
ansible-playbook ditrit.workflows.run_uninstall -e "wf_space=$space" -e wf_remove_instance=true > uninstall.log 2>&1 \
  || { cat uninstall.log >&2; exit 1; }
recap uninstall.log
grep -q 'uninstall seed_example/demo: succeeded' uninstall.log && grep -q '19 node instances: 19 deleted' uninstall.log \
  || { cat uninstall.log >&2; echo "core-smoke: the uninstall did not succeed" >&2; exit 1; }
echo "core-smoke: ansible-core $core parses the playbooks and role specs and runs the modules (tosca_model, tosca_instance, tosca_workflow install/uninstall, tosca_instance_info)"
