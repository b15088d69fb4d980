# -*- coding: utf-8 -*-
"""Type resolution: inheritance of workflows and weavings, workflow syntax, library stacking."""
from __future__ import annotations

import json

import pytest
import yaml

from wfengine.errors import ToscaError
from wfengine.tosca.loader import load_document
from wfengine.tosca.model import Activity, WeaveEntry
from wfengine.tosca.normative import normative_types
from wfengine.tosca.types import TypeRegistry, raw_types_of

CONFIGURE = "tosca.interfaces.relationships.Configure."


def registry(*yaml_sources: str) -> TypeRegistry:
    """A registry of the normative library plus sources written as YAML (with _file annotations)."""
    sources = [normative_types()]
    for i, text in enumerate(yaml_sources):
        raw = yaml.safe_load(text)
        for section in raw.values():
            for body in section.values():
                body["_file"] = "src%d.yaml" % i
        sources.append(raw)
    return TypeRegistry(sources)


def test_normative_library_resolves():
    reg = TypeRegistry([normative_types()])
    reg.resolve_all()
    for name in ("Root", "Compute", "SoftwareComponent", "WebServer", "WebApplication", "DBMS", "Database",
                 "Storage.ObjectStorage", "Storage.BlockStorage", "Container.Runtime",
                 "Container.Application", "LoadBalancer"):
        t = reg.resolve_node_type("tosca.nodes." + name)
        assert t.is_a("tosca.nodes.Root")
        assert set(t.workflows) == {"install", "uninstall"}
        assert "Standard" in t.interfaces
    for name in ("Root", "DependsOn", "HostedOn", "ConnectsTo", "AttachesTo", "RoutesTo"):
        assert reg.resolve_relationship_type("tosca.relationships." + name).is_a("tosca.relationships.Root")


def test_normative_sequences_and_requirements():
    reg = TypeRegistry([normative_types()])
    root = reg.resolve_node_type("tosca.nodes.Root")
    install = root.workflows["install"]
    assert [a.name for a in install if a.kind == "set_state"] == [
        "creating", "created", "configuring", "configured", "starting", "started"]
    assert Activity("call_operation", "tosca.interfaces.node.lifecycle.Standard.create") in install
    assert [a.name for a in root.workflows["uninstall"] if a.kind == "set_state"] == [
        "stopping", "stopped", "deleting", "deleted"]
    dep = root.requirements["dependency"]
    assert (dep.relationship, dep.capability, dep.occurrences) == (
        "tosca.relationships.DependsOn", "tosca.capabilities.Node", [0, "UNBOUNDED"])
    expected_hosts = {"SoftwareComponent": "tosca.nodes.Compute", "WebServer": "tosca.nodes.Compute",
                      "WebApplication": "tosca.nodes.WebServer", "DBMS": "tosca.nodes.Compute",
                      "Database": "tosca.nodes.DBMS", "Container.Application": "tosca.nodes.Container.Runtime"}
    for tname, host in expected_hosts.items():
        req = reg.resolve_node_type("tosca.nodes." + tname).requirements["host"]
        assert (req.relationship, req.node) == ("tosca.relationships.HostedOn", host), tname
    ls = reg.resolve_node_type("tosca.nodes.Compute").requirements["local_storage"]
    assert (ls.relationship, ls.node) == ("tosca.relationships.AttachesTo", "tosca.nodes.Storage.BlockStorage")
    assert "host" not in reg.resolve_node_type("tosca.nodes.Storage.BlockStorage").requirements
    db = reg.resolve_node_type("tosca.nodes.Database")
    assert db.ancestors == ["tosca.nodes.Database", "tosca.nodes.Root"]
    assert reg.resolve_node_type("tosca.nodes.WebServer").ancestors == [
        "tosca.nodes.WebServer", "tosca.nodes.SoftwareComponent", "tosca.nodes.Root"]


def test_normative_weavings():
    reg = TypeRegistry([normative_types()])
    hosted = reg.resolve_relationship_type("tosca.relationships.HostedOn").workflows
    assert hosted["install"].source[0] == WeaveEntry("before", "creating", "started", None)
    assert hosted["uninstall"].target == [WeaveEntry("before", "stopping", "deleted", None)]
    dep = reg.resolve_relationship_type("tosca.relationships.DependsOn").workflows
    assert dep["install"].source[0] == WeaveEntry("before", "creating", "started", None)
    assert dep["uninstall"].target == [WeaveEntry("before", "stopping", "stopped", None)]
    conn = reg.resolve_relationship_type("tosca.relationships.ConnectsTo").workflows
    assert conn["install"].source == [
        WeaveEntry("after", "configuring", "started", CONFIGURE + "pre_configure_source"),
        WeaveEntry("before", "configured", None, CONFIGURE + "post_configure_source"),
        WeaveEntry("before", "starting", "started", None),
        WeaveEntry("after", "started", None, CONFIGURE + "add_target")]
    assert conn["install"].target == [
        WeaveEntry("after", "configuring", "created", CONFIGURE + "pre_configure_target"),
        WeaveEntry("before", "configured", None, CONFIGURE + "post_configure_target"),
        WeaveEntry("after", "started", None, CONFIGURE + "add_source")]
    assert conn["uninstall"].source == [WeaveEntry("after", "stopping", None, CONFIGURE + "remove_target")]
    assert conn["uninstall"].target == [WeaveEntry("before", "stopping", "stopped", None),
                                        WeaveEntry("after", "stopping", None, CONFIGURE + "remove_source")]
    att = reg.resolve_relationship_type("tosca.relationships.AttachesTo").workflows
    assert att["install"].source[0] == WeaveEntry("before", "creating", "started", None)
    assert att["uninstall"].target == [WeaveEntry("before", "stopping", "deleted", None)]
    # TOSCA 1.3 5.7.1 / 5.8.5: Root declares the Configure interface, so every relationship type
    # (custom ones derived from Root included) weaves its operations; the target-first ones
    # (Root, DependsOn, HostedOn, AttachesTo) along the source's lifecycle.
    root = reg.resolve_relationship_type("tosca.relationships.Root").workflows
    assert [e.activity.rsplit(".", 1)[-1] for e in root["install"].source if e.activity] == [
        "pre_configure_source", "pre_configure_target", "post_configure_source",
        "post_configure_target", "add_target", "add_source"]
    for name in ("DependsOn", "HostedOn", "AttachesTo"):
        wf = reg.resolve_relationship_type("tosca.relationships." + name).workflows
        assert wf["install"].source == root["install"].source and wf["install"].target == []
        assert wf["uninstall"].source == root["uninstall"].source
    routes = reg.resolve_relationship_type("tosca.relationships.RoutesTo")
    assert routes.is_a("tosca.relationships.ConnectsTo") and routes.workflows == conn


def test_workflow_inherited_and_overridden():
    reg = registry("""
node_types:
  my.Base:
    derived_from: tosca.nodes.Root
    workflows:
      install:
        steps:
          one: {activities: [{set_state: a}]}
          two: {activities: [{call_operation: Standard.create}, {set_state: b}]}
  my.Child:
    derived_from: my.Base
  my.Other:
    derived_from: my.Base
    workflows:
      install:
        steps:
          s: {activities: [{set_state: z}]}
""")
    base = reg.resolve_node_type("my.Base")
    assert base.workflows["install"] == [Activity("set_state", "a"), Activity("call_operation", "Standard.create"),
                                         Activity("set_state", "b")]
    assert base.workflows["uninstall"] == reg.resolve_node_type("tosca.nodes.Root").workflows["uninstall"]
    assert reg.resolve_node_type("my.Child").workflows == base.workflows
    assert reg.resolve_node_type("my.Other").workflows["install"] == [Activity("set_state", "z")]
    assert reg.resolve_node_type("my.Other").ancestors == ["my.Other", "my.Base", "tosca.nodes.Root"]
    assert reg.resolve_node_type("my.Child").is_a("my.Base")


def test_weaving_inherited_by_derived_relationship_and_replaced_per_workflow():
    reg = registry("""
relationship_types:
  my.Hosted:
    derived_from: tosca.relationships.HostedOn
  my.Connect:
    derived_from: tosca.relationships.ConnectsTo
    workflow:
      uninstall:
        source_weaving:
          - before: stopping
            activity: my.op
""")
    hosted = reg.resolve_relationship_type("my.Hosted")
    assert hosted.is_a("tosca.relationships.HostedOn")
    assert hosted.workflows == reg.resolve_relationship_type("tosca.relationships.HostedOn").workflows
    conn = reg.resolve_relationship_type("my.Connect")
    normative = reg.resolve_relationship_type("tosca.relationships.ConnectsTo")
    assert conn.workflows["install"] == normative.workflows["install"]
    assert conn.workflows["uninstall"].source == [WeaveEntry("before", "stopping", None, "my.op")]
    assert conn.workflows["uninstall"].target == []
    assert "Configure" in conn.interfaces


def test_later_source_replaces_a_type():
    reg = registry("""
node_types:
  tosca.nodes.Root:
    workflows:
      install:
        steps:
          s: {activities: [{set_state: only}]}
""")
    assert reg.resolve_node_type("tosca.nodes.Compute").workflows == {
        "install": [Activity("set_state", "only")]}
    assert reg.resolve_node_type("tosca.nodes.Root").requirements == {}


def test_interfaces_deep_merge_and_requirement_override():
    reg = registry("""
node_types:
  my.T:
    derived_from: tosca.nodes.SoftwareComponent
    interfaces:
      Standard:
        create: scripts/create.sh
    requirements:
      - host:
          node: my.Host
          relationship: tosca.relationships.HostedOn
      - db: {capability: tosca.capabilities.Endpoint, relationship: {type: tosca.relationships.ConnectsTo}}
      - short: tosca.capabilities.Node
""")
    t = reg.resolve_node_type("my.T")
    assert t.interfaces["Standard"] == {"type": "tosca.interfaces.node.lifecycle.Standard",
                                        "create": "scripts/create.sh"}
    assert t.requirements["host"].node == "my.Host"
    assert t.requirements["db"].relationship == "tosca.relationships.ConnectsTo"
    assert t.requirements["short"].capability == "tosca.capabilities.Node"
    assert t.requirements["short"].relationship is None
    assert list(t.requirements) == ["dependency", "host", "db", "short"]
    assert t.file == "src0.yaml"


@pytest.mark.parametrize("workflow,match", [
    ("install: {steps: {s: {activities: [{delegate: deploy}]}}}", r"'delegate' is not supported"),
    ("install: {steps: {s: {activities: [{set_state: a, call_operation: b}]}}}", "must be one of"),
    ("install: {steps: {s: {activities: [{set_state: ''}]}}}", "non-empty"),
    ("install: {steps: {s: {activities: {set_state: a}}}}", "activities must be a list"),
    ("install: {steps: {s: {activities: [], on_success: [x]}}}", "unknown keys.*on_success"),
    ("install: {stepz: {}}", "unknown keys.*stepz"),
    ("install: [a]", "a workflow is a mapping"),
])
def test_node_workflow_syntax_errors(workflow, match):
    reg = registry("node_types:\n  my.T:\n    derived_from: tosca.nodes.Root\n    workflows:\n      %s\n"
                   % workflow)
    with pytest.raises(ToscaError, match=match) as ei:
        reg.resolve_node_type("my.T")
    assert "node type my.T, workflow install" in str(ei.value)
    assert ei.value.file == "src0.yaml"


@pytest.mark.parametrize("entry,match", [
    ("source_weaving: [{before: a, after: b}]", "exactly one of before / after"),
    ("source_weaving: [{wait_target: started}]", "exactly one of before / after"),
    ("source_weaving: [{before: a, after_source: b}]", "after_source is only allowed in target_weaving"),
    ("target_weaving: [{before: a, wait_target: b}]", "wait_target is only allowed in source_weaving"),
    ("source_weaving: [{before: a, actvity: b}]", "unknown keys actvity"),
    ("source_weaving: [{before: a, activity: 3}]", "activity must be a non-empty name"),
    ("source_weaving: {before: a}", "source_weaving must be a list"),
    ("sauce_weaving: []", "unknown keys.*sauce_weaving"),
])
def test_weaving_syntax_errors(entry, match):
    reg = registry("relationship_types:\n  my.R:\n    derived_from: tosca.relationships.Root\n"
                   "    workflows:\n      install: {%s}\n" % entry)
    with pytest.raises(ToscaError, match=match) as ei:
        reg.resolve_relationship_type("my.R")
    assert "relationship type my.R, workflow install" in str(ei.value)


def test_workflow_and_workflows_both_given():
    reg = registry("relationship_types:\n  my.R:\n    workflow: {}\n    workflows: {}\n")
    with pytest.raises(ToscaError, match="both 'workflows' and 'workflow'"):
        reg.resolve_relationship_type("my.R")


def test_unknown_parent_and_cycle():
    reg = registry("""
node_types:
  my.A: {derived_from: my.Missing}
  my.B: {derived_from: my.C}
  my.C: {derived_from: my.B}
relationship_types:
  my.R: {derived_from: my.R}
""")
    with pytest.raises(ToscaError, match="my.A derives from unknown node type 'my.Missing'") as ei:
        reg.resolve_node_type("my.A")
    assert ei.value.file == "src0.yaml" and ei.value.path == "node_types.my.A.derived_from"
    with pytest.raises(ToscaError, match=r"derived_from cycle: my.B -> my.C -> my.B"):
        reg.resolve_node_type("my.B")
    with pytest.raises(ToscaError, match=r"derived_from cycle: my.R -> my.R"):
        reg.resolve_relationship_type("my.R")
    with pytest.raises(ToscaError, match="unknown node type 'nope'"):
        reg.resolve_node_type("nope")


def test_unknown_type_key():
    reg = registry("node_types:\n  my.T:\n    derived_from: tosca.nodes.Root\n    requirments: []\n")
    with pytest.raises(ToscaError, match="unknown keys in node type my.T: requirments"):
        reg.resolve_node_type("my.T")


def test_raw_types_of_round_trips_through_json(write):
    write("b.yaml", "relationship_types:\n  my.R:\n    derived_from: tosca.relationships.DependsOn\n")
    root = write("a.yaml", "imports: [b.yaml]\nnode_types:\n  my.T:\n    derived_from: tosca.nodes.Root\n")
    raw = raw_types_of(load_document(root))
    back = json.loads(json.dumps(raw))
    assert back["node_types"]["my.T"]["_file"] == root
    assert back["relationship_types"]["my.R"]["_file"].endswith("b.yaml")
    reg = TypeRegistry([normative_types(), back])
    assert reg.resolve_relationship_type("my.R").file.endswith("b.yaml")
    assert reg.resolve_relationship_type("my.R").workflows["install"].source[0].wait_state == "started"


def test_bad_sources_refused():
    with pytest.raises(ToscaError, match="unknown section"):
        TypeRegistry([{"nodes": {}}])
    with pytest.raises(ToscaError, match="not a mapping"):
        TypeRegistry([["x"]])
