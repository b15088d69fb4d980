"""Concurrent uploads on Consul (the shared cluster; nothing here disturbs it): never a head on
a missing version (issue 17, point 3)."""
from __future__ import annotations

import threading

from wfengine import catalog, deployments, keys
from wfengine.errors import Conflict
from wfengine.space.consul import ConsulSpace

from engine_helpers import EXAMPLE, REPO

OTHER = REPO / "examples" / "webapp" / "app.yaml"


def _race(urls, prefix: str, paths):
    barrier = threading.Barrier(len(paths))
    results, errors = [None] * len(paths), [None] * len(paths)

    def upload(i: int) -> None:
        space = ConsulSpace(url=urls[i % len(urls)], prefix=prefix)
        try:
            barrier.wait()
            results[i] = catalog.upload_model(space, str(paths[i]), "m")
        except Exception as exc:     # noqa: BLE001 (recorded, asserted below)
            errors[i] = exc
        finally:
            space.close()
    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_ten_identical_uploads_on_consul(consul_cluster, consul_space, consul_prefix):
    """10 clients (one per server in turn) upload the same new model at once: all succeed and
    10 instances made afterwards each have the full model."""
    results, errors = _race(consul_cluster.urls, consul_prefix, [EXAMPLE] * 10)
    assert errors == [None] * 10
    expected = results[0]["instances"]
    made = [deployments.create_instance(consul_space, "m", "i%d" % i)["nodes"] for i in range(10)]
    assert expected > 0 and made == [expected] * 10


def test_concurrent_different_contents_on_consul(consul_space, consul_cluster, consul_prefix):
    results, errors = _race(consul_cluster.urls, consul_prefix, [EXAMPLE, OTHER] * 5)
    assert all(e is None or isinstance(e, Conflict) for e in errors), errors
    head = catalog.model_head(consul_space, "m")
    made = [deployments.create_instance(consul_space, "m", "i%d" % i)["nodes"] for i in range(3)]
    assert made == [head["instances"]] * 3
    assert {k.split("/")[3] for k in consul_space.keys(keys.model_versions("m"))} == {head["digest"]}
