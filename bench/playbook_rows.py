# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Playbook operations against xOpera, in one sitting (issue 20, item 5): the seed flattened
with the no-op playbook on create, configure and start (xOpera's benchmark template), ours with
the fork server (``playbook``) and with one ``ansible-playbook`` process per operation
(``playbook-process``), xOpera deploying the same flattened file with 1 and 4 workers.  Rounds
alternate the implementations so that a change of load touches all of them; medians of
``--repeats``.  The same ``run_child`` / ``run_opera`` calls as ``bench/run.py``::

    .venv/bin/python bench/playbook_rows.py [--sizes seed] [--setups embedded-1] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from generator import write_size  # noqa: E402
from run import RAW, SETUPS, opera_python, opera_version, run_child, run_opera, start_cluster  # noqa: E402


def _median(values: List[float]) -> str:
    return "%.1f s (%.1f-%.1f)" % (statistics.median(values), min(values), max(values)) if values else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="seed")
    p.add_argument("--setups", default="embedded-1")
    p.add_argument("--impls", default="playbook,playbook-process")
    p.add_argument("--opera-workers", default="1,4")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    opy = opera_python(install=True)
    setups = args.setups.split(",")
    cluster = None
    urls: List[str] = []
    if any(SETUPS[s]["backend"] == "consul" for s in setups):
        cluster = start_cluster(argparse.Namespace(consul_url=None))
        urls = cluster.urls
    try:
        return _measure(args, setups, urls, opy)
    finally:
        if cluster is not None:
            cluster.stop()


def _measure(args: argparse.Namespace, setups: List[str], urls: List[str], opy: Any) -> int:
    out: Dict[str, Any] = {"opera_version": opera_version(opy) if opy else None, "rows": [],
                           "loadavg_start": os.getloadavg()}
    for size in args.sizes.split(","):
        info = write_size(size, os.path.join(RAW, "models"))
        ops = 3 * info["node_instances"]    # create, configure, start: a playbook each
        for rep in range(args.repeats):
            for setup in setups:
                for impl in args.impls.split(","):
                    spec = {"size": size, "model": info["playbook_model"], "setup": setup, "impl": impl,
                            "repeat": rep, "backend": SETUPS[setup]["backend"],
                            "workers": SETUPS[setup]["workers"], "urls": urls, "timeout": args.timeout}
                    res = run_child(spec, args.timeout * 2.5)
                    wf = (res.get("workflows") or {}).get("install") or {}
                    row = {"size": size, "who": "%s %s" % (setup, impl), "repeat": rep,
                           "install_s": wf.get("wall_s"), "status": wf.get("status"),
                           "error": res.get("error")}
                    out["rows"].append(row)
                    print(json.dumps(row), flush=True)
            if opy:
                for n in args.opera_workers.split(","):
                    res = run_opera(opy, info["playbook_flat"], args.timeout * 2, int(n))
                    row = {"size": size, "who": "xOpera %s worker(s)" % n, "repeat": rep,
                           "install_s": res.get("deploy_s"), "error": res.get("error")}
                    out["rows"].append(row)
                    print(json.dumps(row), flush=True)
        out.setdefault("operations", {})[size] = ops
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    # the table: medians per size and implementation, ratio to xOpera with the most workers
    for size in args.sizes.split(","):
        by: Dict[str, List[float]] = {}
        for r in out["rows"]:
            if r["size"] == size and r.get("install_s") is not None and not r.get("error"):
                by.setdefault(r["who"], []).append(r["install_s"])
        ref_key = "xOpera %s worker(s)" % args.opera_workers.split(",")[-1]
        ref = statistics.median(by[ref_key]) if by.get(ref_key) else None
        n_ops = out["operations"].get(size)
        print("\n| %s | install / deploy | per playbook operation (wall / %s) | / %s |" % (size, n_ops, ref_key))
        print("|---|---|---|---|")
        for who, values in sorted(by.items()):
            med = statistics.median(values)
            per = "%.0f ms" % (1000 * med / n_ops) if n_ops else "-"
            ratio = "%.2f" % (med / ref) if ref else "-"
            print("| %s | %s | %s | %s |" % (who, _median(values), per, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
