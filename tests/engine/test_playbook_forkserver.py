"""Playbooks started by the fork server (issue 20, item 1) keep every guarantee of a fresh
``ansible-playbook`` process: the operation's environment, working directory, configuration
(``ANSIBLE_*`` variables, the model's ``ansible.cfg``), output log, outputs; a timeout or a
cancel kills the child's whole process group; a fork server killed with SIGKILL (between two
playbooks, or while one runs) costs nothing but a restart.

Real processes and a real ansible-playbook; no mocks.  Waits are bounded polls on a condition,
never a fixed sleep: the tests hold under load."""
import os
import signal
import textwrap
import threading

import pytest

from wfengine import api
from wfengine.operation.executor import OperationCall
from wfengine.operation.function_contexts import DictContext
from wfengine.operation.playbook import find_ansible_playbook
from wfengine.operation.process_executor import OperationResolver, ProcessExecutor

from engine_helpers import embedded, until

pytestmark = pytest.mark.skipif(find_ansible_playbook() is None, reason="ansible-playbook is not installed")

CREATE = "tosca.interfaces.node.lifecycle.Standard.create"
NODES = {"web_0": {"template": "web", "host": None, "properties": {}, "attributes": {}},
         "db_0": {"template": "db", "host": None, "properties": {}, "attributes": {}}}

# The pid of the fork server this shell descends from: the topmost ancestor that runs the
# server's program (its fork children and their ansible workers share its command line).
SERVER_PID_SH = """\
pid=$$ server=
while [ "$pid" -gt 1 ]; do
  if tr '\\0' ' ' < /proc/$pid/cmdline | grep -q wf_forkserver; then server=$pid; fi
  pid=$(cut -d' ' -f4 /proc/$pid/stat)
done
echo "$server"
"""


class Resolver(OperationResolver):
    """The operations of a model folder, with plain inputs (what the worker's resolver gives)."""

    def __init__(self, model_dir, specs):
        self.dir = str(model_dir)
        self.specs = specs

    def spec(self, call):
        return self.specs.get(call.operation)

    def model_dir(self, call):
        return self.dir

    def context(self, call):
        return DictContext(NODES, self_node=call.node["id"])


def spec(primary, inputs=None, timeout=300):
    return {"implementation": {"primary": primary, "dependencies": [], "timeout": timeout},
            "inputs": inputs or {}, "outputs": {}, "max_retries": None, "retry_interval": None}


def call(node="web_0", run="r1"):
    return OperationCall(run=run, workflow="install", node={"id": node, "template": NODES[node]["template"],
                                                            "host": None},
                         operation=CREATE, relationship=None, side=None, worker="w1")


def playbook(model, name, tasks):
    (model / name).write_text("- hosts: all\n  gather_facts: false\n  tasks:\n" +
                              textwrap.indent(textwrap.dedent(tasks), "    "))
    return name


@pytest.fixture
def model(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    return d


@pytest.fixture
def executors(tmp_path):
    made = []

    def make(specs, model_dir, **kw):
        ex = ProcessExecutor(Resolver(model_dir, specs), log_dir=str(tmp_path / "logs"), **kw)
        made.append(ex)
        return ex
    yield make
    for ex in made:
        ex.close()


def group_members(pgid):
    """Live (not zombie) processes of a process group."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_forked_playbook_has_the_operations_environment_cwd_log_and_outputs(
        tmp_path, model, executors, monkeypatch):
    monkeypatch.setenv("WF_TEST_MARK", "mark-1")
    out = tmp_path / "seen.txt"
    pb = playbook(model, "site.yml", """\
        - ansible.builtin.copy:
            dest: "{{ out }}-{{ wf_node }}"
            content: "{{ lookup('env', 'WF_NODE') }}|{{ lookup('env', 'WF_TEST_MARK') }}|{{ lookup('pipe', 'pwd') }}|{{ lookup('env', 'PYTHONUNBUFFERED') }}"
        - ansible.builtin.debug:
            msg: "hello from {{ wf_node }}"
        - ansible.builtin.copy:
            dest: "{{ wf_outputs }}"
            content: "{{ {'node': wf_node, 'port': 8080} | to_json }}"
        """)
    ex = executors({CREATE: spec(pb, {"out": str(out)})}, model)
    for node in ("web_0", "db_0"):
        res = ex.run(call(node))
        assert res.ok and res.exit_code == 0, res.output
        assert res.details.get("forked") is True
        assert (tmp_path / ("seen.txt-" + node)).read_text() == "%s|mark-1|%s|1" % (node, model)
        assert {k: v for k, v in res.attributes.items() if not k.startswith("~outputs/")} == \
            {"node": node, "port": 8080}
        log = open(res.details["log_file"]).read()
        assert "hello from %s" % node in log and "PLAY RECAP" in log and "TASK [" in log
        assert "PLAY RECAP" in res.output
    assert len(ex.forkservers.pids()) == 1          # one server, a child per operation
    # Another value of the worker's environment: what ansible-core read at import may differ,
    # so another server, and the playbook sees the new value.
    monkeypatch.setenv("WF_TEST_OTHER", "x")
    monkeypatch.setenv("TEST_FORKSERVER_VALUE", "2")
    res = ex.run(call("web_0"))
    assert res.ok and res.details.get("forked") is True
    assert len(ex.forkservers.pids()) == 2


def test_ansible_configuration_of_the_operation_applies(tmp_path, model, executors, monkeypatch):
    """ansible-core resolves its configuration when it is imported: an ANSIBLE_* variable or an
    ansible.cfg in the model's folder must reach a forked playbook as they reach a process."""
    tasks = """\
        - ansible.builtin.debug:
            msg: configured
        """
    pb = playbook(model, "site.yml", tasks)
    ex = executors({CREATE: spec(pb)}, model)
    res = ex.run(call())
    assert res.ok and res.details.get("forked") and "TASK [ansible.builtin.debug]" in res.output
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "oneline")
    res = ex.run(call())
    assert res.ok and res.details.get("forked"), res.output
    assert "TASK [" not in res.output and "localhost | SUCCESS" in res.output, res.output
    monkeypatch.delenv("ANSIBLE_STDOUT_CALLBACK")
    other = tmp_path / "other"
    other.mkdir()
    playbook(other, "site.yml", tasks)
    (other / "ansible.cfg").write_text("[defaults]\nstdout_callback = oneline\n")
    res = executors({CREATE: spec(pb)}, other).run(call())
    assert res.ok and res.details.get("forked"), res.output
    assert "TASK [" not in res.output and "localhost | SUCCESS" in res.output, res.output


def test_builtin_routing_and_the_playbooks_own_collections_reach_a_forked_playbook(tmp_path, model, executors):
    """The server parses ansible.builtin's plugin routing once; each child still configures its
    own collection finder: a collection next to the playbook loads, a routed name resolves, and
    nothing says a finder was configured already."""
    coll = model / "collections" / "ansible_collections" / "acme" / "tools"
    (coll / "plugins" / "filter").mkdir(parents=True)
    (coll / "galaxy.yml").write_text("namespace: acme\nname: tools\nversion: 1.0.0\n")
    (coll / "plugins" / "filter" / "shout.py").write_text(
        "class FilterModule:\n    def filters(self):\n        return {'shout': lambda s: s.upper() + '!'}\n")
    pb = playbook(model, "site.yml", """\
        - ansible.builtin.debug:
            msg: "{{ 'hello' | acme.tools.shout }} {{ 'yes' | formerly_core_filter }}"
        """)
    ex = executors({CREATE: spec(pb)}, model)
    for dummy in range(2):      # the second from the same server
        res = ex.run(call())
        assert res.ok and res.details.get("forked") is True, res.output
        assert '"msg": "HELLO! True"' in res.output, res.output
        assert "already been configured" not in open(res.details["log_file"]).read()
    assert len(ex.forkservers.pids()) == 1


SHADOW_CALLBACK = '''
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: default
type: stdout
short_description: a playbook's own stdout callback, named like ansible-core's
description: [prints its own option]
options:
  greeting:
    description: what it prints
    default: shadow-default
    env: [{name: TEST_SHADOW_GREETING}]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "default"

    def v2_playbook_on_start(self, playbook):
        self._display.display("greeting: %s" % self.get_option("greeting"))
'''


def test_a_playbooks_own_plugin_named_like_a_warmed_one_gets_its_own_options(tmp_path, model, executors,
                                                                             monkeypatch):
    """The server warms ansible-core's plugins' option definitions, which ansible-core keeps by
    type and short name: a playbook's own ``callback_plugins/default.py`` must still get its own
    (a fresh ansible-playbook would; with the warmed ones, ``get_option`` fails)."""
    monkeypatch.setenv("TEST_SHADOW_GREETING", "hello-shadow")
    plain = tmp_path / "plain"
    plain.mkdir()
    pb = playbook(plain, "site.yml", """\
        - ansible.builtin.debug:
            msg: plain
        """)
    ex = executors({CREATE: spec(pb)}, plain)
    res = ex.run(call())     # the server of this configuration, warmed
    assert res.ok and res.details.get("forked") is True, res.output
    (model / "callback_plugins").mkdir()
    (model / "callback_plugins" / "default.py").write_text(SHADOW_CALLBACK)
    playbook(model, "site.yml", """\
        - ansible.builtin.debug:
            msg: shadowed
        """)
    ex = executors({CREATE: spec(pb)}, model)
    for dummy in range(2):
        res = ex.run(call())
        assert res.ok and res.details.get("forked") is True, res.output
        assert "greeting: hello-shadow" in res.output, res.output


def _run_in_thread(ex, c):
    results = []
    t = threading.Thread(target=lambda: results.append(ex.run(c)))
    t.start()
    return t, results


def test_timeout_kills_the_forked_playbooks_process_group(tmp_path, model, executors):
    pidfile = tmp_path / "bg.pid"
    pb = playbook(model, "slow.yml", """\
        - ansible.builtin.shell: 'sleep 300 & echo $! > {{ pidfile }}; wait'
        """)
    ex = executors({CREATE: spec(pb, {"pidfile": str(pidfile)}, timeout=3)}, model, kill_grace=0.5)
    t, results = _run_in_thread(ex, call())
    pgid = until(lambda: next(iter(ex._running), None), 120, "the playbook to start")
    t.join(120)
    assert not t.is_alive()
    res = results[0]
    assert not res.ok and res.details["timed_out"] is True and res.details.get("forked") is True
    assert "timeout of 3 s exceeded" in res.output
    until(lambda: not group_members(pgid), 30, "the process group %d to be gone" % pgid)
    if pidfile.exists():             # the task had started: its background sleep is gone too
        until(lambda: not alive(int(pidfile.read_text())), 30, "the background sleep to die")


def test_cancel_kills_the_forked_playbooks_process_group(tmp_path, model, executors):
    pidfile = tmp_path / "bg.pid"
    pb = playbook(model, "slow.yml", """\
        - ansible.builtin.shell: 'sleep 300 & echo $! > {{ pidfile }}.tmp && mv {{ pidfile }}.tmp {{ pidfile }}; wait'
        """)
    ex = executors({CREATE: spec(pb, {"pidfile": str(pidfile)})}, model, kill_grace=0.5)
    t, results = _run_in_thread(ex, call(run="r9"))
    until(pidfile.exists, 120, "the playbook's task to start")
    pgid = next(iter(ex._running))
    assert ex.cancel("other-run") == 0
    assert ex.cancel("r9") == 1
    t.join(120)
    assert not t.is_alive()
    res = results[0]
    assert not res.ok and res.details.get("canceled") is True and res.details.get("forked") is True
    assert "killed: run canceled" in res.output
    # ansible-core's workers run in sessions of their own: the playbook's SIGTERM handler
    # passes the signal on to their groups, where the task's background sleep is
    until(lambda: not group_members(pgid), 30, "the process group %d to be gone" % pgid)
    until(lambda: not alive(int(pidfile.read_text())), 30, "the background sleep to die")


def test_a_killed_server_is_restarted_by_the_next_playbook(tmp_path, model, executors):
    pb = playbook(model, "site.yml", """\
        - ansible.builtin.copy:
            dest: "{{ wf_outputs }}"
            content: "ok=yes\\n"
        """)
    ex = executors({CREATE: spec(pb)}, model)
    assert ex.run(call()).details.get("forked")
    [first] = ex.forkservers.pids()
    os.kill(first, signal.SIGKILL)
    until(lambda: first not in ex.forkservers.pids(), 120, "the runner to see the server die")
    res = ex.run(call())
    assert res.ok and res.details.get("forked") is True and res.attributes.get("ok") == "yes"
    assert ex.forkservers.pids() and first not in ex.forkservers.pids()


def test_switched_off_or_without_a_plain_interpreter_playbooks_run_as_processes(tmp_path, model, executors,
                                                                                monkeypatch):
    import sys
    pb = playbook(model, "site.yml", """\
        - ansible.builtin.debug:
            msg: plain
        """)
    res = executors({CREATE: spec(pb)}, model, playbook_forkserver=False).run(call())
    assert res.ok and "forked" not in res.details and "plain" in res.output
    monkeypatch.setenv("WF_PLAYBOOK_FORKSERVER", "0")
    ex = executors({CREATE: spec(pb)}, model)
    assert ex.forkservers is None and "forked" not in ex.run(call()).details
    monkeypatch.delenv("WF_PLAYBOOK_FORKSERVER")
    # An ansible-playbook whose #! line is not a plain Python path: no server, a process.
    wrapper = tmp_path / "ansible-playbook"
    wrapper.write_text("#!/usr/bin/env %s\nfrom ansible.cli.playbook import main\nmain()\n" % sys.executable)
    wrapper.chmod(0o755)
    ex = executors({CREATE: spec(pb)}, model, ansible_playbook=str(wrapper))
    res = ex.run(call())
    assert res.ok and "forked" not in res.details and "plain" in res.output, res.output


MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    out_dir: {type: string}
  node_templates:
    a:
      type: tosca.nodes.Root
      interfaces:
        Standard:
          create:
            implementation: playbooks/kill_server.yml
            inputs: {out: {concat: [{get_input: out_dir}, /a.txt]}}
    b:
      type: tosca.nodes.Root
      requirements: [{dependency: a}]
      interfaces:
        Standard:
          create:
            implementation: playbooks/report.yml
            inputs:
              out: {concat: [{get_input: out_dir}, /b.txt]}
              port: {get_operation_output: [a, Standard, create, port]}
"""


def test_server_killed_while_a_playbook_runs_the_run_still_succeeds(tmp_path, monkeypatch):
    """The playbook of ``a`` kills its own fork server with SIGKILL, then goes on and writes
    outputs: the runner learns its exit status from the child itself, its outputs reach ``b``
    (get_operation_output), whose playbook runs from a new server."""
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WF_LOG_DIR", str(tmp_path / "logs"))
    src = tmp_path / "src"
    (src / "scripts").mkdir(parents=True)
    (src / "playbooks").mkdir()
    (src / "app.yaml").write_text(MODEL)
    (src / "scripts" / "server_pid.sh").write_text(SERVER_PID_SH)
    playbook(src / "playbooks", "kill_server.yml", """\
        - name: the fork server this playbook came from
          ansible.builtin.command: sh {{ wf_model_dir }}/scripts/server_pid.sh
          register: server
        - name: killed while this playbook runs
          ansible.builtin.shell: kill -9 {{ server.stdout }}
          when: server.stdout | length > 0
        - ansible.builtin.copy:
            dest: "{{ out }}"
            content: "{{ server.stdout }}"
        - ansible.builtin.copy:
            dest: "{{ wf_outputs }}"
            content: "port=8080\\n"
        """)
    playbook(src / "playbooks", "report.yml", """\
        - ansible.builtin.command: sh {{ wf_model_dir }}/scripts/server_pid.sh
          register: server
        - ansible.builtin.copy:
            dest: "{{ out }}"
            content: "{{ server.stdout }}|{{ port }}"
        """)
    out = tmp_path / "out"
    out.mkdir()
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(src), "m")
        api.create_instance(space, "m", "i", inputs={"out_dir": str(out)})
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 1, timeout=300)
        ran = [(r["node"], r["exit_code"], r.get("output")) for r in api.logs(space, "m", "i")]
        assert rec["status"] == "succeeded", (rec, ran)
        killed = (out / "a.txt").read_text()
        assert killed.isdigit(), "the playbook did not run from a fork server"
        assert not alive(int(killed))
        server_b, port = (out / "b.txt").read_text().split("|")
        assert port == "8080"
        assert server_b.isdigit() and server_b != killed     # a new server
        logs = {r["node"]: r for r in api.logs(space, "m", "i")}
        assert logs["a_0"]["exit_code"] == 0 and "PLAY RECAP" in open(logs["a_0"]["log_file"]).read()
    finally:
        space.close()
