"""TLS errors against a real Consul agent with TLS (issue 18 item 6): one server of its own, on
127.0.0.31 with its own ports (never the shared test cluster), https with ``verify_incoming_https``
and certificates made by tests/tls_pki.py.  Each misconfiguration fails at once with one line naming
the file or the mismatch; the retry budget is 60 s, and a message of the retry path ("unavailable
after N attempts") would mean it was treated as transient.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from consul_cluster import ConsulCluster
from tls_pki import make_pki
from wfengine.errors import SpaceError
from wfengine.space.consul import ConsulSpace

ADDRESS = "127.0.0.31"
PORTS = {"server": 28300, "serf_lan": 28301, "serf_wan": 28302, "http": 28500, "https": 28501}


@pytest.fixture(scope="module")
def tls_agent(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"), server_hosts=(ADDRESS,))
    cluster = ConsulCluster(str(tmp_path_factory.mktemp("consul-tls")), addresses=(ADDRESS,), ports=PORTS,
                            tls={"ca_file": pki["ca"], "cert_file": pki["server"], "key_file": pki["server"],
                                 "verify_incoming_https": True})
    cluster.start(timeout=60)
    try:
        yield cluster, pki
    finally:
        cluster.stop()


def _refused(space) -> str:
    with pytest.raises(SpaceError) as info:
        space.get("k")
    text = str(info.value)
    assert "\n" not in text and "unavailable after" not in text, text
    return text


def test_right_ca_and_client_certificate(tls_agent):
    cluster, pki = tls_agent
    space = ConsulSpace(url=cluster.servers[0].https_url, ca_file=pki["ca"], client_cert=pki["client_cert"],
                        client_key=pki["client_key"], prefix="limits-tls/", retry_total=60)
    space.put("k", {"v": 1})
    assert space.get("k").value == {"v": 1}
    space.delete_tree("")


def test_wrong_ca(tls_agent):
    cluster, pki = tls_agent
    text = _refused(ConsulSpace(url=cluster.servers[0].https_url, ca_file=pki["other_ca"], retry_total=60,
                                client_cert=pki["client_cert"], client_key=pki["client_key"]))
    assert "not trusted by the CA file %s" % pki["other_ca"] in text


def test_no_client_certificate(tls_agent):
    cluster, pki = tls_agent
    text = _refused(ConsulSpace(url=cluster.servers[0].https_url, ca_file=pki["ca"], retry_total=60))
    assert "requires a client certificate" in text


def test_client_certificate_of_another_ca(tls_agent):
    cluster, pki = tls_agent
    text = _refused(ConsulSpace(url=cluster.servers[0].https_url, ca_file=pki["ca"], retry_total=60,
                                client_cert=pki["rogue_cert"], client_key=pki["rogue_key"]))
    assert "refused the client certificate %s" % pki["rogue_cert"] in text


def test_https_to_the_http_port(tls_agent):
    cluster, pki = tls_agent
    text = _refused(ConsulSpace(url="https://%s:%d" % (ADDRESS, PORTS["http"]), ca_file=pki["ca"], retry_total=60))
    assert "does not speak TLS" in text


def test_wfctl_one_line(tls_agent, tmp_path):
    cluster, pki = tls_agent
    r = subprocess.run([sys.executable, "-m", "wfengine.cli", "--backend", "consul", "--consul-url",
                        cluster.servers[0].https_url, "--ca-file", pki["other_ca"], "status", "m", "i"],
                       capture_output=True, text=True, timeout=60, check=False, cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "other-ca.pem" in r.stderr, r
