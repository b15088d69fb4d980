# -*- coding: utf-8 -*-
"""Type names in every form TOSCA allows (issue 16, items 1, 2 and 5).

TOSCA 1.3 3.1 (namespaces, the reserved ``tosca`` prefix), the "Shorthand Name" and "Type
Qualified Name" rows of every type of sections 5 and 8 (networking), the import definition
(3.6.8, ``namespace_prefix``) and TOSCA 1.0 (``tosca.nodes.BlockStorage``)."""
from __future__ import annotations

import pytest

from wfengine.errors import ToscaError
from wfengine.tosca.loader import TYPE_SECTIONS
from wfengine.tosca.names import (LEGACY, PREFIX, ROOTS, SHORTHANDS, Names, aliases_of, canonical_sources,
                                  canonical_topology)
from wfengine.tosca.normative import normative_types
from wfengine.tosca.templates import load_library, load_model

NORMATIVE = normative_types()
NAMES = Names([NORMATIVE])


def _every_normative_type():
    for section in TYPE_SECTIONS:
        for full in sorted(NORMATIVE[section]):
            yield section, full


@pytest.mark.parametrize("section,full", list(_every_normative_type()))
def test_every_normative_type_by_full_section_less_and_tosca_names(section, full):
    """3.1: ``tosca:`` names the normative namespace; section 5 writes each type without its
    ``tosca.<kind>.`` prefix as its shorthand (``Compute``, ``Endpoint.Public``, ``Root``)."""
    short = full[len(PREFIX[section]):]
    assert NAMES.canonical(section, full) == full
    assert NAMES.canonical(section, short) == full
    assert NAMES.canonical(section, "tosca:" + short) == full
    assert NAMES.canonical(section, "tosca:" + full) == full


def test_spec_shorthands_that_are_not_the_section_less_name():
    """Section 5 artifact types (Bash, Python), node types (ObjectStorage, BlockStorage), 8 (Network, Port, LinksTo,
    BindsTo, Linkable, Bindable): every shorthand names an existing type and none is ambiguous."""
    for section, table in SHORTHANDS.items():
        for alias, full in table.items():
            assert full in NORMATIVE[section], full
            assert NAMES.canonical(section, alias) == full
            assert NAMES.canonical(section, "tosca:" + alias) == full
    assert aliases_of(NORMATIVE)["node_types"]["BlockStorage"] == "tosca.nodes.Storage.BlockStorage"


def test_root_is_resolved_per_section():
    """``Root`` names the root of the kind of type being referred to (section 5: each kind has its Root)."""
    for section in TYPE_SECTIONS:
        assert NAMES.canonical(section, "Root") == ROOTS[section]
        assert NAMES.canonical(section, "tosca:Root") == ROOTS[section]
    assert NAMES.canonical("node_types", "Compute") == "tosca.nodes.Compute"
    assert NAMES.canonical("capability_types", "Compute") == "tosca.capabilities.Compute"


def test_primitive_and_unknown_names_are_left_alone():
    for name in ("string", "integer", "list", "map", "scalar-unit.size", "my.Type", "other:Thing"):
        assert NAMES.canonical("data_types", name) == name
    assert NAMES.canonical("node_types", "tosca:Nope") == "tosca:Nope"


def test_tosca_1_0_names():
    """TOSCA 1.0 named the storage nodes tosca.nodes.BlockStorage / ObjectStorage."""
    for old, new in LEGACY["node_types"].items():
        assert NAMES.canonical("node_types", old) == new
        assert NAMES.canonical("node_types", "tosca:" + old) == new


def test_networking_types_of_section_8(write):
    """Section 8 (networking): Network and Port nodes, LinksTo / BindsTo derive from DependsOn, Linkable and
    Bindable capabilities; all derive from the roots, so they get the install/uninstall workflows."""
    model = load_model(write("net.yaml", """\
        topology_template:
          node_templates:
            server: {type: Compute}
            net: {type: tosca:Network, properties: {cidr: 10.0.0.0/24}}
            port:
              type: tosca.nodes.network.Port
              requirements:
                - binding: server
                - link: net
        """))
    port = model.node_types["tosca.nodes.network.Port"]
    assert port.is_a("tosca.nodes.Root") and "install" in port.workflows
    rels = {r.name: r for r in model.templates["port"].requirements}
    assert rels["link"].relationship == "tosca.relationships.network.LinksTo"
    assert rels["link"].capability == "tosca.capabilities.network.Linkable"
    assert rels["binding"].relationship == "tosca.relationships.network.BindsTo"
    for name in ("tosca.relationships.network.LinksTo", "tosca.relationships.network.BindsTo"):
        assert model.relationship_types[name].is_a("tosca.relationships.DependsOn")
        assert set(model.relationship_types[name].workflows) == {"install", "uninstall"}
    assert model.node_types["tosca.nodes.network.Network"].capabilities["link"]["type"] == \
        "tosca.capabilities.network.Linkable"


def test_block_storage_example_in_short_names(write):
    """The spec's block storage examples (a BlockStorage attached to a Compute), written as the spec writes them:
    ``Compute``, ``BlockStorage``, ``AttachesTo``; and with ``tosca:`` names."""
    for compute, storage, attaches in (("Compute", "BlockStorage", "AttachesTo"),
                                       ("tosca:Compute", "tosca:BlockStorage", "tosca:AttachesTo")):
        model = load_model(write("bs.yaml", """\
            topology_template:
              node_templates:
                my_server:
                  type: %s
                  requirements:
                    - local_storage:
                        node: my_storage
                        relationship:
                          type: %s
                          properties:
                            location: /path1/path2
                my_storage:
                  type: %s
                  properties:
                    size: 10 GB
            """ % (compute, attaches, storage)))
        assert model.templates["my_server"].type == "tosca.nodes.Compute"
        assert model.templates["my_storage"].type == "tosca.nodes.Storage.BlockStorage"
        req = model.templates["my_server"].requirements[0]
        assert (req.relationship, req.capability) == ("tosca.relationships.AttachesTo",
                                                      "tosca.capabilities.Attachment")
        assert req.properties == {"location": "/path1/path2"}


def test_names_in_every_place_a_type_name_appears(write):
    """3.6.x grammar: derived_from, property/attribute/input type and entry_schema / key_schema,
    requirement definitions (capability, node, relationship), capability definitions and their
    valid_source_types, valid_target_types, interface and artifact types."""
    model = load_model(write("all.yaml", """\
        capability_types:
          MyCap:
            derived_from: Endpoint
            valid_source_types: [SoftwareComponent]
        relationship_types:
          MyRel:
            derived_from: tosca:ConnectsTo
            valid_target_types: [MyCap, Endpoint.Database, Compute]
        node_types:
          MyApp:
            derived_from: tosca:WebApplication
            properties:
              cred: {type: Credential}
              ports: {type: list, entry_schema: tosca:PortDef}
              nets: {type: map, key_schema: string, entry_schema: {type: NetworkInfo}}
            attributes:
              window: {type: TimeInterval}
            capabilities:
              api: MyCap
              admin: {type: tosca:Endpoint.Admin, valid_source_types: [tosca:WebServer]}
            requirements:
              - db: {capability: Endpoint.Database, node: Database, relationship: MyRel}
              - store: {capability: Attachment, relationship: {type: AttachesTo}}
            interfaces:
              Standard:
                type: Standard
                create:
                  implementation: create.sh
                  inputs:
                    port: {type: PortDef, default: 80}
            artifacts:
              create_script: {type: Bash, file: create.sh}
              image: {type: tosca:Deployment.Image.VM, file: disk.img}
        topology_template:
          inputs:
            spec: {type: PortSpec, required: false}
          node_templates:
            web: {type: WebServer}
            app:
              type: MyApp
              requirements:
                - host: web
        """))
    app = model.node_types["MyApp"]
    assert app.ancestors == ["MyApp", "tosca.nodes.WebApplication", "tosca.nodes.Root"]
    assert app.properties["cred"]["type"] == "tosca.datatypes.Credential"
    assert app.properties["ports"]["entry_schema"] == "tosca.datatypes.network.PortDef"
    assert app.properties["nets"]["entry_schema"] == {"type": "tosca.datatypes.network.NetworkInfo"}
    assert app.properties["nets"]["key_schema"] == "string"
    assert app.attributes["window"]["type"] == "tosca.datatypes.TimeInterval"
    assert app.capabilities["api"] == "MyCap"
    assert app.capabilities["admin"] == {"type": "tosca.capabilities.Endpoint.Admin",
                                         "valid_source_types": ["tosca.nodes.WebServer"]}
    db = app.requirements["db"]
    assert (db.capability, db.node, db.relationship) == ("tosca.capabilities.Endpoint.Database",
                                                         "tosca.nodes.Database", "MyRel")
    assert app.requirements["store"].relationship == "tosca.relationships.AttachesTo"
    std = app.interfaces["Standard"]
    assert std["type"] == "tosca.interfaces.node.lifecycle.Standard"
    assert std["create"]["inputs"]["port"]["type"] == "tosca.datatypes.network.PortDef"
    assert app.artifacts["create_script"]["type"] == "tosca.artifacts.Implementation.Bash"
    assert app.artifacts["image"]["type"] == "tosca.artifacts.Deployment.Image.VM"
    assert model.inputs["spec"]["type"] == "tosca.datatypes.network.PortSpec"


def test_relationship_and_capability_types_in_raw_sections():
    """A relationship type's valid_target_types may name capability or node types; a capability
    type's valid_source_types are node types."""
    sources = canonical_sources([normative_types(), {
        "capability_types": {"MyCap": {"derived_from": "Endpoint", "valid_source_types": ["WebServer"]}},
        "relationship_types": {"MyRel": {"derived_from": "ConnectsTo",
                                         "valid_target_types": ["MyCap", "Endpoint", "Compute", "LoadBalancer"]}},
        "interface_types": {"MyIface": {"derived_from": "Root", "op": {"inputs": {"p": {"type": "Credential"}}}}},
        "artifact_types": {"Playbook": {"derived_from": "Implementation"}},
        "group_types": {"MyGroup": {"derived_from": "Root", "members": ["Compute"]}},
        "policy_types": {"MyPolicy": {"derived_from": "tosca:Placement", "targets": ["Compute", "MyGroup"]}},
        "data_types": {"MyData": {"derived_from": "Credential", "properties": {"t": {"type": "TimeInterval"}}}},
    }])
    own = sources[-1]
    assert own["capability_types"]["MyCap"]["valid_source_types"] == ["tosca.nodes.WebServer"]
    assert own["relationship_types"]["MyRel"]["valid_target_types"] == [
        "MyCap", "tosca.capabilities.Endpoint", "tosca.capabilities.Compute", "tosca.nodes.LoadBalancer"]
    assert own["interface_types"]["MyIface"]["derived_from"] == "tosca.interfaces.Root"
    assert own["interface_types"]["MyIface"]["op"]["inputs"]["p"]["type"] == "tosca.datatypes.Credential"
    assert own["artifact_types"]["Playbook"]["derived_from"] == "tosca.artifacts.Implementation"
    assert own["group_types"]["MyGroup"] == {"derived_from": "tosca.groups.Root", "members": ["tosca.nodes.Compute"]}
    assert own["policy_types"]["MyPolicy"]["derived_from"] == "tosca.policies.Placement"
    assert own["policy_types"]["MyPolicy"]["targets"] == ["tosca.nodes.Compute", "MyGroup"]
    assert own["data_types"]["MyData"]["derived_from"] == "tosca.datatypes.Credential"
    assert own["data_types"]["MyData"]["properties"]["t"]["type"] == "tosca.datatypes.TimeInterval"


def test_topology_names():
    """Node, relationship, group and policy templates and substitution mappings (3.9, 3.8.x)."""
    topo = canonical_topology({
        "node_templates": {
            "a": {"type": "Compute", "interfaces": {"Standard": {"type": "tosca:Standard"}},
                  "artifacts": {"s": {"type": "Python", "file": "s.py"}},
                  "requirements": [{"host": {"node": "b", "capability": "tosca:Compute", "relationship": "HostedOn"}},
                                   {"db": {"node": "c", "capability": "endpoint", "relationship": "my_rel"}},
                                   {"x": {"node": "c", "capability": "Endpoint",
                                          "relationship": {"type": "tosca:ConnectsTo"}}}]}},
        "relationship_templates": {"my_rel": {"type": "ConnectsTo"}},
        "groups": {"g": {"type": "Root", "members": ["a"]}},
        "policies": [{"p": {"type": "tosca:Scaling", "targets": ["g"]}}],
        "substitution_mappings": {"node_type": "tosca:Compute"},
    }, [normative_types(), {}])
    a = topo["node_templates"]["a"]
    assert a["type"] == "tosca.nodes.Compute"
    assert a["interfaces"]["Standard"]["type"] == "tosca.interfaces.node.lifecycle.Standard"
    assert a["artifacts"]["s"]["type"] == "tosca.artifacts.Implementation.Python"
    host, db, x = [next(iter(r.values())) for r in a["requirements"]]
    assert host == {"node": "b", "capability": "tosca.capabilities.Compute",
                    "relationship": "tosca.relationships.HostedOn"}
    # ``endpoint`` is a capability *name* of Compute (3.8.2: the capability keyname names either)
    # and ``my_rel`` a relationship template: both stay as written.
    assert db == {"node": "c", "capability": "endpoint", "relationship": "my_rel"}
    assert x["capability"] == "tosca.capabilities.Endpoint"
    assert x["relationship"] == {"type": "tosca.relationships.ConnectsTo"}
    assert topo["relationship_templates"]["my_rel"]["type"] == "tosca.relationships.ConnectsTo"
    assert topo["groups"]["g"]["type"] == "tosca.groups.Root"
    assert topo["policies"][0]["p"]["type"] == "tosca.policies.Scaling"
    assert topo["substitution_mappings"]["node_type"] == "tosca.nodes.Compute"


def test_a_user_type_named_like_a_shorthand_wins_where_it_is_seen(write):
    """Decision (docs/decisions.md): a user type named ``Compute`` is what ``Compute`` means in
    its file and the files importing it; elsewhere ``Compute`` stays the normative shorthand, and
    ``tosca:Compute`` is always the normative type."""
    write("other.yaml", """\
        node_types:
          Other:
            derived_from: Compute
        """)
    model = load_model(write("mine.yaml", """\
        imports: [other.yaml]
        node_types:
          Compute:
            derived_from: tosca.nodes.Root
        topology_template:
          node_templates:
            mine: {type: Compute}
            theirs: {type: tosca:Compute}
            other: {type: Other}
        """))
    assert model.templates["mine"].type == "Compute"
    assert model.templates["theirs"].type == "tosca.nodes.Compute"
    assert model.node_types["Other"].ancestors[1] == "tosca.nodes.Compute"


def test_types_without_derived_from_derive_from_their_root(write):
    """Section 5: the root of each kind is the parent of every type of that kind;
    a type written without derived_from gets it (and so the install/uninstall workflows)."""
    model = load_model(write("bare.yaml", """\
        capability_types:
          Api: {}
        relationship_types:
          Uses: {}
        node_types:
          Bare:
            requirements:
              - api: {capability: Api, relationship: Uses}
        topology_template:
          node_templates:
            a: {type: Bare}
            b: {type: Bare, requirements: [{api: a}]}
        """))
    bare = model.node_types["Bare"]
    assert bare.derived_from == "tosca.nodes.Root" and bare.ancestors[-1] == "tosca.nodes.Root"
    assert set(bare.workflows) == {"install", "uninstall"}
    assert model.relationship_types["Uses"].ancestors == ["Uses", "tosca.relationships.Root"]
    own = canonical_sources([normative_types(), {"capability_types": {"Api": {}}, "node_types": {
        "tosca.nodes.Root": {"description": "a library's own root"}}}])[-1]
    assert own["capability_types"]["Api"]["derived_from"] == "tosca.capabilities.Root"
    assert "derived_from" not in own["node_types"]["tosca.nodes.Root"]


def test_namespace_prefix_of_an_import(write):
    """3.1 and the import definition (3.6.8): the types of an import declared with ``namespace_prefix: net`` are referable
    as ``net:Name`` in the importing file."""
    write("lib/net.yaml", """\
        node_types:
          Router:
            derived_from: Root
        """)
    model = load_model(write("svc.yaml", """\
        imports:
          - file: lib/net.yaml
            namespace_prefix: net
        node_types:
          Edge:
            derived_from: net:Router
        topology_template:
          node_templates:
            r: {type: net:Router}
            e: {type: Edge}
        """))
    assert model.templates["r"].type == "Router"
    assert model.node_types["Edge"].ancestors == ["Edge", "Router", "tosca.nodes.Root"]
    with pytest.raises(ToscaError, match="unknown node type 'net:Switch'"):
        load_model(write("bad.yaml", """\
            imports: [{file: lib/net.yaml, namespace_prefix: net}]
            topology_template:
              node_templates:
                s: {type: "net:Switch"}
            """))


def test_namespace_prefix_tosca_is_reserved(write):
    write("t.yaml", "node_types: {A: {}}\n")
    with pytest.raises(ToscaError) as ei:
        load_model(write("m.yaml", """\
            imports: [{file: t.yaml, namespace_prefix: tosca}]
            topology_template: {node_templates: {a: {type: A}}}
            """))
    assert "reserved" in str(ei.value) and ei.value.path == "imports[0].namespace_prefix"


def test_remote_imports_are_refused_in_one_line(write):
    """Imports from a repository or a URL are not fetched: one line naming file, import and why."""
    for body, what in (("imports: [{file: t.yaml, repository: my_repo}]\n", "repository 'my_repo'"),
                       ("imports: ['https://example.org/t.yaml']\n", "remote import")):
        path = write("r.yaml", body + "topology_template: {node_templates: {a: {type: Compute}}}\n")
        with pytest.raises(ToscaError) as ei:
            load_model(path)
        text = str(ei.value)
        assert "\n" not in text and what in text and "local files only" in text
        assert ei.value.file == path and ei.value.path == "imports[0]"


def test_library_is_stored_with_full_names(write):
    """A library uploaded with short names is stored with full ones, so models using it see only
    full names."""
    raw = load_library(write("lib.yaml", """\
        node_types:
          Thing:
            requirements:
              - host: {capability: tosca:Compute, relationship: HostedOn}
        """))
    thing = raw["node_types"]["Thing"]
    assert thing["derived_from"] == "tosca.nodes.Root"
    assert thing["requirements"][0]["host"] == {"capability": "tosca.capabilities.Compute",
                                                "relationship": "tosca.relationships.HostedOn"}
    model = load_model(write("m.yaml", """\
        topology_template:
          node_templates:
            s: {type: Compute}
            t: {type: Thing, requirements: [{host: s}]}
        """), [raw])
    assert model.templates["t"].requirements[0].relationship == "tosca.relationships.HostedOn"


def test_type_names_inside_functions_and_node_filters():
    """``get_nodes_of_type`` takes a node type name (section 4, intrinsic functions); a node_filter's capabilities are
    keyed by capability name or type: both get full names like any other place."""
    sources = canonical_sources([normative_types(), {"node_types": {"App": {
        "derived_from": "Root",
        "properties": {"peers": {"type": "list", "default": {"get_nodes_of_type": "tosca:Compute"}}},
        "requirements": [{"host": {"capability": "Compute", "node_filter": {
            "capabilities": [{"Compute": {"properties": [{"num_cpus": {"in_range": [1, 4]}}]}}]}}}]}}}])
    app = sources[-1]["node_types"]["App"]
    assert app["properties"]["peers"]["default"] == {"get_nodes_of_type": "tosca.nodes.Compute"}
    nf = app["requirements"][0]["host"]["node_filter"]
    assert list(nf["capabilities"][0]) == ["tosca.capabilities.Compute"]
    topo = canonical_topology({"node_templates": {
        "a": {"type": "App", "properties": {"all": {"get_nodes_of_type": "WebServer"}},
              "requirements": [{"host": {"node_filter": {"capabilities": [
                  {"host": {"properties": [{"num_cpus": 2}]}},
                  {"tosca:OperatingSystem": {"properties": [{"type": "linux"}]}}]}}}]}},
        "outputs": {"n": {"value": {"get_nodes_of_type": "tosca:Database"}}}}, sources)
    a = topo["node_templates"]["a"]
    assert a["properties"]["all"] == {"get_nodes_of_type": "tosca.nodes.WebServer"}
    caps = a["requirements"][0]["host"]["node_filter"]["capabilities"]
    assert [next(iter(c)) for c in caps] == ["host", "tosca.capabilities.OperatingSystem"]
    assert topo["outputs"]["n"]["value"] == {"get_nodes_of_type": "tosca.nodes.Database"}
