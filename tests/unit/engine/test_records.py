"""The records the Space holds at run time (records.py): each check takes a good record as it is
(same dict, optional keys of a fact filled in) and refuses a bad one with one line naming its
key (SpaceDataError)."""
import json

import pytest

from wfengine import facts, instances, run_records
from wfengine.errors import SpaceDataError
from wfengine.records import (new_fact, salvage_fact, validate_fact, validate_instance_head,
                              validate_model_head, validate_node, validate_run)
from wfengine.space.base import Entry

FKEY = "facts/r1/A_0"


def _fact(**changes):
    fact = {"node": "A_0", "pc": 2, "state": "started", "reached": ["created", "started"],
            "version": 3, "done": False, "waiting": None, "error": None, "inflight": None,
            "operations": 1}
    fact.update(changes)
    return fact


def _rel(**changes):
    rel = {"id": "A_0:host#0:srv_0", "type": "tosca.relationships.HostedOn",
           "requirement": "host", "source": "A_0", "target": "srv_0", "source_type": "A",
           "target_type": "tosca.nodes.Compute"}
    rel.update(changes)
    return rel


def _node(**changes):
    node = {"id": "A_0", "template": "A", "type": "A", "host": "srv_0", "out": [_rel()], "in": []}
    node.update(changes)
    return node


def _run(**changes):
    rec = {"id": "r1", "model": "m", "instance": "i", "workflow": "install", "status": "running",
           "model_digest": "d1", "generation": "g1", "started": 1.5, "participants": 2}
    rec.update(changes)
    return rec


def test_new_fact_is_valid_and_stored_as_before():
    fact = new_fact("A_0")
    assert validate_fact(FKEY, fact) is fact
    assert json.dumps(fact) == ('{"node": "A_0", "pc": 0, "state": null, "reached": [], '
                                '"version": 0, "done": false, "waiting": null, "error": null, '
                                '"inflight": null, "operations": 0}')
    assert facts.new_fact is new_fact and facts.validate_fact is validate_fact


def test_fact_accepted_as_it_is():
    value = _fact(epoch=2, updated=10.0)
    assert validate_fact(FKEY, value) is value
    assert value == _fact(epoch=2, updated=10.0)


def test_fact_of_an_older_engine_gets_its_optional_keys():
    value = _fact()
    for k in ("waiting", "error", "inflight", "operations"):
        del value[k]
    fact = validate_fact(FKEY, value)
    assert [fact[k] for k in ("waiting", "error", "inflight", "operations")] == [None] * 3 + [0]


@pytest.mark.parametrize("bad", [
    None, [], "fact", _fact(node=7), _fact(pc="1"), _fact(pc=True), _fact(version=None),
    _fact(reached="started"), _fact(reached=["a", 1]), _fact(state=3), _fact(done=0),
    _fact(operations=-1), _fact(operations=False), _fact(operations=1.5),
    {k: v for k, v in _fact().items() if k != "pc"},
])
def test_bad_fact_refused_in_one_line(bad):
    with pytest.raises(SpaceDataError) as err:
        validate_fact(FKEY, bad)
    assert err.value.line() == "facts/r1/A_0: not a fact"


def test_salvaged_fact_keeps_what_a_fact_has():
    fact = salvage_fact("A_0", {"pc": "x", "reached": ["created"], "junk": 1, "version": 4})
    assert fact == dict(new_fact("A_0"), pc="x", reached=["created"], version=4)
    assert list(fact) == list(new_fact("A_0"))
    assert salvage_fact("A_0", "not a dict") == new_fact("A_0")
    assert salvage_fact("A_0", None) == new_fact("A_0")


def test_node_accepted_as_it_is():
    value = _node(**{"in": [_rel(id="B_0:a#0:A_0", source="B_0", target="A_0")]})
    assert validate_node("inst/m/i/g1/nodes/A_0", value) is value
    assert instances.validate_node is validate_node


@pytest.mark.parametrize("bad", [
    None, "A_0", _node(id=None), _node(template=1), _node(type=None), _node(out=None),
    _node(**{"in": {}}), _node(out=["A_0:host#0:srv_0"]), _node(out=[_rel(target=None)]),
    _node(**{"in": [_rel(source_type=1)]}),
    {k: v for k, v in _node().items() if k != "in"},
])
def test_bad_node_refused_in_one_line(bad):
    with pytest.raises(SpaceDataError) as err:
        validate_node("inst/m/i/g1/nodes/A_0", bad)
    assert err.value.line() == "inst/m/i/g1/nodes/A_0: not a node instance"


def test_run_record_accepted_as_it_is():
    value = _run(rules_key="inst/m/i/rules/u1", resumed=[2.0])
    assert validate_run("runs/r1", value) is value
    assert run_records.run_record(Entry("runs/r1", value, 7)) is value


@pytest.mark.parametrize("field", ["id", "model", "instance", "workflow", "status", "model_digest",
                                   "generation"])
def test_run_record_without_a_checked_field_refused(field):
    with pytest.raises(SpaceDataError) as err:
        run_records.run_record(Entry("runs/r1", _run(**{field: None}), 7))
    assert err.value.line() == "runs/r1: not a run record"
    with pytest.raises(SpaceDataError, match="^runs/r1: not a run record$"):
        validate_run("runs/r1", ["r1"])


def test_heads():
    head = {"name": "m", "digest": "d1", "workflows": ["install"]}
    assert validate_model_head("models/m/head", head) is head
    ihead = {"model": "m", "instance": "i", "model_digest": "d1", "generation": "g1", "nodes": 3}
    assert validate_instance_head("inst/m/i/head", ihead) is ihead
    for bad in (None, {"digest": 1}, {"name": "m"}):
        with pytest.raises(SpaceDataError, match="^models/m/head: not a model head$"):
            validate_model_head("models/m/head", bad)
    for bad in (None, {"model_digest": "d1"}, {"model_digest": "d1", "generation": 2}):
        with pytest.raises(SpaceDataError, match="^inst/m/i/head: not an instance head$"):
            validate_instance_head("inst/m/i/head", bad)


def test_message_stays_one_line_for_a_key_with_a_newline():
    with pytest.raises(SpaceDataError) as err:
        validate_fact("facts/r1/A\n0", None)
    assert err.value.line() == "facts/r1/A\\n0: not a fact"
