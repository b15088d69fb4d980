"""Kills a process of the scenario as soon as an operation is in flight, from the controller.

    kill_when_running.py EPHEMERAL_DIR worker|consul-leader|worker-restart [TIMEOUT [MATCH]]

Started (in the background) before the workflow: notes where the operations logs of the test
hosts end (<root>/var/log/wf-worker/execs.log, one JSON line per operation, written when the
operation starts), then polls them every 20 ms.  At the first new line on any host (with MATCH,
a regular expression: the first whose "<node> <operation>" it matches, e.g. "^web_0 .*configure$"):
  worker         SIGKILLs that host's worker, which is then inside that operation (the model's
                 operations take half a second);
  consul-leader  SIGKILLs the Consul server that leads at that moment;
  worker-restart restarts that host's worker through its service manager (wf-service restart:
                 SIGTERM, wait, start), which reports how long the worker took to exit.
Prints one JSON object: the host, service and pid killed (and when: "at", epoch seconds), the run
and the operations then in flight on that host (worker, worker-restart), or the leader's address (consul-leader).
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

eph, what = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 120
match = re.compile(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
roots = sorted(glob.glob(os.path.join(eph, "hosts", "*")))


def log_of(root):
    return os.path.join(root, "var/log/wf-worker/execs.log")


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def pid_of(root, service):
    with open(os.path.join(root, "run/wf-service/%s.pid" % service)) as f:
        return int(f.read().strip())


start = {r: size(log_of(r)) for r in roots}
deadline = time.monotonic() + timeout
while True:
    for root in roots:
        if size(log_of(root)) <= start[root]:
            continue
        with open(log_of(root), "rb") as f:
            f.seek(start[root])
            data = f.read()
        lines = [json.loads(x) for x in data.split(b"\n")[:-1] if x.strip()]  # complete lines only
        if match:
            lines = [r for r in lines if match.search("%s %s" % (r.get("node"), r.get("operation")))]
        if not lines:
            continue
        if what == "worker-restart":
            pid = pid_of(root, "wf-worker")
            res = subprocess.run([sys.executable, os.path.join(root, "usr/local/libexec/ditrit-workflows/wf-service"),
                                  "restart", os.path.join(root, "etc/wf-service/wf-worker.json")],
                                 capture_output=True, text=True, check=False)
            if res.returncode != 0:
                sys.exit("wf-service restart failed: %s" % res.stderr)
            print(json.dumps({"host": os.path.basename(root), "service": "wf-worker", "pid": pid,
                              "run": lines[0]["run"], "restart": json.loads(res.stdout),
                              "in_flight": [{"node": r["node"], "operation": r["operation"]} for r in lines]}))
            sys.exit(0)
        if what == "worker":
            pid = pid_of(root, "wf-worker")
            os.kill(pid, signal.SIGKILL)
            print(json.dumps({"host": os.path.basename(root), "service": "wf-worker", "pid": pid, "at": time.time(),
                              "run": lines[0]["run"],
                              "in_flight": [{"node": r["node"], "operation": r["operation"]} for r in lines]}))
            sys.exit(0)
        for r in roots:  # consul-leader: ask any agent who leads, kill that server
            try:
                leader = json.loads(urllib.request.urlopen(
                    "http://%s:8500/v1/status/leader" % os.path.basename(r), timeout=2).read().decode())
            except Exception:
                continue
            if leader:
                ip = leader.rsplit(":", 1)[0]
                pid = pid_of(os.path.join(eph, "hosts", ip), "consul")
                os.kill(pid, signal.SIGKILL)
                print(json.dumps({"host": ip, "service": "consul", "pid": pid, "at": time.time(), "leader": leader,
                                  "run": lines[0]["run"], "first_operation_on": os.path.basename(root)}))
                sys.exit(0)
        sys.exit("no Consul agent names a leader")
    if time.monotonic() > deadline:
        sys.exit("no operation started within %s s" % timeout)
    time.sleep(0.02)
