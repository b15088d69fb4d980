# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Consul Space's HTTP transport: the address, the TLS settings, the connection pool, and
``_send``, which makes one request and tells a hiccup worth retrying (``_Transient``, see
consul_retry.py) from an answer.  The only file of the Consul Space that touches py-consul and
requests.

Transport.  py-consul (``import consul``) parses nothing here but gives the HTTP client: one
``requests`` session per Space (a small pool, see ``max_connections``), TLS settings, and timeouts
that grow with a blocking query's wait.  Every request goes through ``client.http.get/put`` with a
callback that returns the raw response, because the library's higher-level calls do not fit:
``Txn.put`` exists in py-consul 1.8 but sends neither the ACL token nor ``dc`` and turns the 409 of
a failed check into an exception string; and the library's callbacks turn every HTTP status into
exception text, which would hide what the retry policy needs (status code and body).
"""
from __future__ import annotations

import os
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

import consul
import requests
import requests.adapters
import urllib3.exceptions

from ..errors import SpaceError
from .consul_retry import _NOT_APPLIED, _PERMANENT_500, _Transient
from .options import DEFAULT_CONSUL_PORT, DEFAULT_CONSUL_TLS_PORT, https_by_default
from .tls import is_tls_eof, no_verify_warning, probe_client_auth, tls_failure


def _parse_url(url: str) -> Tuple[str, str, int]:
    """``host:port``, ``http://host[:port]`` or ``https://host[:port]`` -> (scheme, host, port)."""
    text = url.strip()
    if "://" not in text:
        ssl = https_by_default()
        text = ("https://" if ssl else "http://") + text
    try:
        parsed = urllib.parse.urlsplit(text)
    except ValueError as exc:       # 'http://[::1'
        raise SpaceError("consul url %r: %s" % (url, exc)) from None
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise SpaceError("consul url %r: scheme must be http or https" % url)
    try:
        port = parsed.port
    except ValueError:
        raise SpaceError("consul url %r: bad port" % url)
    host = parsed.hostname
    if not host:
        raise SpaceError("consul url %r: no host" % url)
    if ":" in host:
        host = "[%s]" % host  # IPv6 literal, as it must appear in a URL
    # Consul's conventional ports when none is given.
    return scheme, host, port or (DEFAULT_CONSUL_TLS_PORT if scheme == "https" else DEFAULT_CONSUL_PORT)


class ConsulHttp:
    """Mixin of ConsulSpace: its HTTP client and requests.  Uses the Space's ``url``,
    ``datacenter``, ``timeout``, ``_token`` and ``_closed``."""

    url: str
    datacenter: Optional[str]
    timeout: float
    _token: Optional[str]
    _closed: bool

    def _tls_settings(self, scheme: str, host: str, port: int, verify: bool,
                      ca_file: Optional[str], client_cert: Optional[str],
                      client_key: Optional[str]) -> Tuple[Any, Any]:
        """What requests is given as ``verify`` and ``cert``; notes what a TLS failure names."""
        self._tls_files = {"ca_file": ca_file if verify else None, "client_cert": client_cert,
                           "client_key": client_key}
        self._tls_address = (host, port) if scheme == "https" else None
        if scheme == "https" and not verify:
            no_verify_warning("%s://%s:%d" % (scheme, host, port))
        tls_verify: Any = bool(verify)
        if tls_verify and ca_file:
            tls_verify = ca_file
        cert: Any = None
        if client_cert:
            cert = (client_cert, client_key) if client_key else client_cert
        return tls_verify, cert

    def _open_http(self, scheme: str, host: str, port: int, tls_verify: Any, cert: Any,
                   max_connections: int) -> None:
        """The py-consul client and its requests session, a pool of ``max_connections``."""
        # py-consul reads CONSUL_HTTP_TOKEN itself (over an explicit token): headers are built
        # here instead, from ``token`` as resolved above.
        self._client = consul.Consul(host=host, port=port, scheme=scheme, verify=tls_verify,
                                     cert=cert, dc=self.datacenter,
                                     connections_timeout=self.timeout)
        self._http = self._client.http
        adapter = requests.adapters.HTTPAdapter(pool_connections=1,
                                                pool_maxsize=max(1, int(max_connections)),
                                                max_retries=0)
        self._http.session.mount("http://", adapter)
        self._http.session.mount("https://", adapter)
        # What requests would look up in the environment on *every* request (proxies, netrc, CA
        # bundle: file system checks that took a tenth of a worker's CPU) is resolved once here;
        # a CA bundle path is only given for https (requests stats it at each request).
        session = self._http.session
        session.proxies = requests.utils.get_environ_proxies(self.url)
        if tls_verify is True and scheme == "https":
            self._http.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                                 or os.environ.get("CURL_CA_BUNDLE") or True)
        session.trust_env = False
        # Loopback and LAN: compressing every answer costs Consul and the worker CPU for nothing.
        session.headers["Accept-Encoding"] = "identity"

    def _headers(self) -> Dict[str, str]:
        return {"X-Consul-Token": self._token} if self._token else {}

    def _params(self, params: Optional[List[Tuple[str, Any]]]) -> List[Tuple[str, Any]]:
        params = list(params or [])
        if self.datacenter:
            params.append(("dc", self.datacenter))
        return params

    def _send(self, method: str, path: str, params: Optional[List[Tuple[str, Any]]] = None,
              data: Any = None) -> Any:
        """One HTTP request; returns py-consul's Response(code, headers, body) for any answer
        that is not transient, raises ``_Transient`` for the ones worth retrying."""
        if self._closed:
            raise SpaceError("consul space %s: closed" % self.url)
        raw: Callable[[Any], Any] = lambda response: response  # noqa: E731
        params = self._params(params)
        try:
            if method == "GET":
                resp = self._http.get(raw, path, params=params, headers=self._headers())
            else:
                resp = self._http.put(raw, path, params=params, headers=self._headers(),
                                      data=data if data is not None else "")
        except requests.exceptions.ConnectTimeout as exc:
            raise _Transient("%s: connect timeout (%s)" % (self.url, exc), False)
        except requests.exceptions.ConnectionError as exc:
            error = self._connection_error(exc)
            if isinstance(error, SpaceError):
                raise error from None
            raise error
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise _Transient("%s: %s" % (self.url, exc), True)
        self._raise_if_transient(resp)
        return resp

    def _connection_error(self, exc: requests.exceptions.ConnectionError) -> Exception:
        """What a connection error means: a TLS problem (final: ``SpaceError``), else a hiccup
        (``_Transient``), *maybe applied* unless the connection was never made."""
        tls = tls_failure(exc, self._tls_files)
        if tls is None and self._tls_address and is_tls_eof(exc):
            tls = probe_client_auth(self._tls_address[0], self._tls_address[1], self._tls_files, self.timeout)
        if tls is not None:     # a certificate or a handshake does not heal by retrying
            return SpaceError("%s: %s" % (self.url, tls))
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        sent = not isinstance(reason, urllib3.exceptions.NewConnectionError)
        return _Transient("%s: %s" % (self.url, reason or exc), sent)

    def _raise_if_transient(self, resp: Any) -> None:
        """Raise ``_Transient`` for an answer that is a hiccup (HTTP 429, 502-504, a 500 that is
        not a known permanent error), *not applied* when Consul says it refused the request."""
        code = resp.code
        if code == 429 or (code == 500 and _NOT_APPLIED.search(resp.body or "")):
            raise _Transient("%s: HTTP %d %s" % (self.url, code, (resp.body or "").strip()), False)
        if code in (502, 503, 504) or (code == 500 and not _PERMANENT_500.search(resp.body or "")):
            raise _Transient("%s: HTTP %d %s" % (self.url, code, (resp.body or "").strip()), True)
