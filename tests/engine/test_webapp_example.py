"""examples/webapp: operations that really run (bash scripts and an Ansible playbook), inputs,
attributes across a ConnectsTo, topology outputs; install, check, uninstall leaves nothing."""
import os
import socket
import urllib.request

import pytest

from wfengine import api

from engine_helpers import REPO, embedded

WEBAPP = REPO / "examples" / "webapp"
TRICKY = "$(touch %s) \"double\" 'single'\nsecond line `id`"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_webapp_installs_serves_and_uninstalls_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("WF_CACHE_DIR", str(tmp_path / "cache"))
    base = tmp_path / "app"
    pwned = tmp_path / "pwned"
    port = _free_port()
    message = TRICKY % pwned
    opts = embedded(tmp_path)
    space = api.open_space(opts)
    try:
        api.upload_model(space, str(WEBAPP), "webapp")
        api.create_instance(space, "webapp", "d1", inputs={"port": port, "base_dir": str(base),
                                                           "message": message})
        rec = api.start_workflow(space, "install", "webapp", "d1")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "succeeded", rec
        url = "http://127.0.0.1:%d/" % port
        # the server answers with the property value, verbatim; nothing in it was executed
        assert urllib.request.urlopen(url, timeout=5).read().decode() == message + "\n"
        assert not pwned.exists()
        # the client was configured from the site's url attribute (get_attribute TARGET url)
        assert (base / "client" / "client.conf").read_text() == "site_url=%s\n" % url
        assert (base / "client" / "fetched.html").read_text() == message + "\n"
        st = api.status(space, "webapp", "d1")
        assert st["outputs"] == {"site_url": {"value": url}}
        logs = api.logs(space, "webapp", "d1")
        ran = sorted((r["node"], r["operation"].rsplit(".", 1)[1]) for r in logs)
        assert ran == [("client_0", "configure"), ("client_0", "pre_configure_source"),
                       ("site_0", "create"), ("site_0", "start")]
        assert all(r["exit_code"] == 0 and r["log_file"] and os.path.exists(r["log_file"]) for r in logs)

        rec = api.start_workflow(space, "uninstall", "webapp", "d1")
        rec = api.run_with_local_workers(opts, space, rec["id"], 2, timeout=120)
        assert rec["status"] == "succeeded", rec
        assert not base.exists()
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)
        unlink = [r for r in api.logs(space, "webapp", "d1") if r["operation"].endswith("remove_target")]
        assert len(unlink) == 1 and unlink[0]["exit_code"] == 0   # the playbook ran
    finally:
        space.close()


def test_webapp_uploads_from_a_csar_zip(tmp_path):
    import zipfile
    csar = tmp_path / "webapp.csar"
    with zipfile.ZipFile(csar, "w") as z:
        for p in WEBAPP.rglob("*"):
            if p.is_file():
                z.write(p, p.relative_to(WEBAPP).as_posix())
    space = api.open_space(embedded(tmp_path))
    try:
        r = api.upload_model(space, str(csar), "webapp")
        assert r["changed"] and r["instances"] == 3
        # the same content from the folder is the same model version
        assert api.upload_model(space, str(WEBAPP), "webapp")["changed"] is False
    finally:
        space.close()
