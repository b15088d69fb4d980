"""Rule compilation, programs and the static deadlock check."""
import pytest

from wfengine.errors import ModelError
from wfengine.instances import expand
from wfengine.rules import CALL, RCALL, STATE, WAIT, RuleSet, check_workflows, compile_rules
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE, model_yaml, write

STD = "tosca.interfaces.node.lifecycle.Standard."
CFG = "tosca.interfaces.relationships.Configure."


def _example():
    model = load_model(str(EXAMPLE), [])
    return model, compile_rules(model), expand(model)


def test_rules_are_json_per_workflow_and_type():
    model, rules, dummy = _example()
    assert sorted(rules) == ["install", "uninstall"]
    sc = rules["install"]["nodes"]["tosca.nodes.SoftwareComponent"]
    assert sc["states"] == ["creating", "created", "configuring", "configured", "starting", "started"]
    assert [a["name"] for a in sc["activities"] if a["kind"] == "call_operation"] == \
        [STD + "create", STD + "configure", STD + "start"]
    ct = rules["install"]["relationships"]["tosca.relationships.ConnectsTo"]
    assert {"position": "after", "state": "configuring", "wait_state": "started",
            "activity": CFG + "pre_configure_source"} in ct["source"]
    assert {"position": "after", "state": "configuring", "wait_state": "created",
            "activity": CFG + "pre_configure_target"} in ct["target"]
    import json
    json.dumps(rules)  # plain JSON data


def test_program_interleaves_weavings_per_relationship_instance():
    model, rules, nodes = _example()
    rs = RuleSet("install", rules["install"])
    prog = rs.program(nodes["A_4"])
    # A_4 is hosted on its own host instance only, and waits for it before creating.
    assert prog[0].op == WAIT and prog[0].other == "srvA_1" and prog[0].name == "started"
    assert prog[1].op == STATE and prog[1].name == "creating"
    # One pre_configure_source per relationship instance: its host (HostedOn), B_0, C_0, C_1.
    pcs = [i.other for i in prog if i.op == RCALL and i.name == CFG + "pre_configure_source"]
    assert pcs == ["srvA_1", "B_0", "C_0", "C_1"]
    # After configuring: the HostedOn operations (no wait: the host is started), then for each
    # ConnectsTo target its wait right before its pre_configure_source.
    k = [i.name for i in prog].index("configuring")
    assert [(i.op, i.other, i.name.rsplit(".", 1)[-1]) for i in prog[k + 1:k + 5]] == [
        (RCALL, "srvA_1", "pre_configure_source"), (RCALL, "srvA_1", "pre_configure_target"),
        (WAIT, "B_0", "started"), (RCALL, "B_0", "pre_configure_source")]
    assert prog[-1].op == RCALL and prog[-1].name == CFG + "add_target"
    assert [i.name for i in prog if i.op == CALL] == [STD + "create", STD + "configure", STD + "start"]


def test_wakes_come_from_the_rules():
    model, rules, nodes = _example()
    rs = RuleSet("install", rules["install"])
    # srvA_1 started wakes exactly the A instances hosted on it.
    assert sorted(rs.wakes(nodes["srvA_1"], ["started"])) == ["A_3", "A_4", "A_5"]
    # C_0 started wakes its ConnectsTo sources (A and D instances wait for it).
    assert sorted(rs.wakes(nodes["C_0"], ["started"])) == sorted(
        ["A_%d" % i for i in range(9)] + ["D_0"])
    # A source that is `created` wakes its targets (pre_configure_target waits for it).
    assert sorted(rs.wakes(nodes["D_0"], ["created"])) == ["C_0", "C_1"]
    assert rs.wakes(nodes["D_0"], ["configuring"]) == []


def test_only_hosts_start_ready():
    model, rules, nodes = _example()
    rs = RuleSet("install", rules["install"])
    assert sorted(n for n, v in nodes.items() if rs.starts_ready(v)) == \
        ["srvA_0", "srvA_1", "srvA_2", "srvB_0", "srvC_0", "srvD_0"]
    us = RuleSet("uninstall", rules["uninstall"])
    # Uninstall: only nodes nobody depends on can start: the A instances.
    assert sorted(n for n, v in nodes.items() if us.starts_ready(v)) == ["A_%d" % i for i in range(9)]


def _check(tmp_path, templates):
    model = load_model(write(tmp_path, "m.yaml", model_yaml(templates)), [])
    check_workflows(model, compile_rules(model))


def test_connects_to_cycle_is_rejected_naming_it(tmp_path):
    with pytest.raises(ModelError) as exc:
        _check(tmp_path, """
            X:
              type: tosca.nodes.Root
              requirements: [{peer: {node: Y, relationship: tosca.relationships.ConnectsTo}}]
            Y:
              type: tosca.nodes.Root
              requirements: [{peer: {node: X, relationship: tosca.relationships.ConnectsTo}}]
        """)
    msg = str(exc.value)
    assert "install deadlocks" in msg and "X waits for Y" in msg and "Y waits for X" in msg


def test_depends_on_cycle_of_three_is_rejected(tmp_path):
    with pytest.raises(ModelError) as exc:
        _check(tmp_path, """
            X: {type: tosca.nodes.Root, requirements: [{dependency: Y}]}
            Y: {type: tosca.nodes.Root, requirements: [{dependency: Z}]}
            Z: {type: tosca.nodes.Root, requirements: [{dependency: X}]}
        """)
    assert "deadlocks" in str(exc.value) and "DependsOn" in str(exc.value)


def test_self_connection_is_rejected(tmp_path):
    with pytest.raises(ModelError):
        _check(tmp_path, """
            X:
              type: tosca.nodes.Root
              requirements: [{peer: {node: X, relationship: tosca.relationships.ConnectsTo}}]
        """)


def test_hosted_on_cycle_is_rejected(tmp_path):
    model = load_model(write(tmp_path, "m.yaml", model_yaml("""
        X: {type: tosca.nodes.SoftwareComponent, requirements: [{host: Y}]}
        Y: {type: tosca.nodes.Root, requirements: [{host: {node: X, relationship: tosca.relationships.HostedOn}}]}
    """)), [])
    with pytest.raises(ModelError) as exc:
        check_workflows(model, compile_rules(model))
        expand(model)
    assert "X" in str(exc.value) and "Y" in str(exc.value)


def test_acyclic_diamond_is_accepted(tmp_path):
    _check(tmp_path, """
        top: {type: tosca.nodes.Root, requirements: [{dependency: l}, {dependency: r}]}
        l: {type: tosca.nodes.Root, requirements: [{dependency: bottom}]}
        r: {type: tosca.nodes.Root, requirements: [{dependency: bottom}]}
        bottom: {type: tosca.nodes.Root}
    """)


def test_weaving_on_a_state_the_node_never_sets_is_rejected(tmp_path):
    path = write(tmp_path, "m.yaml", """
        tosca_definitions_version: tosca_simple_yaml_1_3
        node_types:
          my.Short:
            derived_from: tosca.nodes.Root
            workflows:
              install:
                steps:
                  only:
                    activities:
                      - set_state: ready
        topology_template:
          node_templates:
            srv: {type: tosca.nodes.Compute}
            app:
              type: my.Short
              requirements: [{host: {node: srv, relationship: tosca.relationships.HostedOn}}]
    """)
    model = load_model(path, [])
    with pytest.raises(ModelError) as exc:
        check_workflows(model, compile_rules(model))
    assert "app" in str(exc.value) and "creating" in str(exc.value)


def test_custom_workflow_and_non_participating_nodes(tmp_path):
    path = write(tmp_path, "m.yaml", """
        tosca_definitions_version: tosca_simple_yaml_1_3
        node_types:
          my.Backup:
            derived_from: tosca.nodes.SoftwareComponent
            workflows:
              backup:
                steps:
                  backup_sequence:
                    activities:
                      - set_state: backing_up
                      - call_operation: my.interfaces.Backup.run
                      - set_state: backed_up
        topology_template:
          node_templates:
            srv: {type: tosca.nodes.Compute}
            db: {type: my.Backup, requirements: [{host: srv}]}
    """)
    model = load_model(path, [])
    rules = compile_rules(model)
    check_workflows(model, rules)
    assert "backup" in rules and "tosca.nodes.Compute" not in rules["backup"]["nodes"]
    # db inherits install from SoftwareComponent and adds backup.
    assert "my.Backup" in rules["install"]["nodes"]
    nodes = expand(model)
    prog = RuleSet("backup", rules["backup"]).program(nodes["db_0"])
    # The HostedOn weaving of backup is empty, and srv does not take part: no wait.
    assert [i.op for i in prog] == [STATE, CALL, STATE]
