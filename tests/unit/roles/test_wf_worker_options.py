# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wf_worker role's documented defaults (defaults/main.yml) against WorkerOptions, where each
worker option is declared once (worker_options.py, issue 22): an option the role passes to
``wfctl worker`` has the same default in both, unless the role means to differ (listed below,
with why).  Read from the real files."""
from __future__ import annotations

import dataclasses
import os

import yaml

from wfengine.worker_options import WorkerOptions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, "roles", "wf_worker")

# role variable -> WorkerOptions field, where the role's default is the worker's own.
SAME = {"wf_worker_threads": "threads", "wf_worker_ttl": "ttl", "wf_worker_batch": "batch",
        "wf_worker_lanes": "lanes", "wf_worker_steal_after": "steal_after",
        "wf_worker_id": "worker_id", "wf_worker_op_timeout": "op_timeout",
        "wf_worker_metrics_address": "metrics"}
# Of those, the ones whose flag the role leaves out when the variable is "" or 0
# (tasks/main.yml): the option's None.
LEFT_OUT_WHEN_EMPTY = {"wf_worker_id", "wf_worker_op_timeout", "wf_worker_metrics_address"}
# role variable -> field, where the role chooses another value on purpose.
DIFFERENT = {
    "wf_worker_exec_log": "exec_log",        # a service keeps its logs under /var/log
    "wf_worker_log_dir": "log_dir",          # idem
    "wf_worker_cache_dir": "cache_dir",      # under /var/cache, not the service user's HOME
    "wf_worker_wake_address": "wake",        # the role installs the Consul watch that calls it
    "wf_worker_serves": "serves",            # the host itself (its Consul agent's address)
}


def _read(*parts):
    with open(os.path.join(ROLE, *parts), encoding="utf-8") as f:
        return f.read()


def _flag(name):
    return next(f.metadata["opt"].flag for f in dataclasses.fields(WorkerOptions) if f.name == name)


def test_the_role_and_the_worker_share_their_defaults():
    defaults = yaml.safe_load(_read("defaults", "main.yml"))
    options = WorkerOptions()
    for var, name in SAME.items():
        theirs, ours = defaults[var], getattr(options, name)
        if var in LEFT_OUT_WHEN_EMPTY and theirs in ("", 0):
            theirs = None
        assert type(theirs) in (type(ours), int) and theirs == ours, (var, defaults[var], ours)


def test_every_worker_option_the_role_passes_is_classified():
    """A flag of ``wfctl worker`` that the role's command line passes is in SAME or DIFFERENT
    (with why), and the variable named there is a documented default that the command line
    uses."""
    defaults = yaml.safe_load(_read("defaults", "main.yml"))
    tasks = _read("tasks", "main.yml")
    argv = yaml.safe_load(tasks)
    argv = next(t for t in argv if t.get("name") == "Run the worker as a service")
    argv = argv["vars"]["wf_service_argv"]
    classified = dict(SAME, **DIFFERENT)
    passed = {f.name for f in dataclasses.fields(WorkerOptions)
              if f.metadata["opt"].flag and ("'%s'" % f.metadata["opt"].flag in argv
                                             or "'%s=" % f.metadata["opt"].flag in argv)}
    assert passed == set(classified.values())
    for var, name in classified.items():
        assert var in defaults, var
        assert var in argv or "_" + var in argv, (var, _flag(name))
