"""Property-based runs on random topologies built from the bundled normative types.

The generator builds a topology in a random order: computes first, then software components, each
one hosted on an earlier node whose type the normative requirement definitions allow (a
SoftwareComponent, WebServer or DBMS on a Compute; a WebApplication on a WebServer; a Database on
a DBMS), and ConnectsTo / DependsOn edges only from a later node to an earlier one, so the topology
itself is acyclic.  Scaling (default_instances 1..3) is drawn on some templates, hosts included,
so it nests along HostedOn.

Two oracles are computed here from the generator's own data, never from the engine:

* the number of node and relationship instances (scaling multiplies along HostedOn; ConnectsTo and
  DependsOn link every source instance to every target instance);
* whether the install workflow can deadlock, from the weaving table of docs/workflows.md.  An
  acyclic topology is not enough: ConnectsTo's target waits for its source to be ``created``,
  which can wait (through DependsOn / HostedOn) for something that waits for the target to be
  ``started`` (see ``ACYCLIC_BUT_DEADLOCKING``).

Properties: a generated model is accepted exactly when the oracle finds no cycle (a refused one
writes nothing); a model generated without the edges that would deadlock installs and uninstalls
with 1 and with 3 workers, in the orders ``ordering`` checks, with the counts of the first oracle;
one edge back along an existing path (a topology cycle) is always refused and writes nothing.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wfengine import api
from wfengine.errors import ModelError
from wfengine.space import open_space as open_raw_space

import ordering
from engine_helpers import embedded, run

MAX_NODES = 40

COMPUTE = "tosca.nodes.Compute"
# type -> types of the node it may be hosted on (its `host` requirement definition in TOSCA 1.3 §5.9)
HOSTED_TYPES = {
    "tosca.nodes.SoftwareComponent": COMPUTE,
    "tosca.nodes.WebServer": COMPUTE,
    "tosca.nodes.DBMS": COMPUTE,
    "tosca.nodes.WebApplication": "tosca.nodes.WebServer",
    "tosca.nodes.Database": "tosca.nodes.DBMS",
}
HOSTED_ON = ordering.HOSTED_ON
DEPENDS_ON = ordering.DEPENDS_ON
CONNECTS_TO = ordering.CONNECTS_TO
WORKERS = [1, 3]

SETTINGS = dict(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


@dataclass
class Tpl:
    name: str
    type: str
    scale: Optional[int] = None            # default_instances, None = no scalable capability
    host: Optional[str] = None
    host_long_form: bool = False
    edges: List[Tuple[str, str]] = field(default_factory=list)   # (relationship type, target)

    @property
    def default(self) -> int:
        return self.scale or 1


@dataclass
class Topology:
    templates: Dict[str, Tpl]            # in generation order: every edge goes to an earlier one

    def to_yaml(self) -> str:
        nodes = {}
        for t in self.templates.values():
            body: Dict = {"type": t.type}
            if t.type == "tosca.nodes.Database":
                body["properties"] = {"name": t.name}
            if t.scale is not None:
                props = {"default_instances": t.scale}
                if t.scale > 1:
                    props["max_instances"] = t.scale + 1
                body["capabilities"] = {"scalable": {"properties": props}}
            reqs = []
            if t.host:
                reqs.append({"host": {"node": t.host, "relationship": HOSTED_ON}
                             if t.host_long_form else t.host})
            for i, (rtype, target) in enumerate(t.edges):
                if rtype == DEPENDS_ON:
                    reqs.append({"dependency": target})
                else:
                    reqs.append({"conn_%d" % i: {"node": target, "relationship": CONNECTS_TO}})
            if reqs:
                body["requirements"] = reqs
            nodes[t.name] = body
        return yaml.safe_dump({"tosca_definitions_version": "tosca_simple_yaml_1_3",
                               "topology_template": {"node_templates": nodes}}, sort_keys=False)

    # ---- oracle 1: instance counts
    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for t in self.templates.values():           # hosts come before what they host
            out[t.name] = t.default * (out[t.host] if t.host else 1)
        return out

    def relationship_counts(self) -> Counter:
        n = self.counts()
        c: Counter = Counter()
        for t in self.templates.values():
            if t.host:
                c[HOSTED_ON] += n[t.name]
            for rtype, target in t.edges:
                c[rtype] += n[t.name] * n[target]
        return c

    # ---- oracle 2: install deadlock, from the weaving table of docs/workflows.md
    def install_deadlocks(self) -> bool:
        seq = ["creating", "created", "configuring", "configured", "starting", "started"]
        g: Dict[Tuple[str, str], set] = {}

        def after(a, b):                         # b happens after a
            g.setdefault(b, set()).add(a)
            g.setdefault(a, set())

        for t in self.templates.values():
            for s0, s1 in zip(seq, seq[1:]):
                after((t.name, s0), (t.name, s1))
        for t in self.templates.values():
            rels = ([(HOSTED_ON, t.host)] if t.host else []) + list(t.edges)
            for rtype, target in rels:
                if rtype in (HOSTED_ON, DEPENDS_ON):          # source before creating: target started
                    after((target, "started"), (t.name, "creating"))
                else:                                          # ConnectsTo
                    # source, after configuring (so before configured): target started
                    after((target, "started"), (t.name, "configured"))
                    # source, before starting: target started
                    after((target, "started"), (t.name, "starting"))
                    # target, after configuring (so before configured): source created
                    after((t.name, "created"), (target, "configured"))
        try:
            tuple(TopologicalSorter(g).static_order())
        except CycleError:
            return True
        return False

    def reach(self, name: str) -> set:
        """Templates that ``name`` points to, directly or not (hosting included)."""
        seen, todo = set(), [name]
        while todo:
            t = self.templates[todo.pop()]
            for target in ([t.host] if t.host else []) + [tg for dummy, tg in t.edges]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen


@st.composite
def topologies(draw, deadlock_free: bool = False) -> Topology:
    """A random acyclic topology; with ``deadlock_free``, edges whose addition would make install
    deadlock (per the oracle) are left out, so every example runs."""
    tpls: Dict[str, Tpl] = {}
    topo = Topology(tpls)
    scale = st.one_of(st.none(), st.integers(1, 3))
    for i in range(draw(st.integers(1, 3))):
        tpls["host%d" % i] = Tpl("host%d" % i, COMPUTE, scale=draw(scale))
    for i in range(draw(st.integers(1, 7))):
        name = "comp%d" % i
        choices = [(ty, h) for ty, htype in HOSTED_TYPES.items()
                   for h in tpls if tpls[h].type == htype]
        ty, host = draw(st.sampled_from(choices))
        tpls[name] = Tpl(name, ty, scale=draw(scale), host=host, host_long_form=draw(st.booleans()))
        earlier = [t for t in tpls if t != name]
        for target in draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True)):
            tpls[name].edges.append((draw(st.sampled_from([CONNECTS_TO, DEPENDS_ON])), target))
            if deadlock_free and topo.install_deadlocks():
                tpls[name].edges.pop()
    # Keep runs short: drop scaling, biggest contributors first, until small enough.
    while sum(topo.counts().values()) > MAX_NODES:
        big = max((t for t in tpls.values() if t.default > 1),
                  key=lambda t: (topo.counts()[t.name], t.name))
        big.scale = 1
    return topo


def _model_keys(opts: api.SpaceOptions) -> List[str]:
    space = api.open_space(opts)
    try:
        return [k for k in space.keys("") if k.startswith("models/")]
    finally:
        space.close()


def _upload(opts: api.SpaceOptions, path: str, name: str = "m") -> Optional[str]:
    """None when the model is accepted, else the ModelError's text."""
    space = api.open_space(opts)
    try:
        api.upload_model(space, path, name)
        return None
    except ModelError as exc:
        return str(exc)
    finally:
        space.close()


def _install_and_uninstall(topo: Topology, opts: api.SpaceOptions, workers: int) -> None:
    counts = topo.counts()
    total = sum(counts.values())
    space = api.open_space(opts)
    try:
        assert api.create_instance(space, "m", "i")["nodes"] == total
    finally:
        space.close()

    inst = run(opts, "install", workers=workers, timeout=60)
    assert inst["record"]["status"] == "succeeded", inst["record"]
    nodes = inst["status"]["nodes"]
    assert len(nodes) == total
    assert Counter(n["template"] for n in nodes.values()) == Counter(counts)
    assert Counter(n["state"] for n in nodes.values()) == {"started": total}
    assert Counter(r[0] for r in ordering.relationships(nodes)) == topo.relationship_counts()
    ordering.check_install(inst["trace"], nodes)
    # Every relationship instance (HostedOn, DependsOn, ConnectsTo) runs its Configure operations.
    n_rels = sum(topo.relationship_counts().values())
    ops = Counter(e["name"].rsplit(".", 1)[1] for e in inst["trace"] if e["kind"] == "operation")
    assert ops == {**{op: total for op in ("create", "configure", "start")},
                   **{op: n_rels for op in ("pre_configure_source", "pre_configure_target",
                                            "post_configure_source", "post_configure_target",
                                            "add_target", "add_source") if n_rels}}

    un = run(opts, "uninstall", workers=workers, timeout=60)
    assert un["record"]["status"] == "succeeded", un["record"]
    assert Counter(n["state"] for n in un["status"]["nodes"].values()) == {"deleted": total}
    ordering.check_uninstall(un["trace"], un["status"]["nodes"])
    ops = Counter(e["name"].rsplit(".", 1)[1] for e in un["trace"]
                  if e["kind"] == "operation" and e["workflow"] == "uninstall")
    assert ops == {**{op: total for op in ("stop", "delete")},
                   **{op: n_rels for op in ("remove_target", "remove_source") if n_rels}}


@settings(**dict(SETTINGS, max_examples=60))
@given(topo=topologies())
def test_random_acyclic_topology_is_accepted_unless_install_would_deadlock(topo):
    """Upload only: the engine's static check agrees with the oracle on every acyclic topology,
    and a refused model leaves nothing in the Space."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "model.yaml"
        path.write_text(topo.to_yaml())
        opts = embedded(tmp)
        error = _upload(opts, str(path))
        deadlocks = topo.install_deadlocks()
        event("install deadlocks" if deadlocks else "accepted")
        if deadlocks:
            assert error is not None and "workflow install deadlocks" in error, topo.to_yaml()
            assert _model_keys(opts) == []
        else:
            assert error is None, "%s\n%s" % (error, topo.to_yaml())


@pytest.mark.parametrize("workers", WORKERS)
@settings(**SETTINGS)
@given(topo=topologies(deadlock_free=True))
def test_random_acyclic_topology_installs_then_uninstalls(workers, topo):
    total = sum(topo.counts().values())
    event("node instances: %d-%d" % (total // 10 * 10, total // 10 * 10 + 9))
    event("ConnectsTo instances: %s" % ("0" if not topo.relationship_counts()[CONNECTS_TO] else ">0"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "model.yaml"
        path.write_text(topo.to_yaml())
        opts = embedded(tmp)
        error = _upload(opts, str(path))
        assert error is None, "%s\n%s" % (error, topo.to_yaml())
        _install_and_uninstall(topo, opts, workers)


@st.composite
def cyclic_topologies(draw) -> Tuple[Topology, str, str, str]:
    """An acyclic topology plus one edge back from a node to one that reaches it."""
    topo = draw(topologies())
    sources = [n for n in topo.templates if topo.reach(n)]
    late = draw(st.sampled_from(sources))
    early = draw(st.sampled_from(sorted(topo.reach(late))))
    rtype = draw(st.sampled_from([CONNECTS_TO, DEPENDS_ON]))
    return topo, early, rtype, late


@settings(**SETTINGS)
@given(case=cyclic_topologies())
def test_a_back_edge_closing_a_cycle_is_rejected_and_writes_nothing(case):
    topo, early, rtype, late = case
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        opts = embedded(tmp)
        good = tmp / "good.yaml"
        good.write_text(topo.to_yaml())
        base_accepted = _upload(opts, str(good), "m") is None
        space = api.open_space(opts)
        before = [(e.key, e.value, e.index) for e in space.list("")]
        space.close()

        topo.templates[early].edges.append((rtype, late))
        assert topo.install_deadlocks()        # the oracle agrees: a topology cycle deadlocks
        bad = tmp / "bad.yaml"
        bad.write_text(topo.to_yaml())
        for name in ("c", "m"):               # a new name, and over the stored model
            error = _upload(opts, str(bad), name)
            assert error is not None and "deadlocks" in error, (error, topo.to_yaml())
            if base_accepted:                  # then every cycle goes through the new edge
                assert early in error and late in error, error
        assert [k for k in _model_keys(opts) if not k.startswith("models/m/")] == []
        if not base_accepted:
            assert _model_keys(opts) == []
        space = api.open_space(opts)
        after = [(e.key, e.value, e.index) for e in space.list("")]
        space.close()
        assert after == before
        raw = open_raw_space("embedded", path=opts.path)
        try:
            assert all(k.startswith("wf/models/m/") for k in raw.keys(""))
        finally:
            raw.close()


def test_oracle_counts_the_example_like_the_engine():
    """The instance-count oracle on a hand-checked case: nested scaling 2 x 3 x 2."""
    topo = Topology({
        "h": Tpl("h", COMPUTE, scale=2),
        "ws": Tpl("ws", "tosca.nodes.WebServer", scale=3, host="h"),
        "app": Tpl("app", "tosca.nodes.WebApplication", scale=2, host="ws", host_long_form=True,
                   edges=[(DEPENDS_ON, "h")]),
    })
    assert topo.counts() == {"h": 2, "ws": 6, "app": 12}
    assert topo.relationship_counts() == {HOSTED_ON: 18, DEPENDS_ON: 24}
    assert not topo.install_deadlocks()


# Acyclic topologies that the normative ConnectsTo weaving deadlocks (the oracle and the engine
# agree on it; docs/workflows.md says "the order stays acyclic").
ACYCLIC_BUT_DEADLOCKING = {
    # An application that connects to its own host's admin endpoint (Compute's `endpoint`
    # capability is an Endpoint.Admin, a valid ConnectsTo target): srv waits for app to be
    # created (ConnectsTo, target side); app waits for srv to be started (HostedOn).
    "connects_to_own_host": lambda: Topology({
        "srv": Tpl("srv", COMPUTE),
        "app": Tpl("app", "tosca.nodes.SoftwareComponent", host="srv", edges=[(CONNECTS_TO, "srv")]),
    }),
    # A log service; a DBMS and the Database it hosts both connect to it: log waits for db to be
    # created; db waits for dbms to be started (HostedOn); dbms waits for log to be started.
    "dbms_and_database_share_a_service": lambda: Topology({
        "srv": Tpl("srv", COMPUTE),
        "logsrv": Tpl("logsrv", COMPUTE),
        "log": Tpl("log", "tosca.nodes.SoftwareComponent", host="logsrv"),
        "dbms": Tpl("dbms", "tosca.nodes.DBMS", host="srv", edges=[(CONNECTS_TO, "log")]),
        "db": Tpl("db", "tosca.nodes.Database", host="dbms", edges=[(CONNECTS_TO, "log")]),
    }),
}


@pytest.mark.parametrize("case", sorted(ACYCLIC_BUT_DEADLOCKING))
def test_oracle_finds_the_connects_to_deadlock_of_acyclic_topologies(case):
    assert ACYCLIC_BUT_DEADLOCKING[case]().install_deadlocks()


@pytest.mark.parametrize("case", sorted(ACYCLIC_BUT_DEADLOCKING))
def test_connects_to_weaving_deadlock_is_refused_at_upload_naming_file_and_cycle(tmp_path, case):
    """The normative ConnectsTo weaving (the seed's, required by the issue) makes the target wait
    for its source to be `created`: on these topologies install cannot finish, so the upload is
    refused, naming the file and the cycle (docs/workflows.md, "When ConnectsTo deadlocks")."""
    topo = ACYCLIC_BUT_DEADLOCKING[case]()
    path = tmp_path / "model.yaml"
    path.write_text(topo.to_yaml())
    error = _upload(embedded(tmp_path), str(path))
    assert error is not None and "install deadlocks" in error and str(path) in error, error
    assert "ConnectsTo" in error
