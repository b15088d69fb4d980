# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real OpenSSH servers on loopback addresses ("machines"), for tests: no mocks.

Each machine is one sshd listening on its own loopback address (127.0.0.61, .62, ...; port 22 by
default, so inventories look like real ones).  Everything lives in one directory DIR:

    DIR/client_key(.pub)   the one key pair the tests log in with (ed25519, no passphrase)
    DIR/authorized_keys    its public key, used by every machine
    DIR/known_hosts        every machine's host key, so clients can check host keys strictly
    DIR/<address>/         that machine's sshd_config, host key, sshd.pid and sshd.log
    DIR/<address>/root/    stands for that machine's file system: sshd passes it to every
                           command as WF_MACHINE_ROOT (and the address as WF_MACHINE)

The per-machine sshd_config files are the only state: ``SshHosts.load(DIR)`` rebuilds the set
from them, so another process (the CLI's ``stop``) can stop what a first one started.  Servers
run in their own session (they outlive the process that started them) and are stopped by PID.

No pytest dependency: used by fixtures, molecule playbooks and the benchmark.  CLI:

    python tests/sshd_hosts.py start --dir DIR --address 127.0.0.61 --address 127.0.0.62 [--port 22]
    python tests/sshd_hosts.py status --dir DIR
    python tests/sshd_hosts.py stop --dir DIR

``start`` and ``status`` print the machines as JSON.  sshd comes from scripts/install-sshd.sh
(unpacked in .cache/sshd, not installed) unless SSHD_BIN names another one.
"""
from __future__ import annotations

import argparse
import getpass
import glob
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRIVSEP_DIR = "/run/sshd"


def sshd_binary() -> str:
    """The sshd to run: $SSHD_BIN, else the project's (installed by scripts/install-sshd.sh if
    missing).  Absolute, because sshd re-executes itself and refuses a relative path."""
    path = os.environ.get("SSHD_BIN") or os.path.join(ROOT, ".cache", "sshd", "bin", "sshd")
    if os.access(path, os.X_OK):
        return os.path.abspath(path)
    out = subprocess.run([os.path.join(ROOT, "scripts", "install-sshd.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def ensure_privsep() -> None:
    """sshd run as root refuses to start without its privilege-separation directory and user
    (the openssh-server package would create them; we only unpack it).  Idempotent."""
    if os.geteuid() != 0:
        return  # an unprivileged sshd does not chroot and needs neither
    os.makedirs(PRIVSEP_DIR, exist_ok=True)
    os.chmod(PRIVSEP_DIR, 0o755)
    try:
        pwd.getpwnam("sshd")
    except KeyError:
        done = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", PRIVSEP_DIR,
                               "--shell", "/usr/sbin/nologin", "sshd"],
                              stderr=subprocess.PIPE, text=True, check=False)
        try:
            pwd.getpwnam("sshd")  # another session may have created it meanwhile
        except KeyError:
            raise RuntimeError("cannot create the sshd user: %s" % done.stderr.strip()) from None


def _alive(pid: Optional[int]) -> bool:
    """Whether ``pid`` runs (a zombie does not count: reap it if it is our child)."""
    if not pid:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _reaped(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie that only init can reap now.  Stricter than
    ``not _alive``: a session process that has exited is reaped by its sshd, which must then
    still be alive, or the zombie goes to init (which may never reap it, as in some sandboxes)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0] in ("Z", "X") and fields[1] == "1"
    except (OSError, IndexError):
        return True


def _wait_exit(pids: Iterable[int], timeout: float, exited=lambda pid: not _alive(pid)) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not all(exited(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def _tree(pid: int) -> List[List[int]]:
    """``pid``'s process tree, one list per generation (``[[pid], [children], ...]``).  An sshd
    serves each connection from a child that has left its process group (setsid), so killing the
    group would leave sessions (e.g. an Ansible ControlMaster's) connected to a machine that is
    supposed to be down."""
    children: Dict[int, List[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.split("/")[2]))
        except (OSError, IndexError, ValueError):
            pass
    levels = [[pid]]
    while True:
        below = [c for p in levels[-1] for c in children.get(p, [])]
        if not below:
            return levels
        levels.append(below)


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``'s tree, deepest generation first (each parent is still alive to reap its
    children: an orphan's zombie would stay forever under an init that does not reap), SIGKILL
    a generation that outlives ``timeout``."""
    levels = _tree(pid)
    for depth in range(len(levels) - 1, -1, -1):
        # the sshd itself may be another (live) process's child: a zombie of it counts as exited
        exited = _reaped if depth else (lambda p: not _alive(p))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in levels[depth]:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            if _wait_exit(levels[depth], timeout if sig == signal.SIGTERM else 5.0, exited):
                break


def _keygen(path: str, comment: str) -> None:
    for stale in (path, path + ".pub"):
        if os.path.exists(stale):
            os.unlink(stale)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                   check=True, stdin=subprocess.DEVNULL)
    os.chmod(path, 0o600)


def _quote(value: str) -> str:
    return '"%s"' % value


class SshMachine:
    """One sshd on ``address:port``; ``root`` stands for its file system."""

    def __init__(self, hosts: "SshHosts", address: str, port: int = 22) -> None:
        self.hosts = hosts
        self.address = address
        self.port = port
        self.dir = os.path.join(hosts.dir, address)
        self.root = os.path.join(self.dir, "root")
        self.config = os.path.join(self.dir, "sshd_config")
        self.host_key = os.path.join(self.dir, "ssh_host_ed25519_key")
        self.log = os.path.join(self.dir, "sshd.log")
        self.pid_file = os.path.join(self.dir, "sshd.pid")
        self._proc: Optional[subprocess.Popen] = None

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...`` (without the comment)."""
        with open(self.host_key + ".pub") as fh:
            return " ".join(fh.read().split()[:2])

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else "[%s]:%d" % (self.address, self.port)

    @property
    def pid(self) -> Optional[int]:
        try:
            with open(self.pid_file) as fh:
                return int(fh.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        """Whether our sshd runs: its PID is alive and is still ours (it names our config; a
        recycled PID would not)."""
        pid = self.pid
        if not _alive(pid):
            return False
        if self._proc is not None and self._proc.pid == pid:
            return True  # started by us (its cmdline changes while the wrapper execs sshd)
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                return self.config.encode() in fh.read()
        except OSError:
            return False

    # ---- lifecycle ---------------------------------------------------------------------------
    def write_config(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        if not os.path.exists(self.host_key):
            _keygen(self.host_key, "wf-machine-%s" % self.address)
        lines = [
            "Port %d" % self.port,
            "ListenAddress %s" % self.address,
            "HostKey %s" % _quote(self.host_key),
            "PidFile %s" % _quote(self.pid_file),
            "AuthorizedKeysFile %s" % _quote(self.hosts.authorized_keys),
            "StrictModes no",  # keys live in a test directory with any owner and mode
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",  # tests run as root and log in as themselves
            "Subsystem sftp internal-sftp",
            "LogLevel INFO",
            "PrintMotd no",
            "MaxSessions 50",
            "MaxStartups 100:30:200",
            # a command run through this machine sees its own file system root
            "SetEnv %s %s" % (_quote("WF_MACHINE_ROOT=" + self.root),
                              _quote("WF_MACHINE=" + self.address)),
        ]
        moduli = os.path.join(os.path.dirname(os.path.dirname(self.hosts.binary)), "etc", "ssh",
                              "moduli")
        if os.path.exists(moduli):  # the unpacked package's: the system may have none
            lines.append("ModuliFile %s" % _quote(moduli))
        with open(self.config, "w") as fh:
            fh.write("# written by tests/sshd_hosts.py\n" + "\n".join(lines) + "\n")

    def spawn(self) -> None:
        """Start sshd in the background (see ``wait_ready``); nothing if it already runs."""
        if self.running():
            return
        if self._accepts():
            raise RuntimeError("%s:%d is already in use by a process not started from %s: stop it "
                               "or use other addresses" % (self.address, self.port, self.hosts.dir))
        self.write_config()
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen([self.hosts.binary, "-D", "-e", "-f", self.config],
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        with open(self.pid_file, "w") as fh:  # sshd writes the same PID (the wrapper execs it)
            fh.write("%d\n" % self._proc.pid)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until sshd answers with an SSH banner, or fail with the tail of its log."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not self._accepts(banner=True):
            if not self.running():
                raise RuntimeError("sshd for %s:%d exited:\n%s"
                                   % (self.address, self.port, self.log_tail()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sshd for %s:%d not ready within %.0f s:\n%s"
                                   % (self.address, self.port, timeout, self.log_tail()))
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def start(self, timeout: float = 10.0) -> "SshMachine":
        self.spawn()
        self.wait_ready(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the sshd and its sessions by PID, SIGKILL what is left after ``timeout``, and
        wait: afterwards the machine refuses connections, as a machine that is down would."""
        if self.running():
            _terminate(self.pid, timeout)
        if self._proc is not None:
            self._proc.poll()  # reap
            self._proc = None
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass

    # ---- observation -------------------------------------------------------------------------
    def _accepts(self, banner: bool = False) -> bool:
        try:
            with socket.create_connection((self.address, self.port), timeout=1.0) as sock:
                return not banner or sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def log_tail(self, chars: int = 1500) -> str:
        try:
            with open(self.log, errors="replace") as fh:
                return fh.read()[-chars:]
        except OSError:
            return "(no log at %s)" % self.log

    def describe(self) -> Dict[str, object]:
        public = self.host_public_key if os.path.exists(self.host_key + ".pub") else None
        return {"address": self.address, "port": self.port, "pid": self.pid,
                "running": self.running(), "root": self.root, "dir": self.dir,
                "config": self.config, "log": self.log, "host_key": self.host_key,
                "host_public_key": public}

    def __repr__(self) -> str:
        return "<sshd %s:%d pid=%s>" % (self.address, self.port, self.pid)


class SshHosts:
    """A set of machines sharing DIR, one client key pair and one known_hosts file."""

    def __init__(self, dir: str, addresses: Iterable[str] = (), port: int = 22,
                 user: Optional[str] = None, binary: Optional[str] = None) -> None:
        self.dir = os.path.abspath(dir)
        self.user = user or getpass.getuser()
        self._binary = binary
        self.client_key = os.path.join(self.dir, "client_key")
        self.authorized_keys = os.path.join(self.dir, "authorized_keys")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.machines = [SshMachine(self, a, port) for a in addresses]

    @classmethod
    def load(cls, dir: str) -> "SshHosts":
        """The machines configured in ``dir`` (read back from their sshd_config files)."""
        hosts = cls(dir)
        for config in sorted(glob.glob(os.path.join(hosts.dir, "*", "sshd_config"))):
            with open(config) as fh:
                words = dict(line.split(None, 1) for line in fh.read().splitlines()
                             if line.strip() and not line.startswith("#"))
            hosts.machines.append(SshMachine(hosts, words["ListenAddress"], int(words["Port"])))
        return hosts

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = sshd_binary()
        return self._binary

    def machine(self, address: str) -> SshMachine:
        for machine in self.machines:
            if machine.address == address:
                return machine
        raise KeyError(address)

    # ---- keys --------------------------------------------------------------------------------
    def write_keys(self) -> None:
        """The client key pair (kept if present) and authorized_keys."""
        os.makedirs(self.dir, exist_ok=True)
        if not os.path.exists(self.client_key):
            _keygen(self.client_key, "wf-tests")
        with open(self.client_key + ".pub") as fh:
            public = fh.read()
        with open(self.authorized_keys, "w") as fh:
            fh.write(public)

    def write_known_hosts(self) -> None:
        """Trust every machine's current host key (e.g. again after ``regenerate_host_key``)."""
        with open(self.known_hosts, "w") as fh:
            for machine in self.machines:
                if os.path.exists(machine.host_key + ".pub"):
                    fh.write("%s %s\n" % (machine.known_hosts_name, machine.host_public_key))

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0,
              machines: Optional[List[SshMachine]] = None) -> "SshHosts":
        """Start every machine (or those of ``machines``) not running, all at once, then wait for
        each, and write known_hosts.  On failure, stop the ones this call started."""
        ensure_privsep()
        self.write_keys()
        started = []
        try:
            for machine in self.machines if machines is None else machines:
                if not machine.running():
                    machine.spawn()
                    started.append(machine)
            self.write_known_hosts()
            for machine in started:
                machine.wait_ready(timeout)
        except BaseException:
            for machine in started:
                machine.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for machine in self.machines:
            machine.stop(timeout)

    def regenerate_host_key(self, machine: SshMachine, trust: bool = False) -> None:
        """Give ``machine`` a new host key and restart it: clients that trust the old key must
        now refuse it (a host-key mismatch), unless ``trust`` rewrites known_hosts."""
        machine.stop()
        _keygen(machine.host_key, "wf-machine-%s" % machine.address)
        machine.start()
        if trust:
            self.write_known_hosts()

    def ssh_argv(self, machine: SshMachine, *command: str) -> List[str]:
        """The ssh command line that reaches ``machine`` as the tests do: our key only, host key
        checked strictly against our known_hosts, never a prompt."""
        return ["ssh", "-i", self.client_key, "-o", "IdentitiesOnly=yes",
                "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-p", str(machine.port), "%s@%s" % (self.user, machine.address), *command]

    def describe(self) -> Dict[str, object]:
        return {"dir": self.dir, "user": self.user, "client_key": self.client_key,
                "known_hosts": self.known_hosts, "authorized_keys": self.authorized_keys,
                "machines": [m.describe() for m in self.machines]}


def ssh_argv(machine: SshMachine, *command: str) -> List[str]:
    return machine.hosts.ssh_argv(machine, *command)


def regenerate_host_key(machine: SshMachine, trust: bool = False) -> None:
    machine.hosts.regenerate_host_key(machine, trust)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Real sshd machines on loopback addresses.")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="start the machines not running, print all as JSON")
    start.add_argument("--dir", required=True)
    start.add_argument("--address", action="append", required=True)
    start.add_argument("--port", type=int, default=22)
    start.add_argument("--timeout", type=float, default=10.0)
    for name, text in (("stop", "stop every sshd started in DIR"),
                       ("status", "print the machines of DIR as JSON; exit 1 unless all run")):
        sub.add_parser(name, help=text).add_argument("--dir", required=True)
    args = parser.parse_args(argv)

    hosts = SshHosts.load(args.dir)
    if args.action == "start":
        wanted = []
        for address in args.address:
            try:
                machine = hosts.machine(address)
            except KeyError:
                machine = SshMachine(hosts, address, args.port)
                hosts.machines.append(machine)
            if machine.port != args.port:  # moved to another port: restart it there
                machine.stop()
                machine.port = args.port
            wanted.append(machine)
        try:
            hosts.start(args.timeout, machines=wanted)
        except RuntimeError as err:
            print("sshd_hosts: %s" % err, file=sys.stderr)
            return 1
    elif args.action == "stop":
        hosts.stop()
    print(json.dumps(hosts.describe(), indent=2))
    return 0 if args.action != "status" or all(m.running() for m in hosts.machines) else 1


if __name__ == "__main__":
    sys.exit(main())
