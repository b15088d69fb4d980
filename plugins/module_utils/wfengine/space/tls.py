# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS problems of the Consul client, told apart from network hiccups.

A wrong CA, a missing or refused client certificate, a host name the certificate does not name,
https spoken to the http port: none of these heals by retrying, so they fail at once, in one line
naming the file or the mismatch (they were retried for a minute as if Consul were down).
"""
from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import warnings
from typing import Any, Dict, List, Optional, Set, cast

from ..errors import SpaceError

log = logging.getLogger(__name__)
_warned: Set[str] = set()
_warned_lock = threading.Lock()


def check_tls_files(**files: Optional[str]) -> None:
    """Each given CA / certificate / key file exists and is readable, before any connection."""
    for what, path in sorted(files.items()):
        if not path:
            continue
        if not os.path.isfile(path):
            raise SpaceError("%s %s: %s" % (what.replace("_", " "), path,
                                            "not a file" if os.path.exists(path) else "no such file"))
        if not os.access(path, os.R_OK):
            raise SpaceError("%s %s: not readable" % (what.replace("_", " "), path))


def no_verify_warning(url: str) -> None:
    """One warning line per process and address for ``--no-verify`` (urllib3 would print a
    multi-line InsecureRequestWarning at every request)."""
    import urllib3.exceptions
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    with _warned_lock:
        if url in _warned:
            return
        _warned.add(url)
    log.warning("%s: TLS certificate NOT verified (--no-verify / CONSUL_HTTP_SSL_VERIFY=false): "
                "anyone on the path can read and change the Space", url)


def _ssl_error(exc: BaseException) -> Optional[BaseException]:
    """The ssl.SSLError (or certificate error) inside a requests/urllib3 exception chain."""
    seen = set()
    todo: List[Any] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (ssl.SSLError, ssl.CertificateError)):
            return e
        todo.extend([e.__cause__, e.__context__, getattr(e, "reason", None)])
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return None


def tls_failure(exc: BaseException, files: Dict[str, Optional[str]]) -> Optional[str]:
    """One line saying what is wrong with TLS, or None when ``exc`` is not a TLS problem."""
    err = _ssl_error(exc)
    if err is None:
        return None
    reason = (getattr(err, "reason", None) or "").upper()
    text = getattr(err, "verify_message", None) or str(err)
    failure = (_server_certificate_failure(err, reason, text, files.get("ca_file"))
               or _protocol_failure(reason, text)
               or _client_side_failure(reason, text, files))
    if failure is not None:
        return failure
    if isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) or "UNEXPECTED_EOF" in reason:
        return None     # the connection dropped mid-handshake (a restarting agent): transient
    return "TLS error: %s" % text


def _server_certificate_failure(err: BaseException, reason: str, text: str,
                                ca: Optional[str]) -> Optional[str]:
    """The server's certificate is not trusted or does not name this host; else None."""
    if isinstance(err, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in reason:
        detail = getattr(err, "verify_message", None) or text
        if "hostname" in detail.lower() or "ip address mismatch" in detail.lower():
            return "TLS: the server's certificate does not name this host (%s)" % detail
        return "TLS: the server's certificate is not trusted by %s (%s)" % (
            "the CA file %s" % ca if ca else "the system CAs (give --ca-file / CONSUL_CACERT)", detail)
    if isinstance(err, ssl.CertificateError):
        return "TLS: the server's certificate does not name this host (%s)" % text
    return None


def _protocol_failure(reason: str, text: str) -> Optional[str]:
    """The port does not speak TLS; else None."""
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason or "UNKNOWN_PROTOCOL" in reason:
        return "TLS handshake failed: the port does not speak TLS (an http port? use http:// or the https port) (%s)" % text
    return None


def _client_side_failure(reason: str, text: str, files: Dict[str, Optional[str]]) -> Optional[str]:
    """A client certificate is required, refused, or cannot be used; else None."""
    cert = files.get("client_cert")
    if "CERTIFICATE_REQUIRED" in reason or (not cert and any(
            r in reason for r in ("HANDSHAKE_FAILURE", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN"))):
        # TLS 1.3 says "certificate required"; Consul (Go, TLS 1.2) answers "bad certificate".
        return "TLS: the server requires a client certificate (give --client-cert and --client-key) (%s)" % text
    if cert and any(r in reason for r in ("BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "HANDSHAKE_FAILURE")):
        return "TLS: the server refused the client certificate %s (%s)" % (cert, text)
    if any(r in reason for r in ("PEM_LIB", "NO_START_LINE", "KEY_VALUES_MISMATCH", "CA_MD_TOO_WEAK", "EE_KEY_TOO_SMALL")):
        shown = ", ".join("%s %s" % (k.replace("_", " "), v) for k, v in sorted(files.items()) if v)
        return "TLS: cannot use the certificate files (%s): %s" % (shown or "none given", text)
    return None


def is_tls_eof(exc: BaseException) -> bool:
    """The connection ended inside TLS: a dropped connection, or (TLS 1.3) the server closing
    after refusing the client certificate, the alert lost in the race with the request."""
    err = _ssl_error(exc)
    return err is not None and (isinstance(err, ssl.SSLEOFError)
                                or "UNEXPECTED_EOF" in (getattr(err, "reason", None) or "").upper())


def probe_client_auth(host: str, port: int, files: Dict[str, Optional[str]], timeout: float) -> Optional[str]:
    """After a TLS EOF: one handshake and request of our own, reading the answer, to learn whether
    the server refuses the client certificate (then the alert arrives before the close).  The
    server's certificate is not judged here (the real request does that): only the client's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        if files.get("client_cert"):
            ctx.load_cert_chain(cast(str, files["client_cert"]), files.get("client_key") or None)
        name = host.strip("[]")
        with socket.create_connection((name, port), timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as conn:
                conn.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: consul\r\nConnection: close\r\n\r\n")
                conn.recv(1)
    except ssl.SSLError as exc:
        reason = (exc.reason or "").upper()
        if any(r in reason for r in ("CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE",
                                     "CERTIFICATE_UNKNOWN", "HANDSHAKE_FAILURE", "PEM_LIB")):
            return tls_failure(exc, files)
    except OSError:
        pass
    return None
