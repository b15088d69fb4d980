# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets through the modules (issue 18 item 1), on a real embedded Space: the results of
tosca_instance, tosca_workflow and tosca_instance_info (logs, trace, outputs) never hold a
secret the operation received, and a plain value given for a sensitive input is refused and
masked in the module's result (its ``invocation`` included).

Here, not in modules/: the model's secrets include Ansible Vault files, made with ansible-vault
and decrypted with ansible-core's vault library, controller code that ansible-test units keeps
away from the tests of modules/ (scripts/units.sh); pytest runs this file."""
from __future__ import annotations

import json

from secret_models import assert_clean, assert_received, prepare


def test_module_results_hold_no_secret(run_module, space_file, tmp_path, monkeypatch):
    secrets, folder, out, env = prepare(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = run_module("tosca_model", name="m", src=str(folder), space=space_file)
    assert not r.failed, r
    r = run_module("tosca_instance", model="m", name="i", space=space_file,
                   inputs={"out_dir": str(out), "db_password": {"get_secret": ["env", "WF_TEST_INPUT_SECRET"]}})
    assert not r.failed and r.changed, r
    r = run_module("tosca_workflow", model="m", instance="i", space=space_file)
    assert not r.failed and r["status"] == "succeeded", r
    assert_received(out, secrets)
    assert_clean(json.dumps(r.result).encode(), secrets, "tosca_workflow")
    info = run_module("tosca_instance_info", model="m", instance="i", logs=True, trace=True, space=space_file)
    text = json.dumps(info.result)
    assert_clean(text.encode(), secrets, "tosca_instance_info")
    assert info["outputs"]["pw"] == {"value": "********"}
    assert any("stdout FROM_FILE=********" in (x.get("output") or "") for x in info["logs"])


def test_a_plain_sensitive_input_is_refused_and_masked(run_module, space_file, tmp_path, monkeypatch):
    secrets, folder, out, env = prepare(tmp_path)
    run_module("tosca_model", name="m", src=str(folder), space=space_file)
    r = run_module("tosca_instance", model="m", name="i", space=space_file,
                   inputs={"out_dir": str(out), "db_password": "plain-hunter2-value"})
    assert r.failed
    assert "input db_password is sensitive" in r.msg and "get_secret" in r.msg
    assert "plain-hunter2-value" not in json.dumps(r.result)
    assert r["invocation"]["module_args"]["inputs"]["out_dir"] == str(out)
