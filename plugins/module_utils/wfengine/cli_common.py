# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every ``wfctl`` command shares once its arguments are parsed: the Space and SSH options
built from them, ``--input NAME=VALUE`` pairs, JSON output and the one-line notices on stderr.

Kept apart from the commands (cli_model.py, cli_run.py, cli_show.py, cli_worker.py) so that each
of them imports these helpers instead of one another."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional

from . import api
from .errors import WfError
from .worker_options import WorkerOptions

if TYPE_CHECKING:
    from .operation.ssh import SshOptions


def space_options(args: argparse.Namespace) -> api.SpaceOptions:
    """The Space the global options (before the command) name."""
    return api.SpaceOptions(backend=args.backend, path=args.space, url=args.consul_url,
                            token=args.token, ca_file=args.ca_file, client_cert=args.client_cert,
                            client_key=args.client_key, verify=not args.no_verify,
                            prefix=args.prefix, datacenter=args.datacenter)


def ssh_options(args: argparse.Namespace, serves: Optional[List[str]] = None) -> SshOptions:
    """How operations run here reach remote hosts (the "remote hosts" options)."""
    from .operation.ssh import SshOptions
    return SshOptions(inventory=args.inventory, known_hosts=args.known_hosts,
                      accept_new=args.ssh_accept_new, connect_timeout=args.ssh_connect_timeout,
                      serves=tuple(serves or ()))


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def notice(text: str) -> None:
    """One line on stderr: what wfctl does on its own (continuing a run, waiting for one)."""
    print("wfctl: %s" % text, file=sys.stderr)


def _not_json(text: str) -> NoReturn:
    raise ValueError(text)


def inputs(pairs: List[str]) -> Dict[str, Any]:
    """``--input NAME=VALUE`` pairs: VALUE is JSON if it parses, else a string."""
    out: Dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise WfError("--input %r: expected NAME=VALUE" % pair)
        try:
            # NaN / Infinity are not JSON (the Space refuses them): such a value stays text.
            out[name] = json.loads(raw, parse_constant=_not_json)
        except ValueError:
            out[name] = raw
    return out


def worker_ttl() -> float:
    """The session TTL of the workers this process runs: WF_WORKER_TTL read and checked as
    ``wfctl worker`` reads it (its default and check are declared once, in WorkerOptions)."""
    return float(WorkerOptions.from_env().ttl)
