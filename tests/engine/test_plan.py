"""``wfctl plan`` (issue 19): the operations and happens-before edges of a run, computed without a
single write, and then checked against a real run of the same workflow."""
import hashlib
import json
import os
from collections import Counter

import pytest

from wfengine import api, cli

from engine_helpers import EXAMPLE, deploy, embedded, run


def _files(path):
    """Hash of every file of the embedded store (the database, and its WAL / -shm if any)."""
    out = {}
    for suffix in ("", "-wal", "-shm"):
        p = path + suffix
        if os.path.exists(p):
            with open(p, "rb") as f:
                out[suffix] = hashlib.sha256(f.read()).hexdigest()
    return out


def _key(ev):
    rel = ev.get("relationship")
    return (ev["node"], ev["kind"], ev["name"],
            None if rel is None else (rel["type"], rel["source"], rel["target"]))


def _check_against_trace(plan, trace):
    """The run did exactly the plan's points, and each plan edge (a, b): a before b in the trace."""
    position = {}
    seen = Counter()
    for k, ev in enumerate(trace):
        key = _key(ev)
        position[(key, seen[key])] = k
        seen[key] += 1
    planned = Counter(_key(p) for p in plan["points"])
    assert planned == seen            # same operations, states, relationship instances; same multiplicity
    ops = {(p["node"], p["name"], (p.get("relationship") or {}).get("id")) for p in plan["points"]
           if p["kind"] == "operation"}
    assert len(ops) == plan["counts"]["operations"]
    where = {}
    nth = Counter()
    for p in plan["points"]:
        key = _key(p)
        where[p["id"]] = position[(key, nth[key])]
        nth[key] += 1
    late = [(plan["points"][a], plan["points"][b]) for a, b in plan["edges"] if where[a] >= where[b]]
    assert late == []
    return len(plan["edges"])


@pytest.mark.parametrize("workers", [1, 3])
def test_plan_writes_nothing_and_the_run_matches_it(tmp_path, workers):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    before = _files(opts.path)
    space = api.open_space(opts)
    try:
        p = api.plan(space, "install", "m", "i")
    finally:
        space.close()
    assert _files(opts.path) == before
    # The seed example: 19 x (create, configure, start) + 43 relationship instances (30 ConnectsTo,
    # 13 HostedOn) x 6 Configure operations = 57 + 258 = 315; the 237 leaves out the 78 of
    # HostedOn (docs/day2.md).  19 x 6 states = 114.
    assert p["counts"]["operations"] == 315 and p["counts"]["states"] == 114
    assert p["participants"] == 19
    inst = run(opts, "install", workers=workers)
    assert inst["record"]["status"] == "succeeded"
    assert _check_against_trace(p, [e for e in inst["trace"] if e["workflow"] == "install"]) == len(p["edges"]) > 0

    space = api.open_space(opts)
    try:
        pu = api.plan(space, "uninstall", "m", "i")
    finally:
        space.close()
    un = run(opts, "uninstall", workers=workers)
    assert un["record"]["status"] == "succeeded"
    run_id = un["record"]["id"]
    _check_against_trace(pu, [e for e in un["trace"] if e["run"] == run_id])


def test_plan_cli_formats_and_errors(tmp_path, capsys):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    before = _files(opts.path)
    base = ["--space", opts.path, "plan", "install", "m", "i"]
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("plan install m/i: 315 operations, 114 state changes")
    assert len(out.splitlines()) == 1 + 315
    assert cli.main(base + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["operations"] == 315 and all(len(e) == 2 for e in doc["edges"])
    assert cli.main(base + ["--dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph plan {") and dot.count(" -> ") == doc["counts"]["edges"]
    assert cli.main(base + ["--mermaid"]) == 0
    mer = capsys.readouterr().out
    assert mer.startswith("flowchart LR") and mer.count(" --> ") == doc["counts"]["edges"]
    assert _files(opts.path) == before
    # bad input: one line, exit 2, and still nothing written
    assert cli.main(["--space", opts.path, "plan", "nope", "m", "i"]) == 2
    assert cli.main(["--space", opts.path, "plan", "install", "m", "other"]) == 2
    missing = str(tmp_path / "missing.db")
    assert cli.main(["--space", missing, "plan", "install", "m", "i"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "no workflow nope" in err[0] and "unknown instance other" in err[1] \
        and "no embedded Space" in err[2]
    assert not os.path.exists(missing)
    assert _files(opts.path) == before
