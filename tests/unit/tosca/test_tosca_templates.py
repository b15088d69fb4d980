# -*- coding: utf-8 -*-
"""Building a model from node templates: requirements, scaling and every user error."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wfengine.errors import SpaceDataError, ToscaError
from wfengine.tosca.model import Model, Scaling
from wfengine.tosca.templates import load_library, load_model

SEED = Path(__file__).parents[3] / ".." / "shared" / "seed"


def topo(write, templates: str, extra: str = "", name: str = "m.yaml") -> str:
    return write(name, extra + "topology_template:\n  node_templates:\n" + templates)


def error_of(path: str, libraries=()) -> ToscaError:
    with pytest.raises(ToscaError) as ei:
        load_model(path, libraries)
    return ei.value


def test_both_requirement_forms_and_relationship_from_definition(write):
    path = topo(write, """
    srv: {type: tosca.nodes.Compute}
    web: {type: tosca.nodes.WebServer, requirements: [{host: srv}]}
    app:
      type: tosca.nodes.WebApplication
      requirements:
        - host: {node: web, capability: tosca.capabilities.Compute}
        - db: {node: db, relationship: tosca.relationships.ConnectsTo}
        - mon: {node: web, relationship: {type: tosca.relationships.DependsOn}}
    db: {type: tosca.nodes.SoftwareComponent, requirements: [{host: {node: srv}}]}
""")
    m = load_model(path)
    web = m.templates["web"].requirements[0]
    assert (web.name, web.node, web.relationship) == ("host", "srv", "tosca.relationships.HostedOn")
    assert web.capability == "tosca.capabilities.Compute"
    host, db, mon = m.templates["app"].requirements
    assert (host.node, host.relationship) == ("web", "tosca.relationships.HostedOn")
    assert (db.node, db.relationship, db.capability) == ("db", "tosca.relationships.ConnectsTo", None)
    assert (mon.relationship, mon.properties) == ("tosca.relationships.DependsOn", {})
    assert m.templates["db"].requirements[0].relationship == "tosca.relationships.HostedOn"
    assert m.templates["srv"].requirements == []
    assert m.node_type("app").name == "tosca.nodes.WebApplication"
    # only used types and their ancestors
    assert set(m.node_types) == {"tosca.nodes.Root", "tosca.nodes.Abstract.Compute", "tosca.nodes.Compute",
                                 "tosca.nodes.SoftwareComponent", "tosca.nodes.WebServer",
                                 "tosca.nodes.WebApplication"}
    assert set(m.relationship_types) == {"tosca.relationships.Root", "tosca.relationships.HostedOn",
                                         "tosca.relationships.ConnectsTo", "tosca.relationships.DependsOn"}


def test_relationship_template(write):
    path = topo(write, """
    a: {type: tosca.nodes.Root, requirements: [{x: {node: b, relationship: conn}}]}
    b: {type: tosca.nodes.Root}
  relationship_templates:
    conn:
      type: tosca.relationships.ConnectsTo
      interfaces: {Configure: {pre_configure_source: s.sh}}
""")
    req = load_model(path).templates["a"].requirements[0]
    assert (req.relationship, req.relationship_template) == ("tosca.relationships.ConnectsTo", "conn")
    assert req.interfaces == {"Configure": {"pre_configure_source": "s.sh"}}


def test_model_own_types_and_imports(write):
    write("types/app.yaml", """
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
relationship_types:
  my.Uses:
    derived_from: tosca.relationships.DependsOn
""")
    path = topo(write, """
    srv: {type: tosca.nodes.Compute}
    a:
      type: my.App
      requirements: [{host: srv}, {uses: {node: srv, relationship: my.Uses}}]
""", extra="imports: [types/app.yaml]\n")
    m = load_model(path)
    assert m.node_types["my.App"].file.endswith("types/app.yaml")
    assert m.node_type("a").workflows["install"][0].name == "creating"
    assert m.templates["a"].requirements[1].relationship == "my.Uses"
    assert m.relationship_types["my.Uses"].is_a("tosca.relationships.DependsOn")


def test_unknown_node_type(write):
    path = topo(write, "    A: {type: my.Nope}\n")
    e = error_of(path)
    assert e.file == path and e.path == "topology_template.node_templates.A.type"
    assert str(e) == "%s: topology_template.node_templates.A.type: A: unknown node type 'my.Nope'" % path


def test_template_without_type(write):
    e = error_of(topo(write, "    A: {properties: {}}\n"))
    assert "A: node template has no type" in str(e)


def test_requirement_without_relationship(write):
    path = topo(write, """
    A: {type: tosca.nodes.Root, requirements: [{foo: B}]}
    B: {type: tosca.nodes.Root}
""")
    e = error_of(path)
    assert e.file == path and "node_templates.A.requirements" in e.path
    assert "A: requirement 'foo' names no relationship and type tosca.nodes.Root defines no requirement 'foo'" \
        in str(e)


def test_requirement_definition_without_relationship(write):
    """Container.Application's ``storage`` (TOSCA 1.3 5.9.12) names no relationship: a
    requirement is at least a dependency, DependsOn (docs/decisions.md)."""
    path = topo(write, """
    A: {type: tosca.nodes.Container.Application, requirements: [{storage: B}]}
    B: {type: tosca.nodes.Root}
""")
    req = load_model(path).templates["A"].requirements[0]
    assert (req.node, req.relationship) == ("B", "tosca.relationships.DependsOn")


def test_requirement_target_missing(write):
    path = topo(write, "    A: {type: tosca.nodes.SoftwareComponent, requirements: [{host: srvX}]}\n")
    e = error_of(path)
    assert e.file == path and e.path.startswith("topology_template.node_templates.A.requirements[0]")
    assert "A: requirement 'host' targets node 'srvX'" in str(e)


def test_requirement_without_node(write):
    """No node: the definition's node type and the capability choose the target (TOSCA 1.3 3.8.2)."""
    path = topo(write, "    A: {type: tosca.nodes.SoftwareComponent, requirements: [{host: {capability: c}}]}\n")
    assert "A: requirement 'host': no node template matches node type tosca.nodes.Compute, capability c" \
        in str(error_of(path))
    path = topo(write, "    A: {type: tosca.nodes.Root, requirements: [{foo: {capability: c}}]}\n")
    assert "A: requirement 'foo' names no target node" in str(error_of(path))


def test_unknown_relationship_type(write):
    path = topo(write, """
    A: {type: tosca.nodes.Root, requirements: [{r: {node: B, relationship: my.Nope}}]}
    B: {type: tosca.nodes.Root}
""")
    e = error_of(path)
    assert e.file == path and "A: requirement 'r': unknown relationship type 'my.Nope'" in str(e)
    path = topo(write, """
    A: {type: tosca.nodes.Root, requirements: [{r: {node: B, relationship: {type: my.Nope}}}]}
    B: {type: tosca.nodes.Root}
""", name="m2.yaml")
    assert "unknown relationship type 'my.Nope'" in str(error_of(path))


@pytest.mark.parametrize("reqs,match", [
    ("{host: srv}", "requirements must be a list"),
    ("[{host: srv, other: srv}]", "must be a single-key map"),
    ("[{host: {node: srv, nod: x}}]", "unknown keys nod"),
    ("[{host: [srv]}]", "must name a node template"),
])
def test_requirement_shape_errors(write, reqs, match):
    path = topo(write, "    srv: {type: tosca.nodes.Compute}\n"
                       "    A: {type: tosca.nodes.SoftwareComponent, requirements: %s}\n" % reqs)
    e = error_of(path)
    assert e.file == path and "A" in str(e)
    assert re.search(match, str(e))


def test_no_node_templates(write):
    assert "no node_templates" in str(error_of(write("a.yaml", "description: x\n")))
    assert "no node_templates" in str(error_of(write("b.yaml", "topology_template:\n  node_templates: {}\n")))
    assert "no node_templates" in str(error_of(write("c.yaml", "topology_template:\n  inputs: {}\n")))


def test_unknown_template_key(write):
    e = error_of(topo(write, "    A: {type: tosca.nodes.Root, requirement: []}\n"))
    assert "A: unknown keys requirement" in str(e)


def scaled(write, props: str) -> Scaling:
    path = topo(write, "    A:\n      type: tosca.nodes.Root\n      capabilities:\n"
                       "        scalable:\n          properties: %s\n" % props)
    return load_model(path).templates["A"].scaling


@pytest.mark.parametrize("props,expected", [
    ("{}", Scaling(1, 1, None)),
    ("{min_instances: 2}", Scaling(2, 2, None)),
    ("{default_instances: 3}", Scaling(1, 3, None)),
    ("{max_instances: 3, default_instances: 2}", Scaling(1, 2, 3)),
    ("{min_instances: 0, default_instances: 0, max_instances: UNBOUNDED}", Scaling(0, 0, None)),
    ("{min_instances: 1, max_instances: 5, default_instances: 3}", Scaling(1, 3, 5)),
])
def test_scaling(write, props, expected):
    assert scaled(write, props) == expected


def test_scaling_default(write):
    m = load_model(topo(write, "    A: {type: tosca.nodes.Compute}\n"))
    assert m.templates["A"].scaling == Scaling(1, 1, None)


@pytest.mark.parametrize("props,match", [
    ("{min_instances: 3, default_instances: 2}", "min_instances=3, default_instances=2, max_instances=UNBOUNDED"),
    ("{default_instances: 4, max_instances: 3}", "min_instances=1, default_instances=4, max_instances=3"),
    ("{min_instances: -1, default_instances: 0}", "min_instances=-1"),
    ("{default_instances: 0}", "min_instances=1, default_instances=0"),
    ("{min_instances: true}", "must be integers.*min_instances=True"),
    ("{default_instances: '2'}", "must be integers.*default_instances='2'"),
    ("{max_instances: 2.5}", "must be integers.*max_instances=2.5"),
    ("{max_instances: unbounded}", "must be integers"),
    ("{instances: 2}", "unknown scalable properties instances"),
])
def test_scaling_errors(write, props, match):
    with pytest.raises(ToscaError, match=match) as ei:
        scaled(write, props)
    assert "A: " in str(ei.value) and ei.value.file.endswith("m.yaml")
    assert ei.value.path.startswith("topology_template.node_templates.A.capabilities.scalable")


def test_inputs_outputs_kept_raw(write):
    path = write("m.yaml", """
topology_template:
  description: topo
  inputs:
    n: {type: integer, default: 2}
  outputs:
    url: {value: {get_attribute: [A, public_address]}}
  node_templates:
    A: {type: tosca.nodes.Database, properties: {name: {get_input: n}}}
""")
    m = load_model(path)
    assert m.inputs == {"n": {"type": "integer", "default": 2}}
    assert m.outputs == {"url": {"value": {"get_attribute": ["A", "public_address"]}}}
    assert m.templates["A"].properties == {"name": {"get_input": "n"}}
    assert m.description == "topo" and m.file == path


def test_model_json_round_trip(write):
    path = topo(write, """
    srv:
      type: tosca.nodes.Compute
      capabilities: {scalable: {properties: {default_instances: 2, max_instances: 4}}}
    app: {type: tosca.nodes.WebServer, requirements: [{host: srv}, {dependency: {node: db}}]}
    db: {type: tosca.nodes.Root, requirements: [{c: {node: srv, relationship: tosca.relationships.ConnectsTo}}]}
""")
    m = load_model(path)
    data = json.loads(json.dumps(m.to_json()))
    back = Model.from_json(data)
    assert back == m
    assert back.relationship_types["tosca.relationships.ConnectsTo"].is_a("tosca.relationships.Root")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("templates"), "missing templates"),
    (lambda d: d["templates"]["srv"].update(scaling={"min_instances": 2, "default_instances": 1}),
     "not 0 <= min"),
    (lambda d: d["node_types"]["tosca.nodes.Root"]["workflows"]["install"].append({"kind": "x", "name": "y"}),
     "kind is not"),
    (lambda d: d["relationship_types"]["tosca.relationships.HostedOn"]["workflows"]["install"]["source"]
     .append({"position": "during", "state": "s"}), "position is not"),
    (lambda d: d["templates"]["app"]["requirements"][0].update(node="ghost"), "missing template ghost"),
    (lambda d: d["node_types"].pop("tosca.nodes.Compute"), "node type tosca.nodes.Compute is missing"),
    (lambda d: d.update(inputs=[]), "inputs is not an object"),
])
def test_model_from_json_rejects_bad_shapes(write, mutate, match):
    path = topo(write, """
    srv: {type: tosca.nodes.Compute}
    app: {type: tosca.nodes.WebServer, requirements: [{host: srv}]}
""")
    data = json.loads(json.dumps(load_model(path).to_json()))
    mutate(data)
    with pytest.raises(SpaceDataError, match=match):
        Model.from_json(data)
    with pytest.raises(SpaceDataError, match="not an object"):
        Model.from_json("x")


def test_library_then_model(write):
    lib_path = write("lib.yaml", """
node_types:
  my.Base:
    derived_from: tosca.nodes.SoftwareComponent
relationship_types:
  my.Rel:
    derived_from: tosca.relationships.ConnectsTo
""")
    lib = load_library(lib_path)
    assert set(lib["node_types"]) == {"my.Base"} and lib["node_types"]["my.Base"]["_file"] == lib_path
    json.dumps(lib)
    lib2 = load_library(write("lib2.yaml", "node_types:\n  my.Leaf: {derived_from: my.Base}\n"), [lib])
    with pytest.raises(ToscaError, match="unknown node type 'my.Base'"):
        load_library(write("lib3.yaml", "node_types:\n  my.Leaf: {derived_from: my.Base}\n"))
    path = topo(write, """
    srv: {type: tosca.nodes.Compute}
    a: {type: my.Leaf, requirements: [{host: srv}, {x: {node: srv, relationship: my.Rel}}]}
""")
    m = load_model(path, [lib, lib2])
    assert m.node_type("a").ancestors == ["my.Leaf", "my.Base", "tosca.nodes.SoftwareComponent",
                                          "tosca.nodes.Root"]
    assert m.node_types["my.Base"].file == lib_path
    assert "unknown node type 'my.Leaf'" in str(error_of(path, [lib]))


def test_library_must_define_a_type(write):
    with pytest.raises(ToscaError, match="at least one type"):
        load_library(write("empty.yaml", "description: nothing\n"))


def test_library_validates_all_its_types(write):
    with pytest.raises(ToscaError, match="'delegate' is not supported") as ei:
        load_library(write("bad.yaml", """
node_types:
  my.T:
    derived_from: tosca.nodes.Root
    workflows: {install: {steps: {s: {activities: [{delegate: x}]}}}}
"""))
    assert ei.value.file.endswith("bad.yaml")


def test_unused_bad_type_in_model_is_reported(write):
    path = write("m.yaml", """
node_types:
  my.Unused: {derived_from: my.Missing}
topology_template:
  node_templates:
    A: {type: tosca.nodes.Root}
""")
    assert "my.Unused derives from unknown node type 'my.Missing'" in str(error_of(path))


@pytest.mark.skipif(not SEED.is_dir(), reason="seed folder ../shared/seed absent")
def test_seed_files_load():
    lib = load_library(str(SEED / "normative.yaml"))
    assert set(lib["relationship_types"]) == {"tosca.relationships.ConnectsTo", "tosca.relationships.HostedOn",
                                              "tosca.relationships.DependsOn"}
    m = load_model(str(SEED / "test_model.yaml"), [lib])
    assert len(m.templates) == 8
    assert sorted(m.templates) == ["A", "B", "C", "D", "srvA", "srvB", "srvC", "srvD"]
    assert m.templates["A"].scaling == Scaling(1, 3, 5)
    assert m.templates["C"].scaling == Scaling(1, 2, 3)
    assert m.templates["srvA"].scaling == Scaling(1, 3, None)
    assert [(r.name, r.node, r.relationship) for r in m.templates["A"].requirements] == [
        ("A2B", "B", "tosca.relationships.ConnectsTo"), ("A2C", "C", "tosca.relationships.ConnectsTo"),
        ("host", "srvA", "tosca.relationships.HostedOn")]
    # The seed library replaces the normative ConnectsTo: its install weaving is its own; written
    # without derived_from, it derives from tosca.relationships.Root, whose uninstall it inherits.
    connects = m.relationship_types["tosca.relationships.ConnectsTo"]
    assert set(connects.workflows) == {"install", "uninstall"}
    assert connects.ancestors == ["tosca.relationships.ConnectsTo", "tosca.relationships.Root"]
    assert [e.wait_state for e in connects.workflows["install"].source if e.wait_state] == ["started", "started"]
    assert m.relationship_types["tosca.relationships.ConnectsTo"].file.endswith("normative.yaml")
    # Without the seed library, the bundled one gives both workflows.
    assert set(load_model(str(SEED / "test_model.yaml")).relationship_types[
        "tosca.relationships.HostedOn"].workflows) == {"install", "uninstall"}
