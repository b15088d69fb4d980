"""The upload ignore list (ignore.py; docs/security.md "Uploads"): which names and contents a walked
folder leaves out, and why."""
import pytest

from wfengine.ignore import ignored_dir, ignored_reason, secret_reason

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("name", [".git", ".svn", ".hg", ".ssh", ".venv", "__pycache__", "CVS"])
def test_folders_left_out(name):
    assert ignored_dir(name)


@pytest.mark.parametrize("name", ["scripts", "templates", "roles", "TOSCA-Metadata", "Definitions", "git"])
def test_folders_kept(name):
    assert not ignored_dir(name)


@pytest.mark.parametrize("name,reason", [
    (".env", "a hidden file"), (".htpasswd", "a hidden file"),
    ("prod.env", "an environment file"), ("id_rsa", "an SSH key"), ("id_rsa.pub", "an SSH key"),
    ("id_ed25519", "an SSH key"), ("tls.key", "a private key"), ("store.p12", "a key store"),
    ("terraform.tfstate", "a Terraform state (it holds secrets in clear)"),
    ("site.retry", "an Ansible retry file"), ("app.yaml~", "an editor backup"), ("#app.yaml#", "an editor backup"),
    ("app.yaml.swp", "an editor swap file"), ("x.pyc", "Python bytecode"),
])
def test_names_left_out_with_their_reason(name, reason):
    assert ignored_reason(name) == reason


@pytest.mark.parametrize("name", ["app.yaml", "create.sh", "environment.yaml", "keys.txt", "site.yml", "ca.pem",
                                  "README.md", "TOSCA.meta"])
def test_names_kept(name):
    assert ignored_reason(name, b"#!/bin/sh\n") is None


def test_a_pem_ships_when_it_holds_a_certificate_only():
    assert ignored_reason("ca.pem", CERT) is None
    assert ignored_reason("server.pem", CERT + b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n") \
        == "a private key"


@pytest.mark.parametrize("head", [KEY, b"\n  -----BEGIN RSA PRIVATE KEY-----\nMII\n",
                                  b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n", b"-----BEGIN EC PRIVATE KEY-----\n",
                                  b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n", b"PuTTY-User-Key-File-3: ssh-ed25519\n"])
def test_a_private_key_under_any_name_is_a_secret(head):
    assert secret_reason("deploy_credentials", head) == "a private key"


def test_a_script_that_mentions_keys_is_not_a_key():
    """Only a file that *is* a key: a script printing a PEM header further down still ships."""
    script = b"#!/bin/sh\ncat <<EOF\n-----BEGIN RSA PRIVATE KEY-----\nEOF\n"
    assert secret_reason("make_key.sh", script) is None


def test_collect_judges_a_link_by_its_target_too(tmp_path):
    """``settings.conf -> .env``: the link's own name is innocent, its target is not."""
    from wfengine.operation.artifacts import collect
    root = tmp_path / "m"
    root.mkdir()
    (root / "app.yaml").write_text("x")
    (root / ".env").write_text("TOKEN=decoy\n")
    (root / "settings.conf").symlink_to(".env")
    (root / "deploy").write_bytes(KEY)
    left_out = []
    files = collect(str(root), str(root / "app.yaml"), left_out=left_out)
    assert [f.path for f in files] == ["app.yaml"]
    assert left_out == [".env", "deploy", "settings.conf"]
