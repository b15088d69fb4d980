"""Re-runs (issue 19): ``wfctl workflow install`` on an installed instance runs nothing and says so
(``--force`` runs it again); after a failed install it continues that run, as ``--resume``."""
import json
from collections import Counter

import pytest

from wfengine import api, cli

from engine_helpers import embedded, write
from test_script_failure_resume import MODEL


def _runs(opts):
    space = api.open_space(opts)
    try:
        return api.instance_runs(space, "m", "i"), api.logs(space, "m", "i")
    finally:
        space.close()


def test_install_again_does_nothing_and_after_a_failure_continues(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "scripts").mkdir()
    write(tmp_path, "scripts/ok.sh", "echo ok $WF_NODE $WF_OPERATION\n")
    write(tmp_path, "scripts/needs_flag.sh", """\
        if [ ! -e "$FLAG" ]; then echo "no flag at $FLAG" >&2; exit 7; fi
        echo configured
    """)
    path = write(tmp_path, "m.yaml", MODEL)
    flag = tmp_path / "flag"
    opts = embedded(tmp_path)
    base = ["--space", opts.path]
    assert cli.main(base + ["model", path, "m"]) == 0
    assert cli.main(base + ["instantiate", "m", "i", "-i", "flag=%s" % flag]) == 0
    install = base + ["workflow", "install", "m", "i", "--wait", "--timeout", "120"]
    assert cli.main(install) == 1                      # db_0 configure fails
    capsys.readouterr()
    flag.write_text("fixed")
    assert cli.main(install) == 0                      # continues the failed run
    cap = capsys.readouterr()
    assert "continuing it from where it stopped" in cap.err and "succeeded" in cap.out
    runs, logs = _runs(opts)
    assert [(r["workflow"], r["status"]) for r in runs] == [("install", "succeeded")]
    ran = Counter((r["node"], r["operation"].rsplit(".", 1)[1], r["status"]) for r in logs)
    assert ran[("db_0", "configure", "failed")] == 1 and ran[("db_0", "configure", "ok")] == 1
    assert all(v == 1 for v in ran.values())           # nothing that succeeded ran again

    assert cli.main(base + ["plan", "install", "m", "i"]) == 0
    assert "note: wfctl workflow install would run nothing" in capsys.readouterr().out
    assert cli.main(install) == 0                      # installed: nothing runs
    out = capsys.readouterr().out
    assert out.strip() == "install m/i: already succeeded in run %s; nothing to run (--force runs it again)" \
        % runs[0]["id"]
    assert cli.main(install + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ran"] is False and doc["run_id"] == runs[0]["id"]
    assert _runs(opts) == (runs, logs)                 # no run, no operation

    assert cli.main(install + ["--force"]) == 0        # --force: a new run, every operation again
    runs2, logs2 = _runs(opts)
    assert len(runs2) == 2 and runs2[-1]["status"] == "succeeded"
    assert len(logs2) == len(logs) + sum(1 for k, v in ran.items() if k[2] == "ok")

    uninstall = base + ["workflow", "uninstall", "m", "i", "--wait", "--timeout", "120"]
    assert cli.main(uninstall) == 0
    assert cli.main(uninstall) == 0
    assert "uninstall m/i: already succeeded" in capsys.readouterr().out
    assert len(_runs(opts)[0]) == 3
    with pytest.raises(SystemExit) as exc:
        cli.main(install + ["--force", "--resume"])        # one or the other
    assert exc.value.code == 2
