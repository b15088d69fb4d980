"""``--wait`` progress (issue 21): a live bar on a terminal (rich), plain lines when they change
otherwise, nothing with ``--quiet`` or ``--json``."""
import io
import json
import os
import subprocess
import sys

from wfengine import progress

from engine_helpers import EXAMPLE, deploy, embedded

WFCTL = [sys.executable, "-m", "wfengine.cli"]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _report(done, failed=0, ready=1):
    return {"run": "r", "workflow": "install", "done": done, "total": 19, "ready": ready, "running": 2,
            "failed": failed, "states": {"started": done, "creating": 19 - done}}


def test_plain_lines_only_when_something_changed_and_not_too_often(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    rep = progress.reporter(out)
    rep(_report(0))
    rep(_report(0))                  # unchanged: nothing
    clock[0] += 1
    rep(_report(3))                  # changed, but 1 s after the last line: nothing
    rep(_report(3, failed=1))        # a failure: at once
    clock[0] += progress.PLAIN_EVERY
    rep(_report(5, failed=1))
    rep.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "install: 0/19 nodes done, 1 ready, 2 running, 0 failed, 0 s (19 creating, 0 started)",
        "install: 3/19 nodes done, 1 ready, 2 running, 1 failed, 1 s (16 creating, 3 started)",
        "install: 5/19 nodes done, 1 ready, 2 running, 1 failed, 6 s (14 creating, 5 started)"]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_a_live_bar(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")     # (a StringIO has no size: rich would take 80)
    out = _Tty()
    rep = progress.reporter(out)
    for done in (0, 7, 19):
        rep(_report(done))
    rep.close()
    text = out.getvalue()
    assert "19/19" in text and "install" in text and "ETA" in text


def test_quiet_and_json_show_nothing():
    assert progress.reporter(_Tty(), quiet=True) is None
    assert progress.reporter(_Tty(), json_output=True) is None


def test_wait_prints_plain_progress_lines_and_quiet_none(tmp_path):
    opts = embedded(tmp_path)
    deploy(opts, str(EXAMPLE))
    env = dict(os.environ, WF_SPACE=opts.path)
    r = subprocess.run(WFCTL + ["workflow", "install", "m", "i", "--wait"], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines and all(line.startswith("install: ") and "/19 nodes done" in line for line in lines), lines
    assert "19 started" in r.stdout
    r = subprocess.run(WFCTL + ["workflow", "uninstall", "m", "i", "--wait", "--quiet"], env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stderr == "" and "19 deleted" in r.stdout
    r = subprocess.run(WFCTL + ["workflow", "install", "m", "i", "--wait", "--json"], env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stderr == "" and json.loads(r.stdout)["status"] == "succeeded"
