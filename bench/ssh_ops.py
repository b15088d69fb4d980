# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scripts over SSH against the same scripts run on the worker: the cost of an operation on a
remote host.

Model: H Compute hosts, each hosting N software components whose create, configure and start
run a one-line script (``true``); operations of one host run one at a time (TOSCA hosted nodes
concurrency), hosts in parallel.  ``local``: the hosts have no address, the scripts run on the
worker; ``ssh``: each host is a real loopback sshd (tests/sshd_hosts.py), reached agentless with
one master connection per host.  Embedded Space, one in-process worker, medians of R runs::

    .venv/bin/python bench/ssh_ops.py [--hosts 3] [--per-host 10] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from wfengine import api  # noqa: E402
from wfengine.operation.ssh import SshOptions  # noqa: E402

from sshd_hosts import SshHosts  # noqa: E402


def write_model(folder: str, hosts: int, per_host: int, remote: bool) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "op.sh"), "w") as fh:
        fh.write("true\n")
    lines = ["tosca_definitions_version: tosca_simple_yaml_1_3",
             "topology_template:",
             "  inputs:",
             "    user: {type: string}",
             "    key: {type: string}",
             "  node_templates:"]
    for h in range(hosts):
        lines += ["    host%d:" % h, "      type: tosca.nodes.Compute"]
        if remote:
            lines += ["      attributes: {public_address: {get_input: addr%d}}" % h,
                      "      capabilities:",
                      "        endpoint:",
                      "          properties:",
                      "            credential: {user: {get_input: user}, token_type: private_key, "
                      "token: {get_input: key}}"]
        for c in range(per_host):
            lines += ["    c%d_%d:" % (h, c), "      type: tosca.nodes.SoftwareComponent",
                      "      requirements: [{host: host%d}]" % h,
                      "      interfaces: {Standard: {create: op.sh, configure: op.sh, start: op.sh}}"]
    if remote:
        lines[3:3] = ["    addr%d: {type: string}" % h for h in range(hosts)]
    path = os.path.join(folder, "app.yaml")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def one(tmp: str, mode: str, hosts: int, per_host: int, machines, inventory: str) -> dict:
    opts = api.SpaceOptions(backend="embedded", path=os.path.join(tmp, "%s-%f.db" % (mode, time.time())))
    space = api.open_space(opts)
    model = write_model(os.path.join(tmp, "model-" + mode), hosts, per_host, mode == "ssh")
    api.upload_model(space, model, "b")
    inputs = {"user": machines.user, "key": machines.client_key}
    if mode == "ssh":
        inputs.update({"addr%d" % h: m.address for h, m in enumerate(machines.machines)})
    api.create_instance(space, "b", "i", inputs=inputs)
    ssh = SshOptions(inventory=inventory, known_hosts=machines.known_hosts)
    t0 = time.monotonic()
    rec = api.start_workflow(space, "install", "b", "i")
    rec = api.run_with_local_workers(opts, space, rec["id"], 1, timeout=600, ssh_options=ssh)
    wall = time.monotonic() - t0
    assert rec["status"] == "succeeded", api.summary(space, rec["id"])
    logs = api.logs(space, "b", "i")
    space.close()
    ops = len(logs)
    return {"wall": wall, "ops": ops, "op_ms": 1000 * statistics.median(r["duration"] for r in logs)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--per-host", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--addresses", default="127.0.0.61,127.0.0.62,127.0.0.63")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="wf-bench-ssh-")
    os.environ["WF_CACHE_DIR"] = os.path.join(tmp, "cache")
    machines = SshHosts(os.path.join(tmp, "machines"), args.addresses.split(",")[:args.hosts])
    machines.start()
    inventory = os.path.join(tmp, "inventory.yml")
    with open(inventory, "w") as fh:
        fh.write("all: {vars: {ansible_python_interpreter: /usr/bin/python3}}\n")
    try:
        out = {}
        for mode in ("local", "ssh"):
            runs = [one(tmp, mode, args.hosts, args.per_host, machines, inventory) for _ in range(args.repeat)]
            out[mode] = {"wall_s": round(statistics.median(r["wall"] for r in runs), 3),
                         "operations": runs[0]["ops"],
                         "op_ms_median": round(statistics.median(r["op_ms"] for r in runs), 1)}
            out[mode]["ops_per_s"] = round(out[mode]["operations"] / out[mode]["wall_s"], 1)
        print(json.dumps({"hosts": args.hosts, "per_host": args.per_host, "repeat": args.repeat,
                          **out}, indent=2))
    finally:
        machines.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
