# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_instance on a real embedded Space."""
from __future__ import annotations

import os
from collections import Counter

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


def test_a_changed_model_moves_an_instance_not_installed_without_a_run(run_module, space_file, model, tmp_path,
                                                                       seed_model, engine, open_space):
    """Not installed: the instance gets the new generation (A 3 -> 2 per host: 16 nodes), no run."""
    run_module("tosca_instance", model=model, name="prod", space=space_file)
    text = open(seed_model, encoding="utf-8").read().replace("default_instances: 3, max", "default_instances: 2, max")
    v2 = tmp_path / "v2.yaml"
    v2.write_text(text, encoding="utf-8")
    r = run_module("tosca_model", name=model, src=str(v2), space=space_file)
    assert r.changed and r["instances"] < 19
    r = run_module("tosca_instance", _check=True, model=model, name="prod", space=space_file)
    assert r.changed and r["nodes"] == 16 and "plan" not in r and "not installed" in r.msg
    assert r["update"]["obsolete"] == ["A_2", "A_5", "A_8"]
    r = run_module("tosca_instance", model=model, name="prod", space=space_file)
    assert not r.failed and r.changed and r["up_to_date"] and r["nodes"] == 16 and "run" not in r
    assert engine.instance_runs(open_space(space_file), model, "prod") == []
    again = run_module("tosca_instance", model=model, name="prod", space=space_file)
    assert not again.changed and again["nodes"] == 16 and again["update"]["novel"] == []


def test_counts_at_creation_are_kept(run_module, space_file, model, engine, open_space):
    r = run_module("tosca_instance", _check=True, model=model, name="prod", counts={"A": 1}, space=space_file)
    assert r.changed and r["nodes"] == 13
    r = run_module("tosca_instance", model=model, name="prod", counts={"A": "1"}, space=space_file)
    assert r.changed and r["nodes"] == 13
    assert engine.deployments.instance_head(open_space(space_file), model, "prod")["counts"] == {"A": 1}
    assert not run_module("tosca_instance", model=model, name="prod", counts={"A": 1}, space=space_file).changed
    # left out: the instance keeps its count
    assert not run_module("tosca_instance", model=model, name="prod", space=space_file).changed


@pytest.mark.parametrize("counts, words", [
    ({"A": "x"}, "counts: template A: 'x' is not a count (an integer, 0 or more)"),
    ({"A": -1}, "counts: template A: -1 is not a count (an integer, 0 or more)"),
    ({"A": 9}, "instance seed/prod: template A: 9 instances per host is outside min_instances 1 .. max_instances 5"),
    ({"Z": 1}, "instance seed/prod: the model has no template Z (templates: A, B, C, D, srvA, srvB, srvC, srvD)"),
])
def test_bad_counts_fail_in_one_line_and_write_nothing(run_module, space_file, model, open_space, counts, words):
    def keys():
        return open_space(space_file, prefix=None).keys("")
    before = keys()
    r = run_module("tosca_instance", model=model, name="prod", counts=counts, space=space_file)
    assert r.failed and r.msg == words     # at creation
    assert keys() == before
    assert run_module("tosca_instance", model=model, name="prod", space=space_file).changed
    before = keys()
    r = run_module("tosca_instance", model=model, name="prod", counts=counts, space=space_file)
    assert r.failed and r.msg == words     # on an existing instance
    assert keys() == before


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


def test_an_installed_instance_is_updated_then_scaled(run_module, space_file, model, engine, open_space, seed_model):
    """Seed example installed, then version 2: check mode gives the plan and writes nothing, the
    update installs the 9 novel node instances only, a second run changes nothing, counts scale."""
    inst = dict(model=model, name="prod", space=space_file)
    assert run_module("tosca_instance", **inst).changed
    assert run_module("tosca_workflow", model=model, instance="prod", space=space_file)["counts"] == {"started": 19}
    assert run_module("tosca_model", name=model, src=os.path.join(os.path.dirname(seed_model), "app_v2.yaml"), space=space_file).changed
    before = open_space(space_file, prefix=None).keys("")
    would = run_module("tosca_instance", _check=True, _diff=True, **inst)
    assert not would.failed and would.changed, would.msg
    assert open_space(space_file, prefix=None).keys("") == before
    assert would["update"]["novel"] == ["A_9", "A_10", "A_11", "A_12", "A_13", "A_14", "A_15", "E_0", "srvA_3"]
    assert would["nodes"] == 28 and would["plan"]["counts"]["operations"] == 155
    assert len(would["plan"]["operations"]) == 155
    plan = engine.plan(open_space(space_file), "update", model, "prod")
    assert would["plan"]["counts"] == plan["counts"]
    added = set(would["diff"]["after"].splitlines()) - set(would["diff"]["before"].splitlines())
    assert sorted(line.split(":")[0] for line in added) == sorted(would["update"]["novel"])
    assert "A_9: A (tosca.nodes.SoftwareComponent) on srvA_0" in added

    done = run_module("tosca_instance", **inst)
    assert not done.failed and done.changed, done.msg
    assert done["run"]["status"] == "succeeded" and done["run"]["counts"] == {"started": 28}
    assert done["nodes"] == 28 and done["up_to_date"]
    again = run_module("tosca_instance", **inst)
    assert not again.changed and "run" not in again and again["update"]["novel"] == []

    before = open_space(space_file, prefix=None).keys("")
    would = run_module("tosca_instance", _check=True, counts={"A": 3}, **inst)
    assert would.changed and would["nodes"] == 24 and open_space(space_file, prefix=None).keys("") == before
    scaled = run_module("tosca_instance", _diff=True, counts={"A": 3}, **inst)
    assert scaled.changed and scaled["update"]["obsolete"] == ["A_9", "A_10", "A_11", "A_15"], scaled.result
    assert scaled["run"]["counts"] == {"started": 24} and scaled["nodes"] == 24
    removed = set(scaled["diff"]["before"].splitlines()) - set(scaled["diff"]["after"].splitlines())
    assert sorted(line.split(":")[0] for line in removed) == ["A_10", "A_11", "A_15", "A_9"]
    assert not run_module("tosca_instance", counts={"A": 3}, **inst).changed

    def op(node, name, rel):
        return (node, name, rel and (rel["source"], rel["target"]))
    ran = Counter(op(e["node"], e["name"], e.get("relationship")) for e in
                  engine.trace(open_space(space_file), model, "prod", run_id=scaled["run"]["run_id"])
                  if e["kind"] == "operation")
    assert ran == Counter(op(o["node"], o["operation"], o.get("relationship")) for o in would["plan"]["operations"])
    assert sum(ran.values()) == would["plan"]["counts"]["operations"] > 0


def test_a_run_of_another_workflow_in_progress(run_module, space_file, model, seed_model):
    """Nothing to change: the task passes; something to change: it fails, naming the run."""
    inst = dict(model=model, name="prod", space=space_file)
    run_module("tosca_instance", **inst)
    started = run_module("tosca_workflow", model=model, instance="prod", wait=False, space=space_file)
    assert started["status"] == "running"     # no worker runs it
    assert not run_module("tosca_instance", **inst).changed
    run_module("tosca_model", name=model, src=os.path.join(os.path.dirname(seed_model), "app_v2.yaml"),
               space=space_file)
    for check in (True, False):
        r = run_module("tosca_instance", _check=check, **inst)
        assert r.failed and r.msg == ("instance seed/prod has a run in progress: %s (install); it cannot be "
                                      "updated before it ends" % started["run_id"])


def test_remove_instances_chooses_what_a_scale_in_removes(run_module, space_file, model, engine, open_space):
    """The seed installed; counts A=2 with remove_instances [A_0, A_4]: those go on srvA_0 and
    srvA_1, srvA_2 loses its highest (A_8); check mode plans exactly that and writes nothing; the
    same task again changes nothing (the names are gone); naming one that would stay fails in one
    line, nothing written."""
    inst = dict(model=model, name="prod", space=space_file)
    assert run_module("tosca_instance", **inst).changed
    assert run_module("tosca_workflow", model=model, instance="prod", space=space_file)["counts"] == {"started": 19}
    before = open_space(space_file, prefix=None).keys("")
    bad = run_module("tosca_instance", counts={"A": 2}, remove_instances=["A_1", "A_2"], **inst)
    assert bad.failed and "A_1 would stay" in bad.msg and "\n" not in bad.msg, bad.msg
    would = run_module("tosca_instance", _check=True, counts={"A": 2}, remove_instances=["A_0", "A_4"], **inst)
    assert would.changed and would["update"]["obsolete"] == ["A_0", "A_4", "A_8"], would.result
    assert open_space(space_file, prefix=None).keys("") == before
    done = run_module("tosca_instance", counts={"A": 2}, remove_instances=["A_0", "A_4"], **inst)
    assert done.changed and done["update"]["obsolete"] == ["A_0", "A_4", "A_8"], done.result
    assert done["run"]["status"] == "succeeded" and done["run"]["counts"] == {"started": 16}
    nodes = engine.status(open_space(space_file), model, "prod")["nodes"]
    assert sorted(n for n in nodes if n.startswith("A_")) == ["A_1", "A_2", "A_3", "A_5", "A_6", "A_7"]
    again = run_module("tosca_instance", counts={"A": 2}, remove_instances=["A_0", "A_4"], **inst)
    assert not again.failed and not again.changed, again.result
