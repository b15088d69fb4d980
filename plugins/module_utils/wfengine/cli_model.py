# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl library``, ``model`` and ``instantiate``: what goes into the Space before any run
(a component library, an application model with its files, a deployment instance), one line each
saying what was stored."""
from __future__ import annotations

import argparse
import sys
from typing import List

from . import api
from .cli_common import inputs
from .space.base import Space

SHOWN_FILES = 10


def cmd_library(args: argparse.Namespace, space: Space) -> int:
    r = api.upload_library(space, args.file, name=args.name)
    print("library %s: %s (%d types)" % (r["name"], "uploaded" if r["changed"] else "unchanged",
                                         len(r["types"])))
    return 0


def cmd_model(args: argparse.Namespace, space: Space) -> int:
    r = api.upload_model(space, args.file, args.model)
    print("model %s: %s (%d templates, %d node instances once deployed, workflows: %s)"
          % (r["name"], "uploaded" if r["changed"] else "unchanged", len(r["templates"]),
             r["instances"], ", ".join(r["workflows"])))
    print_files("files stored", r.get("files") or [], args.verbose)
    print_files("left out by the ignore list", r.get("left_out") or [], args.verbose)
    for line in r.get("warnings") or []:
        print("warning: %s" % line, file=sys.stderr)
    return 0


def print_files(title: str, paths: List[str], verbose: int) -> None:
    """What an upload put into the shared Space (and what it kept out), so its author can check no
    secret went in: a line naming the first few, or with ``-v`` one line each."""
    if not paths:
        return
    if verbose:
        print("%s (%d):" % (title, len(paths)))
        for p in paths:
            print("  %s" % p)
        return
    more = len(paths) - SHOWN_FILES
    print("%s (%d): %s%s" % (title, len(paths), ", ".join(paths[:SHOWN_FILES]),
                             " and %d more (-v lists them)" % more if more > 0 else ""))


def cmd_instantiate(args: argparse.Namespace, space: Space) -> int:
    r = api.create_instance(space, args.model, args.instance, inputs=inputs(args.input))
    print("instance %s/%s: %s (%d node instances)" % (args.model, args.instance,
                                                      "created" if r["changed"] else "exists",
                                                      r["nodes"]))
    return 0
