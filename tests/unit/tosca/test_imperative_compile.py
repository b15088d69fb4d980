# -*- coding: utf-8 -*-
"""Compiling imperative workflows (TOSCA 1.3 §7.3) into per-template programs, and the sections
the engine stores without running them (§3.6.11 groups, §3.6.12 policies, §2.10 substitution).
"""
from __future__ import annotations

import pytest

from wfengine.errors import ToscaError
from wfengine.imperative import GUARD, ImperativeRuleSet, compile_imperative, guard_runs
from wfengine.rules import CALL, STATE, WAIT, rule_set, validate_rule_set
from wfengine.tosca.templates import load_model

NODES = """
topology_template:
  node_templates:
    my_server:
      type: tosca.nodes.Compute
    mysql:
      type: tosca.nodes.Compute
  workflows:
"""

# TOSCA 1.3 §7.3.4 example (steps on a server and a database, ordered across templates).
SPEC = NODES + """
    deploy:
      steps:
        server_create:
          target: my_server
          activities:
            - set_state: creating
            - call_operation: tosca.interfaces.node.lifecycle.Standard.create
            - set_state: created
          on_success:
            - mysql_install
        mysql_install:
          target: mysql
          activities:
            - delegate: install
          on_failure:
            - server_cleanup
        server_cleanup:
          target: my_server
          activities:
            - call_operation: Standard.delete
"""


def _compile(write, body):
    return compile_imperative(load_model(write("m.yaml", body)))


def _rs(rules, wf, counts):
    ids = {t: ["%s_%d" % (t, i) for i in range(n)] for t, n in counts.items()}
    return rule_set(wf, validate_rule_set(wf, rules[wf]), lambda t: ids.get(t, []))


def _node(t, i=0):
    return {"id": "%s_%d" % (t, i), "template": t, "type": "tosca.nodes.Compute", "out": [], "in": []}


def test_step_graph_becomes_programs_with_waits_on_every_instance(write):
    """§7.3: a step waits for its predecessor on every instance of another template; its own
    activities follow; delegate: install expands to the node type's declarative sequence."""
    rules = _compile(write, SPEC)
    rs = _rs(rules, "deploy", {"my_server": 2, "mysql": 1})
    assert isinstance(rs, ImperativeRuleSet)
    prog = rs.program(_node("mysql"))
    assert [(i.op, i.name, i.other) for i in prog[:3]] == [
        (WAIT, "@server_create", "my_server_0"), (WAIT, "@server_create", "my_server_1"),
        (GUARD, "mysql_install", None)]
    body = [(i.op, i.name) for i in prog[3:]]
    assert body[0] == (STATE, "creating") and (CALL, "tosca.interfaces.node.lifecycle.Standard.start") in body
    assert body[-1] == (STATE, "@mysql_install")
    server = [(i.op, i.name) for i in rs.program(_node("my_server", 1))]
    # server_create first (no predecessor: no guard), then the cleanup after waiting for mysql
    assert server[:5] == [(STATE, "creating"), (CALL, "tosca.interfaces.node.lifecycle.Standard.create"),
                          (STATE, "created"), (STATE, "@server_create"), (WAIT, "@mysql_install")]
    assert server[-2:] == [(CALL, "tosca.interfaces.node.lifecycle.Standard.delete"), (STATE, "@server_cleanup")]
    assert rs.starts_ready(_node("my_server")) and not rs.starts_ready(_node("mysql"))
    # a server instance reaching its step's end wakes the mysql instances, and only them
    assert rs.wakes(_node("my_server"), ["@server_create"]) == ["mysql_0"]
    assert rs.wakes(_node("mysql"), ["@mysql_install"]) == ["my_server_0", "my_server_1"]
    # what the workflow calls is listed with the rules (the no-caller check reads it)
    calls = rules["deploy"]["imperative"]["calls"]
    assert {"template": "my_server", "operation": "tosca.interfaces.node.lifecycle.Standard.delete"} in calls
    assert {"template": "mysql", "operation": "tosca.interfaces.node.lifecycle.Standard.configure"} in calls


def test_guard_runs_on_success_of_all_and_on_failure_of_any(write):
    """on_success needs the predecessor done, not failed nor skipped, on every instance; on_failure
    fires when it failed on one instance."""
    rs = _rs(_compile(write, SPEC), "deploy", {"my_server": 2, "mysql": 1})
    g_mysql = [i for i in rs.program(_node("mysql")) if i.op == GUARD][0]
    g_clean = [i for i in rs.program(_node("my_server")) if i.op == GUARD][0]
    ok = {"reached": ["@server_create"]}
    bad = {"reached": ["@server_create!failed", "@server_create"]}
    assert guard_runs(g_mysql, {"my_server_0": ok, "my_server_1": ok}.get) is True
    assert guard_runs(g_mysql, {"my_server_0": ok, "my_server_1": bad}.get) is False
    assert guard_runs(g_mysql, {"my_server_0": ok}.get) is None      # a fact to read first
    assert guard_runs(g_clean, {"mysql_0": {"reached": ["@mysql_install"]}}.get) is False
    assert guard_runs(g_clean, {"mysql_0": {"reached": ["@mysql_install!failed", "@mysql_install"]}}.get) is True


def test_inline_expands_the_other_workflow_between_its_neighbours(write):
    """§7.3 inline: the inlined workflow's steps run in place of the step."""
    rules = _compile(write, NODES + """
    sub:
      steps:
        s1:
          target: mysql
          activities: [{call_operation: Standard.create}]
    main:
      steps:
        first:
          target: my_server
          activities: [{call_operation: Standard.create}]
          on_success: [inner]
        inner:
          activities: [{inline: sub}]
          on_success: [last]
        last:
          target: my_server
          activities: [{call_operation: Standard.start}]
""")
    rs = _rs(rules, "main", {"my_server": 1, "mysql": 1})
    assert [(i.op, i.name) for i in rs.program(_node("mysql"))] == [
        (WAIT, "@first"), (GUARD, "inner/s1"), (CALL, "tosca.interfaces.node.lifecycle.Standard.create"),
        (STATE, "@inner/s1")]
    assert (WAIT, "@inner/s1") in [(i.op, i.name) for i in rs.program(_node("my_server"))]


@pytest.mark.parametrize("steps, message", [
    ("""
        a:
          target: my_server
          activities: [{call_operation: Standard.create}]
          on_success: [b]
        b:
          target: mysql
          activities: [{call_operation: Standard.create}]
          on_success: [a]
""", "workflow w: steps a -> b -> a form a cycle"),
    ("""
        a:
          target: nowhere
          activities: [{call_operation: Standard.create}]
""", "workflow w: step a targets unknown node template or group nowhere"),
    ("""
        a:
          target: my_server
          activities: [{call_operation: Standard.create}]
          on_success: [missing]
""", "workflow w: step a: on_success names unknown step missing"),
    ("""
        a:
          target: my_server
          activities: [{call_operation: Standard.explode}]
""", "workflow w: step a: my_server declares no operation Standard.explode"),
    ("""
        a:
          target: my_server
          activities: [{inline: nothing}]
""", "workflow w: step a inlines unknown workflow nothing"),
    ("""
        a:
          target: my_server
          activities: [{delegate: heal}]
""", "workflow w: step a: delegate heal: type tosca.nodes.Compute of my_server defines no such"),
    ("""
        a:
          target: my_server
          filter:
            - state: [{equal: started}]
          activities: [{call_operation: Standard.create}]
""", "workflow w: step a: filter is not supported"),
])
def test_bad_workflows_are_refused_at_upload_naming_workflow_and_step(write, steps, message):
    """§7.3 grammar: unknown targets, steps, operations and workflows, cycles, and conditions the
    engine cannot evaluate are upload errors, one line each."""
    with pytest.raises(ToscaError) as exc:
        _compile(write, NODES + "    w:\n      steps:" + steps)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_inline_loop_is_refused(write):
    with pytest.raises(ToscaError, match="inlining a loops"):
        _compile(write, NODES + """
    a:
      steps:
        s:
          activities: [{inline: b}]
    b:
      steps:
        t:
          activities: [{inline: a}]
""")


@pytest.mark.parametrize("condition, message", [
    ("[{assert: [{colour: [{equal: red}]}]}]", "condition on unknown attribute colour"),
    ("[{state: [{is_pretty: true}]}]", "condition on state: a list of constraints among equal"),
])
def test_preconditions_the_engine_cannot_evaluate_are_refused(write, condition, message):
    """§7.3 preconditions: conditions on an attribute the targets do not have, or with an
    operator the engine does not evaluate, are refused at upload, never ignored."""
    with pytest.raises(ToscaError, match="workflow w: " + message):
        _compile(write, NODES + """
    w:
      preconditions:
        - target: mysql
          condition: %s
      steps:
        a:
          target: mysql
          activities: [{call_operation: Standard.create}]
""" % condition)


def test_preconditions_hold_on_every_instance(write):
    """§7.3 precondition: every instance of the target satisfies the condition clauses (§3.6.25:
    and / or / not / assert of attribute constraints)."""
    from wfengine.imperative import check_preconditions
    rules = _compile(write, NODES + """
    w:
      preconditions:
        - target: mysql
          condition:
            - or:
              - state: [{equal: started}]
              - state: [{valid_values: [configured, created]}]
            - not:
              - state: [{equal: created}]
      steps:
        a:
          target: mysql
          activities: [{call_operation: Standard.stop}]
""")["w"]
    states = {"mysql_0": "started", "mysql_1": "configured"}

    def ids(t):
        return sorted(states) if t == "mysql" else []
    assert check_preconditions("w", rules, ids, lambda n: {"state": states[n]}) is None
    states["mysql_1"] = "created"
    assert check_preconditions("w", rules, ids, lambda n: {"state": states[n]}) == \
        "workflow w: precondition 0 on mysql not met by mysql_1 (state created)"


GROUPS = """
topology_template:
  node_templates:
    web:
      type: tosca.nodes.Compute
    db:
      type: tosca.nodes.Compute
  groups:
    servers:
      type: tosca.groups.Root
      members: [web, db]
  policies:
    - scale_web:
        type: tosca.policies.Scaling
        targets: [servers]
  substitution_mappings:
    node_type: tosca.nodes.Compute
    capabilities:
      host: [web, host]
  workflows:
    restart:
      steps:
        stop_all:
          target: servers
          activities: [{call_operation: Standard.stop}]
          on_success: [start_all]
        start_all:
          target: servers
          activities: [{call_operation: Standard.start}]
"""


def test_groups_policies_substitution_are_stored_and_announced(write):
    """§3.6.11 groups, §3.6.12 policies, §2.10 substitution_mappings: kept with the model, one
    upload warning each; a step targeting a group runs on each member template (§7.3 target)."""
    model = load_model(write("m.yaml", GROUPS))
    assert model.sections["groups"]["servers"]["members"] == ["web", "db"]
    assert model.sections["policies"] == [{"scale_web": {"type": "tosca.policies.Scaling", "targets": ["servers"]}}]
    assert model.sections["substitution_mappings"]["node_type"] == "tosca.nodes.Compute"
    assert "m.yaml: topology_template.policies[0].scale_web: policy tosca.policies.Scaling is stored, not enforced" \
        in model.warnings
    assert any(w.startswith("m.yaml: topology_template.groups.servers: group") for w in model.warnings)
    assert any("substitution_mappings" in w for w in model.warnings)
    rs = _rs(compile_imperative(model), "restart", {"web": 1, "db": 2})
    web = [(i.op, i.name, i.other) for i in rs.program(_node("web"))]
    # start_all on web waits for stop_all on every db instance (and its own stop_all, earlier)
    assert (WAIT, "@stop_all", "db_0") in web and (WAIT, "@stop_all", "db_1") in web


@pytest.mark.parametrize("section, message", [
    ("  policies:\n    - p:\n        type: tosca.policies.Placement\n        targets: [ghost]\n",
     "topology_template.policies[0].p.targets: policy p: target ghost is neither a node template nor a group"),
    ("  groups:\n    g:\n      type: tosca.groups.Root\n      members: [ghost]\n",
     "topology_template.groups.g.members: group g: member ghost is not a node template"),
    ("  substitution_mappings:\n    node_type: tosca.nodes.Compute\n    requirements:\n      r: [ghost, x]\n",
     "topology_template.substitution_mappings.requirements.r: ghost is not a node template"),
])
def test_sections_naming_unknown_templates_are_refused(write, section, message):
    with pytest.raises(ToscaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_model(write("m.yaml", "topology_template:\n  node_templates:\n    web:\n"
                                   "      type: tosca.nodes.Compute\n" + section))


def test_tosca_2_0_is_refused_clearly(write):
    """TOSCA 2.0 changed the grammar: refused in one line saying what is supported."""
    with pytest.raises(ToscaError) as exc:
        load_model(write("m.yaml", "tosca_definitions_version: tosca_2_0\n", header=False))
    assert "TOSCA 2.0 is not supported (supported: tosca_simple_yaml_1_0" in str(exc.value)


def test_target_relationship_calls_once_per_relationship_instance(write):
    """§7.3 target_relationship: the activities apply to the relationship of that requirement,
    once per relationship instance (two db instances: two calls on each app instance)."""
    rules = _compile(write, """
topology_template:
  node_templates:
    db:
      type: tosca.nodes.Compute
    app:
      type: tosca.nodes.Compute
      requirements:
        - dependency: db
  workflows:
    link:
      steps:
        add:
          target: app
          target_relationship: dependency
          activities:
            - call_operation: Configure.add_target
""")
    rs = _rs(rules, "link", {"app": 1, "db": 2})
    node = dict(_node("app"), out=[
        {"id": "app_0:dependency#0:db_%d" % i, "type": "tosca.relationships.DependsOn", "requirement": "dependency",
         "source": "app_0", "target": "db_%d" % i} for i in range(2)])
    prog = [(i.op, i.name, i.other, i.side) for i in rs.program(node)]
    assert prog == [("rcall", "tosca.interfaces.relationships.Configure.add_target", "db_0", "source"),
                    ("rcall", "tosca.interfaces.relationships.Configure.add_target", "db_1", "source"),
                    ("state", "@add", None, None)]
    assert {"template": "app", "requirement": "dependency",
            "operation": "tosca.interfaces.relationships.Configure.add_target"} in rules["link"]["imperative"]["calls"]


def test_step_operation_host_places_the_step_operations(write):
    """§7.3 step operation_host (Alien4Cloud/Yorc write ORCHESTRATOR on call_operation steps): it
    overrides the implementation's for the step's operations; on a delegate step only ORCHESTRATOR
    (the engine runs the delegated sequence) is accepted."""
    from wfengine.operation.executor import OperationCall
    from wfengine.placement import operation_root
    rules = _compile(write, NODES + """
    w:
      steps:
        a:
          target: my_server
          operation_host: ORCHESTRATOR
          activities: [{call_operation: Standard.create}]
""")
    (ins,) = [i for i in _rs(rules, "w", {"my_server": 1}).program(_node("my_server")) if i.op == CALL]
    assert ins.host == "ORCHESTRATOR"
    node = _node("my_server")
    call = OperationCall("r", "w", node, ins.name, None, None, "w0", operation_host=ins.host)
    assert operation_root(call, {"implementation": {"primary": "x.sh"}}, lambda n: None) is None
    plain = OperationCall("r", "w", node, ins.name, None, None, "w0")
    assert operation_root(plain, {"implementation": {"primary": "x.sh"}}, lambda n: None) == "my_server_0"
    with pytest.raises(ToscaError, match="step a: operation_host SELF cannot apply to a delegate activity"):
        _compile(write, NODES + """
    w:
      steps:
        a:
          target: my_server
          operation_host: SELF
          activities: [{delegate: install}]
""")


def test_starts_ready_is_the_first_instruction_not_being_a_wait(write):
    """What run start asks of every node instance, equal to the program's first instruction."""
    rules = _compile(write, SPEC)
    for counts in ({"my_server": 2, "mysql": 1}, {"my_server": 0, "mysql": 1}):
        rs = _rs(rules, "deploy", counts)
        for t in ("my_server", "mysql"):
            prog = rs.program(_node(t))
            assert rs.starts_ready(_node(t)) == (bool(prog) and prog[0].op != WAIT), (counts, t)
    assert _rs(rules, "deploy", {"my_server": 0, "mysql": 1}).starts_ready(_node("mysql"))
