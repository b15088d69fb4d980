"""Zones (locality.py): related root hosts share an owner, a run's nodes split evenly, a small
run stays whole, and a malformed map is ignored."""
from wfengine.instances import expand, hosting_map
from wfengine.locality import ZONE_NODES, Zones, hashed_owner, owns_a_zone, zone_map, zone_owner
from wfengine.tosca.templates import load_model

from engine_helpers import EXAMPLE


def _cylinder(layers=4, width=60, hosts=2, comps=2):
    """The benchmark's shape, built directly: layer ``l`` stack ``s`` is a host template scaled
    ``hosts`` with ``comps`` components per host; a component ConnectsTo the components of stack
    ``s`` of the next layer and DependsOn the hosts of stacks ``s+1`` and ``s+2`` (mod width)."""
    nodes = {}

    def add(nid, tpl, host):
        nodes[nid] = {"id": nid, "template": tpl, "type": "t", "host": host, "out": [], "in": []}

    def link(src, tgt, kind):
        rel = {"id": "%s:%s:%s" % (src, kind, tgt), "type": kind, "requirement": kind,
               "source": src, "target": tgt, "source_type": "t", "target_type": "t"}
        nodes[src]["out"].append(rel)
        nodes[tgt]["in"].append(rel)

    for l in range(layers):
        for s in range(width):
            for h in range(hosts):
                add("h%d_%d_%d" % (l, s, h), "h%d_%d" % (l, s), None)
                for c in range(comps):
                    k = h * comps + c
                    add("c%d_%d_%d" % (l, s, k), "c%d_%d" % (l, s), "h%d_%d_%d" % (l, s, h))
                    link("c%d_%d_%d" % (l, s, k), "h%d_%d_%d" % (l, s, h), "HostedOn")
    for l in range(layers - 1):
        for s in range(width):
            for k in range(hosts * comps):
                src = "c%d_%d_%d" % (l, s, k)
                for j in range(hosts * comps):
                    link(src, "c%d_%d_%d" % (l + 1, s, j), "ConnectsTo")
                for d in (1, 2):
                    for h in range(hosts):
                        link(src, "h%d_%d_%d" % (l + 1, (s + d) % width, h), "DependsOn")
    return nodes


def _owners(nodes, peers, run="r1", spread=False):
    zones = Zones(zone_map(nodes, spread=spread), hosting_map(nodes))
    assert zones
    return {n: zone_owner(run, zones.zone(n), zones.count, peers) for n in nodes}


def _cut(nodes, owner):
    rels = [r for n in nodes.values() for r in n["out"]]
    return sum(owner[r["source"]] != owner[r["target"]] for r in rels) / float(len(rels))


def test_related_hosts_share_an_owner_and_the_nodes_split_evenly():
    nodes = _cylinder()
    peers = ["w0", "w1", "w2"]
    owner = _owners(nodes, peers)
    share = {p: sum(1 for o in owner.values() if o == p) for p in peers}
    assert min(share.values()) >= 0.9 * len(nodes) / 3, share
    # one owner per root host: a host and what it hosts go together
    for n in nodes.values():
        if n["host"]:
            assert owner[n["id"]] == owner[n["host"]]
    zoned = _cut(nodes, owner)
    # hashing each root host on its own (the previous scheme) cuts about 2/3 of the links
    # between hosts; contiguous zones only those at the n boundaries of the order
    hashed = _cut(nodes, {n: hashed_owner(nodes[n]["host"] or n, peers) for n in nodes})
    assert zoned < 0.1, zoned
    assert zoned < hashed / 4, (zoned, hashed)


def test_a_run_smaller_than_a_zone_has_one_zone():
    nodes = expand(load_model(str(EXAMPLE), []))
    assert len(nodes) < 2 * ZONE_NODES
    zmap = zone_map(nodes)
    assert zmap["count"] == 1
    owner = _owners(nodes, ["a", "b", "c"])
    assert len(set(owner.values())) == 1
    # other runs start their ranges elsewhere: small runs do not all go to the same worker
    firsts = {_owners(nodes, ["a", "b", "c"], run="run-%d" % i)["A_0"] for i in range(30)}
    assert firsts == {"a", "b", "c"}


def test_a_small_run_of_real_operations_is_spread_over_the_workers():
    """Issue 20: the seed with scripts on three workers, kept whole, queued 237 operations on one
    worker.  Its 6 root hosts get a zone each: every worker owns some, a host and what it hosts
    stay together, related hosts still tend to share an owner."""
    nodes = expand(load_model(str(EXAMPLE), []))
    roots = {n for n, v in nodes.items() if not v.get("host")}
    assert zone_map(nodes, spread=True)["count"] == len(roots) == 6
    for i in range(10):
        owner = _owners(nodes, ["a", "b", "c"], run="run-%d" % i, spread=True)
        assert set(owner.values()) == {"a", "b", "c"}
        for n in nodes.values():
            if n["host"]:
                assert owner[n["id"]] == owner[n["host"]]
    # a large run is cut as before: a zone per root host or per ZONE_NODES nodes is the same split
    big = _cylinder()
    a, b = _owners(big, ["w0", "w1", "w2"]), _owners(big, ["w0", "w1", "w2"], spread=True)
    assert _cut(big, b) < 0.1 and sum(a[n] != b[n] for n in big) < 0.05 * len(big)


def test_hashed_owner_is_the_same_on_every_worker_and_spreads():
    """Runs without a zone map and served hosts: every worker must compute the same owner from
    the same registrations, whatever order it lists them in, and keys must spread."""
    peers = ["w0", "w1", "w2"]
    owners = {k: hashed_owner(k, peers) for k in ("h%d" % i for i in range(300))}
    assert all(hashed_owner(k, list(reversed(peers))) == o for k, o in owners.items())
    share = {p: sum(1 for o in owners.values() if o == p) for p in peers}
    assert min(share.values()) > 60, share
    # a worker leaving moves only its own keys
    after = {k: hashed_owner(k, ["w0", "w2"]) for k in owners}
    assert all(after[k] == o for k, o in owners.items() if o != "w1")


def test_zones_are_contiguous_ranges_of_the_peers():
    peers = ["a", "b", "c", "d"]
    for count in (1, 3, 4, 7, 62):
        seq = [zone_owner("r", z, count, peers) for z in range(count)]
        changes = sum(1 for i in range(1, count) if seq[i] != seq[i - 1])
        assert changes <= len(peers) - 1, seq
        if count >= len(peers):
            assert set(seq) == set(peers)


def test_which_workers_own_a_zone():
    peers = ["w0", "w1", "w2", "w3"]
    for run in ("r1", "r2", "20261127T000000-abcdef"):
        for count in (1, 2, 3, 4, 9):
            owners = {zone_owner(run, z, count, peers) for z in range(count)}
            assert len(owners) == min(count, len(peers))
            assert [w for w in peers if owns_a_zone(run, count, peers, w)] == sorted(owners)
    assert not owns_a_zone("r1", 9, peers, "w9")      # not a peer (yet)


def test_per_instance_zones_and_malformed_maps():
    hosting = {"app": ["vm", 2]}
    z = Zones({"count": 3, "of": {"vm": [0, 2], "db": 1}}, hosting)
    assert (z.zone("vm_1"), z.zone("app_3"), z.zone("app_0"), z.zone("db_0")) == (2, 2, 0, 1)
    assert z.zone("unknown_0") is None and z.zone("vm_9") is None
    for bad in (None, [], {"count": 0, "of": {}}, {"count": 2, "of": {"vm": 2}},
                {"count": 2, "of": {"vm": [0, "1"]}}, {"count": 2, "of": {"vm": True}},
                {"count": "2", "of": {}}, {"count": 2, "of": {"vm": []}}):
        assert not Zones(bad, hosting), bad
