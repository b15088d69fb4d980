#!/usr/bin/env bash
# ansible-test on the collection, offline-friendly, from any checkout.
#
#   scripts/ansible-test.sh [--core X.Y] COMMAND [ansible-test options...]
#
# Used by scripts/sanity.sh (COMMAND sanity) and scripts/units.sh (COMMAND units).
#
# ansible-core: without --core, the ansible-test on PATH runs (scripts/test.sh puts .venv,
# ansible-core 2.19, first).  With --core X.Y, ansible-core X.Y.* (the newest of the series the
# package index offers) in a virtual environment of its own, .cache/ansible-core-X.Y/, created by
# the first run and reused afterwards (scripts/core-venv.sh); when the ansible-core on PATH already
# is X.Y, that one runs.
#
# The collection tree: ansible-test wants the collection at .../ansible_collections/ditrit/workflows/,
# so the files git knows (tracked, plus untracked ones not ignored, so work in progress is checked
# too), less what galaxy.yml's build_ignore keeps out of the collection (bench/, .ci/, molecule/,
# ...), are copied to a temporary tree of that shape and the test runs there, in a git repository of
# its own (ansible-test asks git for the files when there is one, and so sees exactly these).  The
# script exits with ansible-test's status.
#
# pip: ansible-test bootstraps pip in the virtual environments it creates (each sanity test's,
# units --venv) with a get-pip script downloaded from a host this machine cannot reach; a stand-in
# is written to its cache first (~/.ansible/test/cache/get_pip_<version>.py): it installs the pip
# bundled with Python (ensurepip), then the pinned pip (and, for ansible-core 2.17, setuptools and
# wheel) through the package index pip is configured with.  The tests' requirements come from that
# index too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

core=
if [ "${1:-}" = --core ]; then
  core=${2:?--core wants an ansible-core release series, e.g. 2.17}
  shift 2
fi
command=${1:?usage: scripts/ansible-test.sh [--core X.Y] COMMAND [options...]}
shift

# ---- the ansible-core to test with ---------------------------------------------------------
core_on_path() {  # the X.Y of the ansible-core python3 on PATH imports, or nothing
  python3 -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))' 2>/dev/null || true
}
if [ -n "$core" ] && [ "$(core_on_path)" != "$core" ]; then
  # ansible-test builds the environments of its tests (pylint, yamllint, pytest, ...) from its
  # pinned requirements; the environment it runs from needs ansible-core alone.
  bin=$("$root/scripts/core-venv.sh" "$core")
  export PATH="$bin:$PATH"
fi
echo "$(ansible-test --version) ($(command -v ansible-test))" >&2

# ---- the get-pip stand-in ------------------------------------------------------------------
pip_version=$(python3 - <<'PYEOF'
from ansible_test._internal.python_requirements import get_venv_packages
class _P:  # only .version is read
    version = "3.11"
print(get_venv_packages(_P())["pip"])
PYEOF
)
cache="$HOME/.ansible/test/cache"
# ansible-test builds its test environments under ~/.ansible/test/venv, keyed by requirements, not
# by checkout: two runs at once (two checkouts, or CI while someone works) rebuild the same one
# under each other (seen: the import test's environment without PyYAML, 84 failures).  Runs take
# turns on this lock.
mkdir -p "$cache"
exec 9>"$HOME/.ansible/test/.ditrit-workflows.lock"
flock 9
standin="$cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$standin" ] || ! grep -q 'ditrit.workflows stand-in' "$standin"; then
  mkdir -p "$cache"
  cat > "$standin.tmp" <<PYEOF
"""ditrit.workflows stand-in for ansible-test's get-pip-${pip_version}.py (written by scripts/ansible-test.sh).

ansible-test runs this in an empty virtual environment with pip's options and the packages to
install (pip==${pip_version}); the real script carries a pip wheel, this one takes the pip bundled with
Python, then installs what was asked through the configured package index.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)
PYEOF
  mv "$standin.tmp" "$standin"
fi

# ---- the collection tree -------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/wf-ansible-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ditrit/workflows"
mkdir -p "$dest"
cd "$root"
# What the collection ships (as ansible-galaxy matches build_ignore: a pattern against the path or
# any of its parent directories).
git ls-files -z --cached --others --exclude-standard | python3 -c '
import fnmatch, os, sys, yaml
ignore = (yaml.safe_load(open("galaxy.yml")) or {}).get("build_ignore") or []
def shipped(path):
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        if any(fnmatch.fnmatch(sub, p) or fnmatch.fnmatch(parts[i - 1], p) for p in ignore):
            return False
    return os.path.isfile(path)
files = [f for f in sys.stdin.read().split("\0") if f and shipped(f)]
sys.stdout.write("".join(f + "\0" for f in files))
' | tar --null -T - -cf - | tar -C "$dest" -xf -

cd "$dest"
git init -q . && git add -A && git -c user.name=ansible-test -c user.email=ansible-test@localhost commit -qm ditrit.workflows
ansible-test "$command" --color no "$@"
