# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wf_worker role with ``wf_worker_metrics_address`` set installs prometheus_client into the
engine's virtualenv (issue 21): the bundled engine does not bring it, and a worker started with
``--metrics`` without it exits at once.  Real ansible-playbook, real pip (through the index pip
is configured with), a fresh virtualenv standing in for the engine's; the rest of the role
(Consul agent, service) is the molecule scenarios' business."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
pytestmark = pytest.mark.slow

PLAY = """\
- name: The metrics part of wf_worker
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Install what serves the metrics
      ansible.builtin.include_role:
        name: ditrit.workflows.wf_worker
        tasks_from: metrics.yml
      vars:
        wf_engine_python_venv: "{{ venv }}/bin/python"
        wf_worker_metrics_address: 127.0.0.1:9464
"""


def _play(tmp_path, venv: str, *args: str):
    cols = tmp_path / "collections"
    link = cols / "ansible_collections" / "ditrit" / "workflows"
    if not link.exists():
        link.parent.mkdir(parents=True)
        os.symlink(ROOT, str(link))
    (tmp_path / "play.yml").write_text(PLAY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(cols), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="0")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), str(tmp_path / "play.yml"), "-e", "venv=" + venv]
                          + list(args), capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600,
                          check=False)
    out = proc.stdout + proc.stderr
    m = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", out, re.M)
    assert proc.returncode == 0 and m and m.group(2) == "0", out
    return int(m.group(1)), out


def test_metrics_address_installs_prometheus_client_once(tmp_path):
    venv = str(tmp_path / "venv")
    # check mode before the engine is installed: nothing to ask pip, nothing fails
    changed, out = _play(tmp_path, venv, "--check")
    assert changed == 0 and not os.path.exists(venv), out
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    probe = [os.path.join(venv, "bin", "python"), "-c", "import prometheus_client"]
    assert subprocess.run(probe, capture_output=True, check=False).returncode != 0
    changed, out = _play(tmp_path, venv, "--check")
    assert changed == 1, out
    assert subprocess.run(probe, capture_output=True, check=False).returncode != 0   # check mode installed nothing
    changed, out = _play(tmp_path, venv)
    assert changed == 1, out
    assert subprocess.run(probe, capture_output=True, check=False).returncode == 0
    changed, out = _play(tmp_path, venv)
    assert changed == 0, out
