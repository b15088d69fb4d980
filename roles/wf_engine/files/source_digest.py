"""Prints the sha256 of the engine's source (pyproject.toml, README.md and every .py under the
package directory), so that the hosts reinstall the engine only when it changed."""
import hashlib
import os
import sys

root = sys.argv[1]
h = hashlib.sha256()
files = ["pyproject.toml", "README.md"]
pkg = os.path.join(root, "plugins", "module_utils", "wfengine")
for d, dirs, names in os.walk(pkg):
    dirs[:] = sorted(x for x in dirs if x != "__pycache__")
    files.extend(os.path.relpath(os.path.join(d, n), root) for n in sorted(names) if n.endswith(".py"))
for rel in files:
    h.update(rel.encode() + b"\0")
    with open(os.path.join(root, rel), "rb") as f:
        h.update(f.read() + b"\0")
print(h.hexdigest())
