# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_instance on a real embedded Space."""
from __future__ import annotations

import pytest


@pytest.fixture
def model(run_module, space_file, seed_model):
    r = run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    assert not r.failed, r.msg
    return "seed"


def test_create_then_again_is_unchanged(run_module, space_file, model):
    r = run_module("tosca_instance", model=model, name="prod", space=space_file)
    assert not r.failed, r.msg
    assert r.changed and r["nodes"] == 19 and r["up_to_date"]
    again = run_module("tosca_instance", model=model, instance="prod", space=space_file)  # alias
    assert not again.failed and not again.changed
    assert again["nodes"] == 19 and again["model_digest"] == r["model_digest"]


def test_check_mode(run_module, space_file, model, open_space):
    before = open_space(space_file, prefix=None).keys("")
    r = run_module("tosca_instance", _check=True, model=model, name="prod", space=space_file)
    assert not r.failed and r.changed and r["nodes"] == 19
    assert open_space(space_file, prefix=None).keys("") == before


def test_check_mode_on_a_model_not_uploaded_yet_warns(run_module, space_file):
    r = run_module("tosca_instance", _check=True, model="later", name="prod", space=space_file)
    assert not r.failed and r.changed
    assert "later" in str(r["warnings"]), r.result


def test_unknown_model_fails(run_module, space_file, model):
    r = run_module("tosca_instance", model="nope", name="prod", space=space_file)
    assert r.failed and "nope" in r.msg


def test_absent(run_module, space_file, model, open_space):
    run_module("tosca_instance", model=model, name="prod", space=space_file)
    r = run_module("tosca_instance", _check=True, model=model, name="prod", state="absent", space=space_file)
    assert r.changed
    assert any("/prod/" in k for k in open_space(space_file, prefix=None).keys(""))
    r = run_module("tosca_instance", model=model, name="prod", state="absent", space=space_file)
    assert not r.failed and r.changed
    assert not any("/prod/" in k for k in open_space(space_file, prefix=None).keys(""))
    r = run_module("tosca_instance", model=model, name="prod", state="absent", space=space_file)
    assert not r.failed and not r.changed


def test_a_changed_model_leaves_the_instance_as_it_is(run_module, space_file, model, tmp_path, seed_model):
    run_module("tosca_instance", model=model, name="prod", space=space_file)
    text = open(seed_model, encoding="utf-8").read().replace("default_instances: 3, max", "default_instances: 2, max")
    v2 = tmp_path / "v2.yaml"
    v2.write_text(text, encoding="utf-8")
    r = run_module("tosca_model", name=model, src=str(v2), space=space_file)
    assert r.changed and r["instances"] < 19
    r = run_module("tosca_instance", model=model, name="prod", space=space_file)
    assert not r.changed and not r["up_to_date"] and r["nodes"] == 19


def test_required_arguments(run_module, space_file):
    r = run_module("tosca_instance", model="seed", space=space_file)
    assert r.failed and "name" in r.msg


TYPED_INPUTS = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    workers: {type: integer, default: 1}
    ports: {type: list, entry_schema: {type: tosca.datatypes.network.PortDef}, default: [80]}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {default_instances: {get_input: workers}, max_instances: 3}}
"""


def test_inputs_are_checked_against_their_types(run_module, space_file, tmp_path, open_space):
    """Typed inputs (TOSCA 1.3 3.6.14): wrong values fail the task, every one listed in
    ``problems``, and no instance is created; text that is an integer is accepted (Jinja)."""
    src = tmp_path / "typed.yaml"
    src.write_text(TYPED_INPUTS)
    assert not run_module("tosca_model", name="typed", src=str(src), space=space_file).failed
    r = run_module("tosca_instance", model="typed", name="bad", space=space_file,
                   inputs={"workers": "two", "ports": [80, 0]})
    assert r.failed and r["error_type"] == "ToscaProblems"
    assert r["problems"] == ["instance typed/bad: input ports[1]: 0 is not in_range [1, 65535]",
                             "instance typed/bad: input workers: 'two' is not an integer"]
    assert not open_space(space_file).keys("inst/typed/")
    r = run_module("tosca_instance", model="typed", name="big", space=space_file, inputs={"workers": 5})
    assert r.failed and "problems" not in r
    assert r.msg == ("instance typed/big: template vm: scaling needs 0 <= min_instances <= default_instances <= "
                     "max_instances, got min_instances=1, default_instances=5 (input workers), max_instances=3")
    r = run_module("tosca_instance", model="typed", name="ok", space=space_file, inputs={"workers": "3"})
    assert not r.failed and r["nodes"] == 3
