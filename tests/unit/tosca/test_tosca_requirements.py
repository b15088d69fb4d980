# -*- coding: utf-8 -*-
"""Requirements that do not name a template (node_filter, node type), relationship assignments
without a type, relationship templates, occurrences; scaling by capability type and by inputs."""
from __future__ import annotations

import pytest

from wfengine.errors import ToscaError
from wfengine.instances import expand
from wfengine.tosca.model import NodeTemplate
from wfengine.tosca.scaling import apply_inputs
from wfengine.tosca.templates import load_model

ENCRYPTION = """
capability_types:
  mytypes.capabilities.compute.encryption:
    derived_from: tosca.capabilities.Root
    properties:
      algorithm: {type: string, default: aes}
      keylength: {type: integer, default: 128}
node_types:
  mytypes.SecureCompute:
    derived_from: tosca.nodes.Compute
    capabilities:
      encryption: {type: mytypes.capabilities.compute.encryption}
"""

# TOSCA 1.3 3.8.2 (requirement assignment), example "node_filter on an abstract host": the host is
# any tosca.nodes.Compute whose capabilities match; 3.6.3 constraint clauses on scalar-units.
MYSQL_HOST_FILTER = """\
        - host:
            node: tosca.nodes.Compute
            node_filter:
              capabilities:
                - host:
                    properties:
                      - num_cpus: { in_range: [ 1, 4 ] }
                      - mem_size: { greater_or_equal: 512 MB }
                - os:
                    properties:
                      - architecture: { equal: x86_64 }
                      - type: linux
                      - distribution: { equal: ubuntu }
                - mytypes.capabilities.compute.encryption:
                    properties:
                      - algorithm: { equal: aes }
                      - keylength: { valid_values: [ 128, 256 ] }
"""


def compute(name: str, cpus: int, mem: str, distribution: str = "ubuntu", ctype: str = "mytypes.SecureCompute",
            keylength: int = 256) -> str:
    enc = "        encryption: {properties: {keylength: %d}}\n" % keylength if ctype == "mytypes.SecureCompute" else ""
    return """    %s:
      type: %s
      capabilities:
        host: {properties: {num_cpus: %d, mem_size: %s}}
        os: {properties: {architecture: x86_64, type: linux, distribution: %s}}
%s""" % (name, ctype, cpus, mem, distribution, enc)


def model(write, computes: str, requirements: str = MYSQL_HOST_FILTER, extra: str = ENCRYPTION) -> str:
    return write("m.yaml", extra + """
topology_template:
  node_templates:
%s    mysql:
      type: tosca.nodes.DBMS
      requirements:
%s""" % (computes, requirements))


def test_node_filter_selects_the_only_matching_compute(write):
    """TOSCA 1.3 3.8.2 / 3.6.4: the node_filter example of the specification picks, among three
    Computes, the one with 2 CPUs, 1 GB, ubuntu and a 256-bit encryption capability."""
    path = model(write, compute("big", 8, "16 GB") + compute("small", 2, "1 GB") + compute("tiny", 1, "256 MB")
                 + compute("centos", 2, "1 GB", distribution="centos"))
    m = load_model(path)
    host = m.templates["mysql"].requirements[0]
    assert (host.name, host.node, host.relationship) == ("host", "small", "tosca.relationships.HostedOn")
    nodes = expand(m)
    assert nodes["mysql_0"]["host"] == "small_0"


def test_node_filter_with_no_match_names_what_was_asked(write):
    path = model(write, compute("big", 8, "16 GB") + compute("tiny", 1, "256 MB"))
    with pytest.raises(ToscaError) as ei:
        load_model(path)
    line = str(ei.value)
    assert "m.yaml" in line and "node_templates.mysql.requirements[0].host" in line
    assert "no node template matches node type tosca.nodes.Compute" in line
    assert line.endswith("its node_filter (the node_filter rejects big, tiny)")


def test_node_filter_with_several_matches_names_the_candidates(write):
    path = model(write, compute("a", 2, "1 GB") + compute("b", 4, "2 GB") + compute("c", 9, "2 GB"))
    with pytest.raises(ToscaError, match=r"mysql: requirement 'host': 2 node templates match .*\(a, b\)"):
        load_model(path)


def test_a_capability_filter_by_type_needs_that_capability(write):
    """A plain Compute has no encryption capability: the filter naming its type excludes it."""
    path = model(write, compute("plain", 2, "1 GB", ctype="tosca.nodes.Compute") + compute("sec", 2, "1 GB"))
    assert load_model(path).templates["mysql"].requirements[0].node == "sec"


def test_node_filter_values_from_input_defaults(write):
    """A property given by get_input is compared through the input's default."""
    path = write("m.yaml", """
topology_template:
  inputs:
    cpus: {type: integer, default: 2, constraints: [{valid_values: [1, 2, 4, 8]}]}
  node_templates:
    one:
      type: tosca.nodes.Compute
      capabilities: {host: {properties: {num_cpus: {get_input: cpus}}}}
    two:
      type: tosca.nodes.Compute
      capabilities: {host: {properties: {num_cpus: 8}}}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host:
            node_filter:
              capabilities:
                - tosca.capabilities.Compute:
                    properties: [{num_cpus: {less_than: 4}}]
""")
    assert load_model(path).templates["app"].requirements[0].node == "one"


def test_requirement_naming_a_node_type(write):
    """TOSCA 1.3 3.8.2: ``node`` may name a node type; the only template of that type is taken."""
    path = write("m.yaml", """
topology_template:
  node_templates:
    srv: {type: tosca.nodes.Compute}
    dbms: {type: tosca.nodes.DBMS, requirements: [{host: srv}]}
    db:
      type: tosca.nodes.Database
      properties: {name: inventory}
      requirements:
        - host: tosca.nodes.DBMS
""")
    req = load_model(path).templates["db"].requirements[0]
    assert (req.node, req.relationship) == ("dbms", "tosca.relationships.HostedOn")


def test_requirement_naming_a_node_type_with_two_templates(write):
    path = write("m.yaml", """
topology_template:
  node_templates:
    a: {type: tosca.nodes.Compute}
    b: {type: tosca.nodes.Compute}
    app: {type: tosca.nodes.SoftwareComponent, requirements: [{host: tosca.nodes.Compute}]}
""")
    with pytest.raises(ToscaError, match=r"app: requirement 'host': 2 node templates match node type "
                                         r"tosca.nodes.Compute, capability tosca.capabilities.Compute \(a, b\)"):
        load_model(path)


def test_relationship_assignment_without_type_takes_the_definitions(write):
    """TOSCA 1.3 3.8.2 extended grammar: ``relationship`` refines properties of the definition's
    relationship (ConnectsTo here) without naming its type."""
    path = write("m.yaml", """
node_types:
  my.Client:
    derived_from: tosca.nodes.SoftwareComponent
    requirements:
      - server:
          capability: tosca.capabilities.Endpoint
          relationship: tosca.relationships.ConnectsTo
topology_template:
  node_templates:
    vm: {type: tosca.nodes.Compute}
    srv: {type: tosca.nodes.WebServer, requirements: [{host: vm}]}
    cli:
      type: my.Client
      requirements:
        - host: vm
        - server:
            node: srv
            relationship:
              properties: {credential: {user: admin, token: s3cret}}
""")
    req = load_model(path).templates["cli"].requirements[1]
    assert req.relationship == "tosca.relationships.ConnectsTo"
    assert req.properties == {"credential": {"user": "admin", "token": "s3cret"}}


def test_relationship_template_by_name_and_refined(write):
    """TOSCA 1.3 3.9 (relationship_templates), 3.8.2: a requirement names a relationship
    template, directly or as ``type`` of the extended form whose properties refine it."""
    path = write("m.yaml", """
topology_template:
  relationship_templates:
    storage_attachment:
      type: tosca.relationships.AttachesTo
      properties: {location: /mnt/data}
      interfaces:
        Configure:
          post_configure_source: scripts/mount.sh
  node_templates:
    vol: {type: tosca.nodes.Storage.BlockStorage, properties: {name: vol}}
    srv:
      type: tosca.nodes.Compute
      requirements:
        - local_storage: {node: vol, relationship: storage_attachment}
    srv2:
      type: tosca.nodes.Compute
      requirements:
        - local_storage:
            node: vol
            relationship: {type: storage_attachment, properties: {device: /dev/vdb}}
""")
    m = load_model(path)
    a = m.templates["srv"].requirements[0]
    assert (a.relationship, a.relationship_template, a.properties) == (
        "tosca.relationships.AttachesTo", "storage_attachment", {"location": "/mnt/data"})
    assert a.interfaces["Configure"]["post_configure_source"] == "scripts/mount.sh"
    b = m.templates["srv2"].requirements[0]
    assert b.relationship_template == "storage_attachment"
    assert b.properties == {"location": "/mnt/data", "device": "/dev/vdb"}


def test_relationship_template_property_errors_name_the_template(write):
    """A relationship template's properties are checked against its type (TOSCA 1.3 5.7.4
    AttachesTo: ``device`` is a string); ``location``, required only by TOSCA's default, is
    announced as a warning when missing (docs/decisions.md)."""
    text = """
topology_template:
  relationship_templates:
    att: {type: tosca.relationships.AttachesTo, properties: {device: %s}}
  node_templates:
    vol: {type: tosca.nodes.Storage.BlockStorage, properties: {name: vol}}
    srv: {type: tosca.nodes.Compute, requirements: [{local_storage: {node: vol, relationship: att}}]}
"""
    with pytest.raises(ToscaError) as ei:
        load_model(write("m.yaml", text % "5"))
    assert "relationship_templates.att.properties.device" in str(ei.value) and "5 is not a string" in str(ei.value)
    m = load_model(write("m.yaml", text % "/dev/vdb"))
    assert len(m.warnings) == 1
    assert "relationship_templates.att.properties.location: relationship template att: properties.location: " \
           "property 'location' has no value; TOSCA makes it required by default" in m.warnings[0]


OCC_TYPES = """
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    requirements:
      - database:
          capability: tosca.capabilities.Endpoint.Database
          node: tosca.nodes.Database
          relationship: tosca.relationships.ConnectsTo
          occurrences: [1, 2]
"""


def occ_model(write, dbs: int, assigned: int) -> str:
    tpls = "".join("    db%d: {type: tosca.nodes.Database, properties: {name: d%d}}\n" % (i, i) for i in range(dbs))
    reqs = "".join("        - database: db%d\n" % i for i in range(assigned))
    return write("m.yaml", OCC_TYPES + """
topology_template:
  node_templates:
%s    app:
      type: my.App
      requirements:
%s""" % (tpls, reqs or "        []\n"))


def test_occurrences_upper_bound(write):
    """TOSCA 1.3 3.6.2 requirement definition: occurrences [1, 2] allows two assignments, not three."""
    assert len(load_model(occ_model(write, 3, 2)).templates["app"].requirements) == 2
    with pytest.raises(ToscaError, match=r"app: requirement 'database' is assigned 3 times; type my.App allows "
                                         r"at most 2 \(occurrences \[1, 2\]\)"):
        load_model(occ_model(write, 3, 3))


def test_occurrences_lower_bound_fulfilled_by_the_only_candidate(write):
    """An unassigned requirement whose definition needs one is fulfilled by the only template
    that matches it (node type and capability of the definition), with a warning."""
    m = load_model(occ_model(write, 1, 0))
    req = m.templates["app"].requirements
    assert [(r.name, r.node, r.relationship) for r in req] == [("database", "db0", "tosca.relationships.ConnectsTo")]
    assert len(m.warnings) == 1 and "requirement 'database' of app is not assigned" in m.warnings[0]
    assert "fulfilled with db0" in m.warnings[0] and "m.yaml" in m.warnings[0]


def test_occurrences_lower_bound_with_several_or_no_candidates(write):
    with pytest.raises(ToscaError, match=r"needs at least 1 .*candidates: db0, db1"):
        load_model(occ_model(write, 2, 0))
    with pytest.raises(ToscaError, match=r"needs at least 1 .*no node template matches it"):
        load_model(occ_model(write, 0, 0))


def test_default_occurrences_leave_an_unassigned_host_dangling(write):
    """A definition without occurrences (host of SoftwareComponent) may stay unassigned: real
    templates leave it to the orchestrator (docs/decisions.md)."""
    path = write("m.yaml", """
topology_template:
  node_templates:
    a: {type: tosca.nodes.Compute}
    b: {type: tosca.nodes.Compute}
    app: {type: tosca.nodes.SoftwareComponent}
""")
    m = load_model(path)
    assert m.templates["app"].requirements == [] and not getattr(m, "warnings", [])


# ---------------------------------------------------------------- scaling
SCALABLE_SUBTYPE = """
capability_types:
  my.capabilities.Elastic:
    derived_from: tosca.capabilities.Scalable
    properties:
      cooldown: {type: scalar-unit.time, required: false}
node_types:
  my.Worker:
    derived_from: tosca.nodes.SoftwareComponent
    capabilities:
      elastic: {type: my.capabilities.Elastic}
"""


def test_scaling_on_a_capability_derived_from_scalable(write):
    """TOSCA 1.3 5.5.13: any capability of a type derived from tosca.capabilities.Scalable scales."""
    path = write("m.yaml", SCALABLE_SUBTYPE + """
topology_template:
  node_templates:
    w:
      type: my.Worker
      capabilities:
        elastic: {properties: {min_instances: 1, default_instances: 3, max_instances: 5, cooldown: 30 s}}
""")
    sc = load_model(path).templates["w"].scaling
    assert (sc.min_instances, sc.default_instances, sc.max_instances) == (1, 3, 5)


def test_scaling_subtype_property_typo(write):
    path = write("m.yaml", SCALABLE_SUBTYPE + """
topology_template:
  node_templates:
    w: {type: my.Worker, capabilities: {elastic: {properties: {cooldwn: 30 s}}}}
""")
    with pytest.raises(ToscaError, match=r"w: unknown elastic properties cooldwn \(allowed: cooldown, "):
        load_model(path)


SCALED_BY_INPUT = """
topology_template:
  inputs:
    workers: {type: integer, default: 2}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: {get_input: workers}, max_instances: 4}
"""


def test_scaling_from_an_input_at_upload_and_at_instantiation(write):
    """get_input in default_instances: the input's default at upload, the given value at
    instantiation, checked against min/max each time."""
    m = load_model(write("m.yaml", SCALED_BY_INPUT))
    sc = m.templates["vm"].scaling
    assert (sc.min_instances, sc.default_instances, sc.max_instances, sc.inputs) == (
        1, 2, 4, {"default_instances": "workers"})
    assert len(expand(m)) == 2
    stored = {n: NodeTemplate.from_json(t.to_json()) for n, t in m.templates.items()}
    apply_inputs(stored, {"workers": 3}, "instance m/i")
    assert stored["vm"].scaling.default_instances == 3
    apply_inputs(stored, {"workers": "4"}, "instance m/i")      # a templated Ansible value is text
    assert stored["vm"].scaling.default_instances == 4
    with pytest.raises(ToscaError, match=r"instance m/i: template vm: scaling needs .*default_instances=7 "
                                         r"\(input workers\), max_instances=4"):
        apply_inputs(stored, {"workers": 7}, "instance m/i")
    with pytest.raises(ToscaError, match=r"template vm: default_instances must be integers.*'many' \(input workers\)"):
        apply_inputs(stored, {"workers": "many"}, "instance m/i")


@pytest.mark.parametrize("inputs, match", [
    ("workers: {type: integer, default: 9}", r"default_instances=9 \(input workers\)"),
    ("workers: {type: string, default: '2'}", r"input workers is of type string, a count needs an integer"),
    ("other: {type: integer, default: 1}", r"get_input of undeclared input 'workers' \(inputs: other\)"),
])
def test_scaling_input_errors_at_upload(write, inputs, match):
    text = SCALED_BY_INPUT.replace("workers: {type: integer, default: 2}", inputs)
    with pytest.raises(ToscaError, match=match):
        load_model(write("m.yaml", text))


PUCCINI_TUTORIAL = """
node_types:
  LightBulb:
    requirements:
    - socket: Socket
  Fan:
    requirements:
    - socket:
        capability: SuperSocket
        node: PowerPanel
        relationship: SmartPlug
        occurrences: [ 2, UNBOUNDED ]
  PowerPanel:
    properties:
      age: {type: scalar-unit.time}
    capabilities:
      main: Socket
      aux: Socket
      emergency: {type: SuperSocket, occurrences: [ 2, 4 ]}
capability_types:
  Socket:
    properties:
      frequency: {type: scalar-unit.frequency}
  SuperSocket:
    derived_from: Socket
    properties:
      failsafe: {type: boolean}
relationship_types:
  SmartPlug:
    properties:
      vendor: {type: string, required: false}
  SuperSmartPlug:
    derived_from: SmartPlug
    properties:
      failsafe: {type: boolean}
topology_template:
  inputs:
    age: {type: scalar-unit.time, default: 5 d}
  node_templates:
    light2: {type: LightBulb, requirements: [{socket: main_panel}]}
    light3: {type: LightBulb, requirements: [{socket: PowerPanel}]}
    light4: {type: LightBulb, requirements: [{socket: {node: main_panel, capability: emergency}}]}
    light5: {type: LightBulb, requirements: [{socket: {capability: SuperSocket}}]}
    light6: {type: LightBulb, requirements: [{socket: {capability: SuperSocket}}, {socket: {}}]}
    light7:
      type: LightBulb
      requirements:
      - socket:
          capability: Socket
          node_filter:
            properties:
              age:
              - less_than: %s
    light12: {type: LightBulb, requirements: [{socket: {relationship: smart_plug}}]}
    fan1:
      type: Fan
      requirements:
      - socket: {relationship: {properties: {vendor: PowerEmperor}}}
      - socket: {relationship: {type: SuperSmartPlug, properties: {vendor: PowerEmperor, failsafe: false}}}
    main_panel:
      type: PowerPanel
      properties:
        age: { get_input: age }
      capabilities:
        main: {properties: {frequency: 50 hz}}
        emergency: {properties: {frequency: 120 hz, failsafe: true}}
  relationship_templates:
    smart_plug:
      type: SuperSmartPlug
      properties: {vendor: Electric Stuff International, failsafe: false}
"""


def test_the_requirement_forms_of_the_oasis_tutorial(write):
    """oasis-open/tosca-community-contributions, examples/1.3/tutorial/requirements-and-
    capabilities.yaml (Puccini's, Apache-2.0), TOSCA 1.3 3.8.2: a template, a node type, a
    capability name or type, an empty assignment, a node_filter on a scalar-unit property read
    through get_input, a relationship template, relationship assignments without a type,
    occurrences [2, UNBOUNDED]."""
    m = load_model(write("m.yaml", PUCCINI_TUTORIAL % "100 d"))
    t = m.templates
    for name in ("light2", "light3", "light4", "light5", "light7"):
        assert [r.node for r in t[name].requirements] == ["main_panel"], name
    assert t["light2"].requirements[0].relationship == "tosca.relationships.DependsOn"
    assert [r.node for r in t["light6"].requirements] == ["main_panel", "main_panel"]
    r12 = t["light12"].requirements[0]
    assert (r12.relationship, r12.relationship_template, r12.properties["failsafe"]) == (
        "SuperSmartPlug", "smart_plug", False)
    f1, f2 = t["fan1"].requirements
    assert (f1.node, f1.relationship, f1.properties) == ("main_panel", "SmartPlug", {"vendor": "PowerEmperor"})
    assert (f2.relationship, f2.properties["failsafe"]) == ("SuperSmartPlug", False)
    # 5 d is not less than 1 d: nothing matches light7's filter any more
    with pytest.raises(ToscaError, match=r"light7: requirement 'socket': no node template matches capability "
                                         r"Socket, its node_filter"):
        load_model(write("m.yaml", PUCCINI_TUTORIAL % "1 d"))
    # the tutorial's own light7 compares the scalar-unit with a bare number: it matches nothing
    with pytest.raises(ToscaError, match=r"light7: requirement 'socket': no node template matches"):
        load_model(write("m.yaml", PUCCINI_TUTORIAL % "8640000"))
