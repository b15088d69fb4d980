# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared connection options: argspec merge, Consul address, SpaceOptions, error text, and the
embedded Space's required path (through a real module run)."""
from __future__ import annotations

import importlib
import os

import pytest


@pytest.fixture
def conn(collection_path):
    return importlib.import_module("ansible_collections.ditrit.workflows.plugins.module_utils.connection")


def test_argspec_merges_module_options_over_the_shared_ones(conn):
    spec = conn.generate_argspec(name=dict(type="str", required=True), port=dict(type="int", default=18500))
    assert spec["name"] == {"type": "str", "required": True}
    assert spec["port"]["default"] == 18500
    assert spec["token"]["no_log"] is True
    assert spec["client_key"]["no_log"] is False
    assert spec["backend"]["choices"] == ["embedded", "consul"]
    # a fresh dict each time: AnsibleModule may mutate what it is given
    assert conn.connection_argspec() is not conn.connection_argspec()
    assert conn.connection_argspec()["port"]["default"] == 8500


@pytest.mark.parametrize("params, env, url", [
    ({"host": "consul1", "port": 8501, "scheme": "https"}, {}, "https://consul1:8501"),
    ({"host": "127.0.0.11", "port": 18500, "scheme": "http"}, {"CONSUL_HTTP_ADDR": "other:1"},
     "http://127.0.0.11:18500"),
    ({"host": "::1", "port": 8500, "scheme": "http"}, {}, "http://[::1]:8500"),
    ({"host": None, "port": 8500, "scheme": "http"}, {"CONSUL_HTTP_ADDR": "127.0.0.12:18500"},
     "http://127.0.0.12:18500"),
    ({"host": None, "port": 8500, "scheme": "https"}, {"CONSUL_HTTP_ADDR": "127.0.0.12:18500"},
     "https://127.0.0.12:18500"),
    ({"host": None, "port": 8500, "scheme": "http"}, {"CONSUL_HTTP_ADDR": "https://c.example:8501/"},
     "https://c.example:8501"),
    ({"host": None, "port": 8500, "scheme": "http"}, {}, "http://localhost:8500"),
    # addr: the consul CLI's form, over CONSUL_HTTP_ADDR
    ({"addr": "c2:8501", "scheme": None}, {"CONSUL_HTTP_ADDR": "other:1"}, "http://c2:8501"),
    ({"addr": "https://c2:8501", "scheme": None}, {}, "https://c2:8501"),
    # CONSUL_HTTP_SSL chooses https when scheme is not given; an explicit scheme wins
    ({"addr": "c2:8501", "scheme": None}, {"CONSUL_HTTP_SSL": "true"}, "https://c2:8501"),
    ({"host": None, "scheme": None}, {"CONSUL_HTTP_ADDR": "127.0.0.12:18500", "CONSUL_HTTP_SSL": "1"},
     "https://127.0.0.12:18500"),
    ({"host": "c1", "port": 8501, "scheme": None}, {"CONSUL_HTTP_SSL": "false"}, "http://c1:8501"),
    ({"host": "c1", "port": 8501, "scheme": "http"}, {"CONSUL_HTTP_SSL": "true"}, "http://c1:8501"),
    ({"host": None, "port": 8500, "scheme": None}, {"CONSUL_HTTP_SSL": "TRUE"}, "https://localhost:8500"),
])
def test_consul_url(conn, params, env, url):
    assert conn.consul_url(params, environ=env) == url


def test_space_options_consul(conn):
    opts = conn.space_options({"backend": "consul", "host": "c1", "port": 18500, "scheme": "https",
                               "token": "s3cr3t", "validate_certs": False, "ca_path": "/ca.pem",
                               "client_cert": "/c.pem", "client_key": "/k.pem", "datacenter": "dc2",
                               "prefix": "team1/", "space": "/ignored.db", "retry_timeout": 5},
                              environ={})
    assert (opts.backend, opts.url, opts.token, opts.verify) == ("consul", "https://c1:18500", "s3cr3t", False)
    assert (opts.ca_file, opts.client_cert, opts.client_key) == ("/ca.pem", "/c.pem", "/k.pem")
    assert (opts.datacenter, opts.prefix, opts.path) == ("dc2", "team1/", None)
    assert opts.extra == {"retry_total": 5.0}


def test_space_options_embedded(conn):
    opts = conn.space_options({"backend": "embedded", "space": "/tmp/x.db", "prefix": None, "host": "ignored"})
    assert (opts.backend, opts.path, opts.prefix, opts.url) == ("embedded", "/tmp/x.db", "wf/", None)


def test_error_text_summary_and_one_line_per_problem(conn):
    """Several problems: the task's ``msg`` is one summary line, ``problems`` lists them all."""
    class Many(Exception):
        problems = ["app.yaml: A: unknown type x", "app.yaml: B: bad requirement"]

    assert conn.error_text(Many("2 problems")) == "2 problems, the first: app.yaml: A: unknown type x"
    assert conn.error_problems(Many("x")) == ["app.yaml: A: unknown type x", "app.yaml: B: bad requirement"]
    assert conn.error_problems(ValueError("one line")) == []
    assert conn.error_text(ValueError("one line")) == "one line"
    assert conn.error_text(ValueError()) == "ValueError"


def test_embedded_without_space_fails(run_module, monkeypatch):
    monkeypatch.delenv("WF_SPACE", raising=False)
    r = run_module("tosca_instance_info", model="m", instance="i")
    assert r.failed
    assert "space" in r.msg and "embedded" in r.msg


def test_space_from_environment(run_module, monkeypatch, tmp_path, seed_model):
    path = str(tmp_path / "env.db")
    monkeypatch.setenv("WF_SPACE", path)
    r = run_module("tosca_model", name="seed", src=seed_model)
    assert not r.failed, r.msg
    assert os.path.exists(path)


def test_unknown_option_and_bad_choice_fail(run_module, space_file):
    r = run_module("tosca_model", name="m", src="x", space=space_file, bogus=1)
    assert r.failed and "bogus" in r.msg
    r = run_module("tosca_model", name="m", src="x", space=space_file, backend="etcd")
    assert r.failed and "backend" in r.msg


def test_consul_unreachable_is_one_line(run_module):
    # nothing listens on this loopback port: the engine's error becomes the message, no traceback
    r = run_module("tosca_instance_info", model="m", instance="i", backend="consul", host="127.0.0.1",
                   port=1, prefix="wf-unreachable/", retry_timeout=1)
    assert r.failed
    assert "\n" not in r.msg and "Traceback" not in r.msg


@pytest.mark.parametrize("env, expected", [({}, True), ({"CONSUL_HTTP_SSL_VERIFY": "false"}, False),
                                           ({"CONSUL_HTTP_SSL_VERIFY": "true"}, True)])
def test_validate_certs_from_the_environment(conn, monkeypatch, env, expected):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    monkeypatch.delenv("CONSUL_HTTP_SSL_VERIFY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = ArgumentSpecValidator(conn.connection_argspec()).validate({"backend": "consul"})
    assert not result.error_messages
    assert result.validated_parameters["validate_certs"] is expected
    # an explicit value wins over the environment
    result = ArgumentSpecValidator(conn.connection_argspec()).validate({"backend": "consul",
                                                                        "validate_certs": True})
    assert result.validated_parameters["validate_certs"] is True


def test_host_and_addr_are_mutually_exclusive(run_module):
    r = run_module("tosca_instance_info", model="m", instance="i", backend="consul", host="c1", addr="c2:8500")
    assert r.failed and "mutually exclusive" in r.msg and "addr" in r.msg


def test_addr_reaches_consul_through_a_module(run_module):
    # nothing listens there: the one-line error names the address that addr gave
    r = run_module("tosca_instance_info", model="m", instance="i", backend="consul", addr="127.0.0.1:1",
                   prefix="wf-unreachable/", retry_timeout=1)
    assert r.failed and "\n" not in r.msg
    assert "127.0.0.1:1" in r.msg, r.msg
