"""Builds the engine's wheel from the collection's bundled source, on the controller.

    build_wheel.py COLLECTION_ROOT OUT_DIR

Copies pyproject.toml, README.md and the package directory into a scratch directory (so that the
build writes nothing into the collection), runs ``pip wheel --no-deps`` there and prints the path
of the wheel on its last line.  When this Python already has the build backend pyproject.toml asks
for, the build uses it (``--no-build-isolation``: nothing downloaded, much faster); otherwise pip
fetches it into an isolated build environment."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile


def backend_present(pyproject):
    """True when every build requirement of pyproject.toml is installed here."""
    try:
        import tomllib
        from importlib.metadata import version, PackageNotFoundError
        from packaging.requirements import Requirement
    except ImportError:
        try:
            from pip._vendor import tomli as tomllib
            from pip._vendor.packaging.requirements import Requirement
            from importlib.metadata import version, PackageNotFoundError
        except ImportError:
            return False
    with open(pyproject, "rb") as f:
        requires = tomllib.load(f).get("build-system", {}).get("requires", [])
    for spec in requires:
        req = Requirement(spec)
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                return False
        except PackageNotFoundError:
            return False
    return True


root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with tempfile.TemporaryDirectory(prefix="wfengine-build-") as tmp:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(root, name), tmp)
    shutil.copytree(os.path.join(root, "plugins", "module_utils", "wfengine"),
                    os.path.join(tmp, "plugins", "module_utils", "wfengine"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, tmp]
    if backend_present(os.path.join(tmp, "pyproject.toml")):
        cmd.insert(4, "--no-build-isolation")
    proc = subprocess.run(cmd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        sys.exit("build_wheel: pip wheel failed (exit %d)" % proc.returncode)
wheels = sorted(glob.glob(os.path.join(out, "wfengine-*.whl")), key=os.path.getmtime)
if not wheels:
    sys.exit("build_wheel: no wheel in %s" % out)
print(wheels[-1])
