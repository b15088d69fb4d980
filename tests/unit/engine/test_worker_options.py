# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WorkerOptions (worker_options.py), where each worker option is declared once (issue 22):
``from_env`` reads every variable (a bad value is one line naming it), and ``wfctl worker``'s
parser, built from the same declarations, gives the same options from the same environment."""
from __future__ import annotations

import dataclasses

import pytest

from wfengine.cli_parser import build_parser
from wfengine.errors import WfError
from wfengine.worker_options import WorkerOptions

GOOD = {"WF_WORKER_THREADS": "3", "WF_WORKER_TTL": "20", "WF_WORKER_BATCH": "4",
        "WF_WORKER_LANES": "2", "WF_WORKER_STEAL_AFTER": "0", "WF_WORKER_METRICS": "127.0.0.1:9464",
        "WF_EXEC_LOG": "/var/log/execs.log", "WF_LOG_DIR": "/var/log/ops", "WF_MODEL_CACHE": "/c",
        "WF_WORKER_STATE_DIR": "/s", "WF_WORKER_WAKE": "[::1]:8765",
        "WF_WORKER_SERVES": "web_0,,10.0.0.5"}


def test_defaults_without_environment():
    assert WorkerOptions.from_env({}) == WorkerOptions()
    o = WorkerOptions()
    numbers = (o.threads, o.ttl, o.batch, o.lanes, o.steal_after, o.poll)
    assert numbers == (8, 15.0, 16, 0, 1.0, 30.0)
    assert o.worker_id is None and o.op_timeout is None and o.serves == [] and o.wake is None


def test_every_variable_is_read_and_converted():
    o = WorkerOptions.from_env(GOOD)
    assert (o.threads, o.ttl, o.batch, o.lanes, o.steal_after) == (3, 20.0, 4, 2, 0.0)
    assert isinstance(o.ttl, float) and isinstance(o.threads, int)
    assert (o.metrics, o.wake) == ("127.0.0.1:9464", "[::1]:8765")
    paths = (o.exec_log, o.log_dir, o.cache_dir, o.state_dir)
    assert paths == ("/var/log/execs.log", "/var/log/ops", "/c", "/s")
    assert o.serves == ["web_0", "10.0.0.5"]          # empty items dropped
    # no variable: the defaults
    assert (o.worker_id, o.op_timeout, o.playbook_forkserver, o.poll) == (None, None, None, 30.0)


def test_an_empty_address_variable_is_unset():
    blank = {"WF_WORKER_METRICS": "", "WF_WORKER_WAKE": "", "WF_WORKER_SERVES": ""}
    o = WorkerOptions.from_env(blank)
    assert (o.metrics, o.wake, o.serves) == (None, None, [])


@pytest.mark.parametrize("name, value, said", [
    ("WF_WORKER_THREADS", "abc", "'abc' is not an integer"),
    ("WF_WORKER_THREADS", "0", "0 is out of range (at least 1)"),
    ("WF_WORKER_TTL", "-1", "'-1': expected a number of seconds > 0"),
    ("WF_WORKER_TTL", "", "'' is not a number of seconds"),
    ("WF_WORKER_BATCH", "17", "17 is out of range (1 to 16)"),
    ("WF_WORKER_LANES", "-1", "-1 is out of range (at least 0)"),
    ("WF_WORKER_STEAL_AFTER", "nan", "'nan': expected a number of seconds >= 0"),
    ("WF_WORKER_METRICS", "9464", "'9464': expected HOST:PORT"),
    ("WF_WORKER_WAKE", "host:0", "'host:0': expected HOST:PORT"),
    ("WF_WORKER_SERVES", "web_0,bad name", "'bad name' is not a node instance name or an address"),
])
def test_a_bad_value_is_one_line_naming_the_variable(name, value, said):
    env = dict(GOOD, **{name: value})
    with pytest.raises(WfError) as err:
        WorkerOptions.from_env(env)
    text = str(err.value)
    assert text.startswith(name + ": ") and said in text and "\n" not in text


def _parsed(monkeypatch, env, *argv):
    for name in GOOD:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return WorkerOptions.from_args(build_parser().parse_args(["worker", *argv]))


def test_wfctl_worker_reads_the_same_environment(monkeypatch):
    """The parser's defaults are from_env's values: the same variables, the same conversions."""
    assert _parsed(monkeypatch, {}) == WorkerOptions()
    assert _parsed(monkeypatch, GOOD) == WorkerOptions.from_env(GOOD)


def test_wfctl_worker_arguments_win_over_the_environment(monkeypatch):
    o = _parsed(monkeypatch, GOOD, "--threads", "2", "--ttl", "3.5", "--id", "w1", "--op-timeout",
                "4", "--serves", "db_0", "--playbook-forkserver", "off", "--lanes", "0")
    expected = dataclasses.replace(WorkerOptions.from_env(GOOD), threads=2, ttl=3.5, worker_id="w1",
                                   op_timeout=4.0, serves=["web_0", "10.0.0.5", "db_0"],
                                   playbook_forkserver=False, lanes=0)
    assert o == expected
    assert _parsed(monkeypatch, {}, "--playbook-forkserver", "on").playbook_forkserver is True


def test_a_bad_variable_is_refused_by_wfctl_worker_as_a_bad_argument(monkeypatch, capsys):
    for name in GOOD:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WF_WORKER_BATCH", "17")
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["worker"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == ("wfctl worker: error: argument --batch: 17 is out of range "
                                       "(1 to 16) (see wfctl worker -h)\n")
    # only when the worker command is parsed: another command does not read it
    assert build_parser().parse_args(["status", "m", "i"]).command == "status"


def test_every_command_line_option_has_help_and_every_variable_is_named_once():
    args = WorkerOptions.arguments({})
    assert [flag for flag, dummy in args][:5] == ["--threads", "--ttl", "--batch", "--lanes",
                                                  "--steal-after"]
    assert all(kwargs.get("help") for dummy, kwargs in args)
    envs = [f.metadata["opt"].env for f in dataclasses.fields(WorkerOptions)
            if f.metadata["opt"].env]
    assert len(envs) == len(set(envs)) == 12
