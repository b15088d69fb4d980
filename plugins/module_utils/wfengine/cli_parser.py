# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl``'s argument parser: the global Space options and one subcommand per command, each
naming the function that runs it (``set_defaults(func=...)``, and ``prepare=...`` for what must
be settled before the Space opens).  The help texts live here, the commands in cli_model.py,
cli_run.py, cli_show.py, cli_worker.py and observe_cli.py."""
from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, Callable

from . import cli_types as ct
from . import observe_cli
from .api import DEFAULT_LOCAL_WORKERS
from .cli_model import cmd_instantiate, cmd_library, cmd_model
from .cli_run import cmd_cancel, cmd_update, cmd_wait, cmd_workflow
from .cli_show import cmd_logs, cmd_plan, cmd_runs, cmd_serves, cmd_status, cmd_trace, prepare_plan
from .cli_worker import cmd_worker, prepare_worker
from .space import options as so
from .space.options import env_flag as _env_bool
from .worker_options import WorkerOptions
from .worker_options import served_name as _served_name


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
    g.add_argument("--vault-password-file", type=_readable_file, default=env or None,
                   metavar="FILE",
                   help="password of the ansible-vault files that "
                        "{get_secret: [ansible_vault, FILE, KEY]} "
                        "reads on this worker (env WF_VAULT_PASSWORD_FILE)")


def _add_operation_options(s: argparse.ArgumentParser) -> None:
    """workflow and worker take the same two groups for the operations run here: how they reach
    remote hosts and where they read secrets."""
    _add_ssh_options(s)
    _add_secret_options(s)


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line, like every other wfctl error (the usage is one ``-h`` away)."""

    def error(self, message: str) -> Any:
        self.exit(2, "%s: error: %s (see %s -h)\n"
                  % (self.prog, message.replace("\n", " "), self.prog))


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[_Parser]


def _instance_parser(sub: Subparsers, name: str, text: str, *first: str) -> _Parser:
    """A command on one instance: its positional arguments end with MODEL INSTANCE (after
    ``first``, e.g. WORKFLOW), the same two words for every such command."""
    s = sub.add_parser(name, help=text)
    for positional in first + ("model", "instance"):
        s.add_argument(positional)
    return s


def _add_input_option(s: argparse.ArgumentParser) -> None:
    """instantiate and update take deployment inputs alike."""
    s.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                   help="a deployment input (VALUE is JSON if it parses, else a string); "
                        "repeatable")


def _add_summary_options(s: argparse.ArgumentParser) -> None:
    """workflow and wait show the same run summary, and the same progress while they wait."""
    s.add_argument("--json", action="store_true", help="print the run summary as JSON")
    s.add_argument("--quiet", "-q", action="store_true",
                   help="no progress while waiting (a bar on a terminal, else a line when it "
                        "changes)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wfctl", description="Drive the TOSCA declarative workflow engine.")
    _add_space_options(p)
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_upload_commands(sub)
    _add_run_commands(sub)
    _add_state_commands(sub)
    observe_cli.add_parsers(sub)     # events, graph, timeline
    _add_worker_command(sub)
    return p


def _add_space_options(p: argparse.ArgumentParser) -> None:
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


def _add_upload_commands(sub: Subparsers) -> None:
    """library, model, instantiate"""
    s = sub.add_parser("library", help="upload a component library (types with workflows)")
    s.add_argument("file")
    s.add_argument("--name", help="library name (default: the file's name)")
    s.set_defaults(func=cmd_library)

    s = sub.add_parser("model", help="upload an application model")
    s.add_argument("file")
    s.add_argument("model")
    s.set_defaults(func=cmd_model)

    s = _instance_parser(sub, "instantiate", "create a deployment instance of a model")
    _add_input_option(s)
    s.set_defaults(func=cmd_instantiate)


def _add_run_commands(sub: Subparsers) -> None:
    """workflow, plan, update, scale, wait"""
    _add_workflow_command(sub)
    _add_plan_command(sub)
    for name, text in (("update", "move an instance to the model's current version and/or new "
                                  "inputs: one update run installs novel, uninstalls obsolete and "
                                  "reinstalls modified node instances"),
                       ("scale", "change the instances per host of one template (an update)")):
        _add_update_command(sub, name, text)
    _add_wait_command(sub)


def _add_workflow_command(sub: Subparsers) -> None:
    s = _instance_parser(sub, "workflow", "run a workflow on an instance", "workflow")
    s.add_argument("--wait", action="store_true",
                   help="wait for the end of the run, showing progress")
    s.add_argument("--timeout", type=ct.seconds(), default=None, help="seconds to wait at most")
    s.add_argument("--workers", type=ct.int_at_least(0), default=None,
                   help="run N workers in this process until the run ends (default %d on the "
                        "embedded Space, 0 on Consul where workers are daemons)"
                        % DEFAULT_LOCAL_WORKERS)
    _add_summary_options(s)
    again = s.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the last failed (or canceled) run of this workflow from its "
                            "failed steps (install and uninstall do it by themselves)")
    again.add_argument("--force", action="store_true",
                       help="install / uninstall: run again even if the last run of it succeeded, "
                            "and start a new run instead of continuing a failed one")
    s.add_argument("--retries", type=ct.int_at_least(0), default=0,
                   help="run-wide default of retries for a failing operation (per-operation "
                        "max_retries wins when larger)")
    _add_operation_options(s)
    s.set_defaults(func=cmd_workflow)


def _add_plan_command(sub: Subparsers) -> None:
    s = _instance_parser(sub, "plan", "the operations and happens-before edges a run of WORKFLOW "
                                      "would perform; writes nothing", "workflow")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="points and edges as JSON")
    fmt.add_argument("--dot", action="store_true", help="Graphviz text")
    fmt.add_argument("--mermaid", action="store_true", help="Mermaid flowchart text")
    s.set_defaults(func=cmd_plan, prepare=prepare_plan)


def _add_update_command(sub: Subparsers, name: str, text: str) -> None:
    """update, scale: the same command (cmd_update), scale naming a template and its count"""
    s = _instance_parser(sub, name, text)
    if name == "scale":
        s.add_argument("template")
        how = s.add_mutually_exclusive_group(required=True)
        how.add_argument("--count", type=ct.int_at_least(0), help="instances per host instance")
        how.add_argument("--delta", type=int,
                         help="instances per host instance to add (negative: remove)")
        s.add_argument("--remove", action="append", default=[], metavar="ID",
                       help="a node instance of TEMPLATE the scale-in removes instead of the "
                            "highest-numbered of its host; repeatable (each must go)")
    else:
        _add_input_option(s)
    s.add_argument("--wait", action="store_true", help="wait for the end of the update run")
    s.add_argument("--timeout", type=ct.seconds(), default=None, help="seconds to wait at most")
    s.add_argument("--workers", type=ct.int_at_least(0), default=None,
                   help="run N workers in this process until the run ends (as workflow --workers)")
    s.add_argument("--json", action="store_true",
                   help="print the diff (and the run summary) as JSON")
    _add_ssh_options(s)
    s.set_defaults(func=cmd_update)


def _add_wait_command(sub: Subparsers) -> None:
    s = _instance_parser(sub, "wait", "wait for the instance's run in progress (or its last run) "
                                      "to end, and print its result")
    s.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    s.add_argument("--workers", type=int, default=None,
                   help="run N workers in this process until the run ends (default: on the "
                        "embedded Space, one, once the run has no live worker; none on Consul)")
    _add_summary_options(s)
    _add_ssh_options(s)
    s.set_defaults(func=cmd_wait)


def _add_state_commands(sub: Subparsers) -> None:
    """serves, cancel, logs, status, trace, runs"""
    s = sub.add_parser("serves", help="hosts served by a worker on them, and whether it is alive")
    s.add_argument("--forget", metavar="NAME", type=_served_name,
                   help="remove every claim on NAME: its operations run agentless (or wherever "
                        "the model says) again")
    _shows(s, cmd_serves)

    s = _instance_parser(sub, "cancel", "stop the run in progress: nothing new is scheduled, "
                                        "operations in flight are killed (SIGTERM, then SIGKILL "
                                        "after a grace period)")
    s.set_defaults(func=cmd_cancel)

    s = _instance_parser(sub, "logs", "per-operation logs: exit code, duration, worker, output")
    s.add_argument("node", nargs="?")
    s.add_argument("--run")
    _shows(s, cmd_logs)

    s = _instance_parser(sub, "status", "states of the node instances")
    _shows(s, cmd_status)

    s = _instance_parser(sub, "trace", "what ran, in causal order")
    s.add_argument("--workflow")
    s.add_argument("--run")
    _shows(s, cmd_trace)

    s = _instance_parser(sub, "runs", "runs of an instance")
    _shows(s, cmd_runs)


def _shows(s: argparse.ArgumentParser, func: Callable[..., int]) -> None:
    """The commands that print what the Space holds (cli_show.py) all end alike: a bare --json
    (the records as they are) and the function that runs them."""
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=func)


def _add_worker_command(sub: Subparsers) -> None:
    s = sub.add_parser("worker", help="run a long-lived stateless worker")
    for flag, kwargs in WorkerOptions.arguments():    # each option declared once, with its env
        s.add_argument(flag, **kwargs)
    _add_operation_options(s)
    s.set_defaults(func=cmd_worker, prepare=prepare_worker)
