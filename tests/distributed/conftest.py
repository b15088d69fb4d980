"""Real worker processes against the real 3-server Consul cluster of tests/conftest.py."""
from __future__ import annotations

import signal
import subprocess
import sys
from typing import List

import pytest

from wfengine import api

from engine_helpers import EXAMPLE

WFCTL = [sys.executable, "-m", "wfengine.cli"]


class Workers:
    """`wfctl worker` daemons, each talking to one server of the cluster (as to its local agent)."""

    def __init__(self, cluster, prefix: str, tmp_path):
        self.cluster = cluster
        self.prefix = prefix
        self.tmp_path = tmp_path
        self.procs: List[subprocess.Popen] = []
        self.exec_log = tmp_path / "execs.jsonl"

    def start(self, n: int, urls=None, ttl: float = 10.0) -> List[subprocess.Popen]:
        urls = urls or self.cluster.urls
        started = []
        for dummy in range(n):
            i = len(self.procs)
            url = urls[i % len(urls)]
            err = open(self.tmp_path / ("worker-%d.err" % i), "w")
            p = subprocess.Popen(WFCTL + ["--backend", "consul", "--consul-url", url, "--prefix", self.prefix,
                                          "worker", "--id", "w%d" % i, "--ttl", str(ttl), "--threads", "8",
                                          "--exec-log", str(self.exec_log)],
                                 stdout=subprocess.DEVNULL, stderr=err)
            p.wid = "w%d" % i
            self.procs.append(p)
            started.append(p)
        return started

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def workers(consul_cluster, consul_prefix, tmp_path):
    w = Workers(consul_cluster, consul_prefix, tmp_path)
    yield w
    w.stop_all()


@pytest.fixture
def manager(consul_cluster, consul_prefix):
    """An engine client (the manager's view) on the cluster, the example uploaded and instantiated."""
    opts = api.SpaceOptions(backend="consul", url=consul_cluster.urls[0], prefix=consul_prefix)
    space = api.open_space(opts)
    api.upload_model(space, str(EXAMPLE), "m")
    api.create_instance(space, "m", "i")
    yield opts, space
    try:
        space.delete_tree("")
    finally:
        space.close()
