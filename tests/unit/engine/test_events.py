"""Trace records (events.py): rows in, the same event dictionaries out, bad records refused."""
import json

import pytest

from wfengine import events
from wfengine.errors import SpaceDataError

NODE = {"id": "web_1", "template": "web"}
REL = {"id": "r1", "type": "tosca.relationships.ConnectsTo", "source": "web_1", "target": "db_1"}


def _stored(rows):
    # what a reader gets back from the Space: JSON text parsed again
    return json.loads(json.dumps(events.record("install", "w-1", rows)))


def test_a_record_expands_to_the_event_dictionaries():
    rows = [events.event(NODE, "state", "creating", None),
            events.event(NODE, "operation", "configure", REL, status="failed", attempt=2)]
    out = events.expand("trace/r/~t/1", _stored(rows))
    assert [e["name"] for e in out] == ["creating", "configure"]
    first, second = out
    assert set(first) == {"ts", "workflow", "node", "template", "kind", "name", "worker",
                          "relationship"}
    assert (first["workflow"], first["worker"], first["node"], first["template"], first["kind"],
            first["relationship"]) == ("install", "w-1", "web_1", "web", "state", None)
    assert second["status"] == "failed" and second["attempt"] == 2
    assert second["relationship"] == {"type": REL["type"], "source": "web_1", "target": "db_1"}
    assert abs(first["ts"] - rows[0][0]) < 1e-9


def test_an_interrupted_attempt_keeps_the_worker_that_ran_it():
    row = events.event(NODE, "operation", "start", None, status="interrupted", worker="w-dead",
                       attempt=1)
    (ev,) = events.expand("k", _stored([row]))
    assert ev["worker"] == "w-dead" and ev["status"] == "interrupted"


def test_a_record_is_smaller_than_the_dictionaries_it_stands_for():
    rows = [events.event(NODE, "operation", "op%d" % i, REL) for i in range(50)]
    record = json.dumps(events.record("install", "w-1", rows))
    dicts = json.dumps(events.expand("k", _stored(rows)))
    assert len(record) * 2 < len(dicts)


def test_the_list_form_of_earlier_versions_is_read():
    old = [{"ts": 1.0, "workflow": "install", "node": "a_1", "template": "a", "kind": "state",
            "name": "created", "worker": "w", "relationship": None}]
    assert events.expand("k", old) == old


@pytest.mark.parametrize("value, what", [
    ({"format": 9, "workflow": "i", "worker": "w", "events": []}, "unknown format"),
    ({"format": 2, "workflow": "i", "events": []}, "missing"),
    ({"format": 2, "workflow": "i", "worker": "w", "events": [[1.0, "n", "t", "state"]]},
     "bad event row"),
    ({"format": 2, "workflow": "i", "worker": "w",
      "events": [[1.0, "n", "t", "dance", "x", "ok", None]]}, "bad event row"),
    ({"format": 2, "workflow": "i", "worker": "w",
      "events": [[1.0, "n", "t", "state", "x", "ok", ["only-type"]]]}, "relationship"),
    ({"format": 2, "workflow": "i", "worker": "w",
      "events": [[1.0, "n", "t", "state", "x", "ok", None, "extra"]]}, "extra"),
    ([{"name": 3}], "bad event"),
    ("text", "unknown format"),
])
def test_bad_records_are_refused_with_their_key(value, what):
    with pytest.raises(SpaceDataError, match="trace/r/x: not a trace record.*%s" % what):
        events.expand("trace/r/x", value)
