# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument types of ``wfctl``: a bad value is refused by argument parsing, in one line, before
anything connects or waits (``--workers -1`` on the embedded Space used to wait forever, a bad
port or URL surfaced as a traceback from deep inside the HTTP client).

argparse applies these to string defaults too, so a bad value from the environment
(``CONSUL_HTTP_ADDR``, ``CONSUL_CACERT``, ``WF_WORKER_THREADS``...) is refused the same way.
"""
from __future__ import annotations

import argparse
import math
import os
import urllib.parse
from typing import Callable


def int_at_least(low: int, high: int = 0) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError("%r is not an integer" % (text,)) from None
        if value < low or (high and value > high):
            raise argparse.ArgumentTypeError("%d is out of range (%s)" % (
                value, ("%d to %d" % (low, high)) if high else ("at least %d" % low)))
        return value
    return parse


def seconds(allow_zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError("%r is not a number of seconds" % (text,)) from None
        if math.isnan(value) or value in (float("inf"), float("-inf")) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError("%r: expected a number of seconds %s 0"
                                             % (text, ">=" if allow_zero else ">"))
        return value
    return parse


def host_port(text: str) -> str:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6), port 1-65535."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError("%r: expected HOST:PORT with a port from 1 to 65535" % (text,))
    if host.startswith("[") != host.endswith("]") or any(c.isspace() for c in host):
        raise argparse.ArgumentTypeError("%r: bad host %r" % (text, host))
    return text


def consul_url(text: str) -> str:
    """``host:port`` or ``http(s)://host[:port]``: checked here as ConsulSpace will parse it."""
    full = text.strip() if "://" in text else "http://" + text.strip()
    try:
        parsed = urllib.parse.urlsplit(full)
        port = parsed.port
    except ValueError as exc:
        raise argparse.ArgumentTypeError("%r is not a URL (%s)" % (text, exc)) from None
    if parsed.scheme.lower() not in ("http", "https"):
        raise argparse.ArgumentTypeError("%r: scheme must be http or https" % (text,))
    if not parsed.hostname:
        raise argparse.ArgumentTypeError("%r: no host" % (text,))
    if port is not None and port == 0:
        raise argparse.ArgumentTypeError("%r: port 0" % (text,))
    return text


def readable_file(text: str) -> str:
    """A certificate, key or CA file: it must exist now, not at the first TLS handshake."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError("%s: %s" % (text, "not a file" if os.path.exists(text) else "no such file"))
    if not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError("%s: not readable" % text)
    return text
