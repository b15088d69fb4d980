"""An implementation the model declares and no workflow will ever run is announced at upload (issue
16: "never silently ignored"): one line naming file, template (and requirement) and operation, in
the upload result, the model head, ``wfctl model`` (stderr, exit 0) and ``wfctl status``.

TOSCA 1.3 lets a type or template implement any operation (3.6.15 operation assignments, 5.8.5
``target_changed``), but only the operations a workflow calls run (7.2 declarative workflows)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wfengine import api, catalog, model_compiler, unused
from wfengine.errors import ToscaError
from wfengine.rules import compile_rules
from wfengine.operations import compile_operations
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE, embedded, write

WFCTL = [sys.executable, "-m", "wfengine.cli"]

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.Quiet:
    derived_from: tosca.nodes.SoftwareComponent
    interfaces:
      Standard:
        create: scripts/op.sh
    workflows:
      install:
        steps:
          only:
            activities:
              - set_state: creating
              - set_state: created
              - set_state: configuring
              - set_state: configured
              - set_state: starting
              - set_state: started
topology_template:
  node_templates:
    srv: {type: tosca.nodes.Compute}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host:
            node: srv
            relationship:
              type: tosca.relationships.HostedOn
              interfaces:
                Configure:
                  pre_configure_source: scripts/op.sh
                  target_changed: scripts/op.sh
      interfaces:
        Standard:
          create: scripts/op.sh
        my.interfaces.Admin:
          rotate_keys: scripts/op.sh
    quiet:
      type: my.Quiet
      requirements: [{host: srv}]
"""

EXPECTED = [
    "m.yaml: topology_template.node_templates.app: implementation of Admin.rotate_keys is never run: "
    "no workflow of node type tosca.nodes.SoftwareComponent calls it",
    "m.yaml: topology_template.node_templates.app.requirements[0] (host -> srv): implementation of "
    "Configure.target_changed is never run: relationship type tosca.relationships.HostedOn weaves no "
    "activity for it into a workflow its ends take part in",
    "m.yaml: topology_template.node_templates.quiet: implementation of Standard.create is never run: "
    "no workflow of node type my.Quiet calls it",
]


def _files(tmp_path: Path) -> str:
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/op.sh", "true\n")
    return write(tmp_path, "m.yaml", MODEL)


def wfctl(args, space: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WF_SPACE=str(space))
    for k in ("WF_PREFIX", "WF_BACKEND"):
        env.pop(k, None)
    return subprocess.run(WFCTL + args, env=env, cwd=str(cwd), capture_output=True, text=True,
                          timeout=120, check=False)


def test_upload_result_head_and_check_mode_list_each_unrun_implementation(tmp_path):
    path = _files(tmp_path)
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        checked = api.upload_model(space, path, "m", check=True)
        assert checked["warnings"] == EXPECTED
        assert space.keys("models/") == []                   # check mode writes nothing
        up = api.upload_model(space, path, "m")
        assert up["changed"] and up["warnings"] == EXPECTED and space.keys("models/")
        assert catalog.model_head(space, "m")["warnings"] == EXPECTED
        again = api.upload_model(space, path, "m")
        assert not again["changed"] and again["warnings"] == EXPECTED
        api.create_instance(space, "m", "i")
        assert api.status(space, "m", "i")["warnings"] == EXPECTED
    finally:
        space.close()


def test_a_model_that_runs_everything_it_declares_has_no_warning(tmp_path):
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        assert api.upload_model(space, str(EXAMPLE), "m")["warnings"] == []
        api.create_instance(space, "m", "i")
        assert "warnings" not in api.status(space, "m", "i")
    finally:
        space.close()


def test_model_warnings_of_the_loader_come_first(tmp_path, monkeypatch):
    """Contract 1: whatever the TOSCA layer appends to ``Model.warnings`` is announced too."""
    real = model_compiler.load_model

    def load_and_announce(entry, libs):
        model = real(entry, libs)
        model.warnings.append("m.yaml: topology_template.policies: stored, not run")
        return model

    monkeypatch.setattr(model_compiler, "load_model", load_and_announce)
    path = _files(tmp_path)
    assert catalog.compile_model(path)["warnings"] == ["m.yaml: topology_template.policies: stored, not run"] + EXPECTED
    assert "warnings" not in load_model(path, []).to_json()


def test_another_kind_of_workflow_extends_what_is_called(tmp_path, monkeypatch):
    """The extension point (unused.CALL_SOURCES): a source that calls ``rotate_keys`` of ``app``
    (as an imperative workflow's call_operation would) removes that warning and no other."""
    path = _files(tmp_path)
    model = load_model(path, [])
    rules = compile_rules(model)
    ops = compile_operations(model, str(tmp_path))

    def admin_calls(model, rules):
        yield "app", unused.NODE, ("Admin", "rotate_keys")

    monkeypatch.setattr(unused, "CALL_SOURCES", unused.CALL_SOURCES + [admin_calls])
    lines = unused.unused_implementations(model, ops, unused.called_operations(model, rules),
                                          file_of=lambda t: "m.yaml")
    assert lines == EXPECTED[1:]


def test_wfctl_model_prints_each_warning_on_stderr_and_exits_0(tmp_path):
    _files(tmp_path)
    space = tmp_path / "space.db"
    r = wfctl(["model", "m.yaml", "app"], space, tmp_path)
    assert r.returncode == 0, r
    assert r.stdout.startswith("model app: uploaded (3 templates")
    assert r.stderr.splitlines() == ["warning: " + line for line in EXPECTED]
    r = wfctl(["instantiate", "app", "prod"], space, tmp_path)
    assert r.returncode == 0, r
    r = wfctl(["status", "app", "prod"], space, tmp_path)
    assert r.returncode == 0 and r.stderr == "", r
    assert ["  warning: " + line for line in EXPECTED] == [x for x in r.stdout.splitlines() if "warning:" in x]


def test_operations_an_imperative_workflow_calls_are_not_reported(tmp_path):
    """TOSCA 1.3 7.3: an imperative workflow's call_operation (here the custom Admin.rotate_keys
    and the relationship's target_changed) runs those implementations: no warning for them."""
    path = _files(tmp_path)
    text = Path(path).read_text() + """\
  workflows:
    maintenance:
      steps:
        rotate:
          target: app
          activities:
            - call_operation: my.interfaces.Admin.rotate_keys
          on_success: [notify]
        notify:
          target: app
          target_relationship: host
          activities:
            - call_operation: Configure.target_changed
"""
    Path(path).write_text(text)
    warnings = catalog.compile_model(path)["warnings"]
    assert EXPECTED[2] in warnings
    assert not any("rotate_keys" in w or "target_changed" in w for w in warnings), warnings


def test_template_directives_and_node_filter_are_announced_and_copy_is_applied(tmp_path):
    """TOSCA 1.3 3.8.3: `directives` / a template's `node_filter` ask an orchestrator to select or
    substitute the node: this engine deploys it as written and says so.  `copy` makes another
    template the basis of this one (its own keys win); a copy of a copy is refused."""
    write(tmp_path, "m.yaml", """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        topology_template:
          node_templates:
            db:
              type: tosca.nodes.Compute
              directives: [select]
              node_filter: {capabilities: [{host: {properties: [{num_cpus: {in_range: [1, 4]}}]}}]}
            web:
              type: tosca.nodes.Compute
              attributes: {public_address: 192.0.2.10}
              capabilities: {scalable: {properties: {default_instances: 2}}}
            web2:
              copy: web
              attributes: {public_address: 192.0.2.11}
        """)
    compiled = catalog.compile_model(str(tmp_path / "m.yaml"))
    assert [w.split(": ", 2)[1:] for w in compiled["warnings"]] == [
        ["topology_template.node_templates.db.directives", "db: directives is stored, not applied (the template "
                                                           "is deployed as written)"],
        ["topology_template.node_templates.db.node_filter", "db: node_filter is stored, not applied (the template "
                                                            "is deployed as written)"]]
    web2 = compiled["model"].templates["web2"]
    assert web2.type == "tosca.nodes.Compute" and web2.attributes == {"public_address": "192.0.2.11"}
    assert web2.scaling.default_instances == 2
    write(tmp_path, "m2.yaml", (tmp_path / "m.yaml").read_text() + "    web3: {copy: web2}\n")
    with pytest.raises(ToscaError, match="web3: copy names web2, which itself uses copy"):
        catalog.compile_model(str(tmp_path / "m2.yaml"))
