"""TOSCA functions: get_input, get_property, get_attribute (SELF/SOURCE/TARGET/HOST/template),
concat, join, errors naming the function and path; the ModelContext over a real model."""
import pytest

from wfengine.errors import WfError
from wfengine.operation.function_contexts import DictContext, ModelContext
from wfengine.operation.function_eval import evaluate, evaluate_outputs, input_values
from wfengine.operation.functions import FunctionError, has_function, to_text
from wfengine.instances import expand
from wfengine.operations import compile_values
from wfengine.tosca.templates import load_model

from engine_helpers import write

NODES = {
    "vm_0": {"template": "vm", "host": None, "properties": {"os": "debian", "disk": {"size": 20}},
             "attributes": {"ip_address": "10.0.0.5"}},
    "web_0": {"template": "web", "host": "vm_0", "properties": {"port": 8080, "admin": {"get_input": "admin"},
                                                                "tags": ["a", "b"]},
              "attributes": {"state": "started"},
              "capabilities": {"endpoint": {"properties": {"protocol": "http", "port": 80}}}},
    "app_0": {"template": "app", "host": "web_0", "properties": {"name": "shop", "port": {"get_property": ["HOST", "port"]}},
              "attributes": {}},
    "db_0": {"template": "db", "host": None, "properties": {"port": 5432}, "attributes": {"ip_address": "10.0.0.9"}},
    "db_1": {"template": "db", "host": None, "properties": {"port": 5432}, "attributes": {"ip_address": "10.0.0.10"}},
}
INPUTS = {"admin": "root", "cfg": {"levels": [1, 2, 3]}, "flag": True}


def ctx(**kw):
    kw.setdefault("self_node", "app_0")
    return DictContext(NODES, inputs=INPUTS, **kw)


def test_get_input_plain_and_nested():
    assert evaluate({"get_input": "admin"}, ctx()) == "root"
    assert evaluate({"get_input": ["cfg", "levels", 1]}, ctx()) == 2
    assert evaluate({"get_input": ["flag"]}, ctx()) is True


def test_get_property_self_and_nested():
    assert evaluate({"get_property": ["SELF", "name"]}, ctx()) == "shop"
    assert evaluate({"get_property": ["vm", "disk", "size"]}, ctx()) == 20
    assert evaluate({"get_property": ["web", "tags", -1]}, ctx()) == "b"


def test_functions_inside_a_property_are_evaluated_where_the_property_lives():
    # web's admin property is {get_input: admin}; app's port is {get_property: [HOST, port]}.
    assert evaluate({"get_property": ["HOST", "admin"]}, ctx()) == "root"
    assert evaluate({"get_property": ["SELF", "port"]}, ctx()) == 8080


def test_host_walks_the_hosted_on_chain():
    assert evaluate({"get_property": ["HOST", "port"]}, ctx()) == 8080          # web_0
    assert evaluate({"get_property": ["HOST", "os"]}, ctx()) == "debian"        # vm_0, two levels up
    assert evaluate({"get_attribute": ["HOST", "ip_address"]}, ctx()) == "10.0.0.5"


def test_get_attribute_falls_back_to_property():
    assert evaluate({"get_attribute": ["SELF", "name"]}, ctx()) == "shop"
    assert evaluate({"get_attribute": ["web", "state"]}, ctx()) == "started"


def test_source_and_target_in_relationship_operations():
    c = ctx(self_node="app_0", source="app_0", target="db_1", relationship="app_0:db#1:db_1",
            relationships={"app_0:db#1:db_1": {"properties": {"weight": 4}, "attributes": {}}})
    assert evaluate({"get_attribute": ["TARGET", "ip_address"]}, c) == "10.0.0.10"
    assert evaluate({"get_property": ["SOURCE", "name"]}, c) == "shop"
    # SELF is the relationship first (TOSCA), then the node that runs the operation.
    assert evaluate({"get_property": ["SELF", "weight"]}, c) == 4
    assert evaluate({"get_property": ["SELF", "name"]}, c) == "shop"
    assert evaluate({"get_property": ["HOST", "port"]}, c) == 8080


def test_capability_properties():
    c = ctx(self_node="web_0")
    assert evaluate({"get_property": ["SELF", "endpoint", "protocol"]}, c) == "http"
    # the node's own property wins over a capability of the same name path
    assert evaluate({"get_property": ["SELF", "port"]}, c) == 8080


def test_concat_and_join_recursive():
    value = {"get_attribute": ["HOST", "ip_address"]}
    url = {"concat": ["http://", value, ":", {"get_property": ["HOST", "port"]}, "/",
                      {"concat": [{"get_property": ["SELF", "name"]}, "?x=", True]}]}
    assert evaluate(url, ctx()) == "http://10.0.0.5:8080/shop?x=true"
    assert evaluate({"join": [["a", {"get_input": "admin"}, 3], ","]}, ctx()) == "a,root,3"
    assert evaluate({"join": [["a", "b"]]}, ctx()) == "ab"


def test_structures_are_evaluated_recursively():
    value = {"env": [{"get_input": "admin"}, {"k": {"get_property": ["SELF", "name"]}}], "n": 1}
    assert evaluate(value, ctx()) == {"env": ["root", {"k": "shop"}], "n": 1}
    # a mapping with two keys is data, not a function call
    assert evaluate({"get_input": "x", "other": 1}, ctx()) == {"get_input": "x", "other": 1}
    assert has_function(value) and not has_function({"a": [1, "b"]})


@pytest.mark.parametrize("value, words", [
    ({"get_input": "nope"}, ["get_input", "nope", "admin"]),
    ({"get_input": ["cfg", "levels", 7]}, ["get_input", "levels.7"]),
    ({"get_property": ["SELF", "nope"]}, ["get_property", "app_0", "'nope'"]),
    ({"get_property": ["SELF", "name", "deeper"]}, ["get_property", "name", "deeper"]),
    ({"get_attribute": ["HOST", "nope"]}, ["get_attribute", "no host of", "web_0, vm_0"]),
    ({"get_property": ["SOURCE", "x"]}, ["SOURCE is only defined in a relationship operation"]),
    ({"get_property": ["nobody", "x"]}, ["'nobody'", "node template"]),
    ({"get_property": ["SELF"]}, ["expected [SELF|SOURCE|TARGET|HOST|<template>, name"]),
    ({"get_property": "SELF"}, ["expected"]),
    ({"get_property": ["SELF", "endpoint", "nope"]}, ["nope"]),
    ({"concat": "abc"}, ["concat", "list"]),
    ({"join": ["abc", ","]}, ["join", "list"]),
])
def test_errors_name_the_function_and_path(value, words):
    c = ctx(self_node="web_0") if "endpoint" in str(value) else ctx()
    with pytest.raises(FunctionError) as exc:
        evaluate(value, c)
    assert isinstance(exc.value, WfError)
    for w in words:
        assert w in str(exc.value)


def test_host_of_an_unhosted_node():
    with pytest.raises(FunctionError, match="hosted on nothing"):
        evaluate({"get_property": ["HOST", "x"]}, ctx(self_node="vm_0"))


def test_self_referencing_property_is_an_error_not_a_hang():
    nodes = {"a_0": {"template": "a", "properties": {"p": {"get_property": ["SELF", "p"]}}}}
    with pytest.raises(FunctionError, match="nested more than"):
        evaluate({"get_property": ["SELF", "p"]}, DictContext(nodes, self_node="a_0"))


def test_to_text():
    assert [to_text(v) for v in ("x", 3, 1.5, True, False, None, [1, "a"], {"b": 1})] == \
        ["x", "3", "1.5", "true", "false", "", '[1, "a"]', '{"b": 1}']


def test_input_values():
    defs = {"a": {"type": "string", "default": "x"}, "b": {"type": "integer"},
            "c": {"type": "string", "required": False}}
    assert input_values(defs, {"b": 2}) == {"a": "x", "b": 2}
    with pytest.raises(FunctionError, match="input b is required"):
        input_values(defs, {})
    with pytest.raises(FunctionError, match="unknown input"):
        input_values(defs, {"b": 1, "zz": 2})


def test_evaluate_outputs_reports_errors_per_output():
    defs = {"url": {"value": {"concat": ["http://", {"get_attribute": ["vm", "ip_address"]}]}},
            "missing": {"value": {"get_attribute": ["app", "nope"]}}}
    out = evaluate_outputs(defs, DictContext(NODES, inputs=INPUTS))
    assert out["url"] == {"value": "http://10.0.0.5"}
    assert "nope" in out["missing"]["error"]


# ------------------------------------------------------------------ ModelContext on a real model
MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.Server:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      port: {type: integer, default: 5432}
      owner: {type: string}
topology_template:
  inputs:
    user: {type: string, default: bob}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {default_instances: 2}}
    db:
      type: my.Server
      properties: {owner: {get_input: user}}
      requirements: [{host: vm}]
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: vm
        - conn: {node: db, relationship: {type: tosca.relationships.ConnectsTo, properties: {credential: {user: u, token: t}}}}
"""


def _model_ctx(tmp_path, self_node, rel=None, attrs=None):
    model = load_model(write(tmp_path, "m.yaml", MODEL), [])
    nodes = expand(model)
    attrs = attrs or {}
    return ModelContext(values=compile_values(model), node=lambda n: nodes[n],
                        attributes=lambda n: attrs.get(n, {}), inputs=input_values(model.inputs, {}),
                        self_node=self_node,
                        instances=lambda t: [n for n, v in nodes.items() if v["template"] == t],
                        relationship=rel), nodes


def test_model_context_reads_defaults_inputs_and_attributes(tmp_path):
    attrs = {"vm_1": {"ip_address": "10.1.1.1"}, "db_1": {"ip_address": "10.2.2.2"}}
    c, nodes = _model_ctx(tmp_path, "app_1", attrs=attrs)
    assert nodes["app_1"]["host"] == "vm_1"
    assert evaluate({"get_attribute": ["HOST", "ip_address"]}, c) == "10.1.1.1"
    # "db" from app_1 designates the db instance app_1 is connected to... app_1 connects to every
    # db instance; the first link wins (db_0), whatever the host.
    assert evaluate({"get_property": ["db", "port"]}, c) == 5432
    assert evaluate({"get_property": ["db", "owner"]}, c) == "bob"
    assert evaluate({"get_attribute": ["SELF", "tosca_id"]}, c) == "app_1"
    assert evaluate({"get_attribute": ["SELF", "tosca_name"]}, c) == "app"


def test_model_context_relationship_operation(tmp_path):
    attrs = {"db_1": {"ip_address": "10.2.2.2"}}
    model_nodes = expand(load_model(write(tmp_path, "m.yaml", MODEL), []))
    rel = [r for r in model_nodes["app_0"]["out"] if r["target"] == "db_1"][0]
    c = _model_ctx(tmp_path, "app_0", rel=rel, attrs=attrs)[0]
    assert evaluate({"get_attribute": ["TARGET", "ip_address"]}, c) == "10.2.2.2"
    assert evaluate({"get_property": ["SELF", "credential", "user"]}, c) == "u"
    # a template name that is the other end designates that end
    assert evaluate({"get_attribute": ["db", "ip_address"]}, c) == "10.2.2.2"
    with pytest.raises(FunctionError, match=r"node db_0 \(template db\) has no attribute or property"):
        rel0 = [r for r in model_nodes["app_0"]["out"] if r["target"] == "db_0"][0]
        evaluate({"get_attribute": ["TARGET", "nothing"]}, _model_ctx(tmp_path, "app_0", rel=rel0)[0])


# ---------------------------------------------------------------- issue 16: TOSCA 1.3 chapter 4
SPEC_NODES = {
    "server_0": {"template": "server", "type": "tosca.nodes.Compute",
                 "types": ["tosca.nodes.Compute", "tosca.nodes.Abstract.Compute", "tosca.nodes.Root"],
                 "host": None, "properties": {}, "attributes": {"private_address": "10.0.0.7"},
                 "capabilities": {"endpoint": {"properties": {"port": 22}, "attributes": {"ip_address": "10.9.9.9"}}}},
    "server_1": {"template": "server", "type": "tosca.nodes.Compute",
                 "types": ["tosca.nodes.Compute", "tosca.nodes.Abstract.Compute", "tosca.nodes.Root"],
                 "host": None, "properties": {}, "attributes": {"private_address": "10.0.0.8"}},
    "wordpress_0": {"template": "wordpress", "type": "tosca.nodes.WebApplication.WordPress",
                    "types": ["tosca.nodes.WebApplication.WordPress", "tosca.nodes.WebApplication",
                              "tosca.nodes.Root"],
                    "host": "server_0", "properties": {"admin": {"user": "wp", "ports": [80, 443]}},
                    "attributes": {"~outputs/Standard.create": {"port": "8080"},
                                   "~outputs/web_0:db#0:db_0/Configure.pre_configure_source": {"k": "v"}},
                    "requirements": {"database_endpoint": ["mysql_0"], "host": ["server_0"]},
                    "artifacts": {"config": "files/wp.conf"}},
    "mysql_0": {"template": "mysql", "type": "tosca.nodes.Database", "types": ["tosca.nodes.Database"],
                "host": "server_1", "properties": {"name": "wp"}, "attributes": {}},
}


def spec_ctx(**kw):
    kw.setdefault("self_node", "wordpress_0")
    return DictContext(SPEC_NODES, inputs={}, **kw)


def test_token_splits_on_any_separator_character():
    """TOSCA 1.3 4.3.3.3: token: [get_attribute: [my_server, data_endpoint, ip_address], ':', 1]."""
    assert evaluate({"token": ["192.168.0.1:8080", ":", 1]}, spec_ctx()) == "8080"
    assert evaluate({"token": ["a,b;c", ",;", 2]}, spec_ctx()) == "c"
    nested = {"token": [{"concat": ["host", ":", {"get_property": ["SELF", "admin", "ports", 1]}]}, ":", 1]}
    assert evaluate(nested, spec_ctx()) == "443"
    with pytest.raises(FunctionError, match="has 2 tokens, no token 5"):
        evaluate({"token": ["a:b", ":", 5]}, spec_ctx())
    with pytest.raises(FunctionError, match="expected \\[string, separator characters, index\\]"):
        evaluate({"token": ["a:b", ":"]}, spec_ctx())


def test_requirement_name_designates_the_node_it_targets():
    """TOSCA 1.3 4.4.2/4.5.1: [SELF, database_endpoint, ...] reads the node the requirement targets;
    [SELF, host, private_address] the Compute it is hosted on."""
    assert evaluate({"get_property": ["SELF", "database_endpoint", "name"]}, spec_ctx()) == "wp"
    assert evaluate({"get_attribute": ["SELF", "host", "private_address"]}, spec_ctx()) == "10.0.0.7"
    with pytest.raises(FunctionError, match="target of requirement database_endpoint .* has no property 'nope'"):
        evaluate({"get_property": ["SELF", "database_endpoint", "nope"]}, spec_ctx())


def test_requirement_and_capability_of_the_same_name_and_the_capability_fulfilling_a_requirement():
    """A WebServer has a `host` capability and a `host` requirement ([TARGET, host, id] in xOpera's
    nginx example): the capability when it has the name, else the requirement's target.  A name
    the target node lacks is read on its capability named like the requirement (tosca-parser)."""
    nodes = {
        "vm_0": {"template": "vm", "type": "tosca.nodes.Compute", "types": ["tosca.nodes.Compute"], "host": None,
                 "properties": {}, "attributes": {"id": "i-123"}},
        "web_0": {"template": "web", "type": "tosca.nodes.WebServer", "types": ["tosca.nodes.WebServer"],
                  "host": "vm_0", "properties": {}, "attributes": {}, "requirements": {"host": ["vm_0"], "db": ["db_0"]},
                  "capabilities": {"host": {"properties": {"num_cpus": 2}, "attributes": {}}}},
        "db_0": {"template": "db", "type": "tosca.nodes.Database", "types": ["tosca.nodes.Database"],
                 "host": None, "properties": {}, "attributes": {},
                 "capabilities": {"db": {"properties": {"ports": {"user_port": {"protocol": "tcp"}}}}}},
    }
    ctx = DictContext(nodes, inputs={}, self_node="web_0")
    assert evaluate({"get_property": ["SELF", "host", "num_cpus"]}, ctx) == 2
    assert evaluate({"get_attribute": ["SELF", "host", "id"]}, ctx) == "i-123"
    assert evaluate({"get_property": ["SELF", "db", "ports", "user_port", "protocol"]}, ctx) == "tcp"
    with pytest.raises(FunctionError, match="target of requirement db .* has no property 'nope'"):
        evaluate({"get_property": ["SELF", "db", "nope"]}, ctx)


def test_capability_attribute_assigned_in_the_template_and_nested_values():
    """TOSCA 1.3 4.4.2 / 4.5.1: [entity, capability, name] and nested keys/indexes after the name."""
    assert evaluate({"get_attribute": ["server", "endpoint", "ip_address"]}, spec_ctx()) == "10.9.9.9"
    assert evaluate({"get_property": ["server", "endpoint", "port"]}, spec_ctx()) == 22
    assert evaluate({"get_property": ["SELF", "admin", "ports", 0]}, spec_ctx()) == 80


def test_relationship_template_as_the_entity():
    rels = {"my_connection": {"properties": {"credential": {"user": "u"}}, "attributes": {"state": "initial"}}}
    c = spec_ctx(relationship_templates=rels)
    assert evaluate({"get_property": ["my_connection", "credential", "user"]}, c) == "u"
    assert evaluate({"get_attribute": ["my_connection", "state"]}, c) == "initial"
    with pytest.raises(FunctionError, match="relationship template my_connection has no property 'x'"):
        evaluate({"get_property": ["my_connection", "x"]}, c)


def test_get_nodes_of_type_lists_instances_of_the_type_and_its_subtypes():
    """TOSCA 1.3 4.7.1: the node instances of a type (a subtype counts), natural order."""
    assert evaluate({"get_nodes_of_type": "tosca.nodes.Compute"}, spec_ctx()) == ["server_0", "server_1"]
    assert evaluate({"get_nodes_of_type": "tosca.nodes.Root"}, spec_ctx()) == [
        "server_0", "server_1", "wordpress_0"]
    assert evaluate({"get_nodes_of_type": "my.Nothing"}, spec_ctx()) == []


def test_get_operation_output_reads_what_the_operation_wrote():
    """TOSCA 1.3 4.6.1: [SELF, interface, operation, output]; the interface by any of its names."""
    assert evaluate({"get_operation_output": ["SELF", "Standard", "create", "port"]}, spec_ctx()) == "8080"
    assert evaluate({"get_operation_output": ["wordpress", "tosca.interfaces.node.lifecycle.Standard",
                                              "create", "port"]}, spec_ctx(self_node="mysql_0")) == "8080"
    rel = spec_ctx(relationship="web_0:db#0:db_0", source="wordpress_0", target="mysql_0")
    assert evaluate({"get_operation_output": ["SOURCE", "Configure", "pre_configure_source", "k"]}, rel) == "v"
    with pytest.raises(FunctionError, match="reported no output 'nope' \\(its outputs: port\\)"):
        evaluate({"get_operation_output": ["SELF", "Standard", "create", "nope"]}, spec_ctx())
    with pytest.raises(FunctionError, match="Standard.start of node wordpress_0 has not run yet"):
        evaluate({"get_operation_output": ["SELF", "Standard", "start", "port"]}, spec_ctx())


def test_get_artifact_is_the_path_where_the_operation_runs():
    """TOSCA 1.3 4.8.1: the artifact's path on the machine running the operation; the artifact is
    recorded as used (a remote operation ships it)."""
    c = spec_ctx(artifact_root="/var/cache/model")
    assert evaluate({"get_artifact": ["SELF", "config"]}, c) == "/var/cache/model/files/wp.conf"
    assert evaluate({"get_artifact": ["SELF", "config", "LOCAL_FILE", False]}, c) == "/var/cache/model/files/wp.conf"
    assert c.used_artifacts == ["files/wp.conf"]
    with pytest.raises(FunctionError, match="has no artifact 'nope' \\(artifacts: config\\)"):
        evaluate({"get_artifact": ["SELF", "nope"]}, c)
    with pytest.raises(FunctionError, match="only known in an operation"):
        evaluate({"get_artifact": ["SELF", "config"]}, spec_ctx())


def test_a_function_that_cannot_be_evaluated_is_an_error_never_its_text():
    with pytest.raises(FunctionError, match="get_attribute: .*has no attribute or property 'nope'"):
        evaluate({"x": [{"get_attribute": ["SELF", "nope"]}]}, spec_ctx())


MODEL_16 = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  relationship_templates:
    db_link:
      type: tosca.relationships.ConnectsTo
      properties: {credential: {user: admin}}
    spare_link:
      type: tosca.relationships.ConnectsTo
      attributes: {state: ready}
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilities:
        scalable: {properties: {default_instances: 2}}
        endpoint:
          properties: {port: 2222}
          attributes: {ip_address: 192.0.2.1}
    db:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: vm}]
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: vm
        - dependency: {node: db, relationship: db_link}
"""


def test_model_context_requirements_capabilities_relationship_templates_and_types(tmp_path):
    """TOSCA 1.3 4.4.2/4.5.1 (requirement and capability names), 4.7.1 (get_nodes_of_type), and a
    relationship template named as the entity, on the values a worker reads (compile_values)."""
    model = load_model(write(tmp_path, "m16.yaml", MODEL_16), [])
    nodes = expand(model)
    attrs = {"db_1": {"version": "2"}}
    c = ModelContext(values=compile_values(model), node=lambda n: nodes[n], attributes=lambda n: attrs.get(n, {}),
                     inputs={}, self_node="app_1",
                     instances=lambda t: [n for n, v in nodes.items() if v["template"] == t])
    assert evaluate({"get_attribute": ["SELF", "host", "tosca_id"]}, c) == "vm_1"
    assert evaluate({"get_attribute": ["SELF", "dependency", "tosca_name"]}, c) == "db"
    assert evaluate({"get_attribute": ["vm", "endpoint", "ip_address"]}, c) == "192.0.2.1"
    assert evaluate({"get_property": ["HOST", "endpoint", "port"]}, c) == 2222
    assert evaluate({"get_property": ["db_link", "credential", "user"]}, c) == "admin"
    assert evaluate({"get_attribute": ["db_link", "state"]}, c) == "initial"
    # one that no requirement names is still an entity (xOpera's tosca_functions example)
    assert evaluate({"get_attribute": ["spare_link", "state"]}, c) == "ready"
    assert evaluate({"get_nodes_of_type": "tosca.nodes.Compute"}, c) == ["vm_0", "vm_1"]
    assert evaluate({"get_nodes_of_type": "tosca.nodes.Root"}, c) == [
        "app_0", "app_1", "db_0", "db_1", "vm_0", "vm_1"]
