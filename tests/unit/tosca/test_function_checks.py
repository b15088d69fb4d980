# -*- coding: utf-8 -*-
"""Upload-time checks of TOSCA functions (issue 16 items 6 and 9), from the TOSCA 1.3 examples."""
from __future__ import annotations

from wfengine.tosca.function_checks import check_functions
from wfengine.tosca.templates import load_model

TYPES = """
node_types:
  my.WordPress:
    derived_from: tosca.nodes.WebApplication
    properties:
      admin_user: {type: string, default: {get_input: user}}
    attributes:
      url: {type: string}
    requirements:
      - database_endpoint:
          capability: tosca.capabilities.Endpoint.Database
          node: tosca.nodes.Database
          relationship: tosca.relationships.ConnectsTo
    artifacts:
      config: {type: tosca.artifacts.File, file: wp.conf}
    interfaces:
      Standard:
        create:
          implementation: create.sh
          outputs: {port: [SELF, http_port]}
"""


def model(write, templates: str, outputs: str = "", inputs: str = "  inputs:\n    user: {type: string}\n") -> str:
    write("create.sh", "true\n", header=False)
    write("wp.conf", "x\n", header=False)
    return write("m.yaml", TYPES + "topology_template:\n" + inputs + "  node_templates:\n" + templates + outputs)


BASE = """
    server:
      type: tosca.nodes.Compute
      capabilities:
        endpoint:
          properties: {port: 22}
    mysql:
      type: tosca.nodes.Database
      properties: {name: wp, user: u, password: p}
      requirements: [{host: dbms}]
    dbms:
      type: tosca.nodes.DBMS
      requirements: [{host: server}]
    web: {type: tosca.nodes.WebServer, requirements: [{host: server}]}
"""


def problems(write, app_body: str, outputs: str = "", inputs=None):
    text = BASE + "    wordpress:\n      type: my.WordPress\n" + app_body
    kw = {} if inputs is None else {"inputs": inputs}
    return [str(p) for p in check_functions(load_model(model(write, text, outputs, **kw)))]


GOOD = """
      requirements:
        - host: web
        - database_endpoint: mysql
      interfaces:
        Standard:
          configure:
            implementation: create.sh
            inputs:
              # TOSCA 1.3 4.4.2/4.5.1: a requirement name after SELF, HOST chains
              db_name: {get_property: [SELF, database_endpoint, name]}
              db_ip: {get_attribute: [SELF, database_endpoint, tosca_id]}
              server_ip: {get_attribute: [HOST, private_address]}
              # 4.4.2/4.5.1: a capability name after the template
              ssh_port: {get_property: [server, endpoint, port]}
              addr: {get_attribute: [server, endpoint, ip_address]}
              # 4.3.3, 4.6.1, 4.7.1, 4.8.1
              port: {token: [{get_attribute: [SELF, url]}, ":", 2]}
              created: {get_operation_output: [SELF, Standard, create, port]}
              conf: {get_artifact: [SELF, config, LOCAL_FILE, false]}
              servers: {get_nodes_of_type: tosca.nodes.Compute}
              all: {join: [[{get_input: user}, {get_attribute: [SELF, http_port]}], " "]}
"""


def test_the_specification_forms_are_accepted(write):
    """TOSCA 1.3 sections 4.3.3 (token), 4.4.1 (get_input), 4.4.2 and 4.5.1 (get_property and
    get_attribute with a requirement/capability name, HOST), 4.6.1 (get_operation_output), 4.7.1
    (get_nodes_of_type), 4.8.1 (get_artifact)."""
    assert problems(write, GOOD, outputs="  outputs:\n    url: {value: {get_attribute: [wordpress, url]}}\n") == []


def one(write, inputs_yaml: str, **kw) -> str:
    body = """
      requirements:
        - host: web
        - database_endpoint: mysql
      interfaces:
        Standard:
          configure:
            implementation: create.sh
            inputs:
              %s
""" % inputs_yaml
    got = problems(write, body, **kw)
    assert len(got) == 1, got
    return got[0]


def test_each_problem_is_one_line_naming_file_yaml_path_and_template(write):
    e = one(write, "x: {get_attribute: [SELF, nope]}")
    assert e.startswith(str(write("m.yaml", "")).rsplit("/", 1)[0])
    assert ("m.yaml: topology_template.node_templates.wordpress.interfaces.Standard.configure.inputs.x"
            ".get_attribute: node template wordpress: get_attribute: template wordpress (type my.WordPress) "
            "has no attribute or property 'nope'") in e
    assert "\n" not in e


def test_unknown_function_and_wrong_arity(write):
    assert "unknown function get_env" in one(write, "x: {get_env: [vault, pw]}")
    assert "get_secret: unknown source 'vault' (known: ansible_vault, env, file)" in \
        one(write, "x: {get_secret: [vault, pw]}")
    assert "get_secret: expected [file, PATH] with PATH absolute" in one(write, "x: {get_secret: [file, rel/pw]}")
    assert "get_secret: expected [ansible_vault, FILE, KEY]" in one(write, "x: {get_secret: [ansible_vault, /v.yml]}")
    assert "token: expected [string, separator characters, index >= 0]" in one(write, "x: {token: [a, ':']}")
    assert "get_property: expected [SELF|SOURCE|TARGET|HOST|<template>, name" in one(write, "x: {get_property: SELF}")
    assert "get_operation_output: expected" in one(write, "x: {get_operation_output: [SELF, Standard, create]}")


def test_get_input_of_an_undeclared_input(write):
    """TOSCA 1.3 4.4.1: get_input names an input of the topology."""
    assert "no input 'prot' in topology_template.inputs (declared: user)" in one(write, "x: {get_input: prot}")


def test_unknown_template_requirement_capability_names(write):
    assert "unknown template 'mysq'" in one(write, "x: {get_property: [mysq, name]}")
    assert "capability endpoint of template server has no property 'prot'" in one(
        write, "x: {get_property: [server, endpoint, prot]}")
    assert "requirement database_endpoint of template wordpress targets mysql: template mysql (type " \
           "tosca.nodes.Database) has no property 'nme'" in one(write, "x: {get_property: [SELF, database_endpoint, nme]}")


def test_host_looks_along_the_hosted_on_chain(write):
    """TOSCA 1.3 4.5.1: HOST is the first host in the chain that has the name."""
    e = one(write, "x: {get_attribute: [HOST, privat_address]}")
    assert "no host of wordpress has attribute or property 'privat_address' (hosts: web, server)" in e


def test_source_and_target_only_in_a_relationship(write):
    assert "SOURCE is only defined in a relationship" in one(write, "x: {get_property: [SOURCE, name]}")


def test_relationship_operations_may_use_source_target_and_their_names(write):
    body = """
      requirements:
        - host: web
        - database_endpoint:
            node: mysql
            relationship:
              type: tosca.relationships.ConnectsTo
              interfaces:
                Configure:
                  pre_configure_source:
                    implementation: create.sh
                    inputs:
                      db: {get_property: [TARGET, name]}
                      me: {get_attribute: [SOURCE, url]}
                      rel: {get_attribute: [SELF, tosca_id]}
                      bad: {get_property: [TARGET, nme]}
"""
    got = problems(write, body)
    assert len(got) == 1 and "requirement database_endpoint: get_property: template mysql" in got[0] \
        and "has no property 'nme'" in got[0], got


def test_artifact_and_operation_output_must_exist(write):
    assert "template wordpress has no artifact 'cfg' (artifacts: config)" in one(write, "x: {get_artifact: [SELF, cfg]}")
    assert "only LOCAL_FILE is supported" in one(write, "x: {get_artifact: [SELF, config, /etc/wp.conf]}")
    assert "has no operation Standard.start with an implementation" in one(
        write, "x: {get_operation_output: [SELF, Standard, start, port]}")


def test_get_nodes_of_type_of_a_type_no_template_has(write):
    assert "no node template is of type my.Nothing" in one(write, "x: {get_nodes_of_type: my.Nothing}")


def test_topology_outputs_and_type_defaults_are_checked(write):
    got = problems(write, GOOD, outputs="  outputs:\n    url: {value: {get_attribute: [SELF, url]}}\n")
    assert len(got) == 1 and "topology_template.outputs.url.value.get_attribute: output url: get_attribute: " \
                             "SELF is not defined here" in got[0], got
    # my.WordPress's admin_user default is {get_input: user}: checked for every template of the type
    got = problems(write, GOOD, inputs="  inputs:\n    other: {type: string}\n")
    assert any("node_types.my.WordPress.properties.admin_user.default.get_input: node template wordpress "
               "(type my.WordPress): get_input: no input 'user'" in p for p in got), got


def test_a_capability_attribute_may_be_read_on_the_node(write):
    """The Endpoint capability's ip_address (TOSCA 1.3 5.5.4) is reported on the node that offers
    it, so [server, ip_address] is as valid as [server, endpoint, ip_address]."""
    assert one(write, "x: {get_attribute: [server, ip_address]}\n              y: {get_attribute: [server, ip_adress]}") \
        .endswith("has no attribute or property 'ip_adress' (attributes and properties: networks, ports, "
                  "private_address, public_address, state, tosca_id, tosca_name)")


def test_an_operation_reading_its_own_output_is_refused(write):
    """TOSCA 1.3 4.6.1: get_operation_output reads an operation that already ran; an input of
    `create` naming create's own output can never be evaluated (tosca-parser's
    tosca_test_get_operation_output.yaml does this)."""
    own = """\
      requirements: [{host: web}]
      interfaces:
        Standard:
          create:
            inputs:
              data_dir: {get_operation_output: [SELF, Standard, create, port]}
"""
    [line] = problems(write, own)
    assert "interfaces.Standard.create.inputs.data_dir" in line and "own output" in line
    earlier = own.replace("          create:\n", "          configure:\n")
    assert problems(write, earlier) == []
