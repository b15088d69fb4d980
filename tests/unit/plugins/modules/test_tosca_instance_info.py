# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_instance_info on a real embedded Space."""
from __future__ import annotations

import importlib
import re

import yaml


def test_states_runs_and_trace(run_module, space_file, seed_model):
    run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    run_module("tosca_instance", model="seed", name="prod", space=space_file)
    r = run_module("tosca_instance_info", model="seed", instance="prod", space=space_file)
    assert not r.failed and not r.changed
    assert r["counts"] == {"initial": 19} and r["runs"] == [] and "last_run" not in r and "trace" not in r
    assert r["nodes"]["B_0"]["template"] == "B"
    assert {rel["target"] for rel in r["nodes"]["B_0"]["relationships"]} == {"srvB_0", "D_0"}

    run_module("tosca_workflow", model="seed", instance="prod", space=space_file)
    run_module("tosca_workflow", model="seed", instance="prod", workflow="uninstall", space=space_file)
    r = run_module("tosca_instance_info", _check=True, model="seed", instance="prod", trace=True,
                   workflow="install", space=space_file)
    assert not r.failed and not r.changed
    assert r["counts"] == {"deleted": 19}
    assert [x["workflow"] for x in r["runs"]] == ["install", "uninstall"]
    assert r["last_run"]["workflow"] == "uninstall" and r["last_run"]["status"] == "succeeded"
    assert r["trace"] and {e["workflow"] for e in r["trace"]} == {"install"}
    assert [e["seq"] for e in r["trace"]] == list(range(1, len(r["trace"]) + 1))
    # causal order: a server is started before the software it hosts is created
    names = [(e["node"], e["name"]) for e in r["trace"]]
    started = [i for i, x in enumerate(names) if x[0] == "srvB_0" and x[1].endswith("start")]
    created = [i for i, x in enumerate(names) if x[0] == "B_0" and x[1].endswith("create")]
    assert started and created and max(started) < min(created)

    install_id = r["runs"][0]["id"]
    r = run_module("tosca_instance_info", model="seed", instance="prod", trace=True, run_id=install_id,
                   space=space_file)
    assert {e["run"] for e in r["trace"]} == {install_id}


def test_unknown_instance_fails(run_module, space_file, seed_model):
    run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    r = run_module("tosca_instance_info", model="seed", instance="nope", space=space_file)
    assert r.failed and "nope" in r.msg


MODEL_WITH_INPUTS = """tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.nodes.Greeter:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      greeting: {type: string}
topology_template:
  inputs:
    greeting: {type: string, default: hello}
  node_templates:
    srv:
      type: tosca.nodes.Compute
    app:
      type: my.nodes.Greeter
      properties:
        greeting: {get_input: greeting}
      requirements:
        - host: srv
      interfaces:
        Standard:
          create:
            implementation: scripts/create.sh
            inputs:
              GREETING: {get_property: [SELF, greeting]}
  outputs:
    greeting:
      value: {get_property: [app, greeting]}
"""


def test_inputs_outputs_and_logs(run_module, space_file, tmp_path, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "greeter"
    (model / "scripts").mkdir(parents=True)
    (model / "app.yaml").write_text(MODEL_WITH_INPUTS, encoding="utf-8")
    (model / "scripts" / "create.sh").write_text('#!/bin/sh\necho "saying $GREETING"\n', encoding="utf-8")
    (model / "scripts" / "create.sh").chmod(0o755)
    r = run_module("tosca_model", name="greeter", src=str(model), space=space_file)
    assert not r.failed, r.msg
    r = run_module("tosca_instance", model="greeter", name="fr", inputs={"greeting": "bonjour"}, space=space_file)
    assert not r.failed and r.changed, r.msg
    run_module("tosca_instance", model="greeter", name="default", space=space_file)
    r = run_module("tosca_workflow", model="greeter", instance="fr", space=space_file, timeout=60)
    assert not r.failed, r.msg

    info = run_module("tosca_instance_info", model="greeter", instance="fr", logs=True, space=space_file)
    assert not info.failed, info.msg
    assert info["outputs"]["greeting"]["value"] == "bonjour"
    created = [x for x in info["logs"] if x["operation"].endswith("Standard.create")]
    assert len(created) == 1 and created[0]["exit_code"] == 0 and "saying bonjour" in created[0]["output"]
    assert created[0]["run"] == info["last_run"]["id"]
    assert "logs" not in run_module("tosca_instance_info", model="greeter", instance="fr", space=space_file)
    other = run_module("tosca_instance_info", model="greeter", instance="default", space=space_file)
    assert other["outputs"]["greeting"]["value"] == "hello"


def test_unknown_input_is_refused(run_module, space_file, tmp_path):
    model = tmp_path / "app.yaml"
    model.write_text(MODEL_WITH_INPUTS.replace("implementation: scripts/create.sh", "implementation: create.sh"),
                     encoding="utf-8")
    (tmp_path / "create.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    assert not run_module("tosca_model", name="g", src=str(model), space=space_file).failed
    r = run_module("tosca_instance", model="g", name="x", inputs={"nope": 1}, space=space_file)
    assert r.failed and "nope" in r.msg


WITH_SECTIONS = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    web: {type: tosca.nodes.Compute}
  groups:
    servers: {type: tosca.groups.Root, members: [web]}
  policies:
    - scale_web: {type: tosca.policies.Scaling, targets: [servers]}
  workflows:
    restart:
      steps:
        again:
          target: servers
          activities: [{call_operation: Standard.start}]
"""


def test_sections_and_an_imperative_workflow(run_module, space_file, tmp_path):
    """TOSCA 1.3 §3.6.11/§3.6.12: groups and policies come back as stored, not dropped; §7.3: a
    topology workflow runs through tosca_workflow and its step shows in the trace."""
    src = tmp_path / "m.yaml"
    src.write_text(WITH_SECTIONS, encoding="utf-8")
    assert not run_module("tosca_model", name="m", src=str(src), space=space_file).failed
    run_module("tosca_instance", model="m", name="i", space=space_file)
    r = run_module("tosca_workflow", model="m", instance="i", workflow="restart", space=space_file, timeout=60)
    assert not r.failed, r.msg
    info = run_module("tosca_instance_info", model="m", instance="i", trace=True, space=space_file)
    assert info["sections"]["groups"] == {"servers": {"type": "tosca.groups.Root", "members": ["web"]}}
    assert info["sections"]["policies"] == [{"scale_web": {"type": "tosca.policies.Scaling", "targets": ["servers"]}}]
    assert [(e["node"], e["kind"], e["name"]) for e in info["trace"]] == [
        ("web_0", "operation", "tosca.interfaces.node.lifecycle.Standard.start"), ("web_0", "step", "again")]


def test_timeline_has_one_bar_per_operation_attempt(run_module, space_file, seed_model, collection_path):
    """Issue 21: the timeline's data from a playbook is ``wfctl timeline``'s (timeline.py), one bar per
    operation event of the trace; the run is chosen by id, by workflow, or is the latest.  The filter
    that draws it is controller code: tests/unit/plugins/test_timeline_filter.py."""
    run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    run_module("tosca_instance", model="seed", name="prod", space=space_file)
    none = run_module("tosca_instance_info", model="seed", instance="prod", timeline=True, space=space_file)
    assert none.failed and none.msg == "instance seed/prod has no run yet"
    run_module("tosca_workflow", model="seed", instance="prod", space=space_file)
    run_module("tosca_workflow", model="seed", instance="prod", workflow="uninstall", space=space_file)
    r = run_module("tosca_instance_info", _check=True, model="seed", instance="prod", timeline=True,
                   workflow="install", trace=True, space=space_file)
    assert not r.failed and not r.changed, r.msg
    tl = r["timeline"]
    ops = [e for e in r["trace"] if e["kind"] == "operation"]
    assert len(ops) == 315 and len(tl["bars"]) == len(ops)
    assert [(b["seq"], b["node"], b["operation"], b["status"], b["worker"]) for b in tl["bars"]] == \
        [(e["seq"], e["node"], e["name"], e.get("status", "ok"), e["worker"]) for e in ops]
    assert tl["workflow"] == "install" and tl["run"] == r["runs"][0]["id"] and tl["status"] == "succeeded"
    assert tl["hosts"] == ["srvA_0", "srvA_1", "srvA_2", "srvB_0", "srvC_0", "srvD_0"]
    assert [b["i"] for b in tl["bars"] if b["critical"]] == tl["critical"] and tl["critical"]
    assert all(tl["t0"] <= b["start"] <= b["end"] <= tl["t1"] for b in tl["bars"])
    # every key of a bar is named in RETURN's description of the bars
    doc = yaml.safe_load(importlib.import_module(
        "ansible_collections.ditrit.workflows.plugins.modules.tosca_instance_info").RETURN)
    named = set(re.findall(r"C\((\w+)", " ".join(doc["timeline"]["contains"]["bars"]["description"])))
    assert set().union(*(b.keys() for b in tl["bars"])) <= named
    latest = run_module("tosca_instance_info", model="seed", instance="prod", timeline=True, space=space_file)
    assert latest["timeline"]["workflow"] == "uninstall" and latest["timeline"]["run"] == r["runs"][1]["id"]
    by_id = run_module("tosca_instance_info", model="seed", instance="prod", timeline=True,
                       run_id=r["runs"][0]["id"], space=space_file)
    assert by_id["timeline"]["bars"] == tl["bars"]
    other = run_module("tosca_instance_info", model="seed", instance="prod", timeline=True, workflow="scale",
                       space=space_file)
    assert other.failed and other.msg == "instance seed/prod has no run of workflow scale"
