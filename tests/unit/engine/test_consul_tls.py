"""TLS errors of the Consul client fail at once, in one line naming the file or the mismatch.

The server is a local Python HTTPS server speaking just enough of Consul's KV API (a missing key is
HTTP 404), with a CA and certificates made here with ``cryptography``: the handshake, the CA and
client-certificate checks are OpenSSL's own, the same as with a TLS-enabled Consul agent.  Each
client is built with a 60 s retry budget: an error raised as transient would come back as
"Consul unavailable after N attempts", which every test asserts it is not.
"""
from __future__ import annotations

import http.server
import logging
import ssl
import threading
import warnings

import pytest

from wfengine.errors import SpaceError
from wfengine.space.consul import ConsulSpace

from tls_pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.hits += 1
        body = b""
        self.send_response(404)        # Consul: no such key
        self.send_header("Content-Length", "0")
        self.send_header("X-Consul-Index", "1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(certfile=None, client_ca=None):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        srv.hits = 0
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile)
            if client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(client_ca)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        servers.append(srv)
        return srv, srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _fails_at_once(space):
    with pytest.raises(SpaceError) as info:
        space.get("k")
    text = str(info.value)
    assert "\n" not in text
    assert "unavailable after" not in text, text
    return text


def test_trusted_server_answers(pki, serve):
    """The fixture itself: the right CA, a certificate naming 127.0.0.1, the key is missing."""
    srv, port = serve(pki["server"])
    space = ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["ca"], retry_total=60)
    assert space.get("k") is None
    assert srv.hits == 1


def test_wrong_ca_names_the_ca_file(pki, serve):
    dummy, port = serve(pki["server"])
    text = _fails_at_once(ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["other_ca"], retry_total=60))
    assert "not trusted by the CA file %s" % pki["other_ca"] in text


def test_certificate_for_another_host(pki, serve):
    dummy, port = serve(pki["elsewhere"])
    text = _fails_at_once(ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["ca"], retry_total=60))
    assert "does not name this host" in text and "127.0.0.1" in text


def test_https_to_the_http_port(pki, serve):
    dummy, port = serve()
    text = _fails_at_once(ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["ca"], retry_total=60))
    assert "does not speak TLS" in text


def test_missing_client_certificate(pki, serve):
    """verify_incoming on the server (Consul's ``tls.defaults.verify_incoming``), no client cert."""
    dummy, port = serve(pki["server"], client_ca=pki["ca"])
    text = _fails_at_once(ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["ca"], retry_total=60))
    assert "client certificate" in text


def test_client_certificate_of_another_ca(pki, serve):
    dummy, port = serve(pki["server"], client_ca=pki["ca"])
    text = _fails_at_once(ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["ca"], retry_total=60,
                                      client_cert=pki["rogue_cert"], client_key=pki["rogue_key"]))
    assert "refused the client certificate %s" % pki["rogue_cert"] in text


def test_client_certificate_accepted(pki, serve):
    srv, port = serve(pki["server"], client_ca=pki["ca"])
    space = ConsulSpace(url="https://127.0.0.1:%d" % port, ca_file=pki["ca"], retry_total=60,
                        client_cert=pki["client_cert"], client_key=pki["client_key"])
    assert space.get("k") is None
    assert srv.hits == 1


def test_missing_files_refused_before_connecting(pki, tmp_path):
    for kw in ({"ca_file": str(tmp_path / "nope.pem")}, {"client_cert": str(tmp_path / "nope.crt")},
               {"client_cert": pki["client_cert"], "client_key": str(tmp_path / "nope.key")}):
        with pytest.raises(SpaceError, match="no such file"):
            ConsulSpace(url="https://127.0.0.1:1", **kw)


def test_no_verify_warns_once(pki, serve, caplog):
    """--no-verify: one warning line for the address, not urllib3's warning at every request."""
    srv, port = serve(pki["server"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="wfengine"):
            for dummy in range(2):
                space = ConsulSpace(url="https://127.0.0.1:%d" % port, verify=False, retry_total=60)
                for dummy2 in range(3):
                    assert space.get("k") is None
    assert srv.hits == 6
    lines = [r.getMessage() for r in caplog.records if "NOT verified" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert not [w for w in seen if "Unverified HTTPS" in str(w.message)]
