# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``site.yml --check`` on a fresh host, and its tags (issue 23).

The collection is built and installed into a temporary collections path; the "host" is this
machine (connection local) with every path the roles write under a fresh temporary root
(``wf_host_root``), in all three groups.  Check mode must not fail (the Consul binary and the
engine's virtualenv are not there yet), must report changes and must write nothing: neither the
host root nor the engine's build directory may exist afterwards.  With ``--tags`` the plays must
run only the selected part (``worker``: the worker's tasks, no Consul task; ``config``: the
configuration files, no installation; ``service``: the services; ``consul``: Consul only;
``manager``: the manager only).
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from typing import Dict, List

import pytest

from consul_cluster import consul_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
pytestmark = pytest.mark.slow

INVENTORY = """all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    wf_host_root: {root}
    consul_cluster_install_method: binary
    consul_cluster_binary_src: {consul}
    consul_cluster_user: ""
    consul_cluster_create_user: false
    consul_cluster_bind_addr: 127.0.0.1
    consul_cluster_client_addr: 127.0.0.1
    wf_engine_python: "{{{{ ansible_playbook_python }}}}"
    wf_engine_system_site_packages: true
    wf_engine_os_packages: []
    wf_engine_build_dir: {build}
  children:
    consul_servers: {{hosts: {{localhost: }}}}
    wf_workers: {{hosts: {{localhost: }}}}
    wf_managers: {{hosts: {{localhost: }}}}
"""


def _tool(name: str) -> str:
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else name


@pytest.fixture(scope="module")
def collections(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("galaxy")
    subprocess.run([_tool("ansible-galaxy"), "collection", "build", "--output-path", str(base / "dist"), ROOT],
                   check=True, capture_output=True, text=True, cwd=str(base))
    tarball, = glob.glob(str(base / "dist" / "ditrit-workflows-*.tar.gz"))
    subprocess.run([_tool("ansible-galaxy"), "collection", "install", "-p", str(base / "collections"), tarball],
                   check=True, capture_output=True, text=True, cwd=str(base))
    return str(base / "collections")


def check_site(collections: str, tmp_path, *args: str) -> Dict[str, List[str]]:
    """Run site.yml --check on a fresh root; {"changed": [task names], "ran": [...]}."""
    root, build = tmp_path / "root", tmp_path / "build"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY.format(root=root, build=build, consul=consul_binary()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "WF_", "CONSUL_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run([_tool("ansible-playbook"), "-i", str(inventory), "ditrit.workflows.site", "--check"]
                          + list(args), capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=600,
                          check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^localhost\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out, re.M), out
    # check mode wrote nothing: not the host's root, not the engine's build directory
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))[:10]
    assert not build.exists()
    tasks = re.findall(r"^TASK \[([^\]]+)\][^\n]*\n((?:(?!TASK \[|PLAY ).*\n)*)", out, re.M)
    return {"changed": [name for name, body in tasks if re.search(r"^changed:", body, re.M)],
            "ran": [name for name, body in tasks if re.search(r"^(changed|ok):", body, re.M)]}


def test_check_mode_on_a_fresh_host_passes_and_writes_nothing(collections, tmp_path):
    tasks = check_site(collections, tmp_path)
    changed = " | ".join(tasks["changed"])
    for expected in ("consul_cluster : Install the supplied consul binary",
                     "consul_cluster : Write the agent configuration",
                     "wf_engine : Report the engine to build and install (check mode)",
                     "wf_worker : Add the Consul watch on the queue",
                     "wf_service : Write the definition of wf-worker",
                     "wf_manager : Install the wfctl wrapper"):
        assert expected in changed, (expected, tasks["changed"])


def test_tag_worker_runs_only_the_worker(collections, tmp_path):
    tasks = check_site(collections, tmp_path, "--tags", "worker")
    changed = " | ".join(tasks["changed"])
    assert "wf_worker : Add the Consul watch on the queue" in changed
    assert "wf_service : Write the definition of wf-worker" in changed
    assert "wf_engine : Create the virtualenv" in changed
    assert "consul_cluster" not in changed and "wf_manager" not in changed
    assert "Write the definition of consul" not in changed
    # what the worker needs from Consul's play still ran (always): its facts and token
    assert any("consul_cluster : Compute how to reach the local agent" in t for t in tasks["ran"])


def test_tag_config_writes_configuration_and_installs_nothing(collections, tmp_path):
    tasks = check_site(collections, tmp_path, "--tags", "config")
    changed = " | ".join(tasks["changed"])
    for expected in ("consul_cluster : Write the agent configuration", "wf_worker : Add the Consul watch",
                     "wf_manager : Write wfctl's settings", "Write the definition of consul",
                     "Write the definition of wf-worker"):
        assert expected in changed, (expected, tasks["changed"])
    for unexpected in ("Install the supplied consul binary", "Create the virtualenv", "Report the engine",
                       "Create the configuration and data directories"):
        assert unexpected not in changed, (unexpected, tasks["changed"])


def test_tag_service_runs_only_the_services(collections, tmp_path):
    tasks = check_site(collections, tmp_path, "--tags", "service")
    assert tasks["changed"], tasks
    assert all(name.startswith("ditrit.workflows.wf_service :") for name in tasks["changed"]), tasks["changed"]
    changed = " | ".join(tasks["changed"])
    assert "Write the definition of consul" in changed and "Write the definition of wf-worker" in changed


def test_tag_consul_runs_only_consul(collections, tmp_path):
    tasks = check_site(collections, tmp_path, "--tags", "consul")
    changed = " | ".join(tasks["changed"])
    for expected in ("consul_cluster : Install the supplied consul binary",
                     "consul_cluster : Write the agent configuration", "Write the definition of consul"):
        assert expected in changed, (expected, tasks["changed"])
    for unexpected in ("wf_worker", "wf_manager", "wf_engine", "Write the definition of wf-worker"):
        assert unexpected not in changed, (unexpected, tasks["changed"])


def test_tag_manager_runs_only_the_manager(collections, tmp_path):
    tasks = check_site(collections, tmp_path, "--tags", "manager")
    changed = " | ".join(tasks["changed"])
    for expected in ("wf_manager : Install the wfctl wrapper", "wf_manager : Write wfctl's settings"):
        assert expected in changed, (expected, tasks["changed"])
    for unexpected in ("consul_cluster :", "wf_worker :", "Write the definition of consul",
                       "Write the definition of wf-worker"):
        assert unexpected not in changed, (unexpected, tasks["changed"])
