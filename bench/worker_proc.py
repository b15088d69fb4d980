# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A benchmark worker process: the engine's ``Worker`` (what ``wfctl worker`` runs) on a counting
Space, with the benchmark's executor.  It writes ``<stats>.ready`` once its Space is open, serves
until SIGTERM, then writes its counters, CPU time and peak memory to ``<stats>`` (JSON).

A separate process per worker, as in production: each has its own interpreter (no GIL shared
with the manager or the other workers), its own HTTP connection pool and its own Consul session.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CountingSpace, HttpCounter, cpu_seconds, executor_for, vm_hwm_kib  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="consul")
    p.add_argument("--url")
    p.add_argument("--path")
    p.add_argument("--prefix", required=True)
    p.add_argument("--impl", default="noop")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--lanes", type=int, default=0, help="batch lanes (0: the Space's default)")
    p.add_argument("--id", required=True)
    p.add_argument("--stats", required=True)
    args = p.parse_args()

    http = HttpCounter.install() if args.backend == "consul" else None
    from wfengine import api
    from wfengine.worker import Worker, WorkerInterrupt
    inner = api.open_space(api.SpaceOptions(backend=args.backend, url=args.url, path=args.path,
                                            prefix=args.prefix))
    space = CountingSpace(inner)
    worker = Worker(space, worker_id=args.id, threads=args.threads, lanes=args.lanes or None,
                    executor=executor_for(args.impl))

    def stop(signum, frame):
        if not worker.stopping:
            worker.stop()
            raise WorkerInterrupt()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(args.stats + ".ready", "w") as fh:
        fh.write(str(os.getpid()))
    try:
        worker.serve()
    except WorkerInterrupt:
        pass
    out = {"id": args.id, "pid": os.getpid(), "worker": dict(worker.stats),
           "space": space.stats.snapshot(), "http": http.stats.snapshot() if http else None,
           "peak_rss_kib": vm_hwm_kib(), "cpu_s": cpu_seconds()}
    tmp = args.stats + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, args.stats)
    try:
        space.close()
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
