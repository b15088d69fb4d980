#!/usr/bin/env bash
# ansible-test sanity on the collection, offline-friendly, from any checkout.
#
#   scripts/sanity.sh [ansible-test sanity options...]      (default: --python 3.11)
#
# ansible-test wants the collection at .../ansible_collections/ditrit/workflows/, so the files git
# knows (tracked, plus untracked ones not ignored, so work in progress is checked too), less what
# galaxy.yml's build_ignore keeps out of the collection (bench/, .ci/, ...), are copied to a
# temporary tree of that shape and the test runs there.  It exits with ansible-test's status.
#
# ansible-test bootstraps pip in the virtual environments of the sanity tests with a get-pip script
# downloaded from a host this machine cannot reach; a stand-in is written to its cache first
# (~/.ansible/test/cache/get_pip_<version>.py): it installs the pip bundled with Python (ensurepip),
# then the pinned pip through the package index pip is configured with.  The sanity requirements
# themselves come from that index too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ $# -eq 0 ]; then
  set -- --python 3.11
fi

# ---- the get-pip stand-in ------------------------------------------------------------------
pip_version=$(python3 - <<'EOF'
from ansible_test._internal.python_requirements import get_venv_packages
class _P:  # only .version is read
    version = "3.11"
print(get_venv_packages(_P())["pip"])
EOF
)
cache="$HOME/.ansible/test/cache"
standin="$cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$standin" ] || ! grep -q 'ditrit.workflows stand-in' "$standin"; then
  mkdir -p "$cache"
  cat > "$standin.tmp" <<EOF
"""ditrit.workflows stand-in for ansible-test's get-pip-${pip_version}.py (written by scripts/sanity.sh).

ansible-test runs this in an empty virtual environment with pip's options and the packages to
install (pip==${pip_version}); the real script carries a pip wheel, this one takes the pip bundled with
Python, then installs what was asked through the configured package index.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)
EOF
  mv "$standin.tmp" "$standin"
fi

# ---- the collection tree -------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/wf-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ditrit/workflows"
mkdir -p "$dest"
cd "$root"
# What the collection ships: the files git knows, less galaxy.yml's build_ignore (as
# ansible-galaxy matches it: a pattern against the path or any of its parent directories).
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
# A repository of its own, so that ansible-test sees exactly these files (it asks git when there
# is one) and leaves the temporary tree alone otherwise.
git init -q . && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
ansible-test sanity --color no "$@"
