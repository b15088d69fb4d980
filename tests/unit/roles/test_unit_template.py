# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd unit of roles/wf_service, rendered by Ansible's own templating from the role's
defaults, then checked by ``systemd-analyze verify``.

Issue 17: a worker that dies must come back by itself under both managers; under systemd that is
``Restart=always`` without a start limit that would leave a quickly dying unit failed for good.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, "roles", "wf_service")


# Rendered in a child process: loading Ansible's controller-side templating into the test process
# changes how the module tests (tests/unit/plugins) see module warnings.
RENDER = """
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
variables = json.loads(sys.argv[1])
with open(sys.argv[2]) as f:
    src = f.read()
sys.stdout.write(Templar(loader=DataLoader(), variables=variables).template(trust_as_template(src)))
"""


def render(tmp_path, known_keys: bool = True, **over: Any) -> str:
    with open(os.path.join(ROLE, "defaults", "main.yml")) as f:
        variables: Dict[str, Any] = yaml.safe_load(f)
    variables.update(wf_service_name="wf-worker", wf_service_description="Workflow worker",
                     wf_service_argv=["/bin/sleep", "1000"], _wf_service_envfile="/etc/default/wf-worker",
                     ansible_managed="managed", wf_service_stop_timeout=15)
    variables.update(over)
    r = subprocess.run([sys.executable, "-c", RENDER, json.dumps(variables),
                        os.path.join(ROLE, "templates", "unit.service.j2")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    unit = tmp_path / "wf-worker.service"
    unit.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    if known_keys:  # this machine's systemd (252) does not know the keys of 254+
        assert "Unknown key" not in r.stderr, r.stderr
    return text


def lines(text: str) -> set:
    return {x.strip() for x in text.splitlines() if x.strip() and not x.startswith("#")}


def test_default_unit_restarts_always_and_never_gives_up(tmp_path):
    got = lines(render(tmp_path))
    assert {"Restart=always", "RestartSec=1", "StartLimitIntervalSec=0", "TimeoutStopSec=15",
            "KillMode=mixed"} <= got
    assert not any(x.startswith("RestartSteps=") for x in got)  # systemd < 254 does not know it


def test_systemd_254_gets_the_growing_delay(tmp_path):
    text = render(tmp_path, known_keys=False, ansible_systemd={"version": 255})
    assert {"RestartSteps=5", "RestartMaxDelaySec=30"} <= lines(text)


def test_policy_no_keeps_the_default_start_limit(tmp_path):
    got = lines(render(tmp_path, wf_service_restart_policy="no"))
    assert "Restart=no" in got and "StartLimitIntervalSec=0" not in got
