# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real 3-server Consul cluster on loopback (127.0.0.11-13), for tests.

Same layout as ``scripts/consul-cluster.sh`` (the script is for people; this class is for code
that must kill and restart servers).  Servers run in their own process group (so a test session
that started them can end while another still uses them) and are stopped by PID.

``shared(state_dir)`` coordinates test sessions that run at the same time on one machine (several
people run pytest in one work tree): under an ``flock``, it reuses a running healthy cluster or
starts one, and records the session's PID; ``release()`` stops the cluster when the last recorded
session is gone.  Setup code polls with a backoff, which is fine outside the hot paths.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDRESSES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
PORTS = {"server": 18300, "serf_lan": 18301, "serf_wan": 18302, "http": 18500}


def consul_binary() -> str:
    """The project's Consul binary (installed by scripts/install-consul.sh if missing)."""
    path = os.environ.get("CONSUL_BIN") or os.path.join(ROOT, ".cache", "consul", "bin", "consul")
    if os.access(path, os.X_OK):
        return path
    out = subprocess.run([os.path.join(ROOT, "scripts", "install-consul.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def _http_get(url: str, timeout: float = 2.0) -> Optional[str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        # reap it first if it is our child (a zombie still answers kill(pid, 0))
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        # a server started by another test session is that session's child: once killed, it
        # stays a zombie until that session reaps it, and kill(pid, 0) still succeeds on it
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    return True


class Server:
    """One server agent: its address, files, and PID (from its pid file)."""

    def __init__(self, cluster: "ConsulCluster", number: int, address: str) -> None:
        self.cluster = cluster
        self.number = number
        self.name = "wf-s%d" % number
        self.address = address
        self.dir = os.path.join(cluster.dir, "s%d" % number)
        self.config = os.path.join(self.dir, "consul.json")
        self.log = os.path.join(self.dir, "consul.log")
        self.pid_file = os.path.join(self.dir, "consul.pid")

    @property
    def http_url(self) -> str:
        return "http://%s:%d" % (self.address, self.cluster.ports["http"])

    @property
    def https_url(self) -> str:
        return "https://%s:%d" % (self.address, self.cluster.ports["https"])

    @property
    def raft_address(self) -> str:
        return "%s:%d" % (self.address, self.cluster.ports["server"])

    @property
    def pid(self) -> Optional[int]:
        try:
            with open(self.pid_file) as fh:
                return int(fh.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return _alive(self.pid)

    def __repr__(self) -> str:
        return "<consul %s %s pid=%s>" % (self.name, self.address, self.pid)


class ConsulCluster:
    """Three Consul servers on loopback; ``dir`` holds their configs, data, logs and pids."""

    def __init__(self, dir: str, addresses=ADDRESSES, ports: Optional[Dict[str, int]] = None,
                 binary: Optional[str] = None, acl_master_token: Optional[str] = None,
                 tls: Optional[Dict[str, object]] = None) -> None:
        """``acl_master_token``: ACLs on, default policy deny, with this management token (also
        the agents' token), as roles/consul_cluster configures a cluster with ACLs (its
        acl.tokens.master); None (the default) leaves ACLs off.  ``tls``: Consul's TLS settings
        (``ca_file``, ``cert_file``, ``key_file``, ``verify_incoming_https``...) and an https port
        in ``ports["https"]``; the http port stays open for the cluster's own health checks."""
        self.dir = os.path.abspath(dir)
        self.acl_master_token = acl_master_token
        self.ports = dict(PORTS, **(ports or {}))
        self.tls = dict(tls or {})
        self.binary = binary
        self.servers = [Server(self, n + 1, a) for n, a in enumerate(addresses)]
        self.external_url: Optional[str] = None
        self._shared_lock: Optional[str] = None

    # ---- a cluster that is not ours ----------------------------------------------------------
    @classmethod
    def external(cls, url: str) -> "ConsulCluster":
        """An existing cluster reached at ``url`` (WF_CONSUL_URL): usable, never killed."""
        cluster = cls(os.path.join(ROOT, ".cache", "external-consul"))
        cluster.external_url = url.rstrip("/")
        if "://" not in cluster.external_url:
            cluster.external_url = "http://" + cluster.external_url
        return cluster

    @property
    def urls(self) -> List[str]:
        if self.external_url:
            return [self.external_url]
        return [s.http_url for s in self.servers]

    @property
    def addresses(self) -> List[str]:
        return [s.address for s in self.servers]

    @property
    def pids(self) -> List[Optional[int]]:
        return [s.pid for s in self.servers]

    # ---- lifecycle -------------------------------------------------------------------------------
    def _write_config(self, server: Server) -> None:
        os.makedirs(os.path.join(server.dir, "data"), exist_ok=True)
        others = ["%s:%d" % (s.address, self.ports["serf_lan"]) for s in self.servers
                  if s is not server]
        config = {
            "datacenter": "dc1",
            "node_name": server.name,
            "server": True,
            "bootstrap_expect": len(self.servers),
            "bind_addr": server.address,
            "advertise_addr": server.address,
            "client_addr": server.address,
            "data_dir": os.path.join(server.dir, "data"),
            "retry_join": others,
            "retry_interval": "1s",
            "ports": {"server": self.ports["server"], "serf_lan": self.ports["serf_lan"],
                      "serf_wan": self.ports["serf_wan"], "http": self.ports["http"],
                      "dns": -1, "grpc": -1, "https": self.ports.get("https", -1) if self.tls else -1},
            # production timing (the default multiplier 5 is for slow dev machines): a killed
            # leader is replaced in about a second
            "performance": {"raft_multiplier": 1},
            "disable_update_check": True,
            "disable_host_node_id": True,
            "leave_on_terminate": False,
            "skip_leave_on_interrupt": True,
            "log_level": "INFO",
        }
        if self.acl_master_token:
            config["primary_datacenter"] = "dc1"
            config["acl"] = {"enabled": True, "default_policy": "deny", "enable_token_persistence": True,
                             "tokens": {"master": self.acl_master_token, "agent": self.acl_master_token}}
        config.update(self.tls)
        with open(server.config, "w") as fh:
            json.dump(config, fh, indent=2)

    def _spawn(self, server: Server) -> None:
        binary = self.binary or consul_binary()
        with open(server.log, "ab") as log:
            proc = subprocess.Popen([binary, "agent", "-config-file", server.config],
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        with open(server.pid_file, "w") as fh:
            fh.write("%d\n" % proc.pid)

    def start(self, timeout: float = 60.0, fresh: bool = True) -> "ConsulCluster":
        """Start every server not running (``fresh``: with empty data dirs when none is running),
        then wait for a leader."""
        if self.external_url:
            return self
        busy = _http_get("http://%s:%d/v1/status/leader" % (self.servers[0].address, self.ports["http"]))
        if busy is not None and not any(s.running() for s in self.servers):
            raise RuntimeError(
                "a Consul not started from %s already listens on %s: stop it "
                "(scripts/consul-cluster.sh stop) or point the tests at it with WF_CONSUL_URL"
                % (self.dir, self.servers[0].http_url))
        if fresh and not any(s.running() for s in self.servers):
            for server in self.servers:
                shutil.rmtree(os.path.join(server.dir, "data"), ignore_errors=True)
        for server in self.servers:
            if not server.running():
                self._write_config(server)
                self._spawn(server)
        self.wait_leader(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every server by PID, wait for it to exit, SIGKILL if it does not."""
        if self.external_url:
            return
        for server in self.servers:
            pid = server.pid
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        for server in self.servers:
            pid = server.pid
            if pid and not _wait_exit(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                _wait_exit(pid, 5.0)
            try:
                os.unlink(server.pid_file)
            except FileNotFoundError:
                pass

    # ---- observation -----------------------------------------------------------------------------
    def leader(self) -> Optional[Server]:
        """The server that a running server names as Raft leader, or None."""
        for server in self.servers:
            if not server.running():
                continue
            body = _http_get(server.http_url + "/v1/status/leader")
            if body:
                address = json.loads(body)
                for candidate in self.servers:
                    if candidate.raft_address == address:
                        return candidate
        return None

    def wait_leader(self, timeout: float = 60.0, among: Optional[List[Server]] = None) -> Server:
        """Wait until every running server (or ``among``) agrees on a live leader."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.external_url:
                if _http_get(self.external_url + "/v1/status/leader") not in (None, '""'):
                    return None  # type: ignore[return-value]
            else:
                seen = set()
                for server in among or [s for s in self.servers if s.running()]:
                    body = _http_get(server.http_url + "/v1/status/leader")
                    seen.add(json.loads(body) if body else "")
                if len(seen) == 1 and "" not in seen:
                    leader = self.leader()
                    if leader is not None and leader.running():
                        return leader
            if time.monotonic() > deadline:
                tails = []
                for server in self.servers:
                    try:
                        with open(server.log) as fh:
                            tails.append("%s: %s" % (server.name, fh.read()[-600:]))
                    except OSError:
                        pass
                raise RuntimeError("no Consul leader within %.0f s\n%s" % (timeout, "\n".join(tails)))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def followers(self) -> List[Server]:
        leader = self.leader()
        return [s for s in self.servers if s is not leader and s.running()]

    # ---- faults ----------------------------------------------------------------------------------
    def kill(self, server: Server, sig: int = signal.SIGKILL) -> Server:
        pid = server.pid
        if not _alive(pid):
            raise RuntimeError("%r is not running" % server)
        os.kill(pid, sig)
        if not _wait_exit(pid, 10.0):
            raise RuntimeError("%r did not exit after signal %d" % (server, sig))
        return server

    def kill_leader(self) -> Server:
        """SIGKILL the current leader; returns the killed server."""
        leader = self.leader()
        if leader is None:
            raise RuntimeError("no leader to kill")
        return self.kill(leader, signal.SIGKILL)

    def restart(self, server: Server, timeout: float = 60.0) -> None:
        """Start ``server`` again on its data dir and wait until it follows a leader and the
        leader counts it among the Raft peers again.  Under the sharing lock, so two test
        sessions never both start it."""
        if self.external_url:
            return
        with self._locked():
            self._restart(server, timeout)

    def _restart(self, server: Server, timeout: float) -> None:
        if server.running():
            return
        self._write_config(server)
        self._spawn(server)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            leader = self.leader()
            mine = _http_get(server.http_url + "/v1/status/leader")
            peers = _http_get(leader.http_url + "/v1/status/peers") if leader else None
            if (leader is not None and mine and json.loads(mine) == leader.raft_address
                    and peers and server.raft_address in json.loads(peers)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("%r did not rejoin within %.0f s" % (server, timeout))
            if not server.running():
                raise RuntimeError("%r exited on restart; see %s" % (server, server.log))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # ---- sharing between concurrent test sessions -----------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _users(self) -> List[int]:
        try:
            with open(os.path.join(self.dir, "users")) as fh:
                pids = [int(line) for line in fh.read().split() if line.strip().isdigit()]
        except OSError:
            pids = []
        return [pid for pid in pids if _alive(pid)]

    def _set_users(self, pids: List[int]) -> None:
        with open(os.path.join(self.dir, "users"), "w") as fh:
            fh.write("".join("%d\n" % pid for pid in pids))

    def acquire_shared(self, timeout: float = 60.0) -> "ConsulCluster":
        """Use the cluster with other test sessions: start it unless a healthy one runs."""
        with self._locked():
            users = self._users()
            healthy = all(s.running() for s in self.servers) and self.leader() is not None
            if not healthy:
                if users:
                    # someone uses it but a server is down (a test killed it): bring it back
                    for server in self.servers:
                        if not server.running():
                            self._restart(server, timeout)
                    self.wait_leader(timeout)
                else:
                    self.stop()
                    self.start(timeout)
            self._set_users(users + [os.getpid()])
        return self

    def other_users(self) -> List[int]:
        """PIDs of the other live test sessions sharing this cluster."""
        if self.external_url:
            return []
        with self._locked():
            return [pid for pid in self._users() if pid != os.getpid()]

    def release_shared(self) -> None:
        with self._locked():
            users = [pid for pid in self._users() if pid != os.getpid()]
            self._set_users(users)
            if not users:
                self.stop()
