#!/usr/bin/env bash
# Install xOpera (PyPI package `opera`) into its own venv, bench/.venv-opera, for the comparison
# runs of bench/run.py.  Never a project dependency: the engine's venv is not touched.
#
# opera 0.7.0 pins PyYAML 5.4.1, which has no wheel for recent Pythons and whose sdist does not
# build with Cython 3: install cython<3 first, then build PyYAML without build isolation so that
# it sees that Cython.  Prints the venv's python on success; exits non-zero (and says why) if the
# install fails, which bench/run.py reports as "xOpera not installed".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${OPERA_VENV:-$here/.venv-opera}
version=${OPERA_VERSION:-0.7.0}
py=${PYTHON:-python3}

if [ -x "$venv/bin/opera" ] && "$venv/bin/python" -c "import opera" 2>/dev/null; then
    echo "$venv/bin/python"
    exit 0
fi
rm -rf "$venv"
"$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade "pip<25" "setuptools<70" wheel >&2
"${pip[@]}" install "cython<3" >&2
"${pip[@]}" install --no-build-isolation "PyYAML==5.4.1" >&2
"${pip[@]}" install "opera==$version" >&2
"$venv/bin/opera" --version >&2
echo "$venv/bin/python"
