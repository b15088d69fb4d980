# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the pictures of docs/observability.md: the seed install (examples/seed_example, every
Standard operation a 0.3 s script) run by three `wfctl worker` processes on an embedded Space, the
first worker seen inside a script SIGKILLed; then `wfctl timeline` and `wfctl graph` of the run.

    .venv/bin/python scripts/timeline_picture.py [OUTDIR]     # default docs/
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WFCTL = [sys.executable, "-m", "wfengine.cli"]
SCRIPT = 'echo "$WF_NODE $PPID" >> "$OPLOG"\nsleep 0.3\n'


def main() -> int:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs"))
    tmp = tempfile.mkdtemp(prefix="wf-picture-")
    env = dict(os.environ, WF_SPACE=os.path.join(tmp, "space.db"), OPLOG=os.path.join(tmp, "ops.log"),
               WF_CACHE_DIR=os.path.join(tmp, "cache"),
               PYTHONPATH=os.path.join(ROOT, "plugins", "module_utils"))
    with open(os.path.join(tmp, "op.sh"), "w") as f:
        f.write(SCRIPT)
    iface = "      interfaces:\n        Standard: {create: op.sh, configure: op.sh, start: op.sh}\n"
    lines = []
    with open(os.path.join(ROOT, "examples", "seed_example", "app.yaml")) as f:
        for line in f:
            lines.append(line)
            if re.match(r"^      type: tosca\.nodes\.", line):
                lines.append(iface)
    with open(os.path.join(tmp, "app.yaml"), "w") as f:
        f.write("".join(lines))

    def wfctl(*args: str) -> str:
        return subprocess.run(WFCTL + list(args), env=env, check=True, capture_output=True, text=True).stdout

    wfctl("model", os.path.join(tmp, "app.yaml"), "app")
    wfctl("instantiate", "app", "prod")
    procs = [subprocess.Popen(WFCTL + ["worker", "--id", "w%d" % i, "--ttl", "2", "--threads", "4"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(3)]
    try:
        time.sleep(1.0)       # (a picture, not a test) the three register before the run
        run = subprocess.Popen(WFCTL + ["workflow", "install", "app", "prod", "--wait", "--workers", "0"],
                               env=env, stdout=subprocess.PIPE, text=True)
        by_pid = {p.pid: p for p in procs}
        victim = None
        while victim is None:
            if os.path.exists(env["OPLOG"]):
                for line in open(env["OPLOG"]).read().splitlines():
                    if int(line.split()[-1]) in by_pid:
                        victim = by_pid[int(line.split()[-1])]
                        break
            time.sleep(0.01)
        time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        print(run.communicate(timeout=300)[0].strip())
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
    for name in ("timeline-seed.png", "timeline-seed.html"):
        print(wfctl("timeline", "app", "prod", "--out", os.path.join(out, name)).strip())
    with open(os.path.join(out, "graph-seed.mmd"), "w") as f:
        f.write(wfctl("graph", "app", "--format", "mermaid"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
