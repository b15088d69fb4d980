# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl``: the manager commands (library, model, instantiate, workflow, status, trace) and the
worker daemon.  Errors are caught here, once, and printed as one line with exit code 2.

This is the entry point (``wfctl = wfengine.cli:main``, ``python -m wfengine.cli``): it parses
the arguments (cli_parser.py), opens the Space and runs the command the parser named
(cli_model.py, cli_run.py, cli_show.py, cli_worker.py, observe_cli.py)."""
from __future__ import annotations

import logging
import sys
from typing import Callable, List, Optional

from . import api
from .cli_common import space_options, ssh_options
from .cli_parser import build_parser
from .cli_run import cmd_update, cmd_wait, cmd_workflow, print_summary
from .cli_show import cmd_logs, cmd_plan, cmd_runs, cmd_serves, cmd_status, cmd_trace, section_lines
from .cli_worker import cmd_worker
from .errors import WfError
from .space.base import Space

# What importers of this module used before it was split (the commands and shared helpers).
__all__ = ["main", "build_parser", "space_options", "ssh_options", "print_summary",
           "section_lines", "cmd_workflow", "cmd_wait", "cmd_update", "cmd_plan", "cmd_status",
           "cmd_trace", "cmd_runs", "cmd_logs", "cmd_serves", "cmd_worker"]


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if getattr(args, "vault_password_file", None):
        from . import secrets
        secrets.configure(vault_password_file=args.vault_password_file)
    command: Callable[..., int] = args.func
    try:
        opts = space_options(args)
        prepare = getattr(args, "prepare", None)
        if prepare is not None:
            prepare(args, opts)
        space: Space = api.open_space(opts)
        try:
            return command(args, space)
        finally:
            space.close()
    except WfError as exc:
        for line in getattr(exc, "problems", None) or [exc]:
            print("wfctl: %s" % line.line(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `wfctl trace ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
