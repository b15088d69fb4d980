"""A node_filter-chosen host and input-scaled templates, installed and uninstalled on the
embedded Space (TOSCA 1.3 3.8.2 requirement assignment with node_filter, 5.5.13 Scalable)."""
from collections import Counter

from wfengine import api

from engine_helpers import embedded, model_yaml, run, write

MODEL = model_yaml("""\
    small:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 2, mem_size: 2 GB}}
    big:
      type: tosca.nodes.Compute
      capabilities:
        host: {properties: {num_cpus: 16, mem_size: 64 GB}}
        scalable:
          properties: {min_instances: 1, default_instances: {get_input: workers}, max_instances: 4}
    db:
      type: tosca.nodes.DBMS
      requirements:
        - host:
            node_filter:
              capabilities:
                - host:
                    properties:
                      - num_cpus: {in_range: [1, 4]}
                      - mem_size: {greater_or_equal: 512 MB}
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: big
        - dependency: db
    """, extra="""\
topology_template:
  inputs:
    workers: {type: integer, default: 1}
""").replace("topology_template:\n  node_templates:", "  node_templates:", 1)


def test_node_filter_host_and_input_scaling_install_and_uninstall(tmp_path):
    opts = embedded(tmp_path)
    path = write(tmp_path, "m.yaml", MODEL)
    space = api.open_space(opts)
    try:
        up = api.upload_model(space, path, "m")
        assert up["instances"] == 1 + 1 + 1 + 1            # workers defaults to 1
        created = api.create_instance(space, "m", "i", inputs={"workers": 3})
        assert created["nodes"] == 1 + 3 + 1 + 3            # small, big x3, db, app x3 (one per big)
    finally:
        space.close()
    inst = run(opts, "install")
    assert inst["record"]["status"] == "succeeded"
    nodes = inst["status"]["nodes"]
    assert Counter(n["state"] for n in nodes.values()) == {"started": 8}
    assert Counter(n["template"] for n in nodes.values()) == {"small": 1, "big": 3, "db": 1, "app": 3}
    # the node_filter chose `small` (2 CPUs, 2 GB), not `big` (16 CPUs)
    hosts = {(r["requirement"], r["target"]) for r in nodes["db_0"]["relationships"]}
    assert ("host", "small_0") in hosts
    seq = {(e["node"], e["name"].rsplit(".", 1)[-1]): e["seq"] for e in inst["trace"] if e["kind"] == "operation"
           and e["relationship"] is None}
    assert seq[("small_0", "start")] < seq[("db_0", "create")]
    for k in range(3):
        assert seq[("big_%d" % k, "start")] < seq[("app_%d" % k, "create")]
        assert seq[("db_0", "start")] < seq[("app_%d" % k, "create")]
    un = run(opts, "uninstall")
    assert un["record"]["status"] == "succeeded"
    assert Counter(n["state"] for n in un["status"]["nodes"].values()) == {"deleted": 8}


REL_TEMPLATE_MODEL = model_yaml("""\
    vm: {type: tosca.nodes.Compute}
    web:
      type: tosca.nodes.WebServer
      requirements: [{host: vm}]
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: vm
        - site:
            node: web
            relationship:
              type: link
              properties: {credential: {user: alice, token: t0k}}
    """, extra="""\
topology_template:
  relationship_templates:
    link:
      type: tosca.relationships.ConnectsTo
      interfaces:
        Configure:
          post_configure_source:
            implementation: scripts/link.sh
            inputs:
              MARK: {get_input: mark}
              WHO: {get_property: [SELF, credential, user]}
  inputs:
    mark: {type: string}
""").replace("topology_template:\n  node_templates:", "  node_templates:", 1)


def test_a_relationship_template_operation_runs_with_its_refined_properties(tmp_path, monkeypatch):
    """TOSCA 1.3 3.9 relationship_templates, 3.8.2 extended relationship assignment naming one:
    its Configure implementation runs once per relationship instance, and get_property SELF reads
    the properties the assignment refines."""
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "link.sh").write_text('echo "linked by $WHO" >> "$MARK"\n')
    mark = tmp_path / "mark.txt"
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, write(tmp_path, "m.yaml", REL_TEMPLATE_MODEL), "m")
        api.create_instance(space, "m", "i", inputs={"mark": str(mark)})
    finally:
        space.close()
    inst = run(opts, "install")
    assert inst["record"]["status"] == "succeeded"
    assert mark.read_text() == "linked by alice\n"
    assert run(opts, "uninstall")["record"]["status"] == "succeeded"
