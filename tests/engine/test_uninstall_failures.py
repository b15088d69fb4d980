"""Uninstall goes on past failures (issue 19; TOSCA: uninstall failures should not prevent the
other operations): the seed example with a script on every Standard operation, B_0's ``stop``
failing; every other node is still deleted, in the order the plan gives; the run ends ``failed``
naming the operation; a later uninstall retries only what is left."""
from collections import Counter

from wfengine import api, cli

from engine_helpers import EXAMPLE, with_scripts
from test_plan import _key

SCRIPT = """\
if [ "$WF_NODE" = B_0 ] && [ "${WF_OPERATION##*.}" = stop ] && [ ! -e "$FLAG" ]; then
  echo "cannot stop B_0" >&2; exit 4
fi
echo "$WF_NODE $WF_OPERATION" >> "$OPLOG"
"""


def test_uninstall_goes_on_past_a_failed_stop_and_a_later_one_finishes(tmp_path, monkeypatch, capsys):
    flag, oplog = tmp_path / "flag", tmp_path / "ops.log"
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPLOG", str(oplog))
    monkeypatch.setenv("FLAG", str(flag))
    db = str(tmp_path / "space.db")
    opts = api.SpaceOptions(backend="embedded", path=db)
    base = ["--space", db]
    assert cli.main(base + ["model", with_scripts(EXAMPLE, tmp_path / "app.yaml", SCRIPT), "app"]) == 0
    assert cli.main(base + ["instantiate", "app", "prod"]) == 0
    assert cli.main(base + ["workflow", "install", "app", "prod", "--wait"]) == 0
    space = api.open_space(opts)
    try:
        plan = api.plan(space, "uninstall", "app", "prod")
    finally:
        space.close()
    oplog.write_text("")
    capsys.readouterr()
    assert cli.main(base + ["workflow", "uninstall", "app", "prod", "--wait"]) == 1
    out = capsys.readouterr().out
    assert "uninstall app/prod: failed" in out and "error on B_0" in out
    space = api.open_space(opts)
    try:
        runs = api.instance_runs(space, "app", "prod")
        st = {n: v["state"] for n, v in api.status(space, "app", "prod")["nodes"].items()}
        trace = api.trace(space, "app", "prod", run_id=runs[-1]["id"])
    finally:
        space.close()
    rec = runs[-1]
    assert rec["status"] == "failed"
    assert [(e["node"], e["operation"].rsplit(".", 1)[-1], e["exit_code"]) for e in rec["errors"]] == [("B_0", "stop", 4)]
    # every other node deleted; B_0 marked
    assert st.pop("B_0") == "error" and Counter(st.values()) == {"deleted": 18}
    # every planned point of the others happened, and every edge between points that happened holds
    position = {}
    seen = Counter()
    for k, ev in enumerate(trace):
        key = _key(ev)
        position[(key, seen[key])] = k
        seen[key] += 1
    nth = Counter()
    where = {}
    for p in plan["points"]:
        key = _key(p)
        where[p["id"]] = position.get((key, nth[key]))
        nth[key] += 1
        if p["program"] != "B_0":
            assert where[p["id"]] is not None, p
    held = [(a, b) for a, b in plan["edges"] if where[a] is not None and where[b] is not None]
    assert len(held) > 150 and all(where[a] < where[b] for a, b in held)
    # D_0 (ConnectsTo B_0 -> D_0 waits for B_0 stopped) and srvB_0 (hosts B_0) went on
    assert st["D_0"] == "deleted" and st["srvB_0"] == "deleted"
    done_first = Counter(line.split()[0] for line in oplog.read_text().splitlines())
    assert done_first["B_0"] == 0 and len(done_first) == 18

    # fixed: a later uninstall retries only what is left (B_0's stop, then its delete)
    flag.write_text("ok")
    oplog.write_text("")
    assert cli.main(base + ["workflow", "uninstall", "app", "prod", "--wait"]) == 0
    assert "continuing it from where it stopped" in capsys.readouterr().err
    assert [line.split()[0] + " " + line.split()[1].rsplit(".", 1)[-1]
            for line in oplog.read_text().splitlines()] == ["B_0 stop", "B_0 delete"]
    space = api.open_space(opts)
    try:
        st = api.status(space, "app", "prod")["nodes"]
        assert Counter(v["state"] for v in st.values()) == {"deleted": 19}
        assert api.instance_runs(space, "app", "prod")[-1]["status"] == "succeeded"
    finally:
        space.close()
