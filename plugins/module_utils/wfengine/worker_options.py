# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A worker's options, declared once: for each, its default, its ``wfctl worker`` flag, its
environment variable, its help text and the check of a text value (issue 22).

Who reads them: ``wfctl worker`` builds its arguments from ``WorkerOptions.arguments()``
(cli_parser.py) and a ``WorkerOptions`` from what it parsed (``from_args``, cli_worker.py);
``Worker`` takes one (worker.py), and so do the workers a client runs in its own process
(``run_workers``, api.py); ``from_env()`` reads every variable, as SpaceOptions.from_env does.
The wf_worker role renders the same options on the worker's command line (its defaults are
checked against these by tests/unit/roles/test_wf_worker_options.py).

The remote-host and secret options (``--inventory``, ``--known-hosts``, ``--ssh-*``,
``--vault-password-file``) are not here: ``wfctl workflow``, ``update`` and ``wait`` share them
(cli_parser.py).  The checks are cli_types.py's, so a bad value from the environment is refused
by ``wfctl worker`` as a bad argument, as it always was, and by ``from_env`` in one line naming
the variable.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import cli_types as ct
from .errors import WfError

# ---- environment variables -----------------------------------------------------------------------
ENV_THREADS = "WF_WORKER_THREADS"
ENV_TTL = "WF_WORKER_TTL"
ENV_BATCH = "WF_WORKER_BATCH"
ENV_LANES = "WF_WORKER_LANES"
ENV_STEAL_AFTER = "WF_WORKER_STEAL_AFTER"
ENV_METRICS = "WF_WORKER_METRICS"
ENV_EXEC_LOG = "WF_EXEC_LOG"
ENV_LOG_DIR = "WF_LOG_DIR"
ENV_MODEL_CACHE = "WF_MODEL_CACHE"
ENV_STATE_DIR = "WF_WORKER_STATE_DIR"
ENV_WAKE = "WF_WORKER_WAKE"
ENV_SERVES = "WF_WORKER_SERVES"          # comma-separated

SERVED_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def served_name(text: str) -> str:
    """A host a worker serves: a node instance name or an address."""
    if not SERVED_NAME_RE.match(text):
        raise argparse.ArgumentTypeError("%r is not a node instance name or an address" % text)
    return text


def _on_off(value: Optional[str]) -> Optional[bool]:
    return None if value is None else value == "on"


@dataclass(frozen=True)
class Opt:
    """How one option is given: its flag (None: not on the command line), its environment
    variable, its help, the check of a text value (raises argparse.ArgumentTypeError), whether
    an empty variable counts as unset, whether the variable is a comma-separated list, the other
    keywords of ``add_argument`` and how a parsed argument becomes the option's value."""

    flag: Optional[str] = None
    env: Optional[str] = None
    help: Optional[str] = None
    parse: Optional[Callable[[str], Any]] = None
    blank_is_unset: bool = False
    listed: bool = False
    keywords: Tuple[Tuple[str, Any], ...] = ()
    from_cli: Optional[Callable[[Any], Any]] = None

    @property
    def dest(self) -> Optional[str]:
        """The attribute of the parsed arguments."""
        return None if self.flag is None else self.flag.lstrip("-").replace("-", "_")


def _option(default: Any = MISSING, factory: Any = MISSING, **how: Any) -> Any:
    # Called only in WorkerOptions' body, as field() itself would be (pylint sees the helper).
    return field(  # pylint: disable=invalid-field-call
        default=default, default_factory=factory, metadata={"opt": Opt(**how)})


def _opt(f: "Field[Any]") -> Opt:
    o: Opt = f.metadata["opt"]
    return o


@dataclass
class WorkerOptions:
    """What a worker is told: the same options for ``wfctl worker``, its role and the workers a
    client runs in its own process."""

    threads: int = _option(
        8, flag="--threads", env=ENV_THREADS, parse=ct.int_at_least(1),
        help="operations with side effects run at once (batch steps have their own threads: 16 "
             "on Consul, 1 on the embedded Space)")
    ttl: float = _option(
        15.0, flag="--ttl", env=ENV_TTL, parse=ct.seconds(),
        help="session TTL in seconds: a dead worker's steps are retaken after it")
    batch: int = _option(
        16, flag="--batch", env=ENV_BATCH, parse=ct.int_at_least(1, 16),
        help="ready nodes claimed and committed together (1-16; see docs/architecture.md)")
    lanes: int = _option(                       # 0: the Space's default (Space.batch_lanes)
        0, flag="--lanes", env=ENV_LANES, parse=ct.int_at_least(0),
        help="batch steps run at once (0: the Space's default, 16 on Consul, 1 embedded)")
    steal_after: float = _option(
        1.0, flag="--steal-after", env=ENV_STEAL_AFTER, parse=ct.seconds(allow_zero=True),
        help="seconds before taking a ready node, or ending a quiet run, that another live "
             "worker owns")
    worker_id: Optional[str] = _option(         # None: host-pid-random
        None, flag="--id", help="worker id shown in the trace (default host-pid-random)")
    metrics: Optional[str] = _option(
        None, flag="--metrics", env=ENV_METRICS, blank_is_unset=True, parse=ct.host_port,
        keywords=(("metavar", "HOST:PORT"),),
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs prometheus_client; "
             "env %s)" % ENV_METRICS)
    exec_log: Optional[str] = _option(
        None, flag="--exec-log", env=ENV_EXEC_LOG,
        help="append one JSON line per executed operation to this file")
    log_dir: Optional[str] = _option(
        None, flag="--log-dir", env=ENV_LOG_DIR,
        help="full logs of the operations run here (default ~/.cache/wfengine/logs)")
    cache_dir: Optional[str] = _option(
        None, flag="--cache-dir", env=ENV_MODEL_CACHE,
        help="where models' files are materialized (default ~/.cache/wfengine/models)")
    state_dir: Optional[str] = _option(         # None: no journal (wfctl worker: its default)
        None, flag="--state-dir", env=ENV_STATE_DIR,
        help="where the worker journals results it could not commit yet (a Space outage), "
             "replayed at its next start (default ~/.cache/wfengine/state/<id>, id 'worker' "
             "without --id)")
    op_timeout: Optional[float] = _option(      # None: no timeout
        None, flag="--op-timeout", parse=ct.seconds(),
        help="default timeout of an operation, seconds (an implementation's timeout wins)")
    wake: Optional[str] = _option(
        None, flag="--wake", env=ENV_WAKE, blank_is_unset=True, parse=ct.host_port,
        keywords=(("metavar", "HOST:PORT"),),
        help="also listen for POST /wake here (handler of the Consul watch installed by the "
             "wf_worker role); the worker's own blocking query is the main trigger")
    serves: List[str] = _option(
        factory=list, flag="--serves", env=ENV_SERVES, listed=True, parse=served_name,
        keywords=(("action", "append"), ("metavar", "NAME")),
        help="a host this worker runs on (node instance name or address; repeatable; env %s, "
             "comma-separated): the operations of that root host run here, locally, and never "
             "on another worker" % ENV_SERVES)
    playbook_forkserver: Optional[bool] = _option(   # None: on, unless WF_PLAYBOOK_FORKSERVER
        None, flag="--playbook-forkserver", keywords=(("choices", ["on", "off"]),),
        from_cli=_on_off,
        help="run playbooks from an Ansible imported once, forked per operation (default on; "
             "env WF_PLAYBOOK_FORKSERVER=0 turns it off; docs/operations.md)")
    # The longest wait of the blocking query on the queue before the worker lists it again
    # (seconds; the workers a client runs in its own process use 1).
    poll: float = _option(30.0)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "WorkerOptions":
        """Every option that has an environment variable from it, checked as ``wfctl worker``
        checks its arguments; the others keep their defaults.  A bad value raises a WfError of
        one line naming the variable."""
        env = os.environ if environ is None else environ
        values: Dict[str, Any] = {}
        for f in fields(cls):
            o = _opt(f)
            raw = env.get(o.env) if o.env else None
            if raw is None or (o.blank_is_unset and not raw):
                continue
            try:
                if o.listed:
                    values[f.name] = [_parsed(o, item) for item in raw.split(",") if item]
                else:
                    values[f.name] = _parsed(o, raw)
            except argparse.ArgumentTypeError as exc:
                raise WfError("%s: %s" % (o.env, exc)) from None
        return cls(**values)

    @classmethod
    def arguments(cls, environ: Optional[Mapping[str, str]] = None
                  ) -> List[Tuple[str, Dict[str, Any]]]:
        """The arguments of ``wfctl worker``: (flag, keywords of ``add_argument``), in the order
        of its help.  A variable that is set is the default as text: argparse checks it as it
        checks the argument (a list's items excepted, as ever)."""
        env = os.environ if environ is None else environ
        out: List[Tuple[str, Dict[str, Any]]] = []
        for f in fields(cls):
            o = _opt(f)
            if o.flag is None:
                continue
            kwargs: Dict[str, Any] = dict(o.keywords)
            if o.parse is not None:
                kwargs["type"] = o.parse
            kwargs["default"] = _cli_default(f, o, env)
            if o.help is not None:
                kwargs["help"] = o.help
            out.append((o.flag, kwargs))
        return out

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "WorkerOptions":
        """The options ``wfctl worker`` was given (parsed by ``arguments()``)."""
        values: Dict[str, Any] = {}
        for f in fields(cls):
            o = _opt(f)
            if o.dest is not None:
                value = getattr(args, o.dest)
                values[f.name] = value if o.from_cli is None else o.from_cli(value)
        return cls(**values)


def _parsed(o: Opt, text: str) -> Any:
    return text if o.parse is None else o.parse(text)


def _cli_default(f: "Field[Any]", o: Opt, env: Mapping[str, str]) -> Any:
    raw = env.get(o.env) if o.env else None
    if raw is None or (o.blank_is_unset and not raw):
        return f.default_factory() if f.default_factory is not MISSING else f.default
    if o.listed:
        return [item for item in raw.split(",") if item]
    return raw
