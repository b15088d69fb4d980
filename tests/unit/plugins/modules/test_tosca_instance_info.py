# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_instance_info on a real embedded Space."""
from __future__ import annotations


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
