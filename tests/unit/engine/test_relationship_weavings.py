"""Where every relationship type's Configure operations sit in the programs, and on which end
they run (TOSCA 1.3 5.7 relationship types, 5.8.5 Configure interface, 7.2 declarative workflows:
"a source node that depends on a target node will be created only after the other entity has
been started"; docs/workflows.md has the table these tests check)."""
import itertools
from pathlib import Path

import pytest

from wfengine.errors import ModelError
from wfengine.operation.executor import OperationCall
from wfengine.instances import expand
from wfengine.placement import call_end, operation_root, operation_side
from wfengine.rules import CALL, RCALL, STATE, WAIT, RuleSet, check_workflows, compile_rules
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE, REPO, model_yaml, write

STD = "tosca.interfaces.node.lifecycle.Standard."
CFG = "tosca.interfaces.relationships.Configure."
CUSTOM_TYPES = """
relationship_types:
  my.Uses:
    derived_from: tosca.relationships.Root
  my.Watches:
    derived_from: tosca.relationships.Root
    workflows:
      install:
        source_weaving:
          - after: started
            activity: tosca.interfaces.relationships.Configure.add_target
"""


def _programs(tmp_path, templates, extra=""):
    model = load_model(write(tmp_path, "m.yaml", model_yaml(templates, extra)), [])
    rules = compile_rules(model)
    check_workflows(model, rules)
    nodes = expand(model)
    return {wf: {n: RuleSet(wf, rules[wf]).program(v) for n, v in nodes.items()} for wf in rules}


def _shape(prog):
    """The program as (op, name or short operation, other end) tuples."""
    return [(i.op, i.name.rsplit(".", 1)[-1], i.other) for i in prog]


def _target_first_install(other):
    """Source program of a relationship whose target starts first (Root, DependsOn, HostedOn)."""
    return [(WAIT, "started", other), (STATE, "creating", None), (CALL, "create", None),
            (STATE, "created", None), (STATE, "configuring", None),
            (RCALL, "pre_configure_source", other), (RCALL, "pre_configure_target", other),
            (CALL, "configure", None),
            (RCALL, "post_configure_source", other), (RCALL, "post_configure_target", other),
            (STATE, "configured", None), (STATE, "starting", None), (CALL, "start", None),
            (STATE, "started", None),
            (RCALL, "add_target", other), (RCALL, "add_source", other)]


UNINSTALL_SOURCE = [(STATE, "stopping", None), (RCALL, "remove_target", "{t}"), (RCALL, "remove_source", "{t}"),
                    (CALL, "stop", None), (STATE, "stopped", None), (STATE, "deleting", None),
                    (CALL, "delete", None), (STATE, "deleted", None)]


@pytest.mark.parametrize("rtype,target_wait", [
    ("tosca.relationships.DependsOn", "stopped"),    # 7.2; uninstall: a service stops once its users stopped
    ("tosca.relationships.HostedOn", "deleted"),     # a host goes once what it hosts is deleted
    ("my.Uses", "deleted"),                          # derived from Root: Root's weaving
], ids=["DependsOn", "HostedOn", "custom-Root-derived"])
def test_target_first_relationships_weave_every_configure_operation_into_the_source(tmp_path, rtype, target_wait):
    progs = _programs(tmp_path, """
        t: {type: tosca.nodes.Root}
        s:
          type: tosca.nodes.Root
          requirements: [{dependency: {node: t, relationship: %s}}]
    """ % rtype, CUSTOM_TYPES)
    assert _shape(progs["install"]["s_0"]) == _target_first_install("t_0")
    # The target's own install is untouched: it started before the source exists (7.2 note).
    assert [i.op for i in progs["install"]["t_0"]] == [STATE, CALL, STATE, STATE, CALL, STATE, STATE, CALL, STATE]
    assert _shape(progs["uninstall"]["s_0"]) == [
        (op, name, other and "t_0") for op, name, other in UNINSTALL_SOURCE]
    assert _shape(progs["uninstall"]["t_0"])[:2] == [(WAIT, target_wait, "s_0"), (STATE, "stopping", None)]


def test_attaches_to_weaves_like_hosted_on(tmp_path):
    progs = _programs(tmp_path, """
        vol: {type: tosca.nodes.Storage.BlockStorage, properties: {name: v}}
        srv:
          type: tosca.nodes.Compute
          requirements: [{local_storage: vol}]
    """)
    assert _shape(progs["install"]["srv_0"]) == _target_first_install("vol_0")


def test_connects_to_is_unchanged(tmp_path):
    """7.4.2 weaving: both ends configure in parallel; only what needs the other end waits."""
    progs = _programs(tmp_path, """
        t: {type: tosca.nodes.Root}
        s:
          type: tosca.nodes.Root
          requirements: [{peer: {node: t, relationship: tosca.relationships.ConnectsTo}}]
    """)
    assert _shape(progs["install"]["s_0"]) == [
        (STATE, "creating", None), (CALL, "create", None), (STATE, "created", None),
        (STATE, "configuring", None), (WAIT, "started", "t_0"), (RCALL, "pre_configure_source", "t_0"),
        (CALL, "configure", None), (RCALL, "post_configure_source", "t_0"), (STATE, "configured", None),
        (WAIT, "started", "t_0"), (STATE, "starting", None), (CALL, "start", None), (STATE, "started", None),
        (RCALL, "add_target", "t_0")]
    assert _shape(progs["install"]["t_0"]) == [
        (STATE, "creating", None), (CALL, "create", None), (STATE, "created", None),
        (STATE, "configuring", None), (WAIT, "created", "s_0"), (RCALL, "pre_configure_target", "s_0"),
        (CALL, "configure", None), (RCALL, "post_configure_target", "s_0"), (STATE, "configured", None),
        (STATE, "starting", None), (CALL, "start", None), (STATE, "started", None),
        (RCALL, "add_source", "s_0")]


def test_custom_type_with_its_own_workflows_weaves_what_it_declares(tmp_path):
    """A type that defines a workflow replaces its parent's workflow of that name (docs/workflows.md,
    inheritance); what it leaves out is announced at upload (test_upload_warnings)."""
    progs = _programs(tmp_path, """
        t: {type: tosca.nodes.Root}
        s:
          type: tosca.nodes.Root
          requirements: [{dependency: {node: t, relationship: my.Watches}}]
    """, CUSTOM_TYPES)
    rel = [x for x in _shape(progs["install"]["s_0"]) if x[0] in (WAIT, RCALL)]
    assert rel == [(RCALL, "add_target", "t_0")]
    # ... workflow by workflow: its uninstall is still Root's.
    assert _shape(progs["uninstall"]["s_0"]) == [
        (op, name, other and "t_0") for op, name, other in UNINSTALL_SOURCE]


def test_one_set_of_operations_per_relationship_instance(tmp_path):
    progs = _programs(tmp_path, """
        t:
          type: tosca.nodes.Compute
          capabilities: {scalable: {properties: {default_instances: 3}}}
        s:
          type: tosca.nodes.Root
          requirements: [{dependency: {node: t, relationship: my.Uses}}]
    """, CUSTOM_TYPES)
    prog = progs["install"]["s_0"]
    for op in ("pre_configure_source", "pre_configure_target", "add_target", "add_source"):
        assert [i.other for i in prog if i.op == RCALL and i.name == CFG + op] == ["t_0", "t_1", "t_2"]


# ------------------------------------------------------------------ which end runs it
@pytest.mark.parametrize("op,end", [
    ("pre_configure_source", "source"), ("post_configure_source", "source"), ("add_target", "source"),
    ("remove_target", "source"), ("target_changed", "source"),
    ("pre_configure_target", "target"), ("post_configure_target", "target"), ("add_source", "target"),
    ("remove_source", "target")])
def test_configure_operation_belongs_to_its_end_whatever_program_holds_it(op, end):
    """5.8.5: *_source and add_target/remove_target/target_changed act on the source, the others
    on the target; both spellings of the interface (relationship / relationships) and its short name."""
    for iface in ("tosca.interfaces.relationships.Configure", "tosca.interfaces.relationship.Configure", "Configure"):
        for woven in ("source", "target"):
            assert operation_side("%s.%s" % (iface, op), woven) == end


def test_other_operations_belong_to_the_program_that_holds_them():
    assert operation_side("my.interfaces.Sync.push", "target") == "target"
    assert operation_side("my.interfaces.Sync.push", "source") == "source"
    assert operation_side("my.Configure.pre_configure_target", "source") == "target"   # short name Configure
    assert operation_side("my.Configurex.pre_configure_target", "source") == "source"


def _hosts():
    """app on vm1, db on vm2, app DependsOn db (two machines)."""
    nodes = {"app_0": {"id": "app_0", "template": "app", "host": "vm1_0"},
             "db_0": {"id": "db_0", "template": "db", "host": "vm2_0"},
             "vm1_0": {"id": "vm1_0", "template": "vm1"}, "vm2_0": {"id": "vm2_0", "template": "vm2"}}
    rel = {"id": "app_0:dependency#1:db_0", "type": "tosca.relationships.DependsOn",
           "source": "app_0", "target": "db_0"}
    return nodes, rel


@pytest.mark.parametrize("op,node,root", [
    ("pre_configure_source", "app_0", "vm1_0"), ("pre_configure_target", "db_0", "vm2_0"),
    ("post_configure_target", "db_0", "vm2_0"), ("add_source", "db_0", "vm2_0"),
    ("add_target", "app_0", "vm1_0"), ("remove_source", "db_0", "vm2_0")])
def test_an_operation_woven_into_the_source_runs_for_its_own_end_on_that_host(op, node, root):
    """DependsOn across two machines: the target's operations, though in the source's program,
    are called for the target (SELF, outputs, trace) and run on the target's host."""
    nodes, rel = _hosts()
    cnode, side = call_end(CFG + op, rel, "source", nodes["app_0"], nodes.__getitem__)
    assert cnode["id"] == node and side == ("source" if node == "app_0" else "target")
    call = OperationCall("r", "install", cnode, CFG + op, rel, side, "w")

    def host_of(n):
        return nodes[n].get("host")

    assert operation_root(call, None, host_of) == root
    # operation_host still wins (3.6.15.1): TARGET / SOURCE / ORCHESTRATOR
    for where, want in (("SOURCE", "vm1_0"), ("TARGET", "vm2_0"), ("ORCHESTRATOR", None)):
        assert operation_root(call, {"implementation": {"operation_host": where}}, host_of) == want


def test_node_operation_calls_are_left_alone():
    nodes, dummy = _hosts()
    assert call_end(STD + "create", None, None, nodes["app_0"], nodes.__getitem__) == (nodes["app_0"], None)


# ------------------------------------------------------------------ no deadlock
def test_shipped_examples_are_accepted():
    paths = [EXAMPLE] + sorted(Path(REPO, "examples").glob("*/app.yaml"))
    assert len(paths) >= 3
    for path in paths:
        model = load_model(str(path), [])
        check_workflows(model, compile_rules(model))


RTYPES = ["tosca.relationships.DependsOn", "tosca.relationships.HostedOn", "tosca.relationships.ConnectsTo",
          "my.Uses", "my.Watches"]


@pytest.mark.parametrize("first,second", list(itertools.product(RTYPES, repeat=2)),
                         ids=lambda r: r.rsplit(".", 1)[-1])
def test_every_pair_of_relationship_types_on_a_chain_is_accepted(tmp_path, first, second):
    """a -> b -> c with any two types: waits only go from a source to its target, never back."""
    _programs(tmp_path, """
        c: {type: tosca.nodes.Root}
        b:
          type: tosca.nodes.Root
          requirements: [{dependency: {node: c, relationship: %s}}]
        a:
          type: tosca.nodes.Root
          requirements: [{dependency: {node: b, relationship: %s}}]
    """ % (second, first), CUSTOM_TYPES)


@pytest.mark.parametrize("rtype", ["tosca.relationships.DependsOn", "tosca.relationships.HostedOn", "my.Uses"])
def test_target_first_relationship_alongside_connects_to_same_pair_deadlocks_as_documented(tmp_path, rtype):
    """A DependsOn/HostedOn/Root-derived relationship plus a ConnectsTo between the same two
    nodes: the target waits for the source to be created, the source for the target to be
    started (docs/workflows.md, "When ConnectsTo deadlocks"): refused at upload, naming both."""
    with pytest.raises(ModelError) as exc:
        _programs(tmp_path, """
            t: {type: tosca.nodes.Root}
            s:
              type: tosca.nodes.Root
              requirements:
                - dependency: {node: t, relationship: %s}
                - peer: {node: t, relationship: tosca.relationships.ConnectsTo}
        """ % rtype, CUSTOM_TYPES)
    assert "install deadlocks" in str(exc.value) and "s waits for t" in str(exc.value)


def test_mutual_root_derived_relationships_are_refused(tmp_path):
    """Root's weaving orders the ends (target started first), so a cycle of them cannot install."""
    with pytest.raises(ModelError) as exc:
        _programs(tmp_path, """
            x:
              type: tosca.nodes.Root
              requirements: [{dependency: {node: y, relationship: my.Uses}}]
            y:
              type: tosca.nodes.Root
              requirements: [{dependency: {node: x, relationship: my.Uses}}]
        """, CUSTOM_TYPES)
    assert "install deadlocks" in str(exc.value) and "my.Uses" in str(exc.value)
