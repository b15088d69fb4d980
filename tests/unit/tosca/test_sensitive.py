"""``sensitive: true`` at upload (issue 18 item 1): the keyword proposed for TOSCA 2.0 in
tosca-community-contributions, on input, property and attribute definitions (TOSCA 1.3 3.6.10
property definitions, 3.6.14 input definitions, 3.6.12 attribute definitions, with one keyname
more).  A value written in the model for a sensitive input or property would be stored in clear
in the Space: refused in one line naming file and YAML path."""
import pytest

from wfengine.errors import ToscaError
from wfengine.catalog import compile_model

HEAD = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      password: {type: string, sensitive: true, required: false}
    attributes:
      token: {type: string, sensitive: true}
topology_template:
  inputs:
    db_password: {type: string, sensitive: true%s}
    plain: {type: string, default: x}
  node_templates:
    server: {type: tosca.nodes.Compute}
    app:
      type: my.App
      requirements: [{host: server}]
      properties: {password: %s}
"""


def _compile(write, default="", password="{get_input: db_password}"):
    return compile_model(write("m.yaml", HEAD % (default, password)))


def test_sensitive_is_accepted_with_references(write):
    _compile(write)
    _compile(write, default=", default: {get_secret: [env, DB_PW]}", password="{get_secret: [file, /etc/pw]}")


@pytest.mark.parametrize("default,password,expected", [
    (", default: hunter2", "{get_input: db_password}",
     "topology_template.inputs.db_password.default: input db_password is sensitive: a default would be stored "
     "in clear in the Space"),
    ("", "hunter2",
     "topology_template.node_templates.app.properties.password: app: property password is sensitive: its value "
     "would be stored in clear"),
    ("", "{get_input: plain}",
     "app: property password is sensitive but reads input plain, which is not"),
    ("", "{get_secret: [file, etc/pw]}", "get_secret: expected [file, PATH] with PATH absolute"),
])
def test_values_in_clear_are_refused_in_one_line(write, default, password, expected):
    with pytest.raises(ToscaError) as exc:
        _compile(write, default=default, password=password)
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    assert "hunter2" not in str(exc.value) or "hunter2" in password


def test_a_sensitive_operation_input_default_in_clear_is_refused(write):
    text = HEAD % ("", "{get_input: db_password}") + """\
      interfaces:
        Standard:
          create:
            implementation: c.sh
            inputs:
              KEY: {type: string, sensitive: true, default: clear-value}
"""
    write("c.sh", "true\n")
    with pytest.raises(ToscaError, match="input KEY: sensitive: its default would be stored in clear"):
        compile_model(write("m.yaml", text))
