"""ProcessExecutor with real processes: bash scripts and a real ansible-playbook (local connection).

No mocks: each test writes a script or playbook into a model folder and runs it through the
executor, with inputs evaluated by the TOSCA functions."""
import os
import threading
import time

import pytest

from wfengine.operation.executor import OperationCall
from wfengine.operation.function_contexts import DictContext
from wfengine.operation.output import OutputsError, parse_outputs
from wfengine.operation.playbook import find_ansible_playbook
from wfengine.operation.process_executor import EXIT_NOT_RUN, OperationResolver, ProcessExecutor

CREATE = "tosca.interfaces.node.lifecycle.Standard.create"
PRE_SRC = "tosca.interfaces.relationships.Configure.pre_configure_source"

NODES = {
    "web_0": {"template": "web", "host": "vm_0", "properties": {"port": 8080}, "attributes": {}},
    "vm_0": {"template": "vm", "host": None, "properties": {}, "attributes": {"ip_address": "10.0.0.7"}},
    "db_0": {"template": "db", "host": None, "properties": {}, "attributes": {"ip_address": "10.0.0.9"}},
}


class Resolver(OperationResolver):
    def __init__(self, model_dir, specs, nodes=None, inputs=None, retry=None):
        self.dir = str(model_dir)
        self.specs = specs
        self.nodes = nodes or NODES
        self.inputs = inputs or {}
        self.retry = retry

    def spec(self, call):
        return self.specs.get(call.operation)

    def model_dir(self, call):
        return self.dir

    def context(self, call):
        rel = call.relationship
        return DictContext(self.nodes, inputs=self.inputs, self_node=call.node["id"],
                           source=rel["source"] if rel else None, target=rel["target"] if rel else None,
                           relationship=rel["id"] if rel else None)

    def retry_default(self, call):
        return self.retry


def spec(primary, inputs=None, timeout=None, outputs=None, **kw):
    return dict({"implementation": {"primary": primary, "dependencies": [], "timeout": timeout},
                 "inputs": inputs or {}, "outputs": outputs or {}, "max_retries": None,
                 "retry_interval": None}, **kw)


def call(operation=CREATE, node="web_0", relationship=None, side=None, attempt=1, run="r1"):
    record = {"id": node, "template": NODES[node]["template"], "host": NODES[node]["host"]}
    return OperationCall(run=run, workflow="install", node=record,
                         operation=operation, relationship=relationship, side=side, worker="w1", attempt=attempt)


@pytest.fixture
def model(tmp_path):
    d = tmp_path / "model"
    (d / "scripts").mkdir(parents=True)
    return d


def script(model, name, body):
    p = model / "scripts" / name
    p.write_text("set -u\n" + body)
    return "scripts/" + name


def executor(tmp_path, resolver, **kw):
    return ProcessExecutor(resolver, log_dir=str(tmp_path / "logs"), **kw)


def test_script_sees_inputs_and_facts_as_environment(tmp_path, model):
    out = tmp_path / "env.txt"
    p = script(model, "create.sh", 'printf "%s|%s|%s|%s|%s|%s|%s|%s\\n" "$port" "$ip" "$flag" "$cfg" '
                                   '"$WF_NODE" "$WF_TEMPLATE" "$WF_OPERATION" "$WF_HOST" > "$out"\n'
                                   'echo "cwd=$(pwd)"\n')
    inputs = {"port": {"get_property": ["SELF", "port"]}, "ip": {"get_attribute": ["HOST", "ip_address"]},
              "flag": True, "cfg": {"a": [1, 2]}, "out": str(out)}
    ex = executor(tmp_path, Resolver(model, {CREATE: spec(p, inputs)}))
    c = call()
    assert ex.effectful(c)
    res = ex.run(c)
    assert res.ok and res.exit_code == 0, res.output
    assert out.read_text() == '8080|10.0.0.7|true|{"a": [1, 2]}|web_0|web|%s|vm_0\n' % CREATE
    assert "cwd=%s" % model in res.output
    log_file = res.details["log_file"]
    assert log_file == str(tmp_path / "logs" / "r1" / "web_0" / (CREATE + "-1.log"))
    assert "cwd=" in open(log_file).read()
    assert res.duration > 0 and res.attributes == {}


def test_property_values_are_data_never_code(tmp_path, model):
    pwned = tmp_path / "pwned"
    evil = ("$(touch %s) `touch %s` ; touch %s && echo 'single' \"double\" \\ $HOME\nsecond line\n"
            "{{ lookup('pipe', 'touch %s') }}" % (pwned, pwned, pwned, pwned))
    got = tmp_path / "got.txt"
    p = script(model, "echo.sh", 'printf "%s" "$value" > "$dest"\necho "$value"\n')
    nodes = dict(NODES, web_0=dict(NODES["web_0"], properties={"evil": evil}))
    inputs = {"value": {"get_property": ["SELF", "evil"]}, "dest": str(got)}
    ex = executor(tmp_path, Resolver(model, {CREATE: spec(p, inputs)}, nodes=nodes))
    res = ex.run(call())
    assert res.ok, res.output
    assert got.read_text() == evil
    assert not pwned.exists()


def test_outputs_file_becomes_attributes(tmp_path, model):
    p1 = script(model, "kv.sh", 'echo "ip_address=10.1.2.3" >> "$WF_OUTPUTS"\n'
                                'echo "# comment" >> "$WF_OUTPUTS"\necho "" >> "$WF_OUTPUTS"\n'
                                'echo "url=http://x/?a=b" >> "$WF_OUTPUTS"\n'
                                'echo "port=9" >> "$WF_OUTPUTS"\n')
    ex = executor(tmp_path, Resolver(model, {CREATE: spec(p1, outputs={"port": ["SELF", "http_port"]})}))
    res = ex.run(call())
    assert res.ok, res.output
    # Renamed by the outputs mapping; kept as written for get_operation_output (TOSCA 1.3 4.6.1).
    assert res.attributes == {"ip_address": "10.1.2.3", "url": "http://x/?a=b", "http_port": "9",
                              "~outputs/Standard.create": {"ip_address": "10.1.2.3", "url": "http://x/?a=b",
                                                           "port": "9"}}

    p2 = script(model, "json.sh", 'echo \'{"ip_address": "10.9.9.9", "ports": [1, 2]}\' > "$WF_OUTPUTS"\n')
    res = executor(tmp_path, Resolver(model, {CREATE: spec(p2)})).run(call())
    assert res.ok and res.attributes == {"ip_address": "10.9.9.9", "ports": [1, 2],
                                         "~outputs/Standard.create": {"ip_address": "10.9.9.9", "ports": [1, 2]}}

    p3 = script(model, "bad.sh", 'echo "not a pair" > "$WF_OUTPUTS"\n')
    res = executor(tmp_path, Resolver(model, {CREATE: spec(p3)})).run(call())
    assert not res.ok and "outputs file line 1" in res.details["error"]
    assert "outputs file line 1" in res.output


def test_parse_outputs():
    assert parse_outputs("") == {}
    assert parse_outputs("a=1\r\nb = two=2\n") == {"a": "1", "b": " two=2"}
    for bad in ("=x", "1a=2", "[1]", "{bad json"):
        with pytest.raises(OutputsError):
            parse_outputs(bad)


def test_failure_gives_exit_code_and_tail(tmp_path, model):
    p = script(model, "fail.sh", 'for i in $(seq 1 2000); do echo "line $i"; done\necho "boom" >&2\nexit 3\n')
    res = executor(tmp_path, Resolver(model, {CREATE: spec(p)})).run(call())
    assert not res.ok and res.exit_code == 3
    assert len(res.output.encode()) <= 4096 and res.output.endswith("line 2000\nboom\n")
    full = open(res.details["log_file"]).read()
    assert full.startswith("line 1\n") and len(full) > 4096


def test_timeout_kills_the_whole_process_group(tmp_path, model):
    pidfile = tmp_path / "child.pid"
    p = script(model, "slow.sh", 'sleep 30 &\necho $! > "%s"\nsleep 30\n' % pidfile)
    ex = executor(tmp_path, Resolver(model, {CREATE: spec(p, timeout=1)}), kill_grace=0.5)
    t0 = time.monotonic()
    res = ex.run(call())
    elapsed = time.monotonic() - t0
    assert elapsed < 15, elapsed
    assert not res.ok and res.details["timed_out"] is True
    assert "timeout of 1 s exceeded" in res.output
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the background child survived the timeout"


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cancel_stops_running_operations_of_a_run(tmp_path, model):
    p = script(model, "slow.sh", "sleep 30\n")
    ex = executor(tmp_path, Resolver(model, {CREATE: spec(p)}), kill_grace=0.5)
    results = []
    t = threading.Thread(target=lambda: results.append(ex.run(call(run="r9"))))
    t0 = time.monotonic()
    t.start()
    deadline = time.monotonic() + 10
    while not ex._running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ex.cancel("other-run") == 0
    assert ex.cancel("r9") == 1
    t.join(15)
    assert time.monotonic() - t0 < 15
    assert not results[0].ok and results[0].details.get("canceled") is True


def test_no_implementation_is_a_noop(tmp_path, model):
    ex = executor(tmp_path, Resolver(model, {CREATE: {"implementation": {"primary": None}}}))
    assert not ex.effectful(call()) and not ex.effectful(call(operation="Standard.stop"))
    res = ex.run(call(operation="Standard.stop"))
    assert res.ok and res.details == {"noop": True}
    assert not (tmp_path / "logs").exists()


def test_input_errors_fail_without_running(tmp_path, model):
    marker = tmp_path / "ran"
    p = script(model, "x.sh", 'touch "%s"\n' % marker)
    ex = executor(tmp_path, Resolver(model, {CREATE: spec(p, {"ip": {"get_attribute": ["TARGET", "ip"]}})}))
    res = ex.run(call())
    assert not res.ok and res.exit_code == EXIT_NOT_RUN
    assert "web_0 %s: input ip: get_attribute" % CREATE in res.output
    assert "only defined in a relationship operation" in res.output
    assert not marker.exists()
    missing = executor(tmp_path, Resolver(model, {CREATE: spec("scripts/missing.sh")})).run(call())
    assert not missing.ok and "scripts/missing.sh not found" in missing.output


def test_relationship_operation(tmp_path, model):
    out = tmp_path / "rel.txt"
    p = script(model, "pre.sh", 'echo "$WF_SOURCE $WF_TARGET $WF_RELATIONSHIP $target_ip" > "%s"\n'
                                'echo "db_url=x" > "$WF_OUTPUTS"\n' % out)
    rel = {"id": "web_0:db#1:db_0", "source": "web_0", "target": "db_0"}
    specs = {PRE_SRC: spec(p, {"target_ip": {"get_attribute": ["TARGET", "ip_address"]}},
                           outputs={"db_url": ["SOURCE", "database_url"]})}
    ex = executor(tmp_path, Resolver(model, specs))
    res = ex.run(call(operation=PRE_SRC, relationship=rel, side="source"))
    assert res.ok, res.output
    assert out.read_text() == "web_0 db_0 web_0:db#1:db_0 10.0.0.9\n"
    assert {k: v for k, v in res.attributes.items() if not k.startswith("~outputs/")} == {"database_url": "x"}
    assert os.path.basename(res.details["log_file"]) == PRE_SRC + "@db_0-1.log"
    # an output mapped to the other end is refused
    specs[PRE_SRC]["outputs"] = {"db_url": ["TARGET", "x"]}
    res = ex.run(call(operation=PRE_SRC, relationship=rel, side="source", attempt=2))
    assert not res.ok and "only SELF or SOURCE allowed" in res.details["error"]


def test_retry_policy(tmp_path, model):
    specs = {CREATE: spec("scripts/a.sh", max_retries=3, retry_interval=0.5),
             "Standard.start": spec("scripts/a.sh")}
    ex = executor(tmp_path, Resolver(model, specs), default_retries=(1, 2.0))
    assert ex.retry_policy(call()) == (3, 0.5)
    assert ex.retry_policy(call(operation="Standard.start")) == (1, 2.0)
    ex = executor(tmp_path, Resolver(model, specs, retry=(5, 1.0)))
    assert ex.retry_policy(call(operation="Standard.start")) == (5, 1.0)


@pytest.mark.skipif(find_ansible_playbook() is None, reason="ansible-playbook is not installed")
def test_ansible_playbook_gets_inputs_as_extra_vars_and_writes_outputs(tmp_path, model):
    pwned = tmp_path / "pwned-ansible"
    evil = "{{ lookup('pipe', 'touch %s') }} $(touch %s) 'q' \"dq\"" % (pwned, pwned)
    got = tmp_path / "got.txt"
    (model / "site.yml").write_text("""\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: the input arrives as an extra var, verbatim
      ansible.builtin.copy:
        dest: "{{ dest }}"
        content: "{{ greeting }}"
    - name: report attributes
      ansible.builtin.copy:
        dest: "{{ wf_outputs }}"
        content: "{{ {'ip_address': '10.3.3.3', 'node': wf_node, 'port': port} | to_json }}"
""")
    nodes = dict(NODES, web_0=dict(NODES["web_0"], properties={"port": 8080, "evil": evil}))
    specs = {CREATE: spec("site.yml", {"greeting": {"get_property": ["SELF", "evil"]}, "dest": str(got),
                                       "port": {"get_property": ["SELF", "port"]}}, timeout=300)}
    res = executor(tmp_path, Resolver(model, specs, nodes=nodes)).run(call())
    assert res.ok, res.output
    assert res.details["command"] == "ansible-playbook"
    assert got.read_text() == evil
    assert not pwned.exists()
    assert {k: v for k, v in res.attributes.items() if not k.startswith("~outputs/")} == \
        {"ip_address": "10.3.3.3", "node": "web_0", "port": 8080}
    assert "PLAY RECAP" in res.output
    # the vars file (inputs may hold secrets) is gone
    assert not [f for f in os.listdir(tmp_path) if f.startswith("wf-op-")]


@pytest.mark.skipif(find_ansible_playbook() is None, reason="ansible-playbook is not installed")
def test_failing_playbook(tmp_path, model):
    (model / "fail.yaml").write_text("""\
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.fail:
        msg: "nope {{ reason }}"
""")
    res = executor(tmp_path, Resolver(model, {CREATE: spec("fail.yaml", {"reason": "because"})})).run(call())
    assert not res.ok and res.exit_code == 2
    assert "nope because" in res.output


def test_pipeline_from_csar_to_a_later_get_attribute(tmp_path):
    """What the worker wires: a CSAR is compiled and its files stored in a Space; operations run
    from the materialized copy; the target's reported ip_address reaches the source's
    pre_configure_source through get_attribute."""
    import zipfile

    from wfengine.operation.artifacts import collect, materialize, store_ops
    from wfengine.operation.function_contexts import ModelContext
    from wfengine.operation.function_eval import input_values
    from wfengine.instances import expand
    from wfengine.operations import compile_operations, compile_values, lookup
    from wfengine.space import open_space
    from wfengine.tosca.csar import model_source
    from wfengine.tosca.templates import load_model

    seen = tmp_path / "seen.txt"
    archive = tmp_path / "app.csar"
    with zipfile.ZipFile(str(archive), "w") as zf:
        zf.writestr("TOSCA-Metadata/TOSCA.meta", "TOSCA-Meta-File-Version: 1.1\nEntry-Definitions: app.yaml\n")
        zf.writestr("app.yaml", """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    seen: {type: string}
  node_templates:
    db:
      type: tosca.nodes.SoftwareComponent
      interfaces:
        Standard:
          create:
            implementation: scripts/db_create.sh
            outputs: {addr: [SELF, ip_address]}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - db:
            node: db
            relationship:
              type: tosca.relationships.ConnectsTo
              interfaces:
                Configure:
                  pre_configure_source:
                    implementation: scripts/pre.sh
                    inputs:
                      url: {concat: ["db://", {get_attribute: [TARGET, ip_address]}, ":5432"]}
                      seen: {get_input: seen}
""")
        info = zipfile.ZipInfo("scripts/db_create.sh")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, 'echo "addr=10.4.4.4" > "$WF_OUTPUTS"\n')
        zf.writestr("scripts/pre.sh", 'printf "%s" "$url" > "$seen"\n')
    with model_source(str(archive)) as (entry, root):
        model = load_model(entry, [])
        ops = compile_operations(model, root)
        values = compile_values(model)
        files = collect(root, entry)
    space = open_space("embedded", path=str(tmp_path / "space.db"))
    try:
        space.write_chunked(store_ops("m", "d", files))
        model_dir = materialize(space, "m", "d", str(tmp_path / "cache"))
    finally:
        space.close()
    nodes = expand(model)
    attrs = {}

    class WorkerResolver(OperationResolver):
        def spec(self, call):
            tpl = ops[call.node["template"]]
            if call.relationship is None:
                return lookup(tpl["node"], call.operation)
            index = call.relationship["id"].split("#", 1)[1].split(":", 1)[0]
            return lookup(tpl["relationships"].get(index), call.operation)

        def model_dir(self, call):
            return model_dir

        def context(self, call):
            return ModelContext(values, node=lambda n: nodes[n], attributes=lambda n: attrs.get(n, {}),
                                inputs=input_values(model.inputs, {"seen": str(seen)}),
                                self_node=call.node["id"], relationship=call.relationship,
                                instances=lambda t: [n for n in nodes if nodes[n]["template"] == t])

    ex = ProcessExecutor(WorkerResolver(), log_dir=str(tmp_path / "logs"))

    def mk(node, op, rel=None, side=None):
        return OperationCall(run="r", workflow="install", node=nodes[node], operation=op, relationship=rel,
                             side=side, worker="w")

    assert not ex.effectful(mk("app_0", "tosca.interfaces.node.lifecycle.Standard.create"))
    res = ex.run(mk("db_0", "tosca.interfaces.node.lifecycle.Standard.create"))
    assert res.ok and res.attributes == {"ip_address": "10.4.4.4",
                                         "~outputs/Standard.create": {"addr": "10.4.4.4"}}, res.output
    attrs["db_0"] = res.attributes          # the worker stores them in the Space
    rel = nodes["app_0"]["out"][0]
    res = ex.run(mk("app_0", PRE_SRC, rel, "source"))
    assert res.ok, res.output
    assert seen.read_text() == "db://10.4.4.4:5432"


def test_remote_bootstrap_gives_get_artifact_the_path_where_it_unpacked_the_files(tmp_path):
    """TOSCA 1.3 4.8.1: get_artifact is the artifact's path on the machine running the operation.
    A remote script's folder is only known there: the bootstrap (run here with bash, as sshd
    would run it) replaces the marker in the environment and the artifact travels in the payload."""
    import subprocess
    from wfengine.operation import ssh
    (tmp_path / "s.sh").write_text('printf "%s|" "$CONF" "$PLAIN"; cat "$CONF"\n')
    (tmp_path / "app.conf").write_text("artifact-content\n")
    payload = ssh._payload([("s.sh", str(tmp_path / "s.sh")), ("files/app.conf", str(tmp_path / "app.conf"))],
                           "s.sh", {"CONF": ssh.REMOTE_MODEL_DIR + "/files/app.conf", "PLAIN": "a&b $HOME"})
    proc = subprocess.Popen(["bash", "-c", ssh._BOOT, "wf-op", str(len(payload))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(payload)
    proc.stdin.flush()
    out, err = proc.stdout.read().decode(), proc.stderr.read()   # stdin stays open, as over ssh
    proc.wait(timeout=30)
    proc.stdin.close()
    conf, plain, content = out.split("|")
    assert ssh.parse_result(err)[0] == 0
    assert conf.startswith("/") and conf.endswith("/model/files/app.conf") and "\x1e" not in conf
    assert plain == "a&b $HOME" and content == "artifact-content\n"
    assert not os.path.exists(conf)   # the private folder is removed after the operation
