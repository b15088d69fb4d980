"""Stable identities (issue 19, docs/day2.md): a new generation expanded over the previous one keeps
the ids of the node and relationship instances that remain, and their hosts."""
from wfengine.instances import expand, hosting_map, root_of
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE, model_yaml, write

V2 = EXAMPLE.parent / "app_v2.yaml"


def _hosts(nodes):
    return {nid: n["host"] for nid, n in nodes.items()}


def _rels(nodes):
    return {(r["source"], r["requirement"], r["target"]): r["id"] for n in nodes.values() for r in n["out"]}


def _root_by_links(nodes, nid):
    while nodes[nid]["host"]:
        nid = nodes[nid]["host"]
    return nid


def test_scale_out_keeps_ids_and_hosts_and_numbers_new_instances_above():
    v1 = expand(load_model(str(EXAMPLE), []))
    v2 = expand(load_model(str(V2), []), previous=v1)
    assert len(v1) == 19 and len(v2) == 28
    # every old id is still there, on the same host
    assert {nid: v2[nid]["host"] for nid in v1} == _hosts(v1)
    novel = sorted(set(v2) - set(v1))
    assert novel == sorted(["srvA_3", "E_0"] + ["A_%d" % k for k in range(9, 16)])
    # one new A on each old srvA, four on the new one
    per_host = {}
    for nid in novel:
        if v2[nid]["template"] == "A":
            per_host.setdefault(v2[nid]["host"], []).append(nid)
    assert {h: len(ids) for h, ids in per_host.items()} == {"srvA_0": 1, "srvA_1": 1, "srvA_2": 1, "srvA_3": 4}
    assert per_host["srvA_0"] == ["A_9"]
    # relationship instances between kept nodes keep their ids
    old_rels, new_rels = _rels(v1), _rels(v2)
    assert all(new_rels[k] == rid for k, rid in old_rels.items())
    assert len(new_rels) - len(old_rels) == 7 * 4 + 2    # 7 new A (host, B, 2 C each), E (host, B); srvA_3 none
    # without a previous generation, the numbering of a fresh instance is unchanged
    fresh = expand(load_model(str(V2), []))
    assert fresh["A_4"]["host"] == "srvA_1" and fresh["A_3"]["host"] == "srvA_0"
    assert v2["A_3"]["host"] == "srvA_1"     # the renumbering (A_3 moving to srvA_0) is gone


def test_scale_in_drops_the_highest_numbers_of_each_host_and_back_gives_the_first_ids():
    v1 = expand(load_model(str(EXAMPLE), []))
    v2 = expand(load_model(str(V2), []), previous=v1)
    back = expand(load_model(str(EXAMPLE), []), previous=v2)
    assert _hosts(back) == _hosts(v1)
    assert _rels(back) == _rels(v1)


def test_scale_in_within_a_host_keeps_the_lowest_numbers(tmp_path):
    def model(per_host, hosts):
        return write(tmp_path, "m%d%d.yaml" % (per_host, hosts), model_yaml("""
            srv:
              type: tosca.nodes.Compute
              capabilities: {scalable: {properties: {default_instances: %d}}}
            app:
              type: tosca.nodes.SoftwareComponent
              capabilities: {scalable: {properties: {default_instances: %d, max_instances: 9}}}
              requirements: [{host: srv}]
        """ % (hosts, per_host)))
    g1 = expand(load_model(model(2, 2), []))          # app_0, app_1 on srv_0; app_2, app_3 on srv_1
    g2 = expand(load_model(model(3, 2), []), previous=g1)
    assert {n: g2[n]["host"] for n in g2 if n.startswith("app")} == {
        "app_0": "srv_0", "app_1": "srv_0", "app_4": "srv_0",
        "app_2": "srv_1", "app_3": "srv_1", "app_5": "srv_1"}
    g3 = expand(load_model(model(1, 2), []), previous=g2)
    assert sorted(n for n in g3 if n.startswith("app")) == ["app_0", "app_2"]
    # the hosts scaled in: the last host goes with what it hosts
    g4 = expand(load_model(model(1, 1), []), previous=g3)
    assert sorted(g4) == ["app_0", "srv_0"]
    # scaled out again: new numbers, never an id that means another placement in g2
    g5 = expand(load_model(model(2, 2), []), previous=g4)
    assert sorted(g5) == ["app_0", "app_1", "app_2", "app_3", "srv_0", "srv_1"]
    assert (g5["app_1"]["host"], g5["app_2"]["host"], g5["app_3"]["host"]) == ("srv_0", "srv_1", "srv_1")


def test_root_of_is_right_for_every_node_of_an_updated_generation():
    v1 = expand(load_model(str(EXAMPLE), []))
    v2 = expand(load_model(str(V2), []), previous=v1)
    for nodes in (v1, v2):
        hosting = hosting_map(nodes)
        for nid in nodes:
            assert root_of(nid, hosting) == _root_by_links(nodes, nid), nid
    assert "~roots" not in hosting_map(v1)           # a fresh generation's map stays small
    assert set(hosting_map(v2)["~roots"]) <= set(n for n in v2 if v2[n]["template"] == "A")
