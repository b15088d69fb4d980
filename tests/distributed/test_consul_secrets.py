"""Secrets on the shared Consul test cluster (issue 18 item 1): a real ``wfctl worker`` daemon,
configured with the secrets' environment and ``--vault-password-file``, runs the install of the
secrets model (tests/secret_models.py: every ``get_secret`` source, a sensitive input given as a
reference); the operation proves it received each value (sha256), and neither ``consul kv
export`` of the test prefix, nor the worker's log files, nor any ``wfctl`` output holds one,
while ``********`` shows where the operation echoed them."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from wfengine import api

from consul_cluster import consul_binary
from secret_models import assert_clean, assert_received, prepare

pytestmark = pytest.mark.consul

WFCTL = [sys.executable, "-m", "wfengine.cli"]


def test_secrets_on_consul_never_reach_the_kv_store(consul_cluster, consul_prefix, tmp_path):
    secrets, folder, out, env = prepare(tmp_path)
    url = consul_cluster.urls[0]
    base = WFCTL + ["--backend", "consul", "--consul-url", url, "--prefix", consul_prefix]
    # The deployer's commands run without the secrets in their environment: only the worker has them.
    client_env = {k: v for k, v in os.environ.items() if k not in env}

    def wfctl(*argv: str) -> str:
        p = subprocess.run(base + list(argv), capture_output=True, text=True, env=client_env, check=False,
                           timeout=300)
        assert p.returncode == 0, (argv, p.stdout, p.stderr)
        return p.stdout + p.stderr

    worker_env = dict(os.environ, **{k: v for k, v in env.items() if k != "WF_VAULT_PASSWORD_FILE"})
    log_dir = tmp_path / "worker-logs"
    err = open(tmp_path / "worker.err", "w")
    worker = subprocess.Popen(base + ["worker", "--id", "secret-w", "--log-dir", str(log_dir),
                                      "--cache-dir", str(tmp_path / "cache"),
                                      "--vault-password-file", env["WF_VAULT_PASSWORD_FILE"]],
                              stdout=subprocess.DEVNULL, stderr=err, env=worker_env)
    try:
        wfctl("model", str(folder), "m")
        wfctl("instantiate", "m", "i", "--input", "out_dir=%s" % out,
              "--input", 'db_password={"get_secret": ["env", "WF_TEST_INPUT_SECRET"]}')
        summary = json.loads(wfctl("workflow", "install", "m", "i", "--wait", "--timeout", "240", "--json"))
        assert summary["status"] == "succeeded", summary
        assert_received(out, secrets)

        shown = {}
        for argv in (["status", "m", "i"], ["status", "m", "i", "--json"], ["logs", "m", "i"],
                     ["logs", "m", "i", "--json"], ["trace", "m", "i", "--json"], ["runs", "m", "i", "--json"]):
            text = wfctl(*argv)
            assert_clean(text.encode(), secrets, "wfctl " + " ".join(argv))
            shown[" ".join(argv)] = text
        assert "stdout FROM_ENV=********" in shown["logs m i"]
        assert json.loads(shown["status m i --json"])["outputs"]["pw"] == {"value": "********"}

        export = subprocess.run([consul_binary(), "kv", "export", "-http-addr=%s" % url, consul_prefix],
                                capture_output=True, check=False, timeout=60)
        assert export.returncode == 0, export.stderr
        entries = json.loads(export.stdout)
        assert entries and all(e["key"].startswith(consul_prefix) for e in entries)
        # Values are base64 in the export: decode each before looking.
        blob = b"\n".join(e["key"].encode() + b"=" + base64.b64decode(e["value"] or "") for e in entries)
        assert_clean(blob, secrets, "consul kv export %s" % consul_prefix)
        assert b"********" in blob          # the masked output tail is stored
        for p in [p for p in tmp_path.rglob("*") if p.is_file() and ("worker-logs" in p.parts or "cache" in p.parts)]:
            assert_clean(p.read_bytes(), secrets, str(p))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        err.close()
        space = api.open_space(api.SpaceOptions(backend="consul", url=url, prefix=consul_prefix))
        try:
            space.delete_tree("")
        finally:
            space.close()
