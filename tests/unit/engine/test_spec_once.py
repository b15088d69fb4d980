"""The worker's executor resolves an operation's spec once per call (issue 22): the spec it read
goes down to the process executor and to the resolver's ``target``.  Real processes, no mocks."""
from wfengine.operation.executor import OperationCall, RecordingExecutor
from wfengine.operation.function_contexts import DictContext
from wfengine.operation.process_executor import OperationResolver, ProcessExecutor
from wfengine.operation.resolver import WorkerExecutor
from wfengine.operation.ssh import SshClient, SshOptions

CREATE = "tosca.interfaces.node.lifecycle.Standard.create"
NODES = {"web_0": {"template": "web", "host": None, "properties": {}, "attributes": {}}}


class CountingResolver(OperationResolver):
    def __init__(self, model_dir, specs):
        self.dir = str(model_dir)
        self.specs = specs
        self.spec_calls = 0
        self.target_specs = []

    def spec(self, call):
        self.spec_calls += 1
        return self.specs.get(call.operation)

    def model_dir(self, call):
        return self.dir

    def context(self, call):
        return DictContext(NODES, self_node=call.node["id"])

    def target(self, call, ctx=None, spec=None):
        self.target_specs.append(spec)
        return None       # runs on this worker


def _call(operation=CREATE):
    return OperationCall(run="r1", workflow="install",
                         node={"id": "web_0", "template": "web", "host": None},
                         operation=operation, relationship=None, side=None, worker="w1")


def _worker_executor(tmp_path, resolver, ssh=None):
    process = ProcessExecutor(resolver, log_dir=str(tmp_path / "logs"), ssh=ssh,
                              playbook_forkserver=False)
    return WorkerExecutor(process, RecordingExecutor(str(tmp_path / "execs.log")))


def _model(tmp_path):
    d = tmp_path / "model"
    (d / "scripts").mkdir(parents=True)
    (d / "scripts" / "create.sh").write_text("echo created\n")
    return d


def test_a_run_resolves_the_spec_once(tmp_path):
    spec = {"implementation": {"primary": "scripts/create.sh", "dependencies": []}, "inputs": {}}
    resolver = CountingResolver(_model(tmp_path), {CREATE: spec})
    ex = _worker_executor(tmp_path, resolver)
    res = ex.run(_call())
    assert res.ok and "created" in res.output
    assert resolver.spec_calls == 1


def test_the_target_gets_the_resolved_spec(tmp_path):
    spec = {"implementation": {"primary": "scripts/create.sh", "dependencies": []}, "inputs": {}}
    resolver = CountingResolver(_model(tmp_path), {CREATE: spec})
    ssh = SshClient(SshOptions(), lambda deployment: None)   # never connects: the target is local
    ex = _worker_executor(tmp_path, resolver, ssh=ssh)
    try:
        res = ex.run(_call())
    finally:
        ex.close()
    assert res.ok and "created" in res.output
    assert resolver.spec_calls == 1
    assert resolver.target_specs == [spec]


def test_an_operation_without_implementation_is_recorded_once(tmp_path):
    resolver = CountingResolver(_model(tmp_path), {})
    ex = _worker_executor(tmp_path, resolver)
    res = ex.run(_call("tosca.interfaces.node.lifecycle.Standard.stop"))
    assert res.ok and res.details == {}
    assert resolver.spec_calls == 1
    assert len((tmp_path / "execs.log").read_text().splitlines()) == 1
