"""Templates written with the names real files use (issue 16, items 1, 2 and 5) run like the
same templates written with full names: short names and ``tosca:`` names (TOSCA 1.3 3.1, section 5
"Shorthand Name" / "Type Qualified Name"), the TOSCA 1.0 ``tosca.nodes.BlockStorage``, the
networking types of 1.3 section 8, and types written without ``derived_from``."""
from collections import Counter

import ordering
from engine_helpers import deploy, embedded, run, write

SHORT_NAMES = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  MyApp:
    derived_from: SoftwareComponent
    requirements:
      - database:
          capability: Endpoint.Database
          relationship: tosca:ConnectsTo
topology_template:
  node_templates:
    srv: {type: Compute}
    vol:
      type: tosca.nodes.BlockStorage
      properties: {name: data, size: 1 GB}
    dbms:
      type: tosca:DBMS
      requirements: [{host: srv}]
    db:
      type: Database
      properties: {name: shop}
      requirements: [{host: dbms}]
    app:
      type: MyApp
      requirements:
        - host: srv
        - database: db
        - dependency: {node: vol, relationship: DependsOn}
    net: {type: tosca:Network}
    port:
      type: Port
      requirements:
        - link: net
        - binding: srv
"""

NO_DERIVED_FROM = """\
tosca_definitions_version: tosca_simple_yaml_1_3
capability_types:
  Api: {}
node_types:
  Service:
    capabilities:
      api: Api
  Client:
    requirements:
      - api:
          capability: Api
          relationship: tosca.relationships.ConnectsTo
topology_template:
  node_templates:
    svc: {type: Service}
    cli:
      type: Client
      requirements: [{api: svc}]
"""


def _states(result):
    return Counter(n["state"] for n in result["status"]["nodes"].values())


def test_short_and_qualified_names_install_and_uninstall_in_order(tmp_path):
    """TOSCA 1.3 3.1 / 5.9 / 8.5: every template typed by shorthand or ``tosca:`` name installs in
    the order its relationships give, and uninstalls in reverse."""
    opts = embedded(tmp_path)
    deploy(opts, write(tmp_path, "short.yaml", SHORT_NAMES))
    inst = run(opts, "install")
    assert inst["record"]["status"] == "succeeded"
    nodes = inst["status"]["nodes"]
    assert _states(inst) == {"started": 7}
    kinds = {(src, r["target"]): r["type"] for src, n in nodes.items() for r in n["relationships"]}
    assert kinds[("app_0", "db_0")] == "tosca.relationships.ConnectsTo"
    assert kinds[("app_0", "vol_0")] == "tosca.relationships.DependsOn"
    assert kinds[("port_0", "net_0")] == "tosca.relationships.network.LinksTo"
    assert kinds[("port_0", "srv_0")] == "tosca.relationships.network.BindsTo"
    ordering.check_install(inst["trace"], nodes)
    t = ordering.Trace(inst["trace"], "install")
    for target in ("net_0", "srv_0"):    # LinksTo / BindsTo derive from DependsOn (section 8)
        assert t.seq(target, "started") < t.seq("port_0", "creating")
    un = run(opts, "uninstall")
    assert un["record"]["status"] == "succeeded"
    assert _states(un) == {"deleted": 7}
    ordering.check_uninstall(un["trace"], un["status"]["nodes"])
    t = ordering.Trace(un["trace"], "uninstall")
    for target in ("net_0", "srv_0"):
        assert t.seq("port_0", "stopped") < t.seq(target, "stopping")


def test_types_without_derived_from_get_the_root_workflows(tmp_path):
    """TOSCA 1.3 section 5: every node type derives from tosca.nodes.Root; a type written
    without derived_from still installs (it used to stay ``initial`` in a "succeeded" run) and its
    ConnectsTo source waits for the target."""
    opts = embedded(tmp_path)
    deploy(opts, write(tmp_path, "bare.yaml", NO_DERIVED_FROM))
    inst = run(opts, "install")
    assert inst["record"]["status"] == "succeeded"
    assert _states(inst) == {"started": 2}
    ordering.check_install(inst["trace"], inst["status"]["nodes"])
    t = ordering.Trace(inst["trace"], "install")
    assert t.seq("svc_0", "started") < t.seq("cli_0", "starting")
    un = run(opts, "uninstall")
    assert _states(un) == {"deleted": 2}
    ordering.check_uninstall(un["trace"], un["status"]["nodes"])
