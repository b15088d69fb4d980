# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Served hosts (``wfctl worker --serves``, the seed's design: a worker on each machine): the
operations of a root host run on the worker that serves it, locally, never on another worker;
when it dies they wait (status says which host, since when) until a worker serving the same
host comes.  Real worker processes on one embedded Space file, one SIGKILLed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from wfengine import api

from engine_helpers import REPO, embedded
from remote.conftest import ADDRESSES

pytestmark = pytest.mark.slow

THREE_TIER = REPO / "examples" / "three_tier"
WFCTL = [sys.executable, "-m", "wfengine.cli"]
TIERS = ("web", "app", "db")


def test_served_hosts_run_on_their_worker_and_wait_for_it(tmp_path):
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    api.upload_model(space, str(THREE_TIER), "tt")
    # No sshd runs at these addresses: an operation that left its serving worker would fail.
    api.create_instance(space, "tt", "d1", inputs={"web_address": ADDRESSES[0], "app_address": ADDRESSES[1],
                                                   "db_address": ADDRESSES[2], "ssh_key": "/nonexistent"})
    log = tmp_path / "execs.jsonl"
    procs = {}

    def start(wid, address, root):
        os.makedirs(root, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
        env.update(WF_SPACE=opts.path, WF_MACHINE_ROOT=str(root),
                   WF_CACHE_DIR=str(tmp_path / ("cache-" + wid)))
        procs[wid] = subprocess.Popen(WFCTL + ["worker", "--id", wid, "--ttl", "1", "--serves", address,
                                               "--exec-log", str(log)],
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp_path / (wid + ".err"), "w"))

    roots = {t: tmp_path / ("machine-" + t) for t in TIERS}
    try:
        for i, t in enumerate(TIERS):
            start("w-" + t, ADDRESSES[i], roots[t])
        deadline = time.monotonic() + 30
        while len(api.served_hosts(space)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        rec = api.start_workflow(space, "install", "tt", "d1")
        # Kill the database's worker as soon as the run is under way.
        while time.monotonic() < deadline and not (log.exists() and log.read_text().strip()):
            time.sleep(0.01)
        procs["w-db"].send_signal(signal.SIGKILL)
        procs["w-db"].wait()
        # The db host's remaining steps wait for it: status names the host and its worker.
        waiting = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = api.status(space, "tt", "d1")
            waiting = [h for h in st.get("waiting_hosts", []) if h["host"] == "db_host_0"]
            if waiting:
                break
            time.sleep(0.1)
        assert waiting, "status never showed db_host_0 waiting"
        assert waiting[0]["served_by"] == ["w-db"] and waiting[0]["address"] == ADDRESSES[2]
        assert api.wait_run(space, rec["id"], timeout=1.5)["status"] == "running"
        # A replacement serving the same address finishes the run.
        start("w-db2", ADDRESSES[2], roots["db"])
        done = api.wait_run(space, rec["id"], timeout=120)
        assert done["status"] == "succeeded", api.summary(space, rec["id"])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            p.wait(timeout=30)
    # Every operation of a host ran on its worker (the trace's worker), locally.
    ran = [e for e in api.trace(space, "tt", "d1") if e["kind"] == "operation"]
    assert ran
    for e in ran:
        tier = e["node"].split("_")[0]
        allowed = {"w-db", "w-db2"} if tier == "db" else {"w-" + tier}
        assert e["worker"] in allowed, e
    assert any(e["worker"] == "w-db2" for e in ran)
    for t in TIERS:
        with open(roots[t] / "var" / "log" / "three-tier" / "ops.log", encoding="utf-8") as fh:
            lines = [ln.split("|") for ln in fh.read().splitlines()]
        assert lines and {ln[0] for ln in lines} == {t + "_0"}
        assert {ln[3] for ln in lines} == {"local"}     # no SSH: the worker is on the machine
    assert all(n["state"] == "started" for n in api.status(space, "tt", "d1")["nodes"].values())
    # Forgetting a served host removes its claims.
    assert api.forget_served(space, ADDRESSES[2]) == 2
    assert {h["name"] for h in api.served_hosts(space)} == {ADDRESSES[0], ADDRESSES[1]}
