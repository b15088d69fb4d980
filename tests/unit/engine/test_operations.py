"""compile_operations / compile_values: short and long forms, inheritance, overrides, relationships."""
import json

import pytest

from wfengine.errors import ToscaError
from wfengine.operations import compile_operations, compile_values, lookup, split_operation
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE, write

STD = "tosca.interfaces.node.lifecycle.Standard."
CFG = "tosca.interfaces.relationships.Configure."

TYPES = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.Base:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      port: {type: integer, default: 80}
    attributes:
      url: {type: string, default: none-yet}
    interfaces:
      Standard:
        inputs:
          common: shared
        create: scripts/base_create.sh
        configure:
          implementation: {primary: scripts/base_configure.sh, timeout: 30}
          inputs:
            port: {get_property: [SELF, port]}
            level: 1
          max_retries: 2
          retry_interval: 0.5
  my.Child:
    derived_from: my.Base
    interfaces:
      tosca.interfaces.node.lifecycle.Standard:
        operations:
          create:
            implementation: scripts/child_create.sh
          start: play.yml
relationship_types:
  my.Link:
    derived_from: tosca.relationships.ConnectsTo
    properties:
      weight: {type: integer, default: 3}
    interfaces:
      Configure:
        pre_configure_source:
          implementation:
            primary: scripts/pre_src.sh
            dependencies: [scripts/lib.sh]
          inputs:
            target_ip: {get_attribute: [TARGET, ip_address]}
"""


def _model(tmp_path, templates, types=TYPES, files=("scripts/base_create.sh", "scripts/base_configure.sh",
                                                    "scripts/child_create.sh", "play.yml", "scripts/pre_src.sh",
                                                    "scripts/lib.sh", "scripts/tpl_create.sh",
                                                    "scripts/add.sh")):
    for f in files:
        p = tmp_path / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/bash\n")
    write(tmp_path, "types.yaml", types)
    text = ("tosca_definitions_version: tosca_simple_yaml_1_3\nimports: [types.yaml]\n"
            "topology_template:\n  node_templates:\n" + templates)
    return load_model(write(tmp_path, "app.yaml", text), [])


TEMPLATES = """\
    srv: {type: tosca.nodes.Compute}
    db:
      type: my.Base
      requirements: [{host: srv}]
    app:
      type: my.Child
      properties: {port: 8080}
      interfaces:
        Standard:
          create:
            inputs: {extra: {get_input: greeting}}
          configure:
            implementation: scripts/tpl_create.sh
            inputs: {level: 2}
            max_retries: 0
      requirements:
        - host: srv
        - db:
            node: db
            relationship:
              type: my.Link
              properties: {weight: 7}
              interfaces:
                Configure:
                  add_target: scripts/add.sh
"""


def test_short_and_long_forms_with_interface_inputs(tmp_path):
    ops = compile_operations(_model(tmp_path, TEMPLATES), str(tmp_path))
    db = ops["db"]["node"]
    assert sorted(db) == [STD + "configure", STD + "create"]
    assert db[STD + "create"] == {"implementation": {"primary": "scripts/base_create.sh", "dependencies": [],
                                                     "timeout": None},
                                  "inputs": {"common": "shared"}, "outputs": {},
                                  "max_retries": None, "retry_interval": None}
    cfg = db[STD + "configure"]
    assert cfg["implementation"] == {"primary": "scripts/base_configure.sh", "dependencies": [], "timeout": 30}
    assert cfg["inputs"] == {"common": "shared", "port": {"get_property": ["SELF", "port"]}, "level": 1}
    assert (cfg["max_retries"], cfg["retry_interval"]) == (2, 0.5)
    # Compute has no implementation anywhere: nothing to run.
    assert ops["srv"] == {"node": {}, "relationships": {}}
    json.dumps(ops)


def test_inheritance_and_template_override(tmp_path):
    ops = compile_operations(_model(tmp_path, TEMPLATES), str(tmp_path))
    app = ops["app"]["node"]
    # my.Child replaces create (full interface name, TOSCA 1.3 'operations:' form) and adds start.
    assert app[STD + "create"]["implementation"]["primary"] == "scripts/child_create.sh"
    # The template adds an input to the inherited create, keeps the interface-level input.
    assert app[STD + "create"]["inputs"] == {"common": "shared", "extra": {"get_input": "greeting"}}
    assert app[STD + "start"]["implementation"]["primary"] == "play.yml"
    # The template replaces configure's implementation (timeout goes with it), merges inputs,
    # overrides max_retries and keeps the inherited retry_interval.
    cfg = app[STD + "configure"]
    assert cfg["implementation"] == {"primary": "scripts/tpl_create.sh", "dependencies": [], "timeout": None}
    assert cfg["inputs"]["level"] == 2 and cfg["inputs"]["port"] == {"get_property": ["SELF", "port"]}
    assert (cfg["max_retries"], cfg["retry_interval"]) == (0, 0.5)


def test_relationship_operations_by_requirement_index(tmp_path):
    ops = compile_operations(_model(tmp_path, TEMPLATES), str(tmp_path))
    rels = ops["app"]["relationships"]
    assert sorted(rels) == ["1"]          # requirement 0 (host) has no implementation
    r = rels["1"]
    assert sorted(r) == [CFG + "add_target", CFG + "pre_configure_source"]
    pre = r[CFG + "pre_configure_source"]
    assert pre["implementation"]["dependencies"] == ["scripts/lib.sh"]
    assert pre["inputs"] == {"target_ip": {"get_attribute": ["TARGET", "ip_address"]}}
    assert r[CFG + "add_target"]["implementation"]["primary"] == "scripts/add.sh"


def test_relationship_template_interfaces(tmp_path):
    templates = """\
    b: {type: tosca.nodes.SoftwareComponent}
    a:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - dep: {node: b, relationship: link}
  relationship_templates:
    link:
      type: tosca.relationships.ConnectsTo
      interfaces:
        tosca.interfaces.relationship.Configure:
          add_source: scripts/add.sh
"""
    ops = compile_operations(_model(tmp_path, templates), str(tmp_path))
    assert list(ops["a"]["relationships"]["0"]) == [CFG + "add_source"]


def test_lookup_matches_short_interface_names():
    ops = {STD + "create": {"x": 1}, CFG + "add_target": {"x": 2}, "my.Custom.backup": {"x": 3}}
    assert lookup(ops, STD + "create") == {"x": 1}
    assert lookup(ops, "Standard.create") == {"x": 1}
    assert lookup(ops, "tosca.interfaces.relationship.Configure.add_target") == {"x": 2}
    assert lookup(ops, "Custom.backup") == {"x": 3}
    assert lookup(ops, STD + "delete") is None
    assert lookup(None, STD + "create") is None
    assert split_operation(CFG + "add_target") == ("Configure", "add_target")


def test_missing_implementation_names_template_operation_and_path(tmp_path):
    templates = """\
    a:
      type: tosca.nodes.SoftwareComponent
      interfaces:
        Standard:
          create: scripts/nope.sh
"""
    with pytest.raises(ToscaError) as exc:
        compile_operations(_model(tmp_path, templates), str(tmp_path))
    msg = str(exc.value)
    assert "node template a" in msg and "Standard.create" in msg and "scripts/nope.sh" in msg


@pytest.mark.parametrize("impl, what", [
    ("../outside.sh", "outside"),
    ("/etc/passwd", "relative"),
])
def test_implementation_must_stay_in_the_model_folder(tmp_path, impl, what):
    (tmp_path / "outside.sh").write_text("echo\n")
    sub = tmp_path / "model"
    sub.mkdir()
    templates = """\
    a:
      type: tosca.nodes.SoftwareComponent
      interfaces:
        Standard:
          create: %s
""" % impl
    with pytest.raises(ToscaError) as exc:
        compile_operations(_model(sub, templates), str(sub))
    assert what in str(exc.value)


@pytest.mark.parametrize("body, what", [
    ("{implementation: {primary: scripts/add.sh, timeout: -1}}", "timeout"),
    ("{implementation: scripts/add.sh, max_retries: 1.5}", "max_retries"),
    ("{implementation: scripts/add.sh, retry_interval: fast}", "retry_interval"),
    ("{implementation: scripts/add.sh, inputs: {'bad-name': 1}}", "bad-name"),
    ("{implementation: scripts/add.sh, outputs: {ip: [HOST, ip]}}", "SELF|SOURCE|TARGET"),
    ("{implementation: scripts/add.sh, retries: 3}", "unknown keys retries"),
    ("{implementation: {primary: scripts/add.sh, dependencies: [scripts/none.sh]}}", "scripts/none.sh"),
    ("[scripts/add.sh]", "short form"),
])
def test_bad_operation_definitions(tmp_path, body, what):
    templates = """\
    a:
      type: tosca.nodes.SoftwareComponent
      interfaces:
        Standard:
          create: %s
""" % body
    with pytest.raises(ToscaError) as exc:
        compile_operations(_model(tmp_path, templates), str(tmp_path))
    assert what in str(exc.value) and "node template a" in str(exc.value)


def test_artifact_names_and_outputs_mapping(tmp_path):
    templates = """\
    a:
      type: tosca.nodes.SoftwareComponent
      artifacts:
        installer: {file: scripts/add.sh, type: tosca.artifacts.Implementation.Bash}
      interfaces:
        Standard:
          create:
            implementation: installer
            outputs: {addr: [SELF, ip_address]}
"""
    ops = compile_operations(_model(tmp_path, templates), str(tmp_path))
    spec = ops["a"]["node"][STD + "create"]
    assert spec["implementation"]["primary"] == "scripts/add.sh"
    assert spec["outputs"] == {"addr": ["SELF", "ip_address"]}


def test_paths_relative_to_the_model_file_inside_a_root(tmp_path):
    """A CSAR keeps its model in a sub-folder: a relative path is looked up next to the model file
    only (TOSCA 1.3 3.6.7; tosca-parser refuses its csar_wordpress_invalid_script_path.zip for
    the same reason), a /-rooted one from the root; both are stored relative to the root.  A
    relative path only the root has is refused with the /-rooted spelling that fixes it."""
    (tmp_path / "Definitions").mkdir()
    (tmp_path / "Definitions" / "here.sh").write_text("echo\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "root.sh").write_text("echo\n")
    body = """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        topology_template:
          node_templates:
            a:
              type: tosca.nodes.SoftwareComponent
              interfaces:
                Standard: {create: here.sh, start: %s}
        """
    path = write(tmp_path, "Definitions/app.yaml", body % "/scripts/root.sh")
    ops = compile_operations(load_model(path, []), str(tmp_path))["a"]["node"]
    assert ops[STD + "create"]["implementation"]["primary"] == "Definitions/here.sh"
    assert ops[STD + "start"]["implementation"]["primary"] == "scripts/root.sh"
    path = write(tmp_path, "Definitions/app.yaml", body % "scripts/root.sh")
    with pytest.raises(ToscaError, match="'scripts/root.sh' not found relative to .*Definitions .*write /scripts/root.sh"):
        compile_operations(load_model(path, []), str(tmp_path))


def test_example_without_implementations_compiles_to_nothing():
    model = load_model(str(EXAMPLE), [])
    ops = compile_operations(model, str(EXAMPLE.parent))
    assert all(v == {"node": {}, "relationships": {}} for v in ops.values())


def test_values_apply_type_defaults(tmp_path):
    values = compile_values(_model(tmp_path, TEMPLATES))
    assert values["db"]["properties"]["port"] == 80
    assert values["app"]["properties"]["port"] == 8080
    assert values["app"]["attributes"]["url"] == "none-yet"
    assert values["app"]["relationships"]["1"]["properties"] == {"weight": 7}
    assert values["app"]["relationships"]["0"]["properties"] == {}
    assert "host" in values["srv"]["capabilities"]
    json.dumps(values)


def test_an_artifact_read_by_get_artifact_must_be_a_file_of_the_model(tmp_path):
    """TOSCA 1.3 4.8.1: get_artifact gives the artifact's file; one that is not in the model's
    folder is refused at upload, naming the template and the artifact. Artifacts no function
    reads (an image name) may be anything."""
    from wfengine.errors import ToscaError
    from wfengine.operations import compile_operations
    from wfengine.tosca.templates import load_model
    (tmp_path / "run.sh").write_text("true\n")
    (tmp_path / "there.conf").write_text("x\n")
    body = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    a:
      type: tosca.nodes.Compute
      artifacts:
        image: {type: tosca.artifacts.Deployment.Image, file: "nginx:1.25"}
        conf: {type: tosca.artifacts.File, file: %s}
      interfaces:
        Standard:
          create:
            implementation: run.sh
            inputs: {CONF: {get_artifact: [SELF, conf]}}
"""
    (tmp_path / "ok.yaml").write_text(body % "there.conf")
    ops = compile_operations(load_model(str(tmp_path / "ok.yaml")), str(tmp_path))
    assert ops["a"]["artifacts"] == {"conf": "there.conf"}
    (tmp_path / "bad.yaml").write_text(body % "missing.conf")
    with pytest.raises(ToscaError) as ei:
        compile_operations(load_model(str(tmp_path / "bad.yaml")), str(tmp_path))
    msg = str(ei.value)
    assert "bad.yaml: topology_template.node_templates.a.artifacts.conf: node template a, artifact conf: " \
           "get_artifact reads it, but its file 'missing.conf' is not a file of the model" in msg


def test_values_carry_capability_type_defaults(tmp_path):
    """TOSCA 1.3 3.7.2: a capability's properties default from its capability type (and its
    ancestors); workers have no capability types, so the defaults travel in the values
    (tosca-parser's test_capabilties_inheritance reads one with get_property [SELF, req, prop])."""
    path = write(tmp_path, "m.yaml", """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        capability_types:
          Base:
            derived_from: tosca.capabilities.Root
            properties:
              kind: {type: string, default: from-base}
          Special:
            derived_from: Base
            properties:
              level: {type: integer, default: 3}
        node_types:
          WithCap:
            derived_from: tosca.nodes.Root
            capabilities:
              special: Special
              tuned: {type: Special, properties: {level: {type: integer, default: 9}}}
        topology_template:
          node_templates:
            n:
              type: WithCap
              capabilities:
                special: {properties: {kind: assigned}}
        """)
    caps = compile_values(load_model(path))["n"]["capabilities"]
    assert caps["special"]["properties"] == {"kind": "assigned", "level": 3}
    assert caps["tuned"]["properties"] == {"kind": "from-base", "level": 9}
    json.dumps(caps)


def test_a_declared_attribute_nobody_set_reads_as_null(tmp_path):
    """A Compute's private_address before any operation reported one: null, not an unknown name
    (tosca-parser's test_host_keyword reads it with get_attribute [HOST, private_address]);
    tosca_id / tosca_name stay computed per instance."""
    path = write(tmp_path, "m.yaml", """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        topology_template:
          node_templates:
            vm:
              type: tosca.nodes.Compute
              attributes: {public_address: 192.0.2.7}
        """)
    attrs = compile_values(load_model(path))["vm"]["attributes"]
    assert attrs["private_address"] is None and attrs["public_address"] == "192.0.2.7"
    assert attrs["state"] == "initial"
    assert "tosca_id" not in attrs and "tosca_name" not in attrs
