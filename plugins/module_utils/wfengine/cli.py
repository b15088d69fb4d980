# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl``: the manager commands (library, model, instantiate, workflow, status, trace) and the
worker daemon.  Errors are caught here, once, and printed as one line with exit code 2."""
from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from . import api
from . import cli_types as ct
from . import observe_cli
from .errors import WfError
from .instances import split_instance_id
from .space import options as so
from .space.options import env_flag as _env_bool


SERVED_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def _served_name(text: str) -> str:
    if not SERVED_NAME_RE.match(text):
        raise argparse.ArgumentTypeError("%r is not a node instance name or an address" % text)
    return text


def _add_ssh_options(s: argparse.ArgumentParser) -> None:
    """How operations reach remote hosts (docs/operations.md, "Where operations run")."""
    g = s.add_argument_group("remote hosts")
    g.add_argument("--inventory", default=os.environ.get("WF_SSH_INVENTORY"), metavar="FILE",
                   help="an Ansible inventory on this host that supplies or overrides the address, "
                        "user, port and key of remote hosts (matched by node instance name or "
                        "address; env WF_SSH_INVENTORY)")
    g.add_argument("--known-hosts", default=os.environ.get("WF_SSH_KNOWN_HOSTS"), metavar="FILE",
                   help="known_hosts file checked besides the deployment's keys kept in the Space "
                        "(default ~/.ssh/known_hosts; env WF_SSH_KNOWN_HOSTS)")
    g.add_argument("--ssh-accept-new", action="store_true",
                   default=_env_bool("WF_SSH_ACCEPT_NEW", False),
                   help="trust on first use: record a host key never seen before in the Space "
                        "(labs; a changed key is still refused; env WF_SSH_ACCEPT_NEW)")
    g.add_argument("--ssh-connect-timeout", type=ct.seconds(), default=10.0, metavar="SECONDS")


def _readable_file(text: str) -> str:
    if not os.path.isfile(text) or not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError("%s: not a readable file" % text)
    return os.path.abspath(text)


def _add_secret_options(s: argparse.ArgumentParser) -> None:
    """Where the operations run here read secrets (secrets.py, docs/operations.md "Secrets")."""
    g = s.add_argument_group("secrets")
    env = os.environ.get("WF_VAULT_PASSWORD_FILE")
    g.add_argument("--vault-password-file", type=_readable_file, default=env or None, metavar="FILE",
                   help="password of the ansible-vault files that {get_secret: [ansible_vault, FILE, KEY]} "
                        "reads on this worker (env WF_VAULT_PASSWORD_FILE)")


def ssh_options(args: argparse.Namespace, serves: Optional[List[str]] = None) -> Any:
    from .operation.ssh import SshOptions
    return SshOptions(inventory=args.inventory, known_hosts=args.known_hosts,
                      accept_new=args.ssh_accept_new, connect_timeout=args.ssh_connect_timeout,
                      serves=tuple(serves or ()))


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line, like every other wfctl error (the usage is one ``-h`` away)."""

    def error(self, message: str) -> Any:
        self.exit(2, "%s: error: %s (see %s -h)\n" % (self.prog, message.replace("\n", " "), self.prog))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wfctl", description="Drive the TOSCA declarative workflow engine.")
    g = p.add_argument_group("space (global options, before the command)")
    env = so.SpaceOptions.from_env()    # each option's default: its environment variable
    g.add_argument("--backend", choices=["embedded", "consul"], default=env.backend)
    g.add_argument("--space", default=env.path, help="embedded Space file (env %s)" % so.ENV_SPACE)
    g.add_argument("--consul-url", default=env.url, type=ct.consul_url,
                   help="Consul address, e.g. http://127.0.0.1:8500 (env %s)" % so.ENV_CONSUL_ADDR)
    g.add_argument("--token", default=env.token, help="ACL token (env %s)" % so.ENV_CONSUL_TOKEN)
    g.add_argument("--ca-file", default=env.ca_file, type=ct.readable_file,
                   help="CA bundle for https (env %s)" % so.ENV_CONSUL_CACERT)
    g.add_argument("--client-cert", default=env.client_cert, type=ct.readable_file)
    g.add_argument("--client-key", default=env.client_key, type=ct.readable_file)
    g.add_argument("--no-verify", action="store_true", default=not env.verify,
                   help="do not verify the server's TLS certificate")
    g.add_argument("--prefix", default=env.prefix,
                   help="key prefix: several engines can share one Consul (env %s)" % so.ENV_PREFIX)
    g.add_argument("--datacenter", default=env.datacenter)
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("library", help="upload a component library (types with workflows)")
    s.add_argument("file")
    s.add_argument("--name", help="library name (default: the file's name)")

    s = sub.add_parser("model", help="upload an application model")
    s.add_argument("file")
    s.add_argument("model")

    s = sub.add_parser("instantiate", help="create a deployment instance of a model")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                   help="a deployment input (VALUE is JSON if it parses, else a string); repeatable")

    s = sub.add_parser("workflow", help="run a workflow on an instance")
    s.add_argument("workflow")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--wait", action="store_true", help="wait for the end of the run, showing progress")
    s.add_argument("--timeout", type=ct.seconds(), default=None, help="seconds to wait at most")
    s.add_argument("--workers", type=ct.int_at_least(0), default=None,
                   help="run N workers in this process until the run ends (default 1 on the embedded "
                        "Space, 0 on Consul where workers are daemons)")
    s.add_argument("--json", action="store_true", help="print the run summary as JSON")
    s.add_argument("--quiet", "-q", action="store_true",
                   help="no progress while waiting (a bar on a terminal, else a line when it changes)")
    again = s.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the last failed (or canceled) run of this workflow from its failed steps "
                            "(install and uninstall do it by themselves)")
    again.add_argument("--force", action="store_true",
                       help="install / uninstall: run again even if the last run of it succeeded, and start "
                            "a new run instead of continuing a failed one")
    s.add_argument("--retries", type=ct.int_at_least(0), default=0,
                   help="run-wide default of retries for a failing operation (per-operation "
                        "max_retries wins when larger)")
    _add_ssh_options(s)
    _add_secret_options(s)

    s = sub.add_parser("plan", help="the operations and happens-before edges a run of WORKFLOW would "
                                    "perform; writes nothing")
    s.add_argument("workflow")
    s.add_argument("model")
    s.add_argument("instance")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="points and edges as JSON")
    fmt.add_argument("--dot", action="store_true", help="Graphviz text")
    fmt.add_argument("--mermaid", action="store_true", help="Mermaid flowchart text")

    for name, text in (("update", "move an instance to the model's current version and/or new inputs: "
                                  "one update run installs novel, uninstalls obsolete and reinstalls "
                                  "modified node instances"),
                       ("scale", "change the instances per host of one template (an update)")):
        s = sub.add_parser(name, help=text)
        s.add_argument("model")
        s.add_argument("instance")
        if name == "scale":
            s.add_argument("template")
            how = s.add_mutually_exclusive_group(required=True)
            how.add_argument("--count", type=ct.int_at_least(0), help="instances per host instance")
            how.add_argument("--delta", type=int, help="instances per host instance to add (negative: remove)")
            s.add_argument("--remove", action="append", default=[], metavar="ID",
                           help="a node instance of TEMPLATE the scale-in removes instead of the "
                                "highest-numbered of its host; repeatable (each must go)")
        else:
            s.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                           help="a deployment input (VALUE is JSON if it parses, else a string); repeatable")
        s.add_argument("--wait", action="store_true", help="wait for the end of the update run")
        s.add_argument("--timeout", type=ct.seconds(), default=None, help="seconds to wait at most")
        s.add_argument("--workers", type=ct.int_at_least(0), default=None,
                       help="run N workers in this process until the run ends (as workflow --workers)")
        s.add_argument("--json", action="store_true", help="print the diff (and the run summary) as JSON")
        _add_ssh_options(s)

    s = sub.add_parser("wait", help="wait for the instance's run in progress (or its last run) to "
                                    "end, and print its result")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    s.add_argument("--workers", type=int, default=None,
                   help="run N workers in this process until the run ends (default: on the "
                        "embedded Space, one, once the run has no live worker; none on Consul)")
    s.add_argument("--json", action="store_true", help="print the run summary as JSON")
    s.add_argument("--quiet", "-q", action="store_true",
                   help="no progress while waiting (a bar on a terminal, else a line when it changes)")
    _add_ssh_options(s)

    s = sub.add_parser("serves", help="hosts served by a worker on them, and whether it is alive")
    s.add_argument("--forget", metavar="NAME", type=_served_name,
                   help="remove every claim on NAME: its operations run agentless (or wherever "
                        "the model says) again")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("cancel", help="stop the run in progress: nothing new is scheduled, operations in "
                                      "flight are killed (SIGTERM, then SIGKILL after a grace period)")
    s.add_argument("model")
    s.add_argument("instance")

    s = sub.add_parser("logs", help="per-operation logs: exit code, duration, worker, output")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("node", nargs="?")
    s.add_argument("--run")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("status", help="states of the node instances")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("trace", help="what ran, in causal order")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--workflow")
    s.add_argument("--run")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("runs", help="runs of an instance")
    s.add_argument("model")
    s.add_argument("instance")
    s.add_argument("--json", action="store_true")
    observe_cli.add_parsers(sub)     # events, graph, timeline

    s = sub.add_parser("worker", help="run a long-lived stateless worker")
    s.add_argument("--threads", type=ct.int_at_least(1), default=os.environ.get("WF_WORKER_THREADS", "8"),
                   help="operations with side effects run at once (batch steps have their own "
                        "threads: 16 on Consul, 1 on the embedded Space)")
    s.add_argument("--ttl", type=ct.seconds(), default=os.environ.get("WF_WORKER_TTL", "15"),
                   help="session TTL in seconds: a dead worker's steps are retaken after it")
    s.add_argument("--batch", type=ct.int_at_least(1, 16), default=os.environ.get("WF_WORKER_BATCH", "16"),
                   help="ready nodes claimed and committed together (1-16; see docs/architecture.md)")
    s.add_argument("--lanes", type=ct.int_at_least(0), default=os.environ.get("WF_WORKER_LANES", "0"),
                   help="batch steps run at once (0: the Space's default, 16 on Consul, 1 embedded)")
    s.add_argument("--steal-after", type=ct.seconds(allow_zero=True),
                   default=os.environ.get("WF_WORKER_STEAL_AFTER", "1.0"),
                   help="seconds before taking a ready node, or ending a quiet run, that another "
                        "live worker owns")
    s.add_argument("--id", help="worker id shown in the trace (default host-pid-random)")
    s.add_argument("--metrics", type=ct.host_port, default=os.environ.get("WF_WORKER_METRICS") or None,
                   metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics "
                                             "(needs prometheus_client; env WF_WORKER_METRICS)")
    s.add_argument("--exec-log", default=os.environ.get("WF_EXEC_LOG"),
                   help="append one JSON line per executed operation to this file")
    s.add_argument("--log-dir", default=os.environ.get("WF_LOG_DIR"),
                   help="full logs of the operations run here (default ~/.cache/wfengine/logs)")
    s.add_argument("--cache-dir", default=os.environ.get("WF_MODEL_CACHE"),
                   help="where models' files are materialized (default ~/.cache/wfengine/models)")
    s.add_argument("--state-dir", default=os.environ.get("WF_WORKER_STATE_DIR"),
                   help="where the worker journals results it could not commit yet (a Space "
                        "outage), replayed at its next start (default ~/.cache/wfengine/state/<id>, "
                        "id 'worker' without --id)")
    s.add_argument("--op-timeout", type=ct.seconds(), default=None,
                   help="default timeout of an operation, seconds (an implementation's timeout wins)")
    s.add_argument("--wake", default=os.environ.get("WF_WORKER_WAKE") or None, metavar="HOST:PORT", type=ct.host_port,
                   help="also listen for POST /wake here (handler of the Consul watch installed by "
                        "the wf_worker role); the worker's own blocking query is the main trigger")
    s.add_argument("--serves", action="append", type=_served_name, metavar="NAME",
                   default=[n for n in os.environ.get("WF_WORKER_SERVES", "").split(",") if n],
                   help="a host this worker runs on (node instance name or address; repeatable; "
                        "env WF_WORKER_SERVES, comma-separated): the operations of that root host "
                        "run here, locally, and never on another worker")
    s.add_argument("--playbook-forkserver", choices=["on", "off"], default=None,
                   help="run playbooks from an Ansible imported once, forked per operation (default "
                        "on; env WF_PLAYBOOK_FORKSERVER=0 turns it off; docs/operations.md)")
    _add_ssh_options(s)
    _add_secret_options(s)
    return p


def space_options(args: argparse.Namespace) -> api.SpaceOptions:
    return api.SpaceOptions(backend=args.backend, path=args.space, url=args.consul_url, token=args.token,
                            ca_file=args.ca_file, client_cert=args.client_cert, client_key=args.client_key,
                            verify=not args.no_verify, prefix=args.prefix, datacenter=args.datacenter)


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def print_summary(s: Dict[str, Any]) -> None:
    dur = s.get("duration")
    print("%s %s/%s: %s in %s (run %s)" % (s["workflow"], s["model"], s["instance"], s["status"],
                                           "%.3f s" % dur if dur is not None else "-", s["run_id"]))
    print("  %d node instances: %s" % (sum(s["counts"].values()),
                                       ", ".join("%d %s" % (n, st) for st, n in sorted(s["counts"].items()))))
    for e in s.get("errors") or []:
        print("  error on %s: %s" % (e.get("node"), e.get("message") or e.get("operation")))


SHOWN_FILES = 10


def _print_files(title: str, paths: List[str], verbose: int) -> None:
    """What an upload put into the shared Space (and what it kept out), so its author can check no
    secret went in: a line naming the first few, or with ``-v`` one line each."""
    if not paths:
        return
    if verbose:
        print("%s (%d):" % (title, len(paths)))
        for p in paths:
            print("  %s" % p)
        return
    more = len(paths) - SHOWN_FILES
    print("%s (%d): %s%s" % (title, len(paths), ", ".join(paths[:SHOWN_FILES]),
                             " and %d more (-v lists them)" % more if more > 0 else ""))


def _not_json(text: str) -> Any:
    raise ValueError(text)


def _inputs(pairs: List[str]) -> Dict[str, Any]:
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


def _worker_ttl() -> float:
    return float(os.environ.get("WF_WORKER_TTL", "15"))


def _notice(text: str) -> None:
    print("wfctl: %s" % text, file=sys.stderr)


def cmd_workflow(args: argparse.Namespace, space) -> int:
    opts = space_options(args)
    workers = args.workers if args.workers is not None else (1 if args.backend == "embedded" else 0)
    if not args.resume and not args.force:
        decision, last = api.rerun_decision(space, args.workflow, args.model, args.instance)
        if decision == "done":
            s = api.summary(space, last["id"])
            if args.json:
                _print_json(dict(s, ran=False))
            else:
                print("%s %s/%s: already succeeded in run %s; nothing to run (--force runs it again)"
                      % (args.workflow, args.model, args.instance, last["id"]))
            return 0
        if decision == "resume":
            _notice("the last %s run %s of %s/%s %s: continuing it from where it stopped (--force starts "
                    "a new one)" % (args.workflow, last["id"], args.model, args.instance, last["status"]))
            args.resume = True
    if not args.wait and workers == 0:
        rec = api.start_workflow(space, args.workflow, args.model, args.instance, resume=args.resume,
                                 max_retries=args.retries)
        if args.json:
            _print_json(rec)
        else:
            print("started %s run %s on %s/%s" % (args.workflow, rec["id"], args.model, args.instance))
        return 0
    # Waiting: a run of this workflow already in progress is followed, not refused (the client
    # that started it may be gone); a run of another workflow is a conflict.
    rec, attached = api.start_or_attach(space, args.workflow, args.model, args.instance,
                                        resume=args.resume, max_retries=args.retries)
    if attached:
        _notice("run %s of %s on %s/%s is in progress: waiting for it"
                % (rec["id"], args.workflow, args.model, args.instance))
        return _follow(args, opts, space, rec, args.workers)
    return _follow(args, opts, space, rec, workers)


def cmd_wait(args: argparse.Namespace, space) -> int:
    rec = api.run_to_wait(space, args.model, args.instance)
    return _follow(args, space_options(args), space, rec, args.workers)


def _follow(args: argparse.Namespace, opts: api.SpaceOptions, space, rec: Dict[str, Any],
            workers: Optional[int]) -> int:
    """Wait for the run (hosting workers as ``attach_run`` decides), print its summary, and
    exit 0 succeeded, 1 failed or canceled, 3 still running at the timeout, 130 interrupted."""
    from .progress import reporter
    progress = reporter(sys.stderr, quiet=getattr(args, "quiet", False), json_output=args.json)
    try:
        if rec["status"] == "running":
            rec = api.attach_run(opts, space, rec["id"], workers=workers, timeout=args.timeout,
                                 progress=progress, ssh_options=ssh_options(args), ttl=_worker_ttl(),
                                 notice=_notice)
    except KeyboardInterrupt:
        _notice("interrupted; run %s goes on (wfctl wait %s %s follows it, and on the embedded "
                "Space finishes it once this process's workers are seen dead)"
                % (rec["id"], rec["model"], rec["instance"]))
        return 130
    if progress:
        progress.close()
    s = api.summary(space, rec["id"])
    if args.json:
        _print_json(s)
    else:
        print_summary(s)
    if rec["status"] == "running":
        print("wfctl: timed out after %s s; the run goes on (wfctl wait %s %s)"
              % (args.timeout, rec["model"], rec["instance"]), file=sys.stderr)
        return 3
    return 0 if rec["status"] == "succeeded" else 1


def cmd_plan(args: argparse.Namespace, space) -> int:
    """Print what a run would do (plan.py): a summary and one line per operation by default."""
    from . import plan as planning
    p = api.plan(space, args.workflow, args.model, args.instance)
    if args.json:
        _print_json(p)
        return 0
    if args.dot or args.mermaid:
        sys.stdout.write(planning.to_dot(p) if args.dot else planning.to_mermaid(p))
        return 0
    c = p["counts"]
    if "update" in p and not p["update"]["changed"]:
        print("plan update %s/%s: no change to node or relationship instances: no run (nothing written)"
              % (args.model, args.instance))
        return 0
    print("plan %s %s/%s: %d operations, %d state changes, %d happens-before edges on %d of %d node "
          "instances (nothing written)" % (args.workflow, args.model, args.instance, c["operations"],
                                           c["states"], c["edges"], p["participants"], p["nodes"]))
    if args.workflow != "update":
        decision, last = api.rerun_decision(space, args.workflow, args.model, args.instance)
        if decision == "done":
            print("  note: wfctl workflow %s would run nothing (it succeeded in run %s; --force runs all this)"
                  % (args.workflow, last["id"]))
        elif decision == "resume":
            print("  note: wfctl workflow %s would continue run %s (%s) from where it stopped, not all this"
                  % (args.workflow, last["id"], last["status"]))
    for pt in p["points"]:
        if pt["kind"] == "operation":
            rel = pt.get("relationship")
            extra = " [%s %s->%s]" % (rel["type"].rsplit(".", 1)[-1], rel["source"], rel["target"]) if rel else ""
            print("  %-12s %s%s" % (pt["node"], pt["name"], extra))
    return 0


def cmd_update(args: argparse.Namespace, space) -> int:
    """``wfctl update`` / ``wfctl scale``: the diff in a few lines, then the run as ``workflow``."""
    counts = None
    inputs = _inputs(getattr(args, "input", []) or [])
    if args.command == "scale":
        counts = api.scale_counts(space, args.model, args.instance, args.template, count=args.count,
                                  delta=args.delta)
    remove = getattr(args, "remove", None) or None
    if remove:
        wrong = [n for n in remove if (split_instance_id(n) or ("",))[0] != args.template]
        if wrong:
            raise WfError("%s: not an instance of template %s" % (", ".join(wrong), args.template))
    d = api.update_instance(space, args.model, args.instance, inputs=inputs or None, counts=counts,
                            remove=remove)
    rec = d.get("run")
    if not args.json:
        if d.get("resumed"):
            print("update %s/%s: %s" % (args.model, args.instance, d["message"]))
        else:
            rels = d["relationships"]
            print("update %s/%s: %d novel, %d obsolete, %d modified, %d unchanged node instances; %d novel, "
                  "%d obsolete relationship instances" % (args.model, args.instance, len(d["novel"]),
                                                          len(d["obsolete"]), len(d["modified"]),
                                                          len(d["unchanged"]), len(rels["novel"]),
                                                          len(rels["obsolete"])))
            for what in ("novel", "obsolete", "modified"):
                if d[what]:
                    print("  %s: %s" % (what, ", ".join(d[what])))
            print("  %s" % d["message"])
    if rec is None:
        if args.json:
            _print_json(d)
        return 0
    workers = args.workers if args.workers is not None else (1 if args.backend == "embedded" else 0)
    if not args.wait and workers == 0:
        if args.json:
            _print_json(d)
        return 0
    if args.json:
        # the diff, then (from _follow) the run summary: two JSON documents
        _print_json({k: v for k, v in d.items() if k != "run"})
    return _follow(args, space_options(args), space, rec, workers)


def cmd_status(args: argparse.Namespace, space) -> int:
    st = api.status(space, args.model, args.instance)
    if args.json:
        _print_json(st)
        return 0
    last = st.get("last_run")
    if last:
        print("%s/%s: last run %s %s %s" % (args.model, args.instance, last["workflow"], last["status"], last["id"]))
    for nid, n in st["nodes"].items():
        rels = ", ".join("%s->%s" % (r["requirement"], r["target"]) for r in n["relationships"])
        print("  %-16s %-12s %-28s %s" % (nid, n["state"], n["type"], rels))
    for h in st.get("waiting_hosts") or []:
        print("  waiting for host %s%s since %s: served by %s, not alive (%d node instances)"
              % (h["host"], " (%s)" % h["address"] if h.get("address") else "",
                 time.strftime("%H:%M:%S", time.localtime(h["since"] or 0)),
                 ", ".join(h["served_by"]), len(h["nodes"])))
    for name, out in sorted((st.get("outputs") or {}).items()):
        print("  output %s: %s" % (name, json.dumps(out["value"]) if "value" in out else "(%s)" % out["error"]))
    for line in section_lines(st.get("sections") or {}):
        print("  " + line)
    for line in st.get("warnings") or []:
        print("  warning: %s" % line)
    return 0


def section_lines(sections: Dict[str, Any]) -> List[str]:
    """What the model declares that the engine keeps without acting on it, one line each."""
    lines = []
    for name, g in sorted((sections.get("groups") or {}).items()):
        lines.append("group %s: %s, members %s (stored, not acted on)"
                     % (name, g.get("type"), ", ".join(g.get("members") or []) or "none"))
    for item in sections.get("policies") or []:
        for name, p in item.items():
            lines.append("policy %s: %s, targets %s (stored, not enforced)"
                         % (name, p.get("type"), ", ".join(p.get("targets") or []) or "none"))
    sub = sections.get("substitution_mappings")
    if sub:
        lines.append("substitution_mappings: as %s (stored, not used)" % sub.get("node_type"))
    for key, value in sorted((sections.get("metadata") or {}).items()):
        lines.append("metadata %s: %s" % (key, json.dumps(value)))
    return lines


def cmd_trace(args: argparse.Namespace, space) -> int:
    events = api.trace(space, args.model, args.instance, workflow=args.workflow, run_id=args.run)
    if args.json:
        _print_json(events)
        return 0
    for ev in events:
        rel = ev.get("relationship")
        extra = " [%s %s->%s]" % (rel["type"].rsplit(".", 1)[-1], rel["source"], rel["target"]) if rel else ""
        when = time.strftime("%H:%M:%S", time.localtime(ev["ts"]))
        fields = (ev["seq"], when, ev["workflow"], ev["node"], ev["kind"], ev["name"], extra, ev["worker"])
        print("%5d %s %-10s %-10s %-9s %s%s (%s)" % fields)
    return 0


def cmd_runs(args: argparse.Namespace, space) -> int:
    recs = api.instance_runs(space, args.model, args.instance)
    if args.json:
        _print_json(recs)
        return 0
    for r in recs:
        dur = r.get("duration")
        print("%s %-10s %-10s %s" % (r["id"], r["workflow"], r["status"], "%.3f s" % dur if dur else "-"))
    return 0


def cmd_logs(args: argparse.Namespace, space) -> int:
    records = api.logs(space, args.model, args.instance, node=args.node, run_id=args.run)
    if args.json:
        _print_json(records)
        return 0
    for r in records:
        print("%s %-10s %-10s %s attempt %s: %s exit %s in %.3f s on %s" % (
            time.strftime("%H:%M:%S", time.localtime(r["ts"])), r["workflow"], r["node"],
            r["operation"], r["attempt"], r["status"], r["exit_code"], r["duration"], r["worker"]))
        for line in (r.get("output") or "").rstrip("\n").splitlines():
            print("    | " + line)
        if r.get("log_file"):
            print("    full log: %s" % r["log_file"])
    return 0


def cmd_serves(args: argparse.Namespace, space) -> int:
    if args.forget:
        n = api.forget_served(space, args.forget)
        print("%s: %d claim(s) removed" % (args.forget, n))
        return 0
    rows = api.served_hosts(space)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print("%-24s %-24s %s" % (r["name"], r["worker"], "alive" if r["alive"] else "not alive"))
    return 0


def _default_state_dir(worker_id: Optional[str]) -> str:
    from .operation.resolver import default_cache_dir
    return os.path.join(default_cache_dir(), "state", (worker_id or "worker").replace("/", "_"))


class _StoppedBeforeServing(Exception):
    """A SIGTERM/SIGINT that came while the worker was still starting: nothing is in flight yet."""


def _stop_before_serving(signum, frame):
    raise _StoppedBeforeServing()


def cmd_worker(args: argparse.Namespace, space) -> int:
    # A stop asked while the worker starts (imports, fork server, journal) is a clean exit, not a
    # death by signal: a service manager or a test may stop a worker that has not served yet.
    signal.signal(signal.SIGTERM, _stop_before_serving)
    signal.signal(signal.SIGINT, _stop_before_serving)
    try:
        return _serve_worker(args, space)
    except _StoppedBeforeServing:
        logging.getLogger("wfengine").info("worker stopped before it served")
        return 0


def _serve_worker(args: argparse.Namespace, space) -> int:
    from .worker import Worker, WorkerInterrupt
    opts = ssh_options(args, serves=args.serves)
    if opts.inventory:
        from .placement import Inventory
        Inventory(opts.inventory).match([])     # unreadable: refused now, not at the first operation
    w = Worker(space, worker_id=args.id, threads=args.threads, ttl=args.ttl, exec_log=args.exec_log,
               log_dir=args.log_dir, cache_dir=args.cache_dir, op_timeout=args.op_timeout,
               batch=args.batch, steal_after=args.steal_after, lanes=args.lanes or None,
               ssh_options=opts, state_dir=args.state_dir or _default_state_dir(args.id),
               playbook_forkserver=None if args.playbook_forkserver is None else args.playbook_forkserver == "on")
    if args.metrics:        # a Prometheus endpoint (metrics.py, docs/observability.md)
        from .metrics import instrument
        instrument(w, args.metrics)

    def _stop(signum, frame):
        # Steps in flight finish and commit; the blocking query is left at once.
        if not w.stopping:
            w.stop()
            raise WorkerInterrupt()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # SIGUSR2: every thread's stack on stderr, the worker going on (what a silent worker waits
    # on, without a debugger: the fault tests send it before they give up on a run).
    faulthandler.register(signal.SIGUSR2, all_threads=True, chain=False)

    def _fatal(signum, frame):
        raise WorkerInterrupt()
    # A permission the token lacks (met on any thread) leaves the blocking query at once; serve()
    # then raises it: one line, exit 2.
    signal.signal(signal.SIGUSR1, _fatal)
    main_thread = threading.main_thread()
    w.on_fatal = lambda: (threading.current_thread() is not main_thread
                          and signal.pthread_kill(main_thread.ident, signal.SIGUSR1))
    wake = None
    if args.wake:
        host, dummy, port = args.wake.rpartition(":")
        wake = (host.strip("[]") or "127.0.0.1", int(port))
    logging.getLogger("wfengine").info("worker %s serving (%s backend)", w.id, args.backend)
    try:
        try:
            w.serve(wake_address=wake)
        finally:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    except WorkerInterrupt:     # a signal that came while it was already stopping
        pass
    if w.fatal is not None:
        raise w.fatal
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if getattr(args, "vault_password_file", None):
        from . import secrets
        secrets.configure(vault_password_file=args.vault_password_file)
    try:
        opts = space_options(args)
        if args.command == "worker":
            # one connection per thread of the pool, plus the blocking query and the renewals
            opts.extra["max_connections"] = args.threads + 2
        if args.command == "plan" and opts.backend == "embedded":
            path = opts.embedded_path()
            if not os.path.isfile(path):
                raise WfError("%s: no embedded Space there (a plan reads one, and creates nothing)" % path)
        space = api.open_space(opts)
        try:
            if args.command == "library":
                r = api.upload_library(space, args.file, name=args.name)
                print("library %s: %s (%d types)" % (r["name"], "uploaded" if r["changed"] else "unchanged",
                                                     len(r["types"])))
                return 0
            if args.command == "model":
                r = api.upload_model(space, args.file, args.model)
                print("model %s: %s (%d templates, %d node instances once deployed, workflows: %s)"
                      % (r["name"], "uploaded" if r["changed"] else "unchanged", len(r["templates"]),
                         r["instances"], ", ".join(r["workflows"])))
                _print_files("files stored", r.get("files") or [], args.verbose)
                _print_files("left out by the ignore list", r.get("left_out") or [], args.verbose)
                for line in r.get("warnings") or []:
                    print("warning: %s" % line, file=sys.stderr)
                return 0
            if args.command == "instantiate":
                r = api.create_instance(space, args.model, args.instance, inputs=_inputs(args.input))
                print("instance %s/%s: %s (%d node instances)" % (args.model, args.instance,
                                                                  "created" if r["changed"] else "exists",
                                                                  r["nodes"]))
                return 0
            if args.command == "workflow":
                return cmd_workflow(args, space)
            if args.command == "wait":
                return cmd_wait(args, space)
            if args.command == "plan":
                return cmd_plan(args, space)
            if args.command in ("update", "scale"):
                return cmd_update(args, space)
            if args.command == "status":
                return cmd_status(args, space)
            if args.command == "trace":
                return cmd_trace(args, space)
            if args.command == "runs":
                return cmd_runs(args, space)
            if args.command in observe_cli.COMMANDS:
                return observe_cli.run(args, space)
            if args.command == "logs":
                return cmd_logs(args, space)
            if args.command == "cancel":
                r = api.cancel_run(space, args.model, args.instance)
                print("run %s (%s) of %s/%s: canceling; operations in flight are stopped"
                      % (r["id"], r["workflow"], args.model, args.instance))
                return 0
            if args.command == "worker":
                return cmd_worker(args, space)
            if args.command == "serves":
                return cmd_serves(args, space)
        finally:
            space.close()
    except WfError as exc:
        for line in getattr(exc, "problems", None) or [exc]:
            print("wfctl: %s" % line.line(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `wfctl trace ... | head`
        sys.stderr.close()
        return 0
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    sys.exit(main())
