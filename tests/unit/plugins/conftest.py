# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the module tests: the collection importable by its FQCN, and ``run_module`` which
runs a module's real ``main()`` in this process on a real embedded Space.

The modules import ``ansible_collections.ditrit.workflows...``; a session directory holds
``ansible_collections/ditrit/workflows`` as a symlink to the checkout and goes first on sys.path,
so the code under test is the working tree, imported the way AnsiballZ imports it.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from typing import Any, Dict, Iterator, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FQCN = "ansible_collections.ditrit.workflows"
SEED_MODEL = os.path.join(ROOT, "examples", "seed_example", "app.yaml")


@pytest.fixture(scope="session")
def collection_path(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("collections")
    ns = base / "ansible_collections" / "ditrit"
    ns.mkdir(parents=True)
    os.symlink(ROOT, str(ns / "workflows"))
    sys.path.insert(0, str(base))
    importlib.invalidate_caches()
    yield str(base)
    sys.path.remove(str(base))


def _patch_args(args: Dict[str, Any]):
    """The official test helper where it exists (ansible-core >= 2.19), else the older recipe."""
    try:
        from ansible.module_utils.testing import patch_module_args
        return patch_module_args(args)
    except ImportError:  # pragma: no cover - older ansible-core
        import contextlib
        from ansible.module_utils import basic
        from ansible.module_utils.common.text.converters import to_bytes

        @contextlib.contextmanager
        def _cm():
            old = basic._ANSIBLE_ARGS
            basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
            try:
                yield
            finally:
                basic._ANSIBLE_ARGS = old
        return _cm()


def _forget_warnings() -> None:
    """Warnings are collected in process-wide lists (one module run per process, normally): empty
    them so that each run reports its own."""
    from ansible.module_utils.common import warnings
    for name in ("_global_warnings", "_global_deprecations"):
        store = getattr(warnings, name, None)
        if store is not None:
            store.clear()


@contextlib.contextmanager
def _on_the_target() -> Iterator[None]:
    """A module runs in a process of its own on the target, where ansible-core 2.19+ records its
    warnings in the result.  A test that imported controller code (ansible.errors, a filter) flips
    the process to 'controller', which would print them instead: flip it back for the run."""
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core < 2.19 has no such switch
        yield
        return
    was = getattr(_internal, "is_controller", None)
    if was is None:
        yield
        return
    _internal.is_controller = False
    try:
        yield
    finally:
        _internal.is_controller = was


class ModuleRun:
    """What a module printed when it exited: its JSON result, and whether it failed."""

    def __init__(self, result: Dict[str, Any]):
        self.result = result
        self.failed = bool(result.get("failed"))
        self.changed = bool(result.get("changed"))
        self.msg = result.get("msg", "")

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def __contains__(self, key: str) -> bool:
        return key in self.result

    def __repr__(self) -> str:
        return "ModuleRun(%r)" % (self.result,)


@pytest.fixture
def run_module(collection_path, capsys):
    """run_module(module_name, _check=False, _diff=False, **args) -> ModuleRun."""

    def _run(_module: str, _check: bool = False, _diff: bool = False, **args: Any) -> ModuleRun:
        name = _module
        mod = importlib.import_module("%s.plugins.modules.%s" % (FQCN, name))
        args = dict(args, _ansible_check_mode=_check, _ansible_diff=_diff)
        capsys.readouterr()
        _forget_warnings()
        with _patch_args(args), _on_the_target():
            with pytest.raises(SystemExit):
                mod.main()
        out = capsys.readouterr().out
        try:
            return ModuleRun(json.loads(out))
        except ValueError:
            raise AssertionError("module %s printed no JSON result: %r" % (name, out))

    return _run


@pytest.fixture
def space_file(tmp_path) -> str:
    return str(tmp_path / "space" / "space.db")


@pytest.fixture
def engine(collection_path):
    """The engine as the modules import it (same module objects, same in-process locks)."""
    return importlib.import_module(FQCN + ".plugins.module_utils.wfengine.api")


@pytest.fixture
def open_space(engine):
    """open_space(path) -> Space; closed at the end of the test."""
    opened = []

    def _open(path: str, prefix: Optional[str] = "wf/"):
        space = engine.open_space(engine.SpaceOptions(backend="embedded", path=path, prefix=prefix))
        opened.append(space)
        return space

    yield _open
    for s in opened:
        s.close()


@pytest.fixture
def seed_model() -> str:
    if not os.path.exists(SEED_MODEL):
        pytest.skip("examples/seed_example/app.yaml is missing")
    return SEED_MODEL
