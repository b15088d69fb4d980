# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operations run on the machines they deploy to, agentless over SSH (examples/three_tier on
three real sshd machines): where each operation ran ($SSH_CONNECTION), outputs back as
attributes, values verbatim, one connection per host, host keys, unreachable hosts, resume."""
from __future__ import annotations

import os
import re

import pytest

from wfengine import api, keys
from wfengine.operation.ssh import SshOptions

from engine_helpers import REPO, embedded

pytestmark = pytest.mark.slow

THREE_TIER = REPO / "examples" / "three_tier"
TRICKY = "$(touch %s) \"double\" 'single'\nsecond line `id` é ünï"
TIERS = {"web": 0, "app": 1, "db": 2}     # tier -> index of its machine


def deploy(tmp_path, machines, name="d1", **inputs):
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    api.upload_model(space, str(THREE_TIER), "tt")
    values = {"web_address": machines.machines[0].address, "app_address": machines.machines[1].address,
              "db_address": machines.machines[2].address, "ssh_user": machines.user,
              "ssh_key": machines.client_key}
    values.update(inputs)
    api.create_instance(space, "tt", name, inputs=values)
    return opts, space


def run(opts, space, workflow, ssh, name="d1", resume=False, workers=1):
    rec = api.start_workflow(space, workflow, "tt", name, resume=resume)
    return api.run_with_local_workers(opts, space, rec["id"], workers, timeout=180, ssh_options=ssh)


def ops_log(machine):
    path = os.path.join(machine.root, "var", "log", "three-tier", "ops.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n").split("|") for line in fh if line.strip()]


def accepted(machine):
    with open(machine.log, encoding="utf-8", errors="replace") as fh:
        return len(re.findall(r"Accepted publickey", fh.read()))


def _running(pid):
    try:
        with open("/proc/%d/status" % pid) as fh:
            return "zombie" not in fh.read().lower()
    except OSError:
        return False


def short(op):
    return op.rsplit(".", 1)[1]


@pytest.fixture
def ssh(machines, inventory):
    return SshOptions(inventory=inventory, known_hosts=machines.known_hosts)


@pytest.fixture(autouse=True)
def clean_machines(machines):
    """Each test starts with empty machines, all running, with their trusted keys."""
    import shutil
    for m in machines.machines:
        shutil.rmtree(m.root, ignore_errors=True)
        os.makedirs(m.root)
        if not m.running():
            m.start()
    machines.write_known_hosts()
    yield


def test_every_operation_runs_on_its_nodes_root_host(tmp_path, machines, ssh, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    pwned = tmp_path / "pwned"
    banner = TRICKY % pwned
    before = [accepted(m) for m in machines.machines]
    opts, space = deploy(tmp_path, machines, banner=banner)
    rec = run(opts, space, "install", ssh)
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])

    # Where: every operation line on a machine came in over SSH to that machine's address, and
    # names a node of the tier that machine hosts (or a relationship operation of that end).
    recorded = []
    for tier, i in TIERS.items():
        m = machines.machines[i]
        lines = ops_log(m)
        assert lines, "nothing ran on %s" % m.address
        for node, op, rel, conn, user in lines:
            assert conn.split()[2] == m.address, (m.address, node, op, conn)
            assert node == "%s_0" % tier and user == machines.user
            recorded.append((node, short(op), rel))
    # Relationship operations: *_source and add_target on the source's machine, *_target and
    # add_source on the target's (app_0 -> db_0 and web_0 -> app_0).
    by = {(n, o, r.split(":")[0] if r else "") for n, o, r in recorded}
    assert ("app_0", "pre_configure_source", "app_0") in by and ("app_0", "add_target", "app_0") in by
    assert ("db_0", "pre_configure_target", "app_0") in by and ("db_0", "add_source", "app_0") in by
    assert ("web_0", "pre_configure_source", "web_0") in by and ("app_0", "pre_configure_target", "web_0") in by
    # Every implementation ran exactly once (3 x create, configure, start; 2 relationships x
    # pre_configure_source, pre_configure_target, add_target, add_source), nothing else ran.
    ran = sorted((r["node"], short(r["operation"]), r["relationship"] or "") for r in api.logs(space, "tt", "d1"))
    assert sorted(recorded) == ran and len(ran) == 17
    # One SSH connection per host for the whole run (one worker): no handshake per operation.
    assert [accepted(m) - b for m, b in zip(machines.machines, before)] == [1, 1, 1]

    # Outputs came back as attributes (a script's and a remote playbook's), values verbatim.
    st = api.status(space, "tt", "d1")
    web = machines.machines[0].address
    assert st["outputs"]["web_url"] == {"value": "tcp://%s:80" % web}
    attrs = space.get(keys.attributes("tt", "d1", "web_0")).value
    assert attrs["configured_on"] == web and attrs["home"] == "/opt/three-tier/web"
    for tier, i in TIERS.items():
        home = os.path.join(machines.machines[i].root, "opt", "three-tier", tier)
        with open(os.path.join(home, "banner"), encoding="utf-8") as fh:
            assert fh.read() == banner
        assert os.path.exists(os.path.join(home, "running"))
    assert not pwned.exists()
    logs = api.logs(space, "tt", "d1")
    assert {(r["node"], r["host"], r["address"]) for r in logs} == {
        ("%s_0" % t, "%s_host_0" % t, machines.machines[i].address) for t, i in TIERS.items()}

    rec = run(opts, space, "uninstall", ssh)
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])
    for tier, i in TIERS.items():
        m = machines.machines[i]
        assert not os.listdir(os.path.join(m.root, "opt")), "left on %s" % m.address
        ops = [(n, short(o)) for n, o, r, c, u in ops_log(m) if c.split()[2] == m.address]
        assert ("%s_0" % tier, "delete") in ops and ("%s_0" % tier, "stop") in ops
    assert ("web_0", "remove_target") in [(n, short(o)) for n, o, *x in ops_log(machines.machines[0])]
    assert ("db_0", "remove_source") in [(n, short(o)) for n, o, *x in ops_log(machines.machines[2])]


def test_unreachable_host_fails_its_nodes_only_then_resume_finishes(tmp_path, machines, ssh, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    db = machines.machines[2]
    db.stop()
    opts, space = deploy(tmp_path, machines)
    rec = run(opts, space, "install", ssh)
    assert rec["status"] == "failed"
    s = api.summary(space, rec["id"])
    errors = {e["node"]: e for e in s["errors"]}
    assert set(errors) == {"db_0"}, s["errors"]
    msg = api.status(space, "tt", "d1")["nodes"]["db_0"]["error"]["output"]
    assert "\n" not in msg.strip()
    assert "db_0" in msg and "db_host_0" in msg and db.address in msg and "Connection refused" in msg
    # The other branches went on: app and web were created on their machines.
    assert any(short(o) == "create" for n, o, *x in ops_log(machines.machines[1]))
    db.start()
    rec = run(opts, space, "install", ssh, resume=True)
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])
    assert {n["state"] for n in api.status(space, "tt", "d1")["nodes"].values()} == {"started"}


def test_a_changed_host_key_is_refused_in_one_line(tmp_path, machines, ssh, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    web = machines.machines[0]
    machines.regenerate_host_key(web)              # known_hosts still has the old key
    opts, space = deploy(tmp_path, machines)
    rec = run(opts, space, "install", ssh)
    assert rec["status"] == "failed"
    err = api.status(space, "tt", "d1")["nodes"]["web_0"]["error"]["output"].strip()
    assert "\n" not in err and "host key mismatch" in err and web.address in err
    assert not ops_log(web)


def test_trust_on_first_use_keeps_keys_in_the_space_then_checks_them(
        tmp_path, machines, inventory, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    tofu = SshOptions(inventory=inventory, known_hosts=str(empty), accept_new=True)
    strict = SshOptions(inventory=inventory, known_hosts=str(empty))
    opts, space = deploy(tmp_path, machines)
    rec = run(opts, space, "install", tofu)
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])
    lines = space.get(keys.known_hosts("tt", "d1")).value["lines"]
    for m in machines.machines:
        assert any(m.host_public_key in line for line in lines)
    assert empty.read_text() == ""         # the worker's own file is not written
    # Another worker, without trust on first use, now accepts these hosts from the Space alone.
    rec = run(opts, space, "uninstall", strict)
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])
    machines.regenerate_host_key(machines.machines[0])
    rec = run(opts, space, "install", tofu)
    assert rec["status"] == "failed"
    err = api.status(space, "tt", "d1")["nodes"]["web_0"]["error"]["output"]
    assert "host key mismatch" in err


def test_refused_authentication_names_the_host(tmp_path, machines, ssh, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    import subprocess
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    opts, space = deploy(tmp_path, machines, ssh_key=str(other))
    rec = run(opts, space, "install", ssh)
    assert rec["status"] == "failed"
    st = api.status(space, "tt", "d1")
    errs = {n: v["error"]["output"] for n, v in st["nodes"].items() if v.get("error")}
    assert set(errs) == {"web_0", "app_0", "db_0"}
    assert all("Permission denied" in e and "\n" not in e.strip() for e in errs.values())


def test_the_workers_inventory_overrides_the_models_address(tmp_path, machines, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    web = machines.machines[0]
    inv = tmp_path / "inv.ini"
    inv.write_text("[all:vars]\nansible_python_interpreter=/usr/bin/python3\n\n[all]\n"
                   "web_host_0 ansible_host=%s\napp_host_0\ndb_host_0\n" % web.address)
    # 192.0.2.1 (TEST-NET-1) is never contacted: the inventory says where web_host_0 is.
    opts, space = deploy(tmp_path, machines, web_address="192.0.2.1")
    ssh = SshOptions(inventory=str(inv), known_hosts=machines.known_hosts, connect_timeout=3)
    rec = run(opts, space, "install", ssh)
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])
    assert {n for n, *x in ops_log(web)} == {"web_0"}


def test_a_timeout_kills_the_remote_operation(tmp_path, machines, ssh, monkeypatch):
    """The local ssh is killed at the timeout; the bootstrap on the host sees its input close and
    kills the script's process group: nothing of the operation is left running there."""
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    m = machines.machines[0]
    folder = tmp_path / "hang"
    folder.mkdir()
    (folder / "hang.sh").write_text('echo $$ > "$WF_MACHINE_ROOT/pid"\nsleep 60 &\n'
                                    'echo $! >> "$WF_MACHINE_ROOT/pid"\nwait\n')
    (folder / "app.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_3\n"
        "topology_template:\n  inputs:\n    key: {type: string}\n    user: {type: string}\n"
        "  node_templates:\n"
        "    box:\n      type: tosca.nodes.Compute\n"
        "      attributes: {public_address: %s}\n"
        "      capabilities: {endpoint: {properties: {credential: {user: {get_input: user}, "
        "token_type: private_key, token: {get_input: key}}}}}\n"
        "    app:\n      type: tosca.nodes.SoftwareComponent\n      requirements: [{host: box}]\n"
        "      interfaces: {Standard: {create: {implementation: {primary: hang.sh, timeout: 2}}}}\n"
        % m.address)
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    api.upload_model(space, str(folder), "hang")
    api.create_instance(space, "hang", "i", inputs={"key": machines.client_key, "user": machines.user})
    rec = api.start_workflow(space, "install", "hang", "i")
    rec = api.run_with_local_workers(opts, space, rec["id"], 1, timeout=120, ssh_options=ssh)
    assert rec["status"] == "failed"
    with open(os.path.join(m.root, "pid")) as fh:
        pids = [int(x) for x in fh.read().split()]
    assert len(pids) == 2
    import time
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if _running(p)]
        time.sleep(0.1)
    assert not alive, "left running on the host: %s" % alive
