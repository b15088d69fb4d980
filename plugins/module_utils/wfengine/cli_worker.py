# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl worker``: the long-lived worker daemon.  Unlike the other commands it owns the process
(signals, the fatal-error hand-off to the main thread, metrics), hence a file of its own."""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import threading
from types import FrameType
from typing import Optional, Tuple

from .cli_common import ssh_options
from .errors import WorkerInterrupt
from .space.base import Space
from .space.options import SpaceOptions
from .worker_options import WorkerOptions


def prepare_worker(args: argparse.Namespace, opts: SpaceOptions) -> None:
    """Before the Space opens: one connection per thread of the pool, plus the blocking query
    and the renewals."""
    opts.extra["max_connections"] = args.threads + 2


def _default_state_dir(worker_id: Optional[str]) -> str:
    from .operation.resolver import default_cache_dir
    return os.path.join(default_cache_dir(), "state", (worker_id or "worker").replace("/", "_"))


class _StoppedBeforeServing(Exception):
    """A SIGTERM/SIGINT that came while the worker was still starting: nothing is in flight yet."""


def _stop_before_serving(signum: int, frame: Optional[FrameType]) -> None:
    raise _StoppedBeforeServing()


def cmd_worker(args: argparse.Namespace, space: Space) -> int:
    # A stop asked while the worker starts (imports, fork server, journal) is a clean exit, not a
    # death by signal: a service manager or a test may stop a worker that has not served yet.
    signal.signal(signal.SIGTERM, _stop_before_serving)
    signal.signal(signal.SIGINT, _stop_before_serving)
    try:
        return _serve_worker(args, space)
    except _StoppedBeforeServing:
        logging.getLogger("wfengine").info("worker stopped before it served")
        return 0


def _wake_address(text: Optional[str]) -> Optional[Tuple[str, int]]:
    """``--wake HOST:PORT`` as an address to listen on (``[::1]`` unbracketed; no host:
    loopback)."""
    if not text:
        return None
    host, dummy, port = text.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port))


def _serve_worker(args: argparse.Namespace, space: Space) -> int:
    from .worker import Worker
    wopts = WorkerOptions.from_args(args)
    wopts.state_dir = wopts.state_dir or _default_state_dir(wopts.worker_id)
    opts = ssh_options(args, serves=wopts.serves)
    if opts.inventory:
        from .placement import Inventory
        # unreadable: refused now, not at the first operation
        Inventory(opts.inventory).match([])
    w = Worker(space, wopts, ssh_options=opts)
    if wopts.metrics:        # a Prometheus endpoint (metrics.py, docs/observability.md)
        from .metrics import instrument
        instrument(w, wopts.metrics)

    def _stop(signum: int, frame: Optional[FrameType]) -> None:
        # Steps in flight finish and commit; the blocking query is left at once.
        if not w.stopping:
            w.stop()
            raise WorkerInterrupt()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # SIGUSR2: every thread's stack on stderr, the worker going on (what a silent worker waits
    # on, without a debugger: the fault tests send it before they give up on a run).
    faulthandler.register(signal.SIGUSR2, all_threads=True, chain=False)

    def _fatal(signum: int, frame: Optional[FrameType]) -> None:
        raise WorkerInterrupt()
    # A permission the token lacks (met on any thread) leaves the blocking query at once; serve()
    # then raises it: one line, exit 2.
    signal.signal(signal.SIGUSR1, _fatal)
    main_thread = threading.main_thread()

    def _on_fatal() -> None:
        if threading.current_thread() is not main_thread and main_thread.ident is not None:
            signal.pthread_kill(main_thread.ident, signal.SIGUSR1)
    w.on_fatal = _on_fatal
    wake = _wake_address(wopts.wake)
    logging.getLogger("wfengine").info("worker %s serving (%s backend)", w.id, args.backend)
    try:
        try:
            w.serve(wake_address=wake)
        finally:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    except WorkerInterrupt:     # a signal that came while it was already stopping
        pass
    if w.fatal is not None:
        raise w.fatal
    return 0
