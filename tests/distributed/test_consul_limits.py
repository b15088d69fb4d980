"""Consul's limits (64 operations per transaction, 512 KiB per value) with big fan-in/fan-out,
and the watch trigger of the seed (POST /wake)."""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections import Counter

import pytest

from wfengine import api

from distributed.conftest import WFCTL

pytestmark = pytest.mark.consul

FAN = 150

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    srv: {type: tosca.nodes.Compute}
    server:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: srv}]
    box: {type: tosca.nodes.Compute}
    client:
      type: tosca.nodes.SoftwareComponent
      capabilities: {scalable: {properties: {default_instances: %d}}}
      requirements:
        - host: box
        - api: {node: server, relationship: tosca.relationships.ConnectsTo}
""" % FAN


def test_a_node_with_hundreds_of_relationship_instances(consul_cluster, consul_prefix, workers, tmp_path):
    path = tmp_path / "fan.yaml"
    path.write_text(MODEL)
    space = api.open_space(api.SpaceOptions(backend="consul", url=consul_cluster.urls[0], prefix=consul_prefix))
    try:
        api.upload_model(space, str(path), "m")
        api.create_instance(space, "m", "i")
        workers.start(3)
        for wf, state in (("install", "started"), ("uninstall", "deleted")):
            rec = api.start_workflow(space, wf, "m", "i")
            done = api.wait_run(space, rec["id"], timeout=600)
            assert done["status"] == "succeeded", done
            st = api.status(space, "m", "i")["nodes"]
            assert Counter(n["state"] for n in st.values()) == {state: FAN + 3}
        trace = api.trace(space, "m", "i", workflow="install")
        ops = Counter(e["name"].rsplit(".", 1)[1] for e in trace if e["node"] == "server_0" and e["relationship"]
                      and e["relationship"]["type"] == "tosca.relationships.ConnectsTo")
        # the server runs its side of each of the 150 relationship instances, once each
        assert ops == {"pre_configure_target": FAN, "post_configure_target": FAN, "add_source": FAN}
    finally:
        space.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_watch_handler_wakes_a_worker(consul_cluster, consul_prefix, tmp_path, manager):
    opts, space = manager
    port = _free_port()
    p = subprocess.Popen(WFCTL + ["--backend", "consul", "--consul-url", consul_cluster.urls[0], "--prefix",
                                  consul_prefix, "worker", "--wake", "127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rec = api.start_workflow(space, "install", "m", "i")
        deadline = time.monotonic() + 30
        status = None
        while status is None and time.monotonic() < deadline:
            try:
                req = urllib.request.Request("http://127.0.0.1:%d/wake" % port, data=b"[]", method="POST")
                status = urllib.request.urlopen(req, timeout=5).status
            except OSError:
                time.sleep(0.05)
        assert status == 204
        assert api.wait_run(space, rec["id"], timeout=120)["status"] == "succeeded"
    finally:
        p.terminate()
        assert p.wait(timeout=30) == 0
