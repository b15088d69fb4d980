# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How to reach a Space: its options, their environment variables and their defaults, declared
once here.

Who reads them: ``wfctl`` takes its global options' defaults from ``SpaceOptions.from_env()``
(cli.py); the Ansible modules build a ``SpaceOptions`` from their parameters
(module_utils/connection.py, whose argument spec falls back to the same variables, documented in
the ``connection`` doc fragment); ``api.open_space`` opens one; and the backends fall back to the
same variables when a caller gives no value (``open_space``: ``WF_SPACE``; ``ConsulSpace``: the
``CONSUL_*`` ones), so a Space opened directly behaves as one opened through wfctl.

Plain standard library: the modules import this file even where the engine's own dependencies
(PyYAML, py-consul) are missing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, cast

# ---- environment variables -----------------------------------------------------------------------
ENV_BACKEND = "WF_BACKEND"                    # embedded or consul (wfctl --backend)
ENV_SPACE = "WF_SPACE"                        # the embedded Space file
ENV_PREFIX = "WF_PREFIX"                      # key prefix of the engine
ENV_CONSUL_ADDR = "CONSUL_HTTP_ADDR"          # Consul address: host:port or a URL
ENV_CONSUL_SSL = "CONSUL_HTTP_SSL"            # https for an address without a scheme
ENV_CONSUL_TOKEN = "CONSUL_HTTP_TOKEN"        # ACL token
ENV_CONSUL_SSL_VERIFY = "CONSUL_HTTP_SSL_VERIFY"  # false: do not verify Consul's certificate
ENV_CONSUL_CACERT = "CONSUL_CACERT"           # CA bundle for https
ENV_CONSUL_CLIENT_CERT = "CONSUL_CLIENT_CERT"  # client certificate (mutual TLS)
ENV_CONSUL_CLIENT_KEY = "CONSUL_CLIENT_KEY"   # its key
ENV_CONSUL_DATACENTER = "CONSUL_DATACENTER"   # wfctl --datacenter

# ---- defaults --------------------------------------------------------------------------------------
DEFAULT_BACKEND = "embedded"
DEFAULT_PATH = "wfspace.db"                   # embedded, without a path nor WF_SPACE
DEFAULT_PREFIX = "wf/"
DEFAULT_CONSUL_ADDR = "127.0.0.1:8500"        # ConsulSpace without a url nor CONSUL_HTTP_ADDR
DEFAULT_CONSUL_PORT = 8500                    # an http:// address without a port
DEFAULT_CONSUL_TLS_PORT = 8501                # an https:// address without a port
DEFAULT_RETRY_TOTAL = 60                      # seconds of retries of a Consul hiccup

# The words that turn a flag variable off (env_flag), as wfctl has always read them.
_FALSE_WORDS = ("0", "false", "no", "off")


def env_flag(name: str, default: bool, environ: Optional[Mapping[str, str]] = None) -> bool:
    """A yes/no environment variable: unset is ``default``; 0, false, no, off (any case) are
    False; anything else is True."""
    v = (os.environ if environ is None else environ).get(name)
    return default if v is None else v.lower() not in _FALSE_WORDS


def env_or(value: Any, name: str, default: Any = None) -> Any:
    """``value`` if given (not empty), else the environment variable ``name`` if not empty, else
    ``default``: how the backends complete what their caller left out."""
    return value or os.environ.get(name) or default


def embedded_path(path: Optional[str] = None) -> str:
    """The embedded Space file: ``path``, else $WF_SPACE, else ./wfspace.db."""
    return cast(str, env_or(path, ENV_SPACE, DEFAULT_PATH))


def https_by_default() -> bool:
    """A Consul address without a scheme is https when $CONSUL_HTTP_SSL says so (1, true, yes)."""
    return os.environ.get(ENV_CONSUL_SSL, "").lower() in ("1", "true", "yes")


@dataclass
class SpaceOptions:
    """How to reach the Space: the same options for wfctl, workers and modules.  A field left
    None falls back, when the Space opens, to its environment variable (above)."""

    backend: str = DEFAULT_BACKEND
    path: Optional[str] = None                # embedded file (env WF_SPACE)
    url: Optional[str] = None                 # Consul address (env CONSUL_HTTP_ADDR)
    token: Optional[str] = None               # env CONSUL_HTTP_TOKEN
    ca_file: Optional[str] = None             # env CONSUL_CACERT
    client_cert: Optional[str] = None         # env CONSUL_CLIENT_CERT
    client_key: Optional[str] = None          # env CONSUL_CLIENT_KEY
    verify: bool = True
    prefix: str = DEFAULT_PREFIX
    datacenter: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "SpaceOptions":
        """Every option from its environment variable: wfctl's defaults (each command-line
        option overrides its own)."""
        env = os.environ if environ is None else environ
        return cls(backend=env.get(ENV_BACKEND, DEFAULT_BACKEND),
                   path=env.get(ENV_SPACE),
                   url=env.get(ENV_CONSUL_ADDR),
                   token=env.get(ENV_CONSUL_TOKEN),
                   ca_file=env.get(ENV_CONSUL_CACERT) or None,
                   client_cert=env.get(ENV_CONSUL_CLIENT_CERT) or None,
                   client_key=env.get(ENV_CONSUL_CLIENT_KEY) or None,
                   verify=env_flag(ENV_CONSUL_SSL_VERIFY, True, env),
                   prefix=env.get(ENV_PREFIX, DEFAULT_PREFIX),
                   datacenter=env.get(ENV_CONSUL_DATACENTER))

    def embedded_path(self) -> str:
        """The embedded Space file these options open."""
        return embedded_path(self.path)

    def consul_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments of ``ConsulSpace`` (through ``space.open_space``)."""
        return dict(url=self.url, token=self.token, ca_file=self.ca_file,
                    client_cert=self.client_cert, client_key=self.client_key,
                    verify=self.verify, prefix=self.prefix, datacenter=self.datacenter,
                    **self.extra)
