# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # How every module reaches the Space; plugins/module_utils/connection.py holds the matching
    # argument spec, and the engine's space/options.py the environment variables and defaults it
    # shares with wfctl.
    DOCUMENTATION = r'''
options:
  backend:
    description:
      - Where the tuple space lives.
      - V(embedded) is one SQLite file on the host that runs the module (see O(space)); nothing to install,
        workers run inside the module while a workflow runs.
      - V(consul) is a Consul cluster (see O(host), O(port), O(scheme)); long-lived workers
        (C(wfctl worker)) do the work and the modules only read and write the Space.
    type: str
    choices: [embedded, consul]
    default: embedded
  space:
    description:
      - Path of the embedded Space file, used when O(backend=embedded).
      - Required with O(backend=embedded), unless the E(WF_SPACE) environment variable names the file.
      - Its directory is created when missing (not in check mode).
    type: path
  host:
    description:
      - Host name or address of a Consul server or agent, used when O(backend=consul), with O(port)
        and O(scheme).
      - When neither O(host) nor O(addr) is set, the address comes from the E(CONSUL_HTTP_ADDR)
        environment variable, else C(localhost).
      - Mutually exclusive with O(addr).
    type: str
  addr:
    description:
      - Address of the Consul server or agent as the consul CLI takes it, C(host:port) or
        C(scheme://host:port), used when O(backend=consul) and O(host) is not set.
      - Defaults to the E(CONSUL_HTTP_ADDR) environment variable.
      - O(scheme) is prepended when the address names none.
      - Mutually exclusive with O(host).
    type: str
  port:
    description:
      - Consul HTTP port, used with O(host).
    type: int
    default: 8500
  scheme:
    description:
      - Protocol to reach Consul, used with O(host), and with O(addr) or E(CONSUL_HTTP_ADDR) when
        the address names none.
      - When not set, V(https) if the E(CONSUL_HTTP_SSL) environment variable is true, else V(http).
    type: str
    choices: [http, https]
  token:
    description:
      - Consul ACL token.
      - Defaults to the E(CONSUL_HTTP_TOKEN) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of Consul over https.
      - Defaults to the E(CONSUL_HTTP_SSL_VERIFY) environment variable when it is set, else V(true).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle used to verify Consul's certificate.
      - Defaults to the E(CONSUL_CACERT) environment variable.
    type: path
  client_cert:
    description:
      - Client certificate for Consul's mutual TLS.
    type: path
  client_key:
    description:
      - Private key of O(client_cert).
    type: path
  datacenter:
    description:
      - Consul datacenter to use; the agent's own by default.
    type: str
  retry_timeout:
    description:
      - Seconds to keep retrying Consul requests that fail transiently (no leader during an election,
        connection refused, timeouts) before the task fails.
    type: float
    default: 60
  prefix:
    description:
      - Key prefix under which the engine keeps everything, so that several engines can share one
        Consul (or one file).
      - Defaults to the E(WF_PREFIX) environment variable, else C(wf/).
      - Workers must use the same prefix (C(wfctl --prefix)).
    type: str
    default: wf/
requirements:
  - PyYAML (on the host that runs the module; present wherever Ansible runs).
  - py-consul, only for O(backend=consul).
notes:
  - The connection options can be set once for every module of the collection with
    C(module_defaults) and the action group C(group/ditrit.workflows.tosca).
'''

    # The action_group attribute, shared by every module of the collection.
    ACTIONGROUP = r'''
attributes:
  action_group:
    description: Use C(group/ditrit.workflows.tosca) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - ditrit.workflows.tosca
'''
