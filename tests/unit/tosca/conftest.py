# -*- coding: utf-8 -*-
"""Fixtures of the TOSCA layer tests: tiny YAML files written to tmp_path."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

HEADER = "tosca_definitions_version: tosca_simple_yaml_1_3\n"


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., str]:
    """write(name, body, header=True) -> path; ``body`` is dedented, the version line prepended."""

    def _write(name: str, body: str = "", header: bool = True) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((HEADER if header else "") + textwrap.dedent(body), encoding="utf-8")
        return str(path)

    return _write
