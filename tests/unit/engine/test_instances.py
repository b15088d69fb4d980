"""Instance expansion: scaling along HostedOn, relationship instances."""
from wfengine.instances import expand
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE, SEED, model_yaml, write
import pytest


def test_example_gives_19_instances():
    nodes = expand(load_model(str(EXAMPLE), []))
    assert len(nodes) == 19
    by_tpl = {}
    for n in nodes.values():
        by_tpl[n["template"]] = by_tpl.get(n["template"], 0) + 1
    assert by_tpl == {"srvA": 3, "A": 9, "srvB": 1, "B": 1, "srvC": 1, "C": 2, "srvD": 1, "D": 1}
    # each A instance: its own host, every B and C instance
    a4 = nodes["A_4"]
    assert a4["host"] == "srvA_1"
    assert sorted((r["type"].rsplit(".", 1)[1], r["target"]) for r in a4["out"]) == \
        [("ConnectsTo", "B_0"), ("ConnectsTo", "C_0"), ("ConnectsTo", "C_1"), ("HostedOn", "srvA_1")]
    assert len(nodes["C_1"]["in"]) == 9 + 1  # every A instance and D_0 connect to it


@pytest.mark.skipif(not SEED.is_dir(), reason="needs ../shared/seed beside the repository")
def test_seed_model_gives_19_instances():
    from wfengine.tosca.templates import load_library
    lib = load_library(str(SEED / "normative.yaml"), [])
    nodes = expand(load_model(str(SEED / "test_model.yaml"), [lib]))
    assert len(nodes) == 19


def test_nested_scaling_multiplies_along_hosting(tmp_path):
    path = write(tmp_path, "m.yaml", model_yaml("""
        rack:
          type: tosca.nodes.Root
          capabilities: {scalable: {properties: {default_instances: 2}}}
        vm:
          type: tosca.nodes.Compute
          capabilities: {scalable: {properties: {default_instances: 3}}}
          requirements: [{host: {node: rack, relationship: tosca.relationships.HostedOn}}]
        app:
          type: tosca.nodes.SoftwareComponent
          capabilities: {scalable: {properties: {default_instances: 2, max_instances: 4}}}
          requirements: [{host: vm}, {dependency: db}]
        db:
          type: tosca.nodes.SoftwareComponent
          requirements: [{host: vm}]
    """))
    nodes = expand(load_model(path, []))

    def count(t):
        return sum(1 for n in nodes.values() if n["template"] == t)
    assert (count("rack"), count("vm"), count("app"), count("db")) == (2, 6, 12, 6)
    # every app instance sits on a vm instance that sits on a rack instance
    for n in nodes.values():
        if n["template"] == "app":
            vm = nodes[n["host"]]
            assert vm["template"] == "vm" and nodes[vm["host"]]["template"] == "rack"
            # DependsOn links to every db instance
            assert sorted(r["target"] for r in n["out"] if r["requirement"] == "dependency") == \
                sorted(k for k, v in nodes.items() if v["template"] == "db")
    # hosts know what they host: 2 apps + 1 db per vm
    assert all(len(nodes[v]["in"]) == 3 for v in nodes if nodes[v]["template"] == "vm")


def _root_by_links(nodes, nid):
    while nodes[nid]["host"]:
        nid = nodes[nid]["host"]
    return nid


def test_root_host_from_the_id_alone_matches_the_hosting_links(tmp_path):
    from wfengine.instances import hosting_map, root_of
    from generator import Shape, model_yaml as layered
    path = tmp_path / "layers.yaml"
    path.write_text(layered(Shape(layers=3, width=3)))
    for model in (str(EXAMPLE), str(path)):
        nodes = expand(load_model(model, []))
        hosting = hosting_map(nodes)
        assert hosting, model
        for nid in nodes:
            assert root_of(nid, hosting) == _root_by_links(nodes, nid), (model, nid)
    nodes = expand(load_model(str(EXAMPLE), []))
    assert hosting_map(nodes)["A"] == ["srvA", 3]


def test_root_host_of_unknown_or_malformed_input_is_the_node_itself():
    from wfengine.instances import root_of
    assert root_of("lonely", {}) == "lonely"
    assert root_of("A_4", {"A": ["srvA", 0]}) == "A_4"
    assert root_of("A_4", {"A": "srvA"}) == "A_4"


def test_two_hosted_on_requirements_on_one_host_are_one_host_on_two_are_refused(tmp_path):
    """tosca-parser's test_requirements.yaml names the same web server twice (req1 and host);
    that is one host.  Two different hosts cannot be: refused, naming both."""
    from wfengine.errors import ModelError
    body = """
        srv: {type: tosca.nodes.Compute}
        other: {type: tosca.nodes.Compute}
        app:
          type: tosca.nodes.SoftwareComponent
          requirements:
            - req1: {node: srv, relationship: tosca.relationships.HostedOn}
            - host: %s
    """
    nodes = expand(load_model(write(tmp_path, "m.yaml", model_yaml(body % "srv")), []))
    assert nodes["app_0"]["host"] == "srv_0"
    assert sorted(r["requirement"] for r in nodes["app_0"]["out"]) == ["host", "req1"]
    with pytest.raises(ModelError, match=r"app: template has 2 HostedOn requirements on different templates "
                                         r"\(req1 -> srv, host -> other\)"):
        expand(load_model(write(tmp_path, "m2.yaml", model_yaml(body % "other")), []))
