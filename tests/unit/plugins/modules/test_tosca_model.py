# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ditrit.workflows.tosca_model on a real embedded Space: upload, idempotence, check and diff modes,
validation errors that write nothing, removal."""
from __future__ import annotations

import os

import pytest

SMALL = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: srv
    srv:
      type: tosca.nodes.Compute
"""

BROKEN = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: nowhere
"""


@pytest.fixture
def write(tmp_path):
    def _write(name, text):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return _write


def test_upload_reports_what_the_model_defines(run_module, space_file, seed_model):
    r = run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    assert not r.failed, r.msg
    assert r.changed
    assert r["templates"] == ["A", "B", "C", "D", "srvA", "srvB", "srvC", "srvD"]
    assert {"install", "uninstall"} <= set(r["workflows"])
    assert r["instances"] == 19
    assert "diff" not in r  # only in diff mode


def test_same_model_again_is_unchanged(run_module, space_file, seed_model):
    first = run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    again = run_module("tosca_model", name="seed", src=seed_model, space=space_file, _diff=True)
    assert not again.failed and not again.changed
    assert again["digest"] == first["digest"]
    assert "diff" not in again


def test_check_mode_validates_and_writes_nothing(run_module, space_file, seed_model, write, open_space):
    r = run_module("tosca_model", _check=True, name="seed", src=seed_model, space=space_file)
    assert not r.failed and r.changed and r["instances"] == 19
    assert not os.path.exists(space_file)
    run_module("tosca_model", name="small", src=write("small.yaml", SMALL), space=space_file)
    before = open_space(space_file, prefix=None).keys("")
    r = run_module("tosca_model", _check=True, name="seed", src=seed_model, space=space_file)
    assert r.changed
    assert open_space(space_file, prefix=None).keys("") == before
    r = run_module("tosca_model", _check=True, name="small", src=write("small.yaml", SMALL), space=space_file)
    assert not r.changed
    # check mode still validates
    r = run_module("tosca_model", _check=True, name="bad", src=write("bad.yaml", BROKEN), space=space_file)
    assert r.failed and "nowhere" in r.msg


def test_diff_mode_shows_the_stored_source_against_the_new_one(run_module, space_file, write):
    v1 = write("app.yaml", SMALL)
    r = run_module("tosca_model", _diff=True, name="app", src=v1, space=space_file)
    assert r["diff"]["before"] == ""
    assert r["diff"]["after"] == SMALL
    v2 = write("app2.yaml", SMALL.replace("srv:\n", "srv:\n      description: the server\n"))
    r = run_module("tosca_model", _diff=True, _check=True, name="app", src=v2, space=space_file)
    assert r.changed
    assert r["diff"]["before"] == SMALL
    assert "the server" in r["diff"]["after"]
    assert r["diff"]["after_header"].endswith("app2.yaml")


def test_broken_model_fails_with_parser_message_and_writes_nothing(run_module, space_file, write, open_space):
    run_module("tosca_model", name="ok", src=write("ok.yaml", SMALL), space=space_file)
    before = open_space(space_file, prefix=None).keys("")
    path = write("broken.yaml", BROKEN)
    r = run_module("tosca_model", name="broken", src=path, space=space_file)
    assert r.failed and not r.changed
    assert "broken.yaml" in r.msg and "nowhere" in r.msg
    assert "Traceback" not in r.msg
    assert r["error_type"] == "ToscaError"
    assert open_space(space_file, prefix=None).keys("") == before


def test_yaml_syntax_error(run_module, space_file, write):
    r = run_module("tosca_model", name="x", src=write("syntax.yaml", "topology_template: [\n"), space=space_file)
    assert r.failed and "syntax.yaml" in r.msg


def test_bad_name_is_refused(run_module, space_file, seed_model):
    r = run_module("tosca_model", name="no/slashes", src=seed_model, space=space_file)
    assert r.failed and "no/slashes" in r.msg


def test_absent(run_module, space_file, seed_model):
    run_module("tosca_model", name="seed", src=seed_model, space=space_file)
    run_module("tosca_instance", model="seed", name="one", space=space_file)
    r = run_module("tosca_model", name="seed", state="absent", space=space_file)
    assert r.failed and "instances" in r.msg
    run_module("tosca_instance", model="seed", name="one", state="absent", space=space_file)
    r = run_module("tosca_model", _check=True, name="seed", state="absent", space=space_file)
    assert r.changed
    r = run_module("tosca_model", name="seed", state="absent", space=space_file)
    assert not r.failed and r.changed
    r = run_module("tosca_model", name="seed", state="absent", space=space_file)
    assert not r.failed and not r.changed


def test_src_required_when_present(run_module, space_file):
    r = run_module("tosca_model", name="seed", space=space_file)
    assert r.failed and "src" in r.msg


def _texts(warnings):
    """Warning texts as the module printed them: strings, or (ansible-core >= 2.19) summaries."""
    return [w if isinstance(w, str) else w["event"]["msg"] for w in warnings]


UNRUN = SMALL.replace("        - host: srv\n", """        - host: srv
      interfaces:
        my.interfaces.Admin:
          rotate_keys: op.sh
""")


def test_implementation_no_workflow_runs_is_a_warning_not_an_error(run_module, space_file, write, open_space):
    """Issue 16 (never silently ignored): the module succeeds, returns the line in Ansible's
    ``warnings`` list (module.warn, shown by the controller), in check mode too; and
    tosca_instance_info shows it for an instance of that model version."""
    write("op.sh", "true\n")
    src = write("app.yaml", UNRUN)
    line = ("app.yaml: topology_template.node_templates.app: implementation of Admin.rotate_keys is "
            "never run: no workflow of node type tosca.nodes.SoftwareComponent calls it")
    for check in (True, False):
        r = run_module("tosca_model", _check=check, name="app", src=src, space=space_file)
        assert not r.failed and r.changed, r.result
        assert _texts(r["warnings"]) == [line]
    r = run_module("tosca_instance", name="prod", model="app", space=space_file)
    assert not r.failed, r.result
    info = run_module("tosca_instance_info", model="app", instance="prod", space=space_file)
    assert not info.failed and _texts(info["warnings"]) == [line]
    clean = run_module("tosca_model", name="small", src=write("small.yaml", SMALL), space=space_file)
    assert "warnings" not in clean.result


SEVERAL = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: nowhere
    db:
      type: tosca.nodes.Database
      properties: {name: 5}
    srv:
      type: tosca.nodes.Compute
      capabilities: {scalable: {properties: {default_instances: 9, max_instances: 2}}}
"""


def test_every_problem_is_returned_as_a_list(run_module, space_file, write, open_space):
    """Three independent problems: ``problems`` lists each (file, YAML path, node), ``msg`` sums
    them up on one line, nothing is written."""
    run_module("tosca_model", name="ok", src=write("ok.yaml", SMALL), space=space_file)
    before = open_space(space_file, prefix=None).keys("")
    path = write("several.yaml", SEVERAL)
    r = run_module("tosca_model", name="several", src=path, space=space_file)
    assert r.failed and not r.changed
    assert r["error_type"] == "ToscaProblems"
    assert r.msg.startswith("3 problems in %s, the first: " % path) and "\n" not in r.msg
    problems = r["problems"]
    assert len(problems) == 3
    assert "node_templates.app.requirements[0].host" in problems[0] and "nowhere" in problems[0]
    assert "node_templates.db.properties.name" in problems[1] and "5 is not a string" in problems[1]
    assert "node_templates.srv.capabilities.scalable" in problems[2] and "default_instances=9" in problems[2]
    assert all(p.startswith(path + ": ") for p in problems)
    assert open_space(space_file, prefix=None).keys("") == before
