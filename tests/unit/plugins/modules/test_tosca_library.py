# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_library on a real embedded Space."""
from __future__ import annotations

import os

import pytest

LIBRARY = """tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.nodes.App:
    derived_from: tosca.nodes.SoftwareComponent
  my.nodes.Db:
    derived_from: tosca.nodes.SoftwareComponent
"""


@pytest.fixture
def library(tmp_path):
    path = tmp_path / "components.yaml"
    path.write_text(LIBRARY, encoding="utf-8")
    return str(path)


def test_upload_then_same_again_is_unchanged(run_module, space_file, library, open_space):
    r = run_module("tosca_library", src=library, space=space_file)
    assert not r.failed, r.msg
    assert r.changed
    assert r["name"] == "components"
    assert {"my.nodes.App", "my.nodes.Db"} <= set(r["types"])
    again = run_module("tosca_library", src=library, space=space_file)
    assert not again.failed and not again.changed
    assert again["digest"] == r["digest"]
    assert [k for k in open_space(space_file, prefix=None).keys("") if "components" in k] != []


def test_check_mode_writes_nothing(run_module, space_file, library, open_space):
    r = run_module("tosca_library", _check=True, src=library, space=space_file)
    assert not r.failed and r.changed
    # the Space did not exist: check mode did not even create the file
    assert not os.path.exists(space_file)
    run_module("tosca_library", src=library, space=space_file, name="other")
    r = run_module("tosca_library", _check=True, src=library, space=space_file)
    assert r.changed
    names = [k for k in open_space(space_file, prefix=None).keys("") if "components" in k]
    assert names == []


def test_absent(run_module, space_file, library, open_space):
    run_module("tosca_library", src=library, space=space_file, name="comp")
    r = run_module("tosca_library", _check=True, state="absent", name="comp", space=space_file)
    assert r.changed
    assert any("comp" in k for k in open_space(space_file, prefix=None).keys(""))
    r = run_module("tosca_library", state="absent", name="comp", space=space_file)
    assert not r.failed and r.changed
    assert not any("comp" in k for k in open_space(space_file, prefix=None).keys(""))
    r = run_module("tosca_library", state="absent", name="comp", space=space_file)
    assert not r.failed and not r.changed


def test_argument_rules(run_module, space_file):
    r = run_module("tosca_library", state="absent", space=space_file)
    assert r.failed and "name" in r.msg
    r = run_module("tosca_library", space=space_file)
    assert r.failed and "src" in r.msg


def test_bad_library_fails_with_one_line_and_writes_nothing(run_module, space_file, tmp_path, open_space):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tosca_definitions_version: tosca_simple_yaml_1_3\nnode_types:\n"
                   "  my.X:\n    derived_from: no.such.Parent\n", encoding="utf-8")
    r = run_module("tosca_library", src=str(bad), space=space_file)
    assert r.failed
    assert "no.such.Parent" in r.msg and "bad.yaml" in r.msg
    assert "Traceback" not in r.msg
    assert open_space(space_file, prefix=None).keys("") == []


def test_missing_file_fails(run_module, space_file, tmp_path):
    r = run_module("tosca_library", src=str(tmp_path / "nope.yaml"), space=space_file)
    assert r.failed and "nope.yaml" in r.msg
