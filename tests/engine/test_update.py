"""``wfctl update`` / ``wfctl scale`` (issue 19) on the embedded Space: the seed example moved to
version 2 (srvA 3 -> 4 hosts, A 3 -> 4 per host, E on srvB ConnectsTo B), back to version 1, then
no change; scaling in and out; bad input refused with nothing written."""
import json
import sqlite3
from collections import Counter

import pytest

from wfengine import api, cli

from engine_helpers import EXAMPLE
from test_plan import _check_against_trace as check_against_trace

V2 = EXAMPLE.parent / "app_v2.yaml"
OLD = {"A_%d" % k for k in range(9)} | {"B_0", "C_0", "C_1", "D_0", "srvA_0", "srvA_1", "srvA_2", "srvB_0",
                                        "srvC_0", "srvD_0"}
NOVEL = {"srvA_3", "E_0"} | {"A_%d" % k for k in range(9, 16)}
STANDARD = ("create", "configure", "start", "stop", "delete")


def _wfctl(space_file, *argv):
    return cli.main(["--space", space_file] + list(argv))


def _state(opts):
    space = api.open_space(opts)
    try:
        st = api.status(space, "app", "prod")["nodes"]
        runs = api.instance_runs(space, "app", "prod")
        trace = api.trace(space, "app", "prod", run_id=runs[-1]["id"]) if runs else []
        return st, runs, trace
    finally:
        space.close()


def _contents(db):
    """Every key with its value and index: what a write changes (the file's bytes also change
    when SQLite checkpoints its WAL, which is no write).  Worker registrations are left out: the
    in-process workers of the previous run may still be deregistering."""
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return [row for row in conn.execute("SELECT key, value, modify_index FROM kv ORDER BY key")
                if not row[0].startswith("wf/q/~/workers/")]
    finally:
        conn.close()


def _installed_then_changed(tmp_path, text):
    """The seed example installed as app/prod, then ``text`` uploaded as the model's next
    version: the Space file and its options."""
    v3 = tmp_path / "v3.yaml"
    v3.write_text(text)
    db = str(tmp_path / "space.db")
    assert _wfctl(db, "model", str(EXAMPLE), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod") == 0
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    assert _wfctl(db, "model", str(v3), "app") == 0
    return db, api.SpaceOptions(backend="embedded", path=db)


def _ops(trace):
    return Counter((e["node"], e["name"].rsplit(".", 1)[-1]) for e in trace if e["kind"] == "operation")


def _hosts(status):
    return {n: [r["target"] for r in v["relationships"] if r["requirement"] == "host"] for n, v in status.items()}


@pytest.mark.parametrize("workers", ["1", "3"])
def test_seed_v2_update_back_to_v1_then_no_change(tmp_path, capsys, workers):
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    assert _wfctl(db, "model", str(EXAMPLE), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod") == 0
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait", "--workers", workers) == 0
    v1_status, runs, dummy = _state(opts)
    assert Counter(v["state"] for v in v1_status.values()) == {"started": 19}
    capsys.readouterr()

    # version 2: planned, then run
    assert _wfctl(db, "model", str(V2), "app") == 0
    space = api.open_space(opts)
    try:
        plan = api.plan(space, "update", "app", "prod")
    finally:
        space.close()
    assert plan["update"]["novel"] == sorted(NOVEL, key=lambda n: (n.rpartition("_")[0], int(n.rpartition("_")[2])))
    assert _wfctl(db, "update", "app", "prod", "--wait", "--workers", workers) == 0
    out = capsys.readouterr().out
    assert "9 novel, 0 obsolete, 0 modified, 19 unchanged node instances" in out
    st, runs, trace = _state(opts)
    assert check_against_trace(plan, trace) == plan["counts"]["edges"] > 0
    assert runs[-1]["workflow"] == "update" and runs[-1]["status"] == "succeeded" and len(runs) == 2
    assert Counter(v["state"] for v in st.values()) == {"started": 28}
    assert set(st) == OLD | NOVEL
    assert {n: h for n, h in _hosts(st).items() if n in OLD} == _hosts(v1_status)   # old ids keep their hosts
    ops = _ops(trace)
    standard = {n for (n, op) in ops if op in STANDARD}
    assert standard == NOVEL                                            # none on the 19 old ones
    assert all(ops[(n, op)] == 1 for n in NOVEL for op in ("create", "configure", "start"))
    assert ops[("B_0", "add_source")] == 8                              # A_9..A_15 and E_0 -> B_0
    assert ops[("C_0", "add_source")] == 7 and ops[("C_1", "add_source")] == 7
    assert not any(op == "pre_configure_target" and n in OLD for (n, op) in ops)
    assert not any(op.startswith("remove_") for (n, op) in ops)
    # installed, then updated: install has nothing to run
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    assert "already succeeded" in capsys.readouterr().out

    # back to version 1
    assert _wfctl(db, "model", str(EXAMPLE), "app") == 0
    assert _wfctl(db, "update", "app", "prod", "--wait", "--workers", workers) == 0
    assert "0 novel, 9 obsolete, 0 modified, 19 unchanged" in capsys.readouterr().out
    st, runs, trace = _state(opts)
    assert set(st) == OLD and Counter(v["state"] for v in st.values()) == {"started": 19}
    assert _hosts(st) == _hosts(v1_status)
    ops = _ops(trace)
    assert {n for (n, op) in ops if op in STANDARD} == NOVEL             # stop / delete on the 9 removed
    assert all(ops[(n, "stop")] == 1 and ops[(n, "delete")] == 1 for n in NOVEL)
    assert ops[("B_0", "remove_source")] == 8 and ops[("C_0", "remove_source")] == 7
    assert ops[("C_1", "remove_source")] == 7
    assert {op for (n, op) in ops if n in OLD} == {"remove_source"}       # intact peers: only that
    assert all(ops[(a, "remove_target")] == 4 for a in NOVEL if a.startswith("A_"))  # host, B, 2 C
    n_runs = len(runs)

    # a third update: no change, no run
    assert _wfctl(db, "update", "app", "prod", "--wait") == 0
    assert "no change to node or relationship instances: no run" in capsys.readouterr().out
    assert len(_state(opts)[1]) == n_runs


def test_scale_in_and_out_and_bad_input(tmp_path, capsys):
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    assert _wfctl(db, "model", str(EXAMPLE), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod") == 0
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    capsys.readouterr()
    # scale-in: the highest-numbered A of each srvA goes
    assert _wfctl(db, "scale", "app", "prod", "A", "--delta", "-1", "--wait") == 0
    out = capsys.readouterr().out
    assert "obsolete: A_2, A_5, A_8" in out
    st, runs, trace = _state(opts)
    assert sorted(n for n in st if n.startswith("A_")) == ["A_0", "A_1", "A_3", "A_4", "A_6", "A_7"]
    assert {n for (n, op) in _ops(trace) if op in STANDARD} == {"A_2", "A_5", "A_8"}
    # the count is kept with the instance: an update without change stays at 2 per host
    assert _wfctl(db, "update", "app", "prod") == 0
    assert "no run" in capsys.readouterr().out
    # scale-out: new numbers above the previous ones, one per srvA
    assert _wfctl(db, "scale", "app", "prod", "A", "--count", "3", "--wait", "--json") == 0
    doc = json.loads(capsys.readouterr().out.split("\n}\n", 1)[0] + "\n}")
    assert doc["novel"] == ["A_8", "A_9", "A_10"] and doc["obsolete"] == []
    st, runs, dummy = _state(opts)
    assert _hosts(st)["A_8"] == ["srvA_0"] and _hosts(st)["A_10"] == ["srvA_2"]
    assert Counter(v["state"] for v in st.values()) == {"started": 19}
    # bad input: one line, exit 2, nothing written
    n_runs = len(runs)
    before = _contents(db)
    assert _wfctl(db, "scale", "app", "prod", "A", "--count", "9") == 2          # max_instances 5
    assert _wfctl(db, "scale", "app", "prod", "Z", "--count", "1") == 2
    assert _wfctl(db, "update", "app", "nope") == 2
    assert _wfctl(db, "update", "app", "prod", "-i", "nope=1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "outside min_instances 1 .. max_instances 5" in err[0], err
    assert "no template Z" in err[1] and "unknown instance nope" in err[2] and "nope" in err[3]
    assert len(_state(opts)[1]) == n_runs
    after = _contents(db)
    assert after == before, set(after) ^ set(before)


def test_modified_template_is_reinstalled_with_what_it_hosts(tmp_path, capsys):
    """C gets a property: C_0 and C_1 are modified,
    their type declares no update workflow, so they are reinstalled; their intact sources run
    remove_target then add_target, nothing else."""
    text = EXAMPLE.read_text().replace(
        "          properties: {default_instances: 2, max_instances: 3}\n      requirements:\n        - host: srvC",
        "          properties: {default_instances: 2, max_instances: 3}\n"
        "      properties: {component_version: \"2.0\"}\n      requirements:\n        - host: srvC")
    assert "component_version" in text
    db, opts = _installed_then_changed(tmp_path, text)
    capsys.readouterr()
    assert _wfctl(db, "update", "app", "prod", "--wait") == 0
    assert "0 novel, 0 obsolete, 2 modified, 17 unchanged" in capsys.readouterr().out
    st, runs, trace = _state(opts)
    assert Counter(v["state"] for v in st.values()) == {"started": 19}
    ops = _ops(trace)
    assert {n for (n, op) in ops if op in STANDARD} == {"C_0", "C_1"}
    assert all(ops[(c, op)] == 1 for c in ("C_0", "C_1") for op in STANDARD)
    for c in ("C_0", "C_1"):
        states = [e["name"] for e in trace if e["kind"] == "state" and e["node"] == c]
        assert states == ["stopping", "stopped", "deleting", "deleted", "creating", "created", "configuring",
                          "configured", "starting", "started"]
    sources = {"A_%d" % k for k in range(9)} | {"D_0"}
    assert {op for (n, op) in ops if n in sources} == {"remove_target", "add_target"}
    assert all(ops[(n, "remove_target")] == 2 and ops[(n, "add_target")] == 2 for n in sources)
    # within each source, the removal of a relationship comes before its addition
    for n in sources:
        seq = [e["name"].rsplit(".", 1)[-1] for e in trace if e["node"] == n and e["kind"] == "operation"]
        assert seq.index("add_target") > seq.index("remove_target")


SCALED = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    flag: {type: string}
  node_templates:
    box: {type: tosca.nodes.Compute}
    app:
      type: tosca.nodes.SoftwareComponent
      capabilities:
        scalable:
          properties: {min_instances: 1, default_instances: 1, max_instances: 3}
      requirements: [{host: box}]
      interfaces:
        Standard:
          create:
            implementation: scripts/create.sh
            inputs: {FLAG: {get_input: flag}}
"""


def test_failed_update_continues_where_it_stopped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "create.sh").write_text(
        'if [ "$WF_NODE" = app_2 ] && [ ! -e "$FLAG" ]; then echo "no flag" >&2; exit 3; fi\necho ok\n')
    (tmp_path / "m.yaml").write_text(SCALED)
    flag = tmp_path / "flag"
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    assert _wfctl(db, "model", str(tmp_path / "m.yaml"), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod", "-i", "flag=%s" % flag) == 0
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    assert _wfctl(db, "scale", "app", "prod", "app", "--count", "3", "--wait") == 1     # app_2's create fails
    st, runs, dummy = _state(opts)
    assert runs[-1]["workflow"] == "update" and runs[-1]["status"] == "failed"
    assert st["app_2"]["state"] == "error" and st["app_1"]["state"] == "started"
    capsys.readouterr()
    assert _wfctl(db, "scale", "app", "prod", "app", "--count", "2") == 2       # continue that one first
    assert "continue it first" in capsys.readouterr().err
    flag.write_text("x")
    assert _wfctl(db, "update", "app", "prod", "--wait") == 0
    assert "continuing update run %s" % runs[-1]["id"] in capsys.readouterr().out
    st, runs2, dummy = _state(opts)
    assert len(runs2) == len(runs) and runs2[-1]["status"] == "succeeded"
    assert Counter(v["state"] for v in st.values()) == {"started": 4}
    space = api.open_space(opts)
    try:
        ran = Counter((r["node"], r["status"]) for r in api.logs(space, "app", "prod"))
    finally:
        space.close()
    # app_1's create ran once (not again on the resume), app_2's failed once then succeeded
    assert ran == {("app_0", "ok"): 1, ("app_1", "ok"): 1, ("app_2", "failed"): 1, ("app_2", "ok"): 1}


DECLARED = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      level: {type: integer, default: 1}
    workflows:
      update:
        steps:
          reconfigure:
            activities:
              - set_state: configuring
              - call_operation: tosca.interfaces.node.lifecycle.Standard.configure
              - set_state: started
topology_template:
  node_templates:
    box: {type: tosca.nodes.Compute}
    app:
      type: my.App
      properties: {level: LEVEL}
      requirements: [{host: box}]
    db:
      type: tosca.nodes.SoftwareComponent
      properties: {component_version: "VERSION"}
      requirements: [{host: box}, {dependency: app}]
"""


def test_a_type_that_declares_update_runs_it_others_are_reinstalled(tmp_path, capsys):
    """app's type declares an ``update`` workflow: a changed property runs it (configure only);
    db's type does not: it is reinstalled; the intact host runs nothing but its peer operations."""
    db_file = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db_file)
    for k, (level, version) in enumerate((("1", "1.0"), ("2", "2.0"))):
        (tmp_path / ("m%d.yaml" % k)).write_text(DECLARED.replace("LEVEL", level).replace("VERSION", version))
    assert _wfctl(db_file, "model", str(tmp_path / "m0.yaml"), "app") == 0
    assert _wfctl(db_file, "instantiate", "app", "prod") == 0
    assert _wfctl(db_file, "workflow", "install", "app", "prod", "--wait") == 0
    assert _wfctl(db_file, "model", str(tmp_path / "m1.yaml"), "app") == 0
    capsys.readouterr()
    assert _wfctl(db_file, "update", "app", "prod", "--wait") == 0
    assert "0 novel, 0 obsolete, 2 modified, 1 unchanged" in capsys.readouterr().out
    st, runs, trace = _state(opts)
    assert Counter(v["state"] for v in st.values()) == {"started": 3}
    ops = _ops(trace)
    # its update workflow, and the re-created relationship from db (made for app_0 in db's program)
    assert {op for (n, op) in ops if n == "app_0"} == {"configure", "remove_source", "add_source"}
    assert ops[("app_0", "configure")] == 1
    assert [e["name"] for e in trace if e["node"] == "app_0" and e["kind"] == "state"] == ["configuring", "started"]
    assert all(ops[("db_0", op)] == 1 for op in STANDARD)                     # reinstalled
    assert {op for (n, op) in ops if n == "box_0" and op in STANDARD} == set()


def test_update_of_an_instance_not_installed_moves_it_without_a_run(tmp_path, capsys):
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    assert _wfctl(db, "model", str(EXAMPLE), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod") == 0
    assert _wfctl(db, "model", str(V2), "app") == 0
    capsys.readouterr()
    assert _wfctl(db, "update", "app", "prod", "--wait") == 0
    assert "the instance is not installed" in capsys.readouterr().out
    st, runs, dummy = _state(opts)
    assert runs == [] and set(st) == OLD | NOVEL
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    st, runs, dummy = _state(opts)
    assert Counter(v["state"] for v in st.values()) == {"started": 28}


FED = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.Soft:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      level: {type: string, required: false}
topology_template:
  inputs:
    level: {type: string, default: "1"}
    unused: {type: string, default: "x"}
  node_templates:
    box: {type: tosca.nodes.Compute}
    web:
      type: my.Soft
      properties: {level: {get_input: level}}
      requirements: [{host: box}]
    cache:
      type: my.Soft
      properties: {level: {concat: ["v", {get_property: [web, level]}]}}
      requirements: [{host: box}]
    db:
      type: my.Soft
      properties: {level: "fixed"}
      requirements: [{host: box}]
"""


def test_an_input_change_modifies_the_nodes_whose_values_it_feeds(tmp_path, capsys):
    """The template text is the same, the values are not: web reads the input, cache reads web's
    property; both are reinstalled, box and db run nothing; an input nobody reads changes no
    node (no run)."""
    (tmp_path / "m.yaml").write_text(FED)
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    assert _wfctl(db, "model", str(tmp_path / "m.yaml"), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod") == 0
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    capsys.readouterr()
    assert _wfctl(db, "update", "app", "prod", "-i", "unused=y", "--wait") == 0
    assert "no change to node or relationship instances: no run" in capsys.readouterr().out
    assert len(_state(opts)[1]) == 1
    assert _wfctl(db, "update", "app", "prod", "-i", "level=two", "--wait") == 0
    assert "0 novel, 0 obsolete, 2 modified, 2 unchanged" in capsys.readouterr().out
    st, runs, trace = _state(opts)
    assert runs[-1]["workflow"] == "update" and runs[-1]["status"] == "succeeded"
    assert Counter(v["state"] for v in st.values()) == {"started": 4}
    ops = _ops(trace)
    assert {n for (n, op) in ops if op in STANDARD} == {"web_0", "cache_0"}
    assert all(ops[(n, op)] == 1 for n in ("web_0", "cache_0") for op in STANDARD)
    # the intact host runs the removal and addition of the reinstalled nodes' HostedOn; db nothing
    assert {op for (n, op) in ops if n == "box_0"} == {"remove_source", "add_source"}
    assert not any(n == "db_0" for (n, op) in ops)
    capsys.readouterr()
    assert _wfctl(db, "plan", "update", "app", "prod") == 0      # the new values are the instance's now
    assert "no change" in capsys.readouterr().out


def test_scale_in_removes_the_named_instances_first(tmp_path, capsys):
    """``--remove``: on the hosts of the named instances they go instead of the highest-numbered;
    a host with none named loses its highest; naming one that would stay, one of another
    template or one that does not exist is one line, exit 2, nothing written."""
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    assert _wfctl(db, "model", str(EXAMPLE), "app") == 0
    assert _wfctl(db, "instantiate", "app", "prod") == 0
    assert _wfctl(db, "workflow", "install", "app", "prod", "--wait") == 0
    st0 = _state(opts)[0]
    assert _hosts(st0)["A_0"] == ["srvA_0"] and _hosts(st0)["A_4"] == ["srvA_1"]
    capsys.readouterr()
    before = _contents(db)
    assert _wfctl(db, "scale", "app", "prod", "A", "--delta", "-1", "--remove", "A_1", "--remove", "A_2") == 2
    assert _wfctl(db, "scale", "app", "prod", "A", "--delta", "-1", "--remove", "B_0") == 2
    assert _wfctl(db, "scale", "app", "prod", "A", "--delta", "-1", "--remove", "A_99") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert "would stay" in err[0] and "from srvA_0" in err[0]
    assert "B_0: not an instance of template A" in err[1]
    assert "no node instance A_99" in err[2]
    assert _contents(db) == before
    assert _wfctl(db, "scale", "app", "prod", "A", "--delta", "-1", "--remove", "A_0", "--remove", "A_4",
                  "--wait") == 0
    assert "obsolete: A_0, A_4, A_8" in capsys.readouterr().out
    st, runs, trace = _state(opts)
    assert runs[-1]["status"] == "succeeded"
    assert sorted(n for n in st if n.startswith("A_")) == ["A_1", "A_2", "A_3", "A_5", "A_6", "A_7"]
    assert {n for (n, op) in _ops(trace) if op in STANDARD} == {"A_0", "A_4", "A_8"}
    # the others kept their ids and hosts
    assert all(_hosts(st)[n] == _hosts(st0)[n] for n in st)


def test_a_modified_host_is_reinstalled_with_what_it_hosts(tmp_path, capsys):
    """srvC gets a capability property: srvC_0 is modified, and with it C_0 and C_1 (hosted on it)
    are reinstalled: stopped and deleted before their host, created again after it; nothing
    else runs a Standard operation."""
    text = EXAMPLE.read_text().replace(
        "    srvC:\n      type: tosca.nodes.Compute\n",
        "    srvC:\n      type: tosca.nodes.Compute\n"
        "      capabilities:\n        host:\n          properties: {num_cpus: 2}\n")
    assert "num_cpus" in text
    db, opts = _installed_then_changed(tmp_path, text)
    capsys.readouterr()
    assert _wfctl(db, "update", "app", "prod", "--wait") == 0
    out = capsys.readouterr().out
    assert "0 novel, 0 obsolete, 3 modified, 16 unchanged" in out and "modified: C_0, C_1, srvC_0" in out, out
    st, runs, trace = _state(opts)
    assert runs[-1]["status"] == "succeeded" and Counter(v["state"] for v in st.values()) == {"started": 19}
    ops = _ops(trace)
    assert {n for (n, op) in ops if op in STANDARD} == {"srvC_0", "C_0", "C_1"}
    assert all(ops[(n, op)] == 1 for n in ("srvC_0", "C_0", "C_1") for op in STANDARD)
    at = {(e["node"], e["name"].rsplit(".", 1)[-1]): k for k, e in enumerate(trace) if e["kind"] == "operation"}
    for c in ("C_0", "C_1"):
        assert at[(c, "delete")] < at[("srvC_0", "stop")] and at[("srvC_0", "start")] < at[(c, "create")]


@pytest.mark.parametrize("what", ["type", "requirement"])
def test_a_changed_type_or_requirement_modifies_the_node(tmp_path, capsys, what):
    """D's type becomes tosca.nodes.DBMS, or D loses its ConnectsTo C: D_0 is modified and
    reinstalled (its old relationship instances to C_0 and C_1 are obsolete when the
    requirement goes); nothing else runs a Standard operation."""
    old = "    D:\n      type: tosca.nodes.SoftwareComponent\n      requirements:\n        - host: srvD\n" \
          "        - to_c: {node: C, relationship: tosca.relationships.ConnectsTo}\n"
    assert old in EXAMPLE.read_text()
    new = old.replace("tosca.nodes.SoftwareComponent", "tosca.nodes.DBMS") if what == "type" else \
        old.replace("        - to_c: {node: C, relationship: tosca.relationships.ConnectsTo}\n", "")
    db, opts = _installed_then_changed(tmp_path, EXAMPLE.read_text().replace(old, new))
    capsys.readouterr()
    assert _wfctl(db, "update", "app", "prod", "--wait", "--json") == 0
    doc = json.loads(capsys.readouterr().out.split("\n}\n", 1)[0] + "\n}")
    assert doc["modified"] == ["D_0"] and doc["novel"] == [] and doc["obsolete"] == [], doc
    gone = ["D_0:to_c#1:C_0", "D_0:to_c#1:C_1"] if what == "requirement" else []
    assert doc["relationships"] == {"novel": [], "obsolete": gone}, doc["relationships"]
    st, runs, trace = _state(opts)
    assert runs[-1]["status"] == "succeeded" and Counter(v["state"] for v in st.values()) == {"started": 19}
    ops = _ops(trace)
    assert {n for (n, op) in ops if op in STANDARD} == {"D_0"}
    assert st["D_0"]["type"] == ("tosca.nodes.DBMS" if what == "type" else "tosca.nodes.SoftwareComponent")
    assert [r["target"] for r in st["D_0"]["relationships"] if r["requirement"] == "to_c"] == \
        ([] if what == "requirement" else ["C_0", "C_1"])
