# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception type per layer, caught once at the edge (CLI, module) and shown as one line.

Every message names its place (file, node, key) so a user can fix the input from the message alone.
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence

# What would break "one line per problem" (str.splitlines splits on all of these): a name or a
# key from a model may carry any of them, and messages quote names and keys.
_LINE_BREAKERS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters and line separators escaped (``\\n``, ``\\x1c``, ...)."""
    return _LINE_BREAKERS.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class WfError(Exception):
    """Base of every error the engine reports to a user."""

    exit_code = 2

    def line(self) -> str:
        return one_line(str(self))


class ToscaError(WfError):
    """Bad TOSCA input: YAML syntax, unknown type, bad requirement, bad scaling, import problems."""

    def __init__(self, message: str, file: Optional[str] = None, path: Optional[str] = None):
        self.message = message
        self.file = file
        self.path = path
        where = ""
        if file:
            where = file
        if path:
            where = "%s: %s" % (where, path) if where else path
        super().__init__(one_line("%s: %s" % (where, message) if where else message))


class ToscaProblems(ToscaError):
    """Every problem found in one model, reported together: a user fixing a real template wants
    the whole list from one upload, not one error per attempt.  ``str()`` / ``line()`` give one
    problem per line; ``summary()`` the first line of a task's failure message."""

    def __init__(self, problems: Sequence[ToscaError]):
        flat: List[ToscaError] = []
        for p in problems:
            flat.extend(p.problems if isinstance(p, ToscaProblems) else [p])
        self.problems: List[ToscaError] = flat
        first = self.problems[0] if self.problems else None
        # Not ToscaError.__init__: the problems are one per line on purpose (each already one line).
        WfError.__init__(self, "\n".join(str(p) for p in self.problems))  # pylint: disable=non-parent-init-called
        self.message = str(self)
        self.file = first.file if first is not None else None
        self.path = first.path if first is not None else None

    def lines(self) -> List[str]:
        return [str(p) for p in self.problems]

    def line(self) -> str:
        return str(self)      # one problem per line, each escaped by its own ToscaError

    def summary(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        files = sorted({p.file for p in self.problems if p.file})
        return "%d problems in %s, the first: %s" % (len(self.problems), ", ".join(files) or "the model",
                                                     self.problems[0] if self.problems else "")


def raise_problems(problems: Sequence[ToscaError]) -> None:
    """Raise the problems found, if any: one alone as itself (its class and message unchanged),
    several as one ``ToscaProblems``."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ToscaProblems(problems)


class ModelError(WfError):
    """A model that parses but cannot run: deadlocking relationships, impossible waits."""


class NotFound(WfError):
    """Unknown library, model, instance, run or workflow."""


class Conflict(WfError):
    """An operation refused because of the current state (e.g. a run already in progress)."""


class SpaceError(WfError):
    """The tuple space could not be reached or refused an operation."""


class PermissionDenied(WfError):
    """The Space's ACLs refused an operation: ``permission denied on KEY (token lacks ACCESS on
    PREFIX)``.  Not a SpaceError (nothing transient to retry) and not a Conflict (no concurrent
    writer to re-read after): whoever gets it stops and says so (a worker exits)."""

    def __init__(self, key: str, access: str = "write", prefix: Optional[str] = None,
                 detail: Optional[str] = None):
        self.key = key
        self.access = access
        self.prefix = prefix
        why = detail or "token lacks %s on %s" % (access, prefix if prefix is not None else key)
        super().__init__("permission denied on %s (%s)" % (key, why))


class SpaceUnavailable(SpaceError):
    """The Space did not answer (a Consul outage or quorum loss outlasting the client's
    retries): nothing was decided, the caller may try again later.  An operation whose
    preparation meets it is not run and not failed: its node is handed back."""


class SpaceDataError(SpaceError):
    """A value read from the Space is not what the engine wrote (not JSON, wrong shape)."""


class TxnTooLarge(SpaceError):
    """A transaction has more operations than the backend accepts in one transaction."""


class WorkerInterrupt(Exception):
    """Raised by a signal handler to leave a blocking query at once (graceful stop).  Not a
    WfError: nothing reports it, a worker's loop ends on it."""
