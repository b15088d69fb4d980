# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy then undeploy a service template with xOpera, in one process, timing each phase.

Runs with bench/.venv-opera/bin/python (never with the engine's venv).  Prints one JSON line:
``parse_s`` (parse + instantiate, which our engine does at model upload and instantiate),
``deploy_s`` and ``undeploy_s`` (the workflow itself: the numbers compared with the engine's run
wall time), ``peak_rss_kib``.  Same calls as ``opera deploy`` / ``opera undeploy`` (one worker
thread, xOpera's default), without the CLI's process start-up.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import PurePath


def _hwm() -> int:
    with open("/proc/self/status") as fh:
        return int(re.search(r"VmHWM:\s+(\d+)", fh.read()).group(1))


def main() -> int:
    template, storage_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    from opera_tosca_parser.commands.parse import parse_service_template
    from opera.instance.topology import Topology
    from opera.storage import Storage
    import opera
    os.makedirs(storage_dir, exist_ok=True)
    os.chdir(os.path.dirname(os.path.abspath(template)))
    storage = Storage.create(storage_dir)
    storage.write_json({}, "inputs")
    storage.write(str(template), "root_file")
    out = {"version": getattr(opera, "__version__", None)}
    t0 = time.perf_counter()
    tpl, workdir = parse_service_template(PurePath(template), {})
    topology = Topology.instantiate(tpl, storage)
    t1 = time.perf_counter()
    topology.deploy(False, workdir, workers)
    t2 = time.perf_counter()
    # undeploy as `opera undeploy` does: from the stored state
    tpl, workdir = parse_service_template(PurePath(template), {})
    topology = Topology.instantiate(tpl, storage)
    t3 = time.perf_counter()
    topology.undeploy(False, workdir, workers)
    t4 = time.perf_counter()
    out.update({"parse_s": round(t1 - t0, 4), "deploy_s": round(t2 - t1, 4),
                "reparse_s": round(t3 - t2, 4), "undeploy_s": round(t4 - t3, 4),
                "nodes": len(topology.nodes), "peak_rss_kib": _hwm()})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
