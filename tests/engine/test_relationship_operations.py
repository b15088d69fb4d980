"""Every relationship's Configure operations run (TOSCA 1.3 5.7 relationship types, 5.8.5 the
Configure interface): implementations declared on DependsOn, HostedOn and a custom type derived
from tosca.relationships.Root run exactly once per relationship instance, for the end they
belong to (5.8.5: the *_source operations and add_target/remove_target on the source, the
*_target ones and add_source/remove_source on the target), in the order of the source's
lifecycle (docs/workflows.md), and an implementation that no workflow runs (target_changed) is
announced at upload instead of being skipped silently."""
from collections import Counter

from wfengine import api

import ordering
from engine_helpers import embedded, write

CFG = ordering.CFG
SOURCE_END = ("pre_configure_source", "post_configure_source", "add_target", "remove_target")
TARGET_END = ("pre_configure_target", "post_configure_target", "add_source", "remove_source")
INSTALL_OPS = ("pre_configure_source", "pre_configure_target", "post_configure_source",
               "post_configure_target", "add_target", "add_source")
UNINSTALL_OPS = ("remove_target", "remove_source")
CUSTOM = "my.relationships.Registers"

CONFIGURE = """
          Configure:
            pre_configure_source: scripts/rec.sh
            pre_configure_target: scripts/rec.sh
            post_configure_source: scripts/rec.sh
            post_configure_target: scripts/rec.sh
            add_target: scripts/rec.sh
            add_source: scripts/rec.sh
            remove_target: scripts/rec.sh
            remove_source: scripts/rec.sh"""

MODEL = """\
tosca_definitions_version: tosca_simple_yaml_1_3
relationship_types:
  %(custom)s:
    derived_from: tosca.relationships.Root
    interfaces:%(configure)s
            target_changed: scripts/rec.sh
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    requirements:
      - registry:
          capability: tosca.capabilities.Node
          relationship: %(custom)s
topology_template:
  node_templates:
    box: {type: tosca.nodes.Compute}
    db:
      type: tosca.nodes.SoftwareComponent
      capabilities:
        scalable: {properties: {default_instances: 2}}
      requirements:
        - host:
            node: box
            relationship:
              type: tosca.relationships.HostedOn
              interfaces:%(configure_rel)s
    app:
      type: my.App
      capabilities:
        scalable: {properties: {default_instances: 2}}
      requirements:
        - host: box
        - dependency:
            node: db
            relationship:
              type: tosca.relationships.DependsOn
              interfaces:%(configure_rel)s
        - registry: db
""" % {"custom": CUSTOM, "configure": CONFIGURE,
       "configure_rel": CONFIGURE.replace("\n", "\n" + " " * 6)}


def _recorded(path):
    """(operation, node it ran for, relationship id) of each line the script wrote."""
    rows = []
    for line in path.read_text().splitlines():
        op, node, rel, source, target = line.split()
        rows.append((op.rsplit(".", 1)[1], node, rel, source, target))
    return rows


def test_relationship_operations_run_once_per_instance_on_their_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    record = tmp_path / "ran.txt"
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/rec.sh",
          'echo "$WF_OPERATION $WF_NODE $WF_RELATIONSHIP $WF_SOURCE $WF_TARGET" >> %s\n' % record)
    path = write(tmp_path, "m.yaml", MODEL)
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        up = api.upload_model(space, path, "m")
        # target_changed has an implementation, and no workflow calls it: announced, not skipped
        (line,) = up["warnings"]
        assert line.startswith("m.yaml: topology_template.node_templates.app.requirements[2] (registry -> db): ")
        assert "Configure.target_changed is never run" in line and CUSTOM in line
        api.create_instance(space, "m", "i")
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "succeeded", rec
        nodes = api.status(space, "m", "i")["nodes"]
        rels = ordering.relationships(nodes)
        kinds = Counter(ty for ty, dummy, dummy2 in rels)
        # 2 db + 2 app HostedOn box, app x db: 4 DependsOn (the inherited `dependency`) and 4 custom
        assert kinds == {"tosca.relationships.HostedOn": 4, "tosca.relationships.DependsOn": 4, CUSTOM: 4}
        install_trace = api.trace(space, "m", "i", workflow="install")
        ordering.check_install(install_trace, nodes)
        installed = _recorded(record)
        record.write_text("")

        rec = api.start_workflow(space, "uninstall", "m", "i")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "succeeded", rec
        uninstall_trace = api.trace(space, "m", "i", workflow="uninstall")
        ordering.check_uninstall(uninstall_trace, nodes)
        uninstalled = _recorded(record)
    finally:
        space.close()

    # The script's own view: once per relationship instance and operation, for the right end.
    # Every relationship of the model declares implementations but app's HostedOn (short form).
    with_impl = [(ty, s, t) for ty, s, t in rels
                 if not (ty == "tosca.relationships.HostedOn" and s.startswith("app_"))]
    assert len(with_impl) == 10
    for ran, ops in ((installed, INSTALL_OPS), (uninstalled, UNINSTALL_OPS)):
        got = Counter((op, source, target) for op, node, rel, source, target in ran)
        want = Counter((op, s, t) for dummy, s, t in with_impl for op in ops)
        assert got == want
        for op, node, rel, source, target in ran:
            assert node == (source if op in SOURCE_END else target), (op, node, rel)

    # The trace's view, every relationship instance (implementations or not): each operation once,
    # named after the end it ran for, in the source's lifecycle order (ordering.check_*).
    for trace, ops in ((install_trace, INSTALL_OPS), (uninstall_trace, UNINSTALL_OPS)):
        got = Counter((e["name"].rsplit(".", 1)[1], e["relationship"]["source"], e["relationship"]["target"],
                       e["node"]) for e in trace if e["kind"] == "operation" and e["relationship"])
        want = Counter((op, s, t, s if op in SOURCE_END else t) for dummy, s, t in rels for op in ops)
        assert got == want
    seq = {(e["node"], e["name"]) + ((e["relationship"]["type"], e["relationship"]["source"],
                                      e["relationship"]["target"]) if e["relationship"] else (None,) * 3):
           e["seq"] for e in install_trace}
    for ty, s, t in rels:
        if ty == CUSTOM:
            # Root's weaving: the target is started before the source is created, and the
            # source's Configure operations sit between its own states (docs/workflows.md).
            def at(node, name, rel=False):
                key = (ty, s, t) if rel else (None,) * 3
                return seq[(node, CFG + name if rel else name) + key]
            assert at(t, "started") < at(s, "creating")
            assert at(s, "configuring") < at(s, "pre_configure_source", True) \
                < at(t, "pre_configure_target", True) < at(s, ordering.STD + "configure")
            assert at(s, ordering.STD + "configure") < at(s, "post_configure_source", True) \
                < at(t, "post_configure_target", True) < at(s, "configured")
            assert at(s, "started") < at(s, "add_target", True) < at(t, "add_source", True)


SERVED = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    h1: {type: tosca.nodes.Compute}
    h2: {type: tosca.nodes.Compute}
    db:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: h2}]
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: h1
        - dependency:
            node: db
            relationship:
              type: tosca.relationships.DependsOn
              interfaces:
                Configure:
                  pre_configure_source: scripts/rec.sh
                  pre_configure_target: scripts/rec.sh
"""


def test_target_operation_never_runs_on_the_wrong_served_machine(tmp_path, monkeypatch):
    """Two machines each served by its own worker (``wfctl worker --serves``), without addresses:
    app's worker cannot reach db's machine, so db's pre_configure_target (woven into app's
    sequence, run for db) fails saying so, rather than running on app's machine."""
    import threading
    from wfengine.operation.ssh import SshOptions
    from wfengine.worker import Worker

    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    record = tmp_path / "ran.txt"
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/rec.sh", 'echo "$WF_OPERATION $WF_NODE x x x" >> %s\n' % record)
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    workers, threads = [], []
    try:
        api.upload_model(space, write(tmp_path, "m.yaml", SERVED), "m")
        api.create_instance(space, "m", "i")
        for name in ("h1_0", "h2_0"):
            w = Worker(api.open_space(opts), threads=2, poll=1.0, ssh_options=SshOptions(serves=(name,)))
            workers.append(w)
            threads.append(threading.Thread(target=w.serve, daemon=True))
            threads[-1].start()
        rec = api.start_workflow(space, "install", "m", "i")
        rec = api.runs.wait_run(space, rec["id"], timeout=120)
        assert rec["status"] == "failed", rec
        (err,) = [e for e in rec["errors"] if e.get("operation")]
        assert err["node"] == "app_0" and err["operation"].endswith("pre_configure_target")
        assert "h2_0" in err["output"] and "no address" in err["output"]
        # pre_configure_source ran (for app, on app's machine); the target's operation never ran
        assert [r[:2] for r in _recorded(record)] == [("pre_configure_source", "app_0")]
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(timeout=30)
        space.close()
