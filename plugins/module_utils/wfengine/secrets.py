# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets: ``{get_secret: [source, ...]}`` resolved on the worker, never stored or shown.

The Space only ever holds the reference (the ``get_secret`` call); the value is read where the
operation runs, from a *source*:

* ``[env, NAME]``: the worker's environment variable ``NAME``;
* ``[file, PATH]``: the content of a file on the worker (one trailing newline removed);
* ``[ansible_vault, FILE, KEY]``: the value of ``KEY`` in a YAML file on the worker encrypted
  with ansible-vault (the whole file, or ``!vault`` values made by ``ansible-vault
  encrypt_string``), decrypted with the vault password file the worker is configured with
  (``wfctl worker --vault-password-file``).  ansible-core is imported only then: the engine's
  own dependencies stay PyYAML.

A source is a ``SecretSource`` registered in ``SOURCES`` under its name; a HashiCorp Vault
source (``[hashicorp_vault, PATH, KEY]``) is one class more.

Every value resolved for an operation is remembered by the ``SecretResolver`` of that call; the
executor then replaces each occurrence with ``MASK`` in whatever it returns or keeps (output tail,
full log file, outputs/attributes, error messages) before anything reaches the Space.  Where no
resolver is given (topology outputs computed by ``wfctl status``, on the deployer's machine),
``get_secret`` evaluates to ``MASK``: the deployer's machine never reads the worker's secrets.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from typing import Any, Dict, Iterable, List, Optional

from .errors import WfError

MASK = "********"
FUNCTION = "get_secret"
_SHAPE = "[env, NAME] | [file, PATH] | [ansible_vault, FILE, KEY]"
MAX_SECRET_BYTES = 64 * 1024

# Process-wide settings of this worker (``configure``): the CLI sets them once at start; the
# environment gives them to in-process workers (``wfctl workflow --workers N``) and tests.
_settings: Dict[str, Optional[str]] = {"vault_password_file": None}


def configure(vault_password_file: Optional[str] = None) -> None:
    """Settings of the worker process (``wfctl worker --vault-password-file``)."""
    _settings["vault_password_file"] = vault_password_file


def vault_password_file() -> Optional[str]:
    return _settings["vault_password_file"] or os.environ.get("WF_VAULT_PASSWORD_FILE") or None


class SecretError(WfError):
    """A secret cannot be read.  The message names the source and reference, never a value."""


class SecretSource:
    """Where secrets come from.  ``check`` validates the arguments (after the source name) at
    upload and instantiation, with no access to the value; ``read`` runs on the worker."""

    name = ""
    shape = ""

    def check(self, args: List[Any]) -> Optional[str]:
        raise NotImplementedError

    def read(self, args: List[Any]) -> Any:
        raise NotImplementedError


def _strings(args: List[Any], n: int) -> bool:
    return len(args) == n and all(isinstance(a, str) and a for a in args)


class EnvSource(SecretSource):
    name, shape = "env", "[env, NAME]"

    def check(self, args: List[Any]) -> Optional[str]:
        if not _strings(args, 1) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", args[0]):
            return "expected %s with NAME an environment variable name" % self.shape
        return None

    def read(self, args: List[Any]) -> Any:
        value = os.environ.get(args[0])
        if value is None:
            raise SecretError("get_secret [env, %s]: the worker's environment has no %s" % (args[0], args[0]))
        return value


def _read_file(path: str, what: str) -> bytes:
    if not os.path.isabs(path):
        raise SecretError("%s: %s is not an absolute path" % (what, path))
    try:
        if not os.path.isfile(path):
            raise SecretError("%s: %s is not a regular file on the worker" % (what, path))
        with open(path, "rb") as fh:
            data = fh.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SecretError("%s: cannot read %s on the worker (%s)" % (what, path, exc.strerror)) from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError("%s: %s is larger than %d bytes" % (what, path, MAX_SECRET_BYTES))
    return data


class _WorkerFileSource(SecretSource):
    """A source whose first argument is an absolute path on the worker (file, ansible_vault):
    one check for both, so their upload-time messages stay alike."""

    arity = 1       # how many arguments follow the source name, all non-empty strings
    wants = ""      # what the arguments must be, as the message words it

    def check(self, args: List[Any]) -> Optional[str]:
        if not _strings(args, self.arity) or not args[0].startswith("/"):
            return "expected %s with %s" % (self.shape, self.wants)
        return None


class FileSource(_WorkerFileSource):
    name, shape = "file", "[file, PATH]"
    arity, wants = 1, "PATH absolute (a file on the worker)"

    def read(self, args: List[Any]) -> Any:
        data = _read_file(args[0], "get_secret [file, %s]" % args[0])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError("get_secret [file, %s]: not UTF-8 text" % args[0]) from None
        return text[:-1] if text.endswith("\n") else text


class AnsibleVaultSource(_WorkerFileSource):
    name, shape = "ansible_vault", "[ansible_vault, FILE, KEY]"
    arity, wants = 2, "FILE absolute (a file on the worker) and KEY a top-level key"

    def read(self, args: List[Any]) -> Any:
        path, key = args
        what = "get_secret [ansible_vault, %s, %s]" % (path, key)
        pw_file = vault_password_file()
        if not pw_file:
            raise SecretError("%s: the worker has no vault password file (wfctl worker --vault-password-file, "
                              "role variable wf_worker_vault_password_file)" % what)
        password = _read_file(pw_file, "%s: vault password file" % what).rstrip(b"\r\n")
        data = _read_file(path, what)
        if not data.lstrip().startswith(b"$ANSIBLE_VAULT;"):
            doc = _load_vault_yaml(data, what)
            if not isinstance(doc, dict) or key not in doc:
                raise SecretError("%s: no key %s in the file" % (what, key))
            if not isinstance(doc[key], _Vaulted):
                return doc[key]
            return _decrypt(doc[key].text.encode("ascii"), password, what).decode("utf-8", errors="replace")
        doc = _load_vault_yaml(_decrypt(data, password, what), what)
        if not isinstance(doc, dict) or key not in doc:
            raise SecretError("%s: no key %s in the file" % (what, key))
        return doc[key]


# ansible-core's vault library runs in a child process: importing the controller side of
# ansible sets process-wide state (its Display, warnings) that a module running workers in
# process (tosca_workflow) must not inherit.  The password and ciphertext go through a pipe.
_DECRYPT = """
import json, sys
from ansible.parsing.vault import VaultLib, VaultSecret, AnsibleVaultError
req = json.loads(sys.stdin.read())
try:
    out = VaultLib([("default", VaultSecret(req["password"].encode("latin-1")))]).decrypt(
        req["data"].encode("latin-1"))
except AnsibleVaultError as exc:
    sys.stderr.write(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
    sys.exit(3)
sys.stdout.buffer.write(out)
"""


def _decrypt(data: bytes, password: bytes, what: str) -> bytes:
    req = json.dumps({"password": password.decode("latin-1"), "data": data.decode("latin-1")})
    try:
        proc = subprocess.run([sys.executable, "-c", _DECRYPT], input=req.encode("utf-8"), capture_output=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SecretError("%s: cannot run the vault decryption (%s)" % (what, exc)) from None
    if proc.returncode == 3:
        raise SecretError("%s: cannot decrypt (%s)" % (what, proc.stderr.decode("utf-8", errors="replace")))
    if proc.returncode != 0:
        last = (proc.stderr.decode("utf-8", errors="replace").strip().splitlines() or ["no message"])[-1]
        if "No module named" in last:
            last = "ansible-core is not importable by %s" % sys.executable
        raise SecretError("%s: cannot decrypt (%s)" % (what, last[:200]))
    return proc.stdout


class _Vaulted:
    def __init__(self, text: str):
        self.text = text


def _vaulted(loader: Any, node: Any) -> _Vaulted:
    return _Vaulted(loader.construct_scalar(node))


def _load_vault_yaml(data: bytes, what: str) -> Any:
    import yaml

    class VaultLoader(yaml.SafeLoader):
        pass

    VaultLoader.add_constructor("!vault", _vaulted)
    try:
        return yaml.load(data, Loader=VaultLoader)
    except yaml.YAMLError:
        raise SecretError("%s: not YAML" % what) from None


SOURCES: Dict[str, SecretSource] = {s.name: s for s in (EnvSource(), FileSource(), AnsibleVaultSource())}


def check_args(args: Any) -> Optional[str]:
    """Why ``{get_secret: args}`` is malformed, or None."""
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        return "expected %s, got %s" % (_SHAPE, json.dumps(args, sort_keys=True, default=str))
    source = SOURCES.get(args[0])
    if source is None:
        return "unknown source %r (known: %s)" % (args[0], ", ".join(sorted(SOURCES)))
    problem = source.check(list(args[1:]))
    return None if problem is None else "%s, got %s" % (problem, json.dumps(args, default=str))


def is_reference(value: Any) -> bool:
    """A well-formed ``{get_secret: [...]}`` call."""
    return isinstance(value, dict) and len(value) == 1 and FUNCTION in value and check_args(value[FUNCTION]) is None


class SecretResolver:
    """Resolves the secrets of one operation call and remembers their values for scrubbing."""

    def __init__(self) -> None:
        self._values: List[str] = []
        self._lock = threading.Lock()

    def resolve(self, args: Any) -> Any:
        problem = check_args(args)
        if problem:
            raise SecretError("get_secret: %s" % problem)
        value = SOURCES[args[0]].read(list(args[1:]))
        self.add(value)
        return value

    def add(self, value: Any) -> None:
        with self._lock:
            for text in _variants(value):
                if text not in self._values:
                    self._values.append(text)

    def redactor(self) -> "Redactor":
        with self._lock:
            return Redactor(self._values)


def _variants(value: Any) -> Iterable[str]:
    """The forms a value shows up in: as is (numbers as text), stripped, JSON-escaped (a value
    echoed into a JSON outputs file); lists and maps by their leaves."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _variants(v)
        return
    if isinstance(value, list):
        for v in value:
            yield from _variants(v)
        return
    if value is None or isinstance(value, bool):
        return
    text = value if isinstance(value, str) else str(value)
    for form in (text, text.strip(), json.dumps(text)[1:-1]):
        if form:
            yield form


class Redactor:
    """Replaces known secret values by ``MASK`` in texts, values and files."""

    def __init__(self, values: Iterable[str]):
        # Longest first: a secret that contains another is masked whole.
        self.values = sorted(set(v for v in values if v), key=len, reverse=True)
        self._bytes = [v.encode("utf-8") for v in self.values]

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        for v in self.values:
            if v in text:
                text = text.replace(v, MASK)
        return text

    def data(self, data: bytes) -> bytes:
        for v in self._bytes:
            if v in data:
                data = data.replace(v, MASK.encode("ascii"))
        return data

    def value(self, value: Any) -> Any:
        """Strings (and map keys) of a JSON-like value, masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and self.text(str(value)) != str(value):
            return MASK
        return value

    def copy_file(self, src: str, dst: str, append: bool = False) -> None:
        """``src`` masked into ``dst``, streamed: a secret cut by a chunk boundary is still
        found (the last len-1 bytes are carried over to the next chunk)."""
        keep = max((len(b) for b in self._bytes), default=1) - 1
        with open(src, "rb") as fin, open(dst, "ab" if append else "wb") as fout:
            carry = b""
            while True:
                chunk = fin.read(1 << 20)
                buf = self.data(carry + chunk)
                if not chunk:
                    fout.write(buf)
                    return
                cut = max(0, len(buf) - keep)
                fout.write(buf[:cut])
                carry = buf[cut:]

    def scrub_file(self, path: str) -> None:
        """Mask ``path`` in place (through a temporary file beside it, then renamed)."""
        if not self or not os.path.isfile(path):
            return
        tmp = path + ".scrub"
        self.copy_file(path, tmp)
        os.replace(tmp, path)


# ---------------------------------------------------------------- environment of operations
# Variables an operation input may not set: they steer the shell (bash sources $BASH_ENV before a
# script; ENV for sh; IFS, SHELLOPTS... change how it parses), the dynamic loader (LD_*), or the
# interpreters a script or ansible-playbook starts (PYTHON*, PERL5*, ...).
FORBIDDEN_ENV = frozenset((
    "BASH_ENV", "ENV", "PATH", "IFS", "SHELLOPTS", "BASHOPTS", "PS4", "PS1", "PS2", "PS3", "CDPATH",
    "GLOBIGNORE", "PROMPT_COMMAND", "BASH_XTRACEFD", "HISTFILE", "HOME", "SHELL", "TMPDIR", "POSIXLY_CORRECT",
    "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYLIB", "RUBYOPT", "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS",
    "GCONV_PATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "NLSPATH", "MALLOC_CHECK_", "TZDIR",
))
FORBIDDEN_ENV_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_", "ANSIBLE_", "WF_")


def forbidden_env_name(name: str) -> Optional[str]:
    """Why an operation input named ``name`` may not be passed as an environment variable."""
    if name in FORBIDDEN_ENV:
        return "%s steers the shell, the loader or the interpreters the operation starts" % name
    if name.lower().startswith("ansible_"):
        return "ansible_*: Ansible's connection and behaviour settings (a playbook gets inputs as variables)"
    for p in FORBIDDEN_ENV_PREFIXES:
        if name.startswith(p):
            what = "the engine's own variables" if p == "WF_" else \
                "Ansible's settings" if p == "ANSIBLE_" else "the loader or the interpreters"
            return "%s*: %s" % (p, what)
    return None
