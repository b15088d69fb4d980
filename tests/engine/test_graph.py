"""``wfctl graph`` (issue 21): the wait edges of the deadlock check, as DOT (parsed by pydot) and
Mermaid, for templates and for node instances."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from wfengine import api, graph, rules

from engine_helpers import EXAMPLE, deploy, embedded

pydot = pytest.importorskip("pydot")

WFCTL = [sys.executable, "-m", "wfengine.cli"]

# The seed example: A on srvA, B on srvB... and A ConnectsTo B and C, B ConnectsTo D, C ConnectsTo D.
SEED_TEMPLATE_EDGES = {("srvA", "A"), ("srvB", "B"), ("srvC", "C"), ("srvD", "D"),
                       ("B", "A"), ("C", "A"), ("A", "B"), ("D", "B"), ("A", "C"), ("D", "C"),
                       ("C", "D"), ("B", "D")}


@pytest.fixture
def seed(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    env = dict(os.environ, WF_SPACE=opts.path)

    def wfctl(*args, path=None):
        e = dict(env, PATH=path) if path is not None else env
        return subprocess.run(WFCTL + list(args), env=e, capture_output=True, text=True, timeout=60, check=False)
    return opts, wfctl


def _unquote(s):
    return s.strip('"')


def test_dot_of_templates_and_instances_parses_and_has_the_wait_edges(seed):
    opts, wfctl = seed
    r = wfctl("graph", "m", "--workflow", "install", "--format", "dot")
    assert r.returncode == 0, r.stderr
    (g,) = pydot.graph_from_dot_data(r.stdout)
    names = {_unquote(n.get_name()) for n in g.get_nodes()} - {"node", "edge"}
    assert names == {"A", "B", "C", "D", "srvA", "srvB", "srvC", "srvD"}
    pairs = [(_unquote(e.get_source()), _unquote(e.get_destination())) for e in g.get_edges()]
    assert set(pairs) == SEED_TEMPLATE_EDGES
    assert all(e.get_label() for e in g.get_edges())
    # the same edges as the deadlock check's graph (rules.ordering_deps over the same programs)
    space = api.open_space(opts)
    try:
        data = graph.ordering_graph(space, "m", None, "install")
        inst = graph.ordering_graph(space, "m", "i", "install")
    finally:
        space.close()
    assert len(pairs) == len(data["edges"])
    # node instances: 19, and each instance edge is an edge of their templates
    r = wfctl("graph", "m", "i", "--format", "dot")
    assert r.returncode == 0 and r.stdout, r.stderr
    (gi,) = pydot.graph_from_dot_data(r.stdout)
    assert len({_unquote(n.get_name()) for n in gi.get_nodes()} - {"node", "edge"}) == 19
    tpl = {n["id"]: n["template"] for n in inst["nodes"]}
    ipairs = {(_unquote(e.get_source()), _unquote(e.get_destination())) for e in gi.get_edges()}
    assert {(tpl[a], tpl[b]) for a, b in ipairs} == SEED_TEMPLATE_EDGES
    # A_4 waits for its own host only (srvA_1 with 9 A on 3 srvA... each A on one srvA)
    hosts = {a for a, b in ipairs if b == "A_4" and a.startswith("srvA")}
    assert len(hosts) == 1
    assert len(ipairs) > len(SEED_TEMPLATE_EDGES)


def test_mermaid_is_a_flowchart_with_the_same_edges(seed):
    dummy, wfctl = seed
    r = wfctl("graph", "m", "--format", "mermaid")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    node_re = re.compile(r'^  (n\d+)\["([^"]*)"\]$')
    edge_re = re.compile(r'^  (n\d+) -->\|"([^"]*)"\| (n\d+)$')
    labels, edges = {}, []
    for line in lines[1:]:
        m = node_re.match(line)
        if m:
            assert not edges, "nodes are declared before the edges"
            labels[m.group(1)] = m.group(2).split("<br/>")[0]
            continue
        m = edge_re.match(line)
        assert m, line
        edges.append((labels[m.group(1)], labels[m.group(3)]))
    assert set(edges) == SEED_TEMPLATE_EDGES and len(edges) == 16   # 4 pairs wait twice


def test_svg_needs_graphviz_and_bad_input_is_one_line(seed, tmp_path):
    dummy, wfctl = seed
    empty = tmp_path / "nobin"
    empty.mkdir()
    r = wfctl("graph", "m", "--format", "svg", path=str(empty))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "Graphviz" in r.stderr
    if shutil.which("dot"):
        r = wfctl("graph", "m", "--format", "svg")
        assert r.returncode == 0 and "<svg" in r.stdout
    r = wfctl("graph", "m", "--workflow", "nope")
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: model m defines no workflow nope (known: install, uninstall)"
    r = wfctl("graph", "nomodel")
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: unknown model nomodel"
    r = wfctl("graph", "m", "noinst")
    assert r.returncode == 2 and r.stderr.strip() == "wfctl: unknown instance noinst of model m"


def test_the_deadlock_check_and_the_graph_share_one_edge_builder():
    """A two-node cycle of waits: ordering_deps has both wait edges, and _find_cycle (the upload
    check) names the deadlock from that same graph."""
    a = [rules.Instr(rules.WAIT, "started", "r1", "DependsOn", "b", "source"), rules.Instr(rules.STATE, "started")]
    b = [rules.Instr(rules.WAIT, "started", "r1", "DependsOn", "a", "target"), rules.Instr(rules.STATE, "started")]
    deps = rules.ordering_deps({"a": a, "b": b})
    assert ("b", 1) in deps[("a", 0)] and ("a", 1) in deps[("b", 0)]
    assert "cycle" in rules._find_cycle({"a": a, "b": b})
