# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wf_worker service's command line, rendered by Ansible's own templating from the role's
task and defaults (issue 21): ``wf_worker_metrics_address`` opens the worker's Prometheus
endpoint (``--metrics``), and nothing is added while it is empty (the default).  Checked here
because the molecule scenarios that run the role do not scrape metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, List

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, "roles", "wf_worker")

# In a child process, as in test_unit_template.py: Ansible's controller-side templating is not
# loaded into the test process.
RENDER = """
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
variables = json.loads(sys.argv[1])
print(json.dumps(Templar(loader=DataLoader(), variables=variables).template(trust_as_template(sys.argv[2]))))
"""


def service_argv(**over: Any) -> List[str]:
    with open(os.path.join(ROLE, "tasks", "main.yml"), encoding="utf-8") as f:
        tasks = yaml.safe_load(f)
    task = next(t for t in tasks if t.get("name") == "Run the worker as a service")
    with open(os.path.join(ROLE, "defaults", "main.yml"), encoding="utf-8") as f:
        defaults = yaml.safe_load(f)
    # the defaults that are templates point at other roles' facts: concrete values instead
    variables = {k: v for k, v in defaults.items() if not (isinstance(v, str) and "{{" in v)}
    variables.update(wf_engine_wfctl="/opt/wfengine/bin/wfctl", wf_worker_consul_url="http://127.0.0.1:8500",
                     wf_worker_consul_ca_file="", wf_worker_known_hosts="", wf_worker_vault_password_file="",
                     _wf_worker_exec_log="/x/execs.log", _wf_worker_log_dir="/x/ops", _wf_worker_cache_dir="/x/cache",
                     _wf_worker_inventory="", wf_worker_serves=["10.0.0.5"], wf_worker_prefix="wf/")
    variables.update(over)
    r = subprocess.run([sys.executable, "-c", RENDER, json.dumps(variables), task["vars"]["wf_service_argv"]],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_metrics_address_is_passed_to_the_worker():
    argv = service_argv(wf_worker_metrics_address="0.0.0.0:9464")
    assert argv[0] == "/opt/wfengine/bin/wfctl" and "worker" in argv
    i = argv.index("--metrics")
    assert argv[i + 1] == "0.0.0.0:9464" and i > argv.index("worker")   # an option of `wfctl worker`


def test_no_metrics_endpoint_by_default():
    argv = service_argv()
    assert "--metrics" not in argv and "--wake" in argv and "--serves=10.0.0.5" in argv
