"""Consul ACLs: refusals are reported as such, a worker lacking a permission exits, and the
policy roles/consul_cluster gives the engine is sufficient and minimal (issue 17, point 4).

These tests start their OWN 3-server cluster with ACLs on (default policy deny) on 127.0.0.31-33,
ports 203xx/20500, and stop it at the end: the shared test cluster has no ACLs."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Dict, List, Optional

import pytest
import yaml

from wfengine import api
from wfengine.errors import PermissionDenied
from wfengine.space.consul import ConsulSpace

from consul_cluster import ROOT, ConsulCluster
from engine_helpers import EXAMPLE

WFCTL = [sys.executable, "-m", "wfengine.cli"]
MASTER = "c0ffee00-0000-4000-a000-000000000017"
ACL_YML = os.path.join(ROOT, "roles", "consul_cluster", "tasks", "acl.yml")
# Every folder the engine writes during an upload, an instance and a run of the seed example
# (keys.py); logs/ too when an operation prints something, lib/ with ``wfctl library``.
FOLDERS = ("models", "inst", "runs", "q", "facts", "trace")


def role_policy(prefix: str) -> str:
    """The rules of the wf-engine policy exactly as roles/consul_cluster creates it."""
    with open(ACL_YML) as fh:
        tasks = yaml.safe_load(fh)
    for task in tasks:
        for policy in (task.get("vars") or {}).get("_policies") or []:
            if policy["name"] == "wf-engine":
                return policy["rules"].replace("{{ consul_cluster_acl_wf_prefix }}", prefix)
    raise AssertionError("no wf-engine policy in %s" % ACL_YML)


@pytest.fixture(scope="module")
def acl_cluster():
    cluster = ConsulCluster(os.path.join(ROOT, ".cache", "acl-consul-uploadacl"),
                            addresses=("127.0.0.31", "127.0.0.32", "127.0.0.33"),
                            ports={"server": 20300, "serf_lan": 20301, "serf_wan": 20302, "http": 20500},
                            acl_master_token=MASTER)
    cluster.stop()
    cluster.start()
    deadline = time.monotonic() + 60
    while True:     # the ACL system answers a little after the leader is elected
        try:
            _acl(cluster, "GET", "/v1/acl/token/self")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        yield cluster
    finally:
        cluster.stop()


def _acl(cluster, method: str, path: str, body: Optional[Dict] = None) -> Dict:
    req = urllib.request.Request(cluster.urls[0] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-Consul-Token": MASTER})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode() or "null")


def token_with(cluster, rules: str) -> str:
    name = "t-%s" % uuid.uuid4().hex[:8]
    _acl(cluster, "PUT", "/v1/acl/policy", {"Name": name, "Rules": rules})
    return _acl(cluster, "PUT", "/v1/acl/token", {"Policies": [{"Name": name}]})["SecretID"]


def without_rule(rules: str, pattern: str) -> str:
    kept = [line for line in rules.splitlines() if not re.search(pattern, line)]
    assert len(kept) == len(rules.splitlines()) - 1, (pattern, rules)
    return "\n".join(kept) + "\n"


class Scenario:
    """Upload, instantiate and install with ``wfctl`` (manager token) and one ``wfctl worker``
    (worker token), each a real process; ``outcome`` is "succeeded" or the first error line."""

    def __init__(self, cluster, tmp_path, prefix: str) -> None:
        self.cluster = cluster
        self.tmp_path = tmp_path
        self.prefix = prefix
        self.worker_exit: Optional[float] = None

    def wfctl(self, token: str, *args: str) -> List[str]:
        return WFCTL + ["--backend", "consul", "--consul-url", self.cluster.urls[0], "--prefix", self.prefix,
                        "--token", token] + list(args)

    def run(self, manager: str, worker: str, deadline: float = 60.0) -> str:
        env = dict(os.environ)
        for cmd in (["model", str(EXAMPLE), "m"], ["instantiate", "m", "i"]):
            p = subprocess.run(self.wfctl(manager, *cmd), check=False, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, timeout=60)
            if p.returncode:
                assert p.returncode == 2, p.stderr
                return p.stderr.strip().splitlines()[-1]
        err = open(self.tmp_path / "worker.err", "w+")
        w = subprocess.Popen(self.wfctl(worker, "worker", "--id", "w0", "--ttl", "10"),
                             stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            started = time.monotonic()
            p = subprocess.run(self.wfctl(manager, "workflow", "install", "m", "i"), check=False,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
            if p.returncode:
                assert p.returncode == 2, p.stderr
                return p.stderr.strip().splitlines()[-1]
            space = ConsulSpace(url=self.cluster.urls[0], token=MASTER, prefix=self.prefix)
            try:
                while True:
                    rec = api.last_run(space, "m", "i")
                    if rec is not None and rec["status"] != "running":
                        return rec["status"]
                    if w.poll() is not None:
                        self.worker_exit = time.monotonic() - started
                        assert w.returncode == 2
                        err.seek(0)
                        lines = [ln for ln in err.read().splitlines() if ln.startswith("wfctl: ")]
                        assert lines, "worker exited %d without its line" % w.returncode
                        return lines[-1]
                    assert time.monotonic() - started < deadline, "neither finished nor exited"
                    time.sleep(0.1)
            finally:
                space.close()
        finally:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=30)


@pytest.fixture
def scenario(acl_cluster, tmp_path):
    prefix = "wf%s/" % uuid.uuid4().hex[:8]
    yield Scenario(acl_cluster, tmp_path, prefix)
    space = ConsulSpace(url=acl_cluster.urls[0], token=MASTER, prefix=prefix)
    try:
        space.delete_tree("")
    finally:
        space.close()


def test_the_roles_policy_is_sufficient(scenario):
    """With exactly the wf-engine policy of roles/consul_cluster (for workers and wfctl alike),
    the seed example installs to the end."""
    token = token_with(scenario.cluster, role_policy(scenario.prefix))
    assert scenario.run(token, token) == "succeeded"
    space = ConsulSpace(url=scenario.cluster.urls[0], token=MASTER, prefix=scenario.prefix)
    try:
        written = {k.split("/", 1)[0] for k in space.keys("")}
    finally:
        space.close()
    # What stays after the run (q/ holds the run's queue while it runs, then is emptied).
    assert written == set(FOLDERS) - {"q"}, written
    # The policy has these two rules and no other (each is shown needed below).
    rules = [ln.split(" {")[0] for ln in role_policy(scenario.prefix).splitlines() if ln.strip()]
    assert rules == ['key_prefix "%s"' % scenario.prefix, 'session_prefix ""'], rules


@pytest.mark.parametrize("folder", FOLDERS)
def test_write_on_each_engine_folder_is_needed(scenario, folder):
    """The policy's one key rule (write on the engine's prefix) is not wider than the engine needs:
    write on every folder but one (read on all) breaks the run, with the refusal named."""
    p = scenario.prefix
    rules = 'key_prefix "%s" { policy = "read" }\nsession_prefix "" { policy = "write" }\n' % p
    rules += "".join('key_prefix "%s%s/" { policy = "write" }\n' % (p, f) for f in FOLDERS if f != folder)
    token = token_with(scenario.cluster, rules)
    line = scenario.run(token, token)
    assert re.match(r"wfctl: permission denied on %s%s/\S* \(token lacks write on %s%s/\)$"
                    % (p, folder, p, folder), line), line
    if scenario.worker_exit is not None:
        assert scenario.worker_exit < 10.0


def test_without_the_session_rule_the_worker_exits_with_the_line(scenario):
    """Rule ``session_prefix "" write``: a worker's session (its locks, its registration)."""
    token = token_with(scenario.cluster, without_rule(role_policy(scenario.prefix), r"^session_prefix"))
    manager = token_with(scenario.cluster, role_policy(scenario.prefix))
    line = scenario.run(manager, token)
    assert line.startswith("wfctl: permission denied on session wf-worker-w0 (token lacks write on session_prefix"), line


def test_without_the_key_rule_nothing_is_written(scenario):
    """Rule ``key_prefix "<prefix>" write``: everything the engine stores."""
    token = token_with(scenario.cluster, without_rule(role_policy(scenario.prefix), r"^key_prefix"))
    line = scenario.run(token, token)
    assert line.startswith("wfctl: permission denied on %s" % scenario.prefix), line


def test_worker_without_write_on_facts_exits_within_10_s(scenario):
    """Issue 17: a worker whose token cannot write facts/ looped (about 5,000 Raft writes in
    40 s).  Now it exits, exit code 2, with the line, within 10 s of the run's start."""
    p = scenario.prefix
    manager = token_with(scenario.cluster, role_policy(p))
    rules = 'key_prefix "%s" { policy = "write" }\nkey_prefix "%sfacts/" { policy = "read" }\n' % (p, p)
    rules += 'session_prefix "" { policy = "write" }\n'
    line = scenario.run(manager, token_with(scenario.cluster, rules))
    assert re.match(r"wfctl: permission denied on %sfacts/\S+ \(token lacks write on %sfacts/\)$" % (p, p), line), line
    assert scenario.worker_exit is not None and scenario.worker_exit < 10.0
    print("worker without write on facts/ exited %.2f s after the run started" % scenario.worker_exit)


def test_worker_with_read_only_runs_says_so_and_exits(scenario):
    """A read-only runs/ must not leave the run silently never finalized: the worker that ends
    it is refused and exits with the line."""
    p = scenario.prefix
    manager = token_with(scenario.cluster, role_policy(p))
    rules = 'key_prefix "%s" { policy = "write" }\nkey_prefix "%sruns/" { policy = "read" }\n' % (p, p)
    rules += 'session_prefix "" { policy = "write" }\n'
    line = scenario.run(manager, token_with(scenario.cluster, rules))
    assert re.match(r"wfctl: permission denied on %sruns/\S+ \(token lacks write on %sruns/\)$" % (p, p), line), line


def test_a_denied_transaction_is_not_a_conflict(acl_cluster):
    """Consul answers an ACL refusal inside a transaction with 409, like a failed check: the
    Space raises PermissionDenied naming the key, instead of returning ok=False."""
    prefix = "wf%s/" % uuid.uuid4().hex[:8]
    token = token_with(acl_cluster, 'key_prefix "%s" { policy = "write" }\nkey_prefix "%sfacts/" '
                       '{ policy = "read" }\n' % (prefix, prefix))
    space = ConsulSpace(url=acl_cluster.urls[0], token=token, prefix=prefix)
    try:
        from wfengine.space.base import op_cas, op_set
        with pytest.raises(PermissionDenied) as info:
            space.txn([op_set("q/r1/r/n", 1), op_cas("facts/r1/n", {"x": 1}, 0)])
        assert str(info.value) == ("permission denied on %sfacts/r1/n (token lacks write on %sfacts/)"
                                   % (prefix, prefix))
        with pytest.raises(PermissionDenied, match=r"on %sfacts/r1/m \(token lacks write" % prefix):
            space.put("facts/r1/m", 1)
        assert space.get("q/r1/r/n") is None        # nothing of the refused transaction applied
    finally:
        space.close()
