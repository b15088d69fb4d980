# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an upload never ships from a folder it walks (a model's folder, a CSAR, a folder dependency).

The Space is shared: whatever an upload stores there can be read by every worker and every holder of
a read token, for as long as the model version lives.  A model's folder is usually a checkout, and a
checkout holds what nobody meant to deploy: version control metadata, ``.env`` files, SSH keys,
editor backups, caches.  This list is documented in docs/security.md ("Uploads"); keep them in step.

A file the model names itself (an implementation, a dependency, an artifact, an import) is not
subject to it: the author asked for it, and leaving it out would break the model at run time.  Such
a file that looks like a secret is shipped with an upload warning instead (``secret_reason``).
"""
from __future__ import annotations

import fnmatch
from typing import Optional

# Folders left out with everything under them (hidden folders are all left out as well).
IGNORED_DIRS = frozenset({"__pycache__", "CVS", "_darcs"})

# (pattern, reason) on file names; fnmatch syntax, case-sensitive as file systems are.
_SECRET_NAMES = (
    ("*.env", "an environment file"),
    ("id_rsa*", "an SSH key"),
    ("id_dsa*", "an SSH key"),
    ("id_ecdsa*", "an SSH key"),
    ("id_ed25519*", "an SSH key"),
    ("*.key", "a private key"),
    ("*.p12", "a key store"),
    ("*.pfx", "a key store"),
    ("*.tfstate", "a Terraform state (it holds secrets in clear)"),
    ("*.tfstate.backup", "a Terraform state (it holds secrets in clear)"),
)
_OTHER_NAMES = (
    ("*.retry", "an Ansible retry file"),
    ("*~", "an editor backup"),
    ("#*#", "an editor backup"),
    ("*.swp", "an editor swap file"),
    ("*.swo", "an editor swap file"),
    ("*.bak", "a backup"),
    ("*.orig", "a merge leftover"),
    ("*.rej", "a patch leftover"),
    ("*.pyc", "Python bytecode"),
    ("*.pyo", "Python bytecode"),
    ("Thumbs.db", "an OS cache"),
)

# How much of a file is read to tell whether it is a private key.
_HEAD_BYTES = 4096
_PEM_KEY_MARKERS = (b"PRIVATE KEY-----", b"PRIVATE KEY BLOCK-----")


def ignored_dir(name: str) -> bool:
    """Whether a folder of this name is left out, with everything under it."""
    return name.startswith(".") or name in IGNORED_DIRS


def _key_content(head: bytes, name: str) -> bool:
    """A PEM/OpenSSH/PuTTY private key, whatever the file is called; a ``.pem`` holding a
    certificate only (public) still ships."""
    if name.endswith(".pem") and b"PRIVATE KEY" in head:
        return True
    start = head.lstrip()[:200]
    if start.startswith(b"PuTTY-User-Key-File"):
        return True
    return start.startswith(b"-----BEGIN") and any(m in start.split(b"\n", 1)[0] for m in _PEM_KEY_MARKERS)


def secret_reason(name: str, head: bytes = b"") -> Optional[str]:
    """Why a file looks like a secret (its name, or ``head``: its first bytes), else None."""
    for pattern, reason in _SECRET_NAMES:
        if fnmatch.fnmatchcase(name, pattern):
            return reason
    if _key_content(head[:_HEAD_BYTES], name):
        return "a private key"
    return None


def ignored_reason(name: str, head: bytes = b"") -> Optional[str]:
    """Why a file found by walking a folder is left out, else None: hidden, secret-like or junk."""
    if name.startswith("."):
        return "a hidden file"
    reason = secret_reason(name, head)
    if reason is not None:
        return reason
    for pattern, why in _OTHER_NAMES:
        if fnmatch.fnmatchcase(name, pattern):
            return why
    return None


__all__ = ["IGNORED_DIRS", "ignored_dir", "ignored_reason", "secret_reason"]
