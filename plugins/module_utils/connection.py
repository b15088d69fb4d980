# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: the connection options (documented once in the
``ditrit.workflows.connection`` doc fragment), turning them into the engine's ``SpaceOptions``,
and opening the Space so that an engine error becomes the task's one-line failure message.

The environment variables and defaults the options share with ``wfctl`` are declared in the
engine's ``space/options.py`` (plain standard library, so imported even without PyYAML).

The engine lives beside this file (``module_utils/wfengine``); AnsiballZ ships it with every module,
so nothing on the managed host depends on the source checkout.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import tempfile
import traceback
from contextlib import contextmanager

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine.space import options as so

try:
    from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine import api
    from ansible_collections.ditrit.workflows.plugins.module_utils.wfengine.errors import WfError
    ENGINE_IMPORT_ERROR = None
except ImportError:  # the engine needs PyYAML, which may be missing on an unusual host
    api = None
    ENGINE_IMPORT_ERROR = traceback.format_exc()

    class WfError(Exception):
        """Stand-in so that ``except WfError`` still parses when the engine cannot be imported."""


DEFAULT_CONSUL_PORT = so.DEFAULT_CONSUL_PORT
# The modules' own default host (documented in the doc fragment); wfctl's is 127.0.0.1.
DEFAULT_CONSUL_HOST = 'localhost'


def connection_argspec():
    """The shared options, a fresh dict each call (AnsibleModule mutates what it is given)."""
    return dict(
        backend=dict(type='str', default=so.DEFAULT_BACKEND, choices=['embedded', 'consul']),
        space=dict(type='path', fallback=(env_fallback, [so.ENV_SPACE])),
        host=dict(type='str'),
        addr=dict(type='str'),
        port=dict(type='int', default=DEFAULT_CONSUL_PORT),
        # no default: https when CONSUL_HTTP_SSL is true, else http (consul_url)
        scheme=dict(type='str', choices=['http', 'https']),
        token=dict(type='str', no_log=True, fallback=(env_fallback, [so.ENV_CONSUL_TOKEN])),
        validate_certs=dict(type='bool', default=True, fallback=(env_fallback, [so.ENV_CONSUL_SSL_VERIFY])),
        ca_path=dict(type='path', fallback=(env_fallback, [so.ENV_CONSUL_CACERT])),
        client_cert=dict(type='path'),
        client_key=dict(type='path', no_log=False),
        datacenter=dict(type='str'),
        retry_timeout=dict(type='float', default=so.DEFAULT_RETRY_TOTAL),
        prefix=dict(type='str', default=so.DEFAULT_PREFIX, fallback=(env_fallback, [so.ENV_PREFIX])),
    )


def generate_argspec(**module_options):
    """The module's own options merged over the shared ones (a module may refine one of them)."""
    spec = connection_argspec()
    spec.update(module_options)
    return spec


TRUE_WORDS = ('1', 't', 'true', 'y', 'yes', 'on')


def env_true(value):
    """An environment variable read as a boolean, as the consul CLI reads CONSUL_HTTP_SSL."""
    return (value or '').strip().lower() in TRUE_WORDS


def consul_url(params, environ=None):
    """``scheme://host:port`` when ``host`` is given, else ``addr`` or ``CONSUL_HTTP_ADDR``
    (``host:port`` or a URL: ``scheme`` is prepended when it has none, as the consul CLI does),
    else the local agent.  ``scheme`` defaults to https when ``CONSUL_HTTP_SSL`` is true."""
    environ = os.environ if environ is None else environ
    host = params.get('host')
    scheme = params.get('scheme') or ('https' if env_true(environ.get(so.ENV_CONSUL_SSL)) else 'http')
    port = params.get('port') or DEFAULT_CONSUL_PORT
    if host:
        if ':' in host and not host.startswith('['):  # a bare IPv6 address
            host = '[%s]' % host
        return '%s://%s:%s' % (scheme, host, port)
    addr = (params.get('addr') or environ.get(so.ENV_CONSUL_ADDR) or '').strip()
    if addr:
        if '://' not in addr:
            addr = '%s://%s' % (scheme, addr)
        return addr.rstrip('/')
    return '%s://%s:%s' % (scheme, DEFAULT_CONSUL_HOST, port)


def space_options(params, environ=None):
    """Build the engine's ``SpaceOptions`` from the module parameters."""
    prefix = params.get('prefix')
    if prefix is None:
        prefix = so.DEFAULT_PREFIX
    if params.get('backend') == 'consul':
        return so.SpaceOptions(backend='consul', url=consul_url(params, environ), token=params.get('token'),
                               ca_file=params.get('ca_path'), client_cert=params.get('client_cert'),
                               client_key=params.get('client_key'),
                               verify=bool(params.get('validate_certs', True)), prefix=prefix,
                               datacenter=params.get('datacenter'),
                               extra={'retry_total': float(params.get('retry_timeout') or so.DEFAULT_RETRY_TOTAL)})
    return so.SpaceOptions(backend='embedded', path=params.get('space'), prefix=prefix)


def error_text(exc):
    """An engine error as the task's message: its one line; for an error that carries several
    problems (``problems``), a one-line summary (the lines themselves are in ``error_problems``),
    never a traceback."""
    problems = error_problems(exc)
    if len(problems) > 1:
        summary = getattr(exc, 'summary', None)
        return summary() if callable(summary) else '%d problems, the first: %s' % (len(problems), problems[0])
    if problems:
        return problems[0]
    return str(exc) or exc.__class__.__name__


def error_problems(exc):
    """One line per problem of an engine error (``ToscaProblems.problems``), else an empty list."""
    problems = getattr(exc, 'problems', None)
    if problems and isinstance(problems, (list, tuple)):
        return [str(p) for p in problems]
    return []


class WorkflowsModule(AnsibleModule):
    """AnsibleModule with the shared connection options and the Space at hand."""

    def __init__(self, argument_spec=None, required_if=None, mutually_exclusive=None, **kwargs):
        spec = generate_argspec(**(argument_spec or {}))
        required_if = list(required_if or [])
        required_if.append(('backend', 'embedded', ('space',)))
        mutually_exclusive = list(mutually_exclusive or [])
        mutually_exclusive.append(('host', 'addr'))
        super(WorkflowsModule, self).__init__(argument_spec=spec, required_if=required_if,
                                              mutually_exclusive=mutually_exclusive, **kwargs)
        if ENGINE_IMPORT_ERROR is not None:
            self.fail_json(msg=missing_required_lib('PyYAML (needed by the wfengine module_utils)'),
                           exception=ENGINE_IMPORT_ERROR)

    @property
    def embedded(self):
        return self.params['backend'] == 'embedded'

    def space_options(self):
        return space_options(self.params)

    @contextmanager
    def space(self):
        """The open Space for the body of a ``with``; an engine error fails the task with its
        one-line text.

        Embedded backend: the file's directory is created when missing, except in check mode,
        where a Space that does not exist yet is replaced by an empty one in a temporary
        directory, so that check mode writes nothing anywhere."""
        tmpdir = None
        opts = self.space_options()
        try:
            if self.embedded:
                path = os.path.abspath(os.path.expanduser(opts.path))
                opts.path = path
                if self.check_mode and not os.path.exists(path):
                    tmpdir = tempfile.mkdtemp(prefix='wf-check-')
                    opts.path = os.path.join(tmpdir, 'space.db')
                elif not os.path.isdir(os.path.dirname(path)):
                    os.makedirs(os.path.dirname(path))
            space = api.open_space(opts)
            try:
                yield space
            finally:
                space.close()
        except WfError as exc:
            fields = dict(msg=error_text(exc), error_type=exc.__class__.__name__)
            problems = error_problems(exc)
            if problems:
                fields['problems'] = problems
            self.fail_json(**fields)
        except ImportError as exc:  # py-consul is imported only when the consul backend is used
            self.fail_json(msg=missing_required_lib('py-consul (for backend=consul)'), exception=traceback.format_exc(),
                           error=str(exc))
        except (OSError, IOError) as exc:
            self.fail_json(msg='%s: %s' % (getattr(exc, 'filename', None) or 'space', exc))
        finally:
            if tmpdir is not None:
                shutil.rmtree(tmpdir, ignore_errors=True)
