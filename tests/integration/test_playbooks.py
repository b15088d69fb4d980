# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real ansible-playbook runs of playbooks/run_install.yml and run_uninstall.yml against the
collection as users get it: built with ``ansible-galaxy collection build``, installed with
``ansible-galaxy collection install`` into a temporary collections path, and run by FQCN
(``ansible-playbook ditrit.workflows.run_install``) from a directory outside the checkout, with a
PYTHONPATH that does not contain it - so the modules can only find the engine through the installed
collection's module_utils.

Embedded Space: modules run the workers themselves.  Consul: a real 3-server cluster on loopback
(``consul_cluster`` fixture) and three real ``wfctl worker`` processes, killed at the end.
"""
from __future__ import annotations

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from typing import List, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
pytestmark = pytest.mark.slow

BROKEN_MODEL = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: nowhere
"""


def _tool(name: str) -> str:
    """ansible-* next to this Python first (a venv), else on PATH."""
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else name


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory) -> str:
    """Build the collection from the checkout and install the tarball; returns the collections path."""
    base = tmp_path_factory.mktemp("galaxy")
    dist = base / "dist"
    subprocess.run([_tool("ansible-galaxy"), "collection", "build", "--output-path", str(dist), ROOT],
                   check=True, capture_output=True, text=True, cwd=str(base))
    tarballs = glob.glob(str(dist / "ditrit-workflows-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    cols = base / "collections"
    subprocess.run([_tool("ansible-galaxy"), "collection", "install", "-p", str(cols), tarballs[0]],
                   check=True, capture_output=True, text=True, cwd=str(base))
    installed = cols / "ansible_collections" / "ditrit" / "workflows"
    assert (installed / "plugins" / "module_utils" / "wfengine" / "api.py").is_file()
    assert (installed / "playbooks" / "run_install.yml").is_file()
    return str(cols)


class Play:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        m = re.search(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                      self.out, re.M)
        assert m, self.out
        self.ok, self.changed, self.unreachable, self.failed = (int(x) for x in m.groups())

    def __repr__(self) -> str:
        return self.out


@pytest.fixture
def playbook(installed_collection, tmp_path):
    """playbook(name, *extra_args, inventory=None, **extra_vars) -> Play, run in tmp_path; ``name`` is
    a playbook of the installed collection, or the path of a playbook file (ending in .yml)."""

    def _run(name: str, *args: str, inventory: Optional[str] = None, **extra_vars: str) -> Play:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANSIBLE_", "WF_", "CONSUL_")) and k != "PYTHONPATH"}
        env.update(ANSIBLE_COLLECTIONS_PATH=installed_collection, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="0")
        cmd = [_tool("ansible-playbook"), name if name.endswith(".yml") else "ditrit.workflows.%s" % name]
        if inventory:
            cmd += ["-i", inventory]
        for k, v in extra_vars.items():
            cmd += ["-e", "%s=%s" % (k, v)]
        cmd += list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=600,
                              check=False)
        return Play(proc)

    return _run


def space_keys(path: str, prefix: str = "") -> List[str]:
    from wfengine import api
    space = api.open_space(api.SpaceOptions(path=path, prefix=None))
    try:
        return space.keys(prefix)
    finally:
        space.close()


MODULES = ["tosca_library", "tosca_model", "tosca_instance", "tosca_workflow", "tosca_instance_info"]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders(installed_collection, module):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=installed_collection, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([_tool("ansible-doc"), "ditrit.workflows.%s" % module], capture_output=True,
                          text=True, env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ditrit.workflows.%s" % module in proc.stdout
    for section in ("OPTIONS", "EXAMPLES", "RETURN VALUES"):
        assert section in proc.stdout
    # the shared connection options come from the doc fragment
    assert "CONSUL_HTTP_ADDR" in proc.stdout and "group/ditrit.workflows.tosca" in proc.stdout


def test_ansible_doc_renders_the_filter(installed_collection):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=installed_collection, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([_tool("ansible-doc"), "-t", "filter", "ditrit.workflows.timeline_picture"],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tosca_instance_info" in proc.stdout and "EXAMPLES" in proc.stdout


# ---------------------------------------------------------------- embedded Space
def test_install_twice_then_uninstall_twice(playbook, tmp_path):
    space = str(tmp_path / "state" / "space.db")
    first = playbook("run_install", wf_space=space)
    assert first.rc == 0 and first.failed == 0, first
    assert first.changed == 3, first  # model, instance, install
    assert "install seed_example/demo: succeeded in " in first.out
    assert "19 node instances: 19 started" in first.out

    second = playbook("run_install", wf_space=space)
    assert second.rc == 0 and second.changed == 0, second
    assert "install seed_example/demo: already succeeded" in second.out

    un = playbook("run_uninstall", wf_space=space)
    assert un.rc == 0 and un.changed == 1, un
    assert "19 node instances: 19 deleted" in un.out
    un2 = playbook("run_uninstall", wf_space=space, wf_remove_instance="true")
    assert un2.rc == 0 and un2.changed == 1, un2  # uninstall skipped, instance removed
    assert not [k for k in space_keys(space) if k.startswith("wf/inst/")]


def test_broken_model_fails_with_the_parser_message_and_leaves_nothing(playbook, tmp_path):
    space = str(tmp_path / "space.db")
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_MODEL, encoding="utf-8")
    play = playbook("run_install", wf_space=space, wf_model_src=str(broken), wf_model_name="broken")
    assert play.rc != 0 and play.failed == 1, play
    assert re.search(r"FAILED! => .*broken\.yaml: .*'nowhere'", play.out), play
    assert "Traceback" not in play.out
    assert space_keys(space) == []


def test_check_mode_on_a_fresh_space_changes_nothing(playbook, tmp_path):
    space = str(tmp_path / "fresh" / "space.db")
    play = playbook("run_install", "--check", wf_space=space)
    assert play.rc == 0 and play.failed == 0 and play.changed == 3, play
    assert not os.path.exists(os.path.dirname(space))


def test_variables_choose_names_and_model(playbook, tmp_path):
    space = str(tmp_path / "space.db")
    play = playbook("run_install", wf_space=space, wf_model_name="m1", wf_instance_name="blue",
                    wf_workers="3", wf_prefix="team1/")
    assert play.rc == 0 and play.changed == 3, play
    assert "install m1/blue: succeeded" in play.out
    keys = space_keys(space)
    assert keys and all(k.startswith("team1/") for k in keys)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webapp_scripts_really_run_with_inputs_and_outputs(playbook, tmp_path):
    """examples/webapp (a folder: bash scripts and a playbook) with deployment inputs: the site
    answers, the outputs are printed, a second run changes nothing, uninstall removes it all."""
    space = str(tmp_path / "space.db")
    port = _free_port()
    base = tmp_path / "webapp"
    inputs = json.dumps({"wf_instance_inputs": {"port": port, "base_dir": str(base), "message": "hi from ansible"}})
    common = dict(wf_space=space, wf_model_src=os.path.join(ROOT, "examples", "webapp"), wf_model_name="webapp")
    first = playbook("run_install", "-e", inputs, **common)
    assert first.rc == 0 and first.changed == 3, first
    url = "http://127.0.0.1:%d/" % port
    assert urllib.request.urlopen(url, timeout=5).read().decode() == "hi from ansible\n"
    assert re.search(r'"site_url": \{\s*"value": "%s"' % re.escape(url), first.out), first
    second = playbook("run_install", "-e", inputs, **common)
    assert second.rc == 0 and second.changed == 0, second
    un = playbook("run_uninstall", **common)
    assert un.rc == 0 and un.changed == 1, un
    assert not base.exists()


def _wfctl_trace(space: str, model: str, instance: str) -> list:
    """``wfctl trace --json`` as a user runs it (the engine from this checkout)."""
    env = dict(os.environ, WF_SPACE=space)
    proc = subprocess.run([sys.executable, "-m", "wfengine.cli", "trace", model, instance, "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(proc.stdout)


def test_timeline_playbook_writes_one_bar_per_operation_attempt(playbook, tmp_path):
    """Issue 21, from the Ansible side: tosca_instance_info returns the timeline, the
    timeline_picture filter draws it, copy writes it; the picture holds one bar per operation
    event of the trace, in its order."""
    import xml.etree.ElementTree as ET
    space = str(tmp_path / "space.db")
    assert playbook("run_install", wf_space=space).rc == 0
    ops = [e for e in _wfctl_trace(space, "seed_example", "demo") if e["kind"] == "operation"]
    assert len(ops) == 315
    html = tmp_path / "install.html"
    play = playbook("timeline", wf_space=space, wf_timeline_out=str(html))
    assert play.rc == 0 and play.changed == 1, play
    m = re.search(r"install\.html: (\d+) operation attempts of run (\S+) \(install succeeded\) on 6 hosts", play.out)
    assert m and int(m.group(1)) == len(ops), play
    text = html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="wf-timeline-data">(.*?)</script>',
                                text, re.S).group(1).replace("<\\/", "</"))
    assert data["run"] == m.group(2) == ops[0]["run"]
    assert [(b["seq"], b["node"], b["operation"], b.get("status"), b["worker"]) for b in data["bars"]] == \
        [(e["seq"], e["node"], e["name"], e.get("status", "ok"), e["worker"]) for e in ops]
    svg = ET.fromstring(re.search(r"(<svg .*?</svg>)", text, re.S).group(1))
    assert len([r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "bar"]) == len(ops)

    again = playbook("timeline", wf_space=space, wf_timeline_out=str(html))
    assert again.rc == 0 and again.changed == 0, again          # the same run, the same picture
    picture = tmp_path / "install.svg"
    svg_play = playbook("timeline", wf_space=space, wf_timeline_out=str(picture), wf_workflow="install")
    assert svg_play.rc == 0 and svg_play.changed == 1, svg_play
    root = ET.parse(str(picture)).getroot()
    assert len([r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "bar"]) == len(ops)

    dry = playbook("timeline", "--check", wf_space=space, wf_timeline_out=str(tmp_path / "dry.html"))
    assert dry.rc == 0 and dry.changed == 1 and not (tmp_path / "dry.html").exists(), dry
    for bad in ("relative.html", str(tmp_path / "t.png")):
        refused = playbook("timeline", wf_space=space, wf_timeline_out=bad)
        assert refused.rc != 0 and "an absolute path whose extension gives the format" in refused.out, refused
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".html", ".svg", ".png")) == \
        ["install.html", "install.svg"]


FAILING_MODEL = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    srv:
      type: tosca.nodes.Compute
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: srv
      interfaces:
        Standard:
          create: scripts/create.sh
"""


def test_a_failing_operation_fails_the_task_with_its_output(playbook, tmp_path):
    model = tmp_path / "failing"
    (model / "scripts").mkdir(parents=True)
    (model / "app.yaml").write_text(FAILING_MODEL, encoding="utf-8")
    script = model / "scripts" / "create.sh"
    script.write_text("#!/bin/sh\necho 'cannot write /opt/app: disk full' >&2\nexit 3\n", encoding="utf-8")
    script.chmod(0o755)
    space = str(tmp_path / "space.db")
    play = playbook("run_install", wf_space=space, wf_model_src=str(model), wf_model_name="failing")
    assert play.rc != 0 and play.failed == 1 and play.changed == 2, play  # a failed task is not counted as changed
    assert re.search(r"workflow install on failing/demo failed after [0-9.]+ s \(1 error\): app_0: "
                     r"tosca\.interfaces\.node\.lifecycle\.Standard\.create failed \(exit code 3\)", play.out), play
    assert "disk full" in play.out
    # the summary is printed all the same (the always: block)
    assert "install failing/demo: failed in " in play.out


# ---------------------------------------------------------------- day 2 (issue 19)
DAY2_PLAYBOOK = """---
- name: Day 2 of the seed example
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/ditrit.workflows.tosca:
      space: "{{ wf_space }}"
  tasks:
    - name: Upload a version of the model
      ditrit.workflows.tosca_model:
        name: seed_example
        src: "{{ wf_model_src }}"
      tags: [upload]

    - name: Converge the instance
      ditrit.workflows.tosca_instance:
        model: seed_example
        name: demo
        counts: "{{ wf_counts | default(omit) }}"
      register: first

    - name: Converge it again
      ditrit.workflows.tosca_instance:
        model: seed_example
        name: demo
        counts: "{{ wf_counts | default(omit) }}"
      register: second
      when: not ansible_check_mode

    - name: What uninstall would run
      ditrit.workflows.tosca_workflow:
        model: seed_example
        instance: demo
        workflow: uninstall
      check_mode: true
      register: would_uninstall

    - name: Node states
      ditrit.workflows.tosca_instance_info:
        model: seed_example
        instance: demo
      register: info
      when: not ansible_check_mode

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: >-
          {{ {'first': first | default({}), 'second': second | default({}),
              'uninstall': would_uninstall | default({}), 'info': info | default({})} | to_json }}
        dest: "{{ wf_out }}"
        mode: "0644"
      check_mode: false
      diff: false
      changed_when: false
      tags: [always]
"""
NOVEL = ["A_9", "A_10", "A_11", "A_12", "A_13", "A_14", "A_15", "E_0", "srvA_3"]


def _wfctl_plan(space: str, workflow: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "wfengine.cli", "--backend", "embedded", "--space", space, "plan",
                           workflow, "seed_example", "demo", "--json"], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "plugins", "module_utils")))
    return json.loads(proc.stdout)


def test_day2_update_and_scale_with_ansible(playbook, tmp_path):
    """The seed example installed; version 2 uploaded with tosca_model; tosca_instance in check
    and diff mode gives the plan and the 9 novel node instances and writes nothing; for real, the
    update starts them (28 started), a second run changes nothing; counts scale A to 3 per host;
    tosca_workflow in check mode gives the plan wfctl plan gives."""
    space = str(tmp_path / "space.db")
    out = tmp_path / "results.json"
    book = tmp_path / "day2.yml"
    book.write_text(DAY2_PLAYBOOK, encoding="utf-8")
    v1 = os.path.join(ROOT, "examples", "seed_example", "app.yaml")
    v2 = os.path.join(ROOT, "examples", "seed_example", "app_v2.yaml")

    def results() -> dict:
        return json.loads(out.read_text(encoding="utf-8"))

    first = playbook("run_install", wf_space=space, wf_model_src=v1)
    assert first.rc == 0 and "19 node instances: 19 started" in first.out, first
    up = playbook(str(book), "--tags", "upload", wf_space=space, wf_model_src=v2, wf_out=str(out))
    assert up.rc == 0 and up.changed == 1, up

    before = space_keys(space)
    check = playbook(str(book), "--check", "--diff", "--skip-tags", "upload", wf_space=space, wf_out=str(out))
    assert check.rc == 0 and check.failed == 0, check
    assert space_keys(space) == before
    r = results()
    would = r["first"]
    assert would["changed"] and would["update"]["novel"] == NOVEL and would["nodes"] == 28, would
    assert would["plan"]["workflow"] == "update"
    assert would["plan"]["counts"]["operations"] == len(would["plan"]["operations"]) \
        == _wfctl_plan(space, "update")["counts"]["operations"] == 155
    added = set(would["diff"]["after"].splitlines()) - set(would["diff"]["before"].splitlines())
    assert sorted(line.split(":")[0] for line in added) == sorted(NOVEL), would["diff"]
    assert "+E_0: E (tosca.nodes.SoftwareComponent) on srvB_0" in check.out    # the diff, as Ansible shows it
    assert r["uninstall"]["plan"]["counts"] == _wfctl_plan(space, "uninstall")["counts"]

    update = playbook(str(book), "--skip-tags", "upload", wf_space=space, wf_out=str(out))
    assert update.rc == 0 and update.changed == 2, update      # the update, and the uninstall that would run
    r = results()
    assert r["first"]["changed"] and r["uninstall"]["changed"]
    assert r["first"]["run"]["workflow"] == "update" and r["first"]["run"]["status"] == "succeeded"
    assert r["first"]["update"]["novel"] == NOVEL and r["first"]["update"]["obsolete"] == []
    assert not r["second"]["changed"] and "run" not in r["second"]
    states = {n: v["state"] for n, v in r["info"]["nodes"].items()}
    assert len(states) == 28 and set(states.values()) == {"started"}
    assert r["uninstall"]["plan"]["counts"] == _wfctl_plan(space, "uninstall")["counts"]

    scale = playbook(str(book), "--skip-tags", "upload", "-e", json.dumps({"wf_counts": {"A": 3}}),
                     wf_space=space, wf_out=str(out))
    assert scale.rc == 0 and scale.changed == 2, scale
    r = results()
    assert r["first"]["update"]["obsolete"] == ["A_9", "A_10", "A_11", "A_15"], r["first"]
    assert r["first"]["run"]["counts"] == {"started": 24} and not r["second"]["changed"]
    assert sorted(r["info"]["nodes"]) == sorted(set(states) - {"A_9", "A_10", "A_11", "A_15"})
    again = playbook("run_install", wf_space=space, wf_model_src=v2)
    assert again.rc == 0 and again.changed == 0, again     # installed and updated: nothing to do


# ---------------------------------------------------------------- Consul, real workers
@pytest.fixture
def consul_workers(consul_cluster, tmp_path):
    """Three ``wfctl worker`` processes on the cluster under a fresh prefix; SIGKILLed at the end."""
    prefix = "wfplay-%s/" % uuid.uuid4().hex[:10]
    url = consul_cluster.urls[0]
    procs: List[subprocess.Popen] = []
    logs = []
    env = dict(os.environ)
    env.pop("CONSUL_HTTP_ADDR", None)
    try:
        for i in range(3):
            log = open(str(tmp_path / ("worker%d.log" % i)), "wb")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "wfengine.cli", "--backend", "consul", "--consul-url",
                 consul_cluster.urls[i % len(consul_cluster.urls)], "--prefix", prefix, "worker",
                 "--id", "playw%d" % i, "--ttl", "10"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path), start_new_session=True))
        yield {"prefix": prefix, "url": url, "procs": procs, "ids": ["playw%d" % i for i in range(3)]}
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        for log in logs:
            log.close()
        _delete_prefix(url, prefix)


def _delete_prefix(url: str, prefix: str) -> None:
    from wfengine import api
    try:
        space = api.open_space(api.SpaceOptions(backend="consul", url=url, prefix=None))
    except Exception:  # the cluster is gone: nothing to clean
        return
    try:
        space.delete_tree(prefix)
    finally:
        space.close()


@pytest.mark.consul
def test_install_twice_on_consul_with_real_workers(playbook, consul_workers, tmp_path):
    url = consul_workers["url"]
    m = re.match(r"(https?)://([^:/]+):(\d+)", url)
    assert m, url
    inventory = tmp_path / "consul.ini"
    inventory.write_text(
        "localhost ansible_connection=local ansible_python_interpreter=%s\n\n"
        "[all:vars]\nwf_backend=consul\nwf_consul_scheme=%s\nwf_consul_host=%s\nwf_consul_port=%s\n"
        "wf_prefix=%s\n" % (sys.executable, m.group(1), m.group(2), m.group(3), consul_workers["prefix"]),
        encoding="utf-8")
    first = playbook("run_install", inventory=str(inventory), wf_timeout="300")
    assert first.rc == 0 and first.changed == 3, first
    assert "install seed_example/demo: succeeded in " in first.out
    assert "19 node instances: 19 started" in first.out
    # nothing went to an embedded file: the inventory's Consul settings won
    assert not glob.glob(str(tmp_path / "**" / "*.db"), recursive=True)

    second = playbook("run_install", inventory=str(inventory))
    assert second.rc == 0 and second.changed == 0, second

    # the operations were run by the worker daemons, not inside the module
    from wfengine import api
    space = api.open_space(api.SpaceOptions(backend="consul", url=url, prefix=consul_workers["prefix"]))
    try:
        events = api.trace(space, "seed_example", "demo", workflow="install")
    finally:
        space.close()
    assert events and {e["worker"] for e in events} <= set(consul_workers["ids"])

    un = playbook("run_uninstall", inventory=str(inventory), wf_remove_instance="true")
    assert un.rc == 0 and un.changed == 2, un
    assert "19 node instances: 19 deleted" in un.out
    assert all(p.poll() is None for p in consul_workers["procs"])
