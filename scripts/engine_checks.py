# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's shape, checked: file length, function complexity, import circles, mypy strict.

Issue 22's targets for the engine (``plugins/module_utils/wfengine``) are a newcomer's: no file over
500 lines, no function over radon's grade C (cyclomatic complexity 20), no circle between the
engine's modules, ``mypy --strict`` clean.  What does not meet them yet is listed, one finding per
line, in ``scripts/engine_debt.txt``: this script fails on a finding that is not listed (the code
got worse) and on a listed one that is gone (the list must shrink with the code, so it stays the
true remainder of the work).

Usage: ``python scripts/engine_checks.py [--no-mypy] [--print]`` (``--print`` writes the findings in
the debt file's format, to stdout).
"""
from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from typing import Dict, Iterator, List, Set, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join("plugins", "module_utils", "wfengine")
DEBT = os.path.join(ROOT, "scripts", "engine_debt.txt")
MAX_LINES = 500
MAX_COMPLEXITY = 20


def engine_files() -> List[str]:
    out = []
    for base, dirs, files in os.walk(os.path.join(ROOT, ENGINE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out.extend(os.path.relpath(os.path.join(base, f), ROOT)
                   for f in sorted(files) if f.endswith(".py"))
    return out


def module_name(path: str) -> str:
    rel = os.path.relpath(path, ENGINE)[:-3].replace(os.sep, ".")
    if rel.endswith(".__init__"):
        return rel[:-len(".__init__")]
    return "" if rel == "__init__" else rel


def long_files(paths: List[str]) -> Iterator[str]:
    for path in paths:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            n = sum(1 for dummy in f)
        if n > MAX_LINES:
            yield "lines %s (%d)" % (path, n)


def complex_functions(paths: List[str]) -> Iterator[str]:
    from radon.complexity import cc_visit  # the test extras install radon
    for path in paths:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            blocks = cc_visit(f.read())
        for block in blocks:
            if block.complexity > MAX_COMPLEXITY:
                yield "complexity %s:%s (%d)" % (path, block.fullname, block.complexity)


def _imports(path: str, package: str) -> Set[str]:
    """The engine modules a file imports, anywhere in it (a function-level import is a dependency
    as much as a top-level one: it only hides the circle from the interpreter)."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        parts = package.split(".") if package else []
        base = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
        prefix = ".".join(base + ([node.module] if node.module else []))
        if node.module:
            found.add(prefix)
        for alias in node.names:  # ``from . import keys`` imports a module
            found.add((prefix + "." if prefix else "") + alias.name)
    return found


def import_circles(paths: List[str]) -> Iterator[str]:
    modules = {module_name(p): p for p in paths}
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        graph[name] = {m for m in _imports(path, package) if m in modules and m != name}
    # Tarjan's strongly connected components: a component of more than one module is a circle.
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            components.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for comp in components:
        if len(comp) > 1:
            yield "circle %s" % " ".join(sorted(comp))


def mypy_errors() -> Iterator[str]:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False)   # it exits 1 when it finds errors: those are the findings
    counts: Dict[str, int] = {}
    for line in proc.stdout.splitlines():
        path, sep, rest = line.partition(":")
        if sep and " error: " in rest:
            counts[path] = counts.get(path, 0) + 1
        elif line.strip() and not sep:
            raise SystemExit("engine-checks: mypy did not run: %s" % proc.stdout.strip())
    for path in sorted(counts):
        yield "mypy %s (%d)" % (path, counts[path])


def _key(finding: str) -> str:
    """A finding without its figure: the debt list names what is over, not by how much."""
    return finding.rsplit(" (", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-mypy", action="store_true", help="skip mypy (quick runs)")
    parser.add_argument("--print", action="store_true", help="print today's findings and exit 0")
    args = parser.parse_args()
    paths = engine_files()
    findings: List[str] = (list(long_files(paths)) + list(complex_functions(paths))
                           + list(import_circles(paths)))
    if not args.no_mypy:
        findings += list(mypy_errors())
    if args.print:
        print("\n".join(findings))
        return 0
    with open(DEBT, encoding="utf-8") as f:
        listed = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    listed_keys = {_key(x) for x in listed}
    current: Dict[str, str] = {_key(x): x for x in findings}
    if args.no_mypy:
        listed_keys = {k for k in listed_keys if not k.startswith("mypy ")}
    problems: List[Tuple[str, str]] = []
    problems += [("new", current[k]) for k in sorted(set(current) - listed_keys)]
    problems += [("gone", k) for k in sorted(listed_keys - set(current))]
    for kind, finding in problems:
        if kind == "new":
            print("engine-checks: %s: over issue 22's targets and not in "
                  "scripts/engine_debt.txt" % finding)
        else:
            print("engine-checks: %s: met now; remove it from scripts/engine_debt.txt" % finding)
    print("engine-checks: %d files, %d findings, all listed as debt" % (len(paths), len(findings))
          if not problems else "engine-checks: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
