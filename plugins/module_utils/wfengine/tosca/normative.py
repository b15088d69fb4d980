# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bundled TOSCA normative library, with the engine's declarative workflows.

Kept as a Python string rather than a YAML file because an Ansible collection ships only the ``.py``
files of ``module_utils`` to managed hosts.  The types follow the TOSCA Simple Profile in YAML 1.3
(section 5: data, capability, interface, relationship and node types); the ``workflows`` of
``tosca.nodes.Root`` and the weavings of the relationship types are the engine's extension, chosen
and justified in ``docs/workflows.md``.

Every user type library and model is resolved on top of this one: a later library that defines a
type of the same name replaces it.  The ``node_types`` section is kept in ``normative_nodes.py``
and appended to the other sections here: one document, two files of reasonable size.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional


from .loader import TYPE_SECTIONS
from .normative_nodes import NODE_TYPES_YAML

NORMATIVE_FILE = "<normative>"

NORMATIVE_YAML = r"""
tosca_definitions_version: tosca_simple_yaml_1_3

description: >-
  TOSCA Simple Profile 1.3 normative types used by the ditrit.workflows engine, with declarative
  install / uninstall workflows on tosca.nodes.Root and weavings on the relationship types.

data_types:
  tosca.datatypes.Root:
    description: The root of every TOSCA data type (5.3.1).
  tosca.datatypes.Credential:
    derived_from: tosca.datatypes.Root
    properties:
      protocol: {type: string, required: false}
      token_type: {type: string, default: password}
      token: {type: string}
      keys: {type: map, required: false, entry_schema: {type: string}}
      user: {type: string, required: false}
  tosca.datatypes.json:
    derived_from: string
    description: A string holding JSON.
  tosca.datatypes.xml:
    derived_from: string
    description: A string holding XML.
  tosca.datatypes.TimeInterval:
    derived_from: tosca.datatypes.Root
    properties:
      start_time: {type: timestamp, required: true}
      end_time: {type: timestamp, required: true}
  tosca.datatypes.network.NetworkInfo:
    derived_from: tosca.datatypes.Root
    properties:
      network_name: {type: string, required: false}
      network_id: {type: string, required: false}
      addresses: {type: list, required: false, entry_schema: {type: string}}
  tosca.datatypes.network.PortInfo:
    derived_from: tosca.datatypes.Root
    properties:
      port_name: {type: string, required: false}
      port_id: {type: string, required: false}
      network_id: {type: string, required: false}
      mac_address: {type: string, required: false}
      addresses: {type: list, required: false, entry_schema: {type: string}}
  tosca.datatypes.network.PortDef:
    derived_from: integer
    constraints:
      - in_range: [1, 65535]
  tosca.datatypes.network.PortSpec:
    derived_from: tosca.datatypes.Root
    properties:
      protocol: {type: string, required: true, default: tcp, constraints: [{valid_values: [udp, tcp, igmp]}]}
      target: {type: tosca.datatypes.network.PortDef, required: false}
      target_range: {type: range, required: false, constraints: [{in_range: [1, 65535]}]}
      source: {type: tosca.datatypes.network.PortDef, required: false}
      source_range: {type: range, required: false, constraints: [{in_range: [1, 65535]}]}

artifact_types:
  tosca.artifacts.Root:
    description: The root of every TOSCA artifact type (5.4).
  tosca.artifacts.File:
    derived_from: tosca.artifacts.Root
  tosca.artifacts.Deployment:
    derived_from: tosca.artifacts.Root
  tosca.artifacts.Deployment.Image:
    derived_from: tosca.artifacts.Deployment
  tosca.artifacts.Deployment.Image.VM:
    derived_from: tosca.artifacts.Deployment.Image
  tosca.artifacts.Implementation:
    derived_from: tosca.artifacts.Root
  tosca.artifacts.Implementation.Bash:
    derived_from: tosca.artifacts.Implementation
    mime_type: application/x-sh
    file_ext: [sh]
  tosca.artifacts.Implementation.Python:
    derived_from: tosca.artifacts.Implementation
    mime_type: application/x-python
    file_ext: [py]
  tosca.artifacts.template:
    derived_from: tosca.artifacts.Root
    description: A template rendered by the orchestrator (TOSCA 1.3).

group_types:
  tosca.groups.Root:
    description: The root of every TOSCA group type (5.10).
    interfaces:
      Standard: {type: tosca.interfaces.node.lifecycle.Standard}

policy_types:
  tosca.policies.Root:
    description: The root of every TOSCA policy type (5.11).
  tosca.policies.Placement:
    derived_from: tosca.policies.Root
  tosca.policies.Scaling:
    derived_from: tosca.policies.Root
  tosca.policies.Update:
    derived_from: tosca.policies.Root
  tosca.policies.Performance:
    derived_from: tosca.policies.Root

capability_types:
  tosca.capabilities.Root:
    description: The root of every TOSCA capability type (5.5.1).
  tosca.capabilities.Node:
    derived_from: tosca.capabilities.Root
  tosca.capabilities.Container:
    derived_from: tosca.capabilities.Root
  tosca.capabilities.Compute:
    derived_from: tosca.capabilities.Container
    properties:
      name: {type: string, required: false}
      num_cpus: {type: integer, required: false}
      cpu_frequency: {type: scalar-unit.frequency, required: false}
      disk_size: {type: scalar-unit.size, required: false}
      mem_size: {type: scalar-unit.size, required: false}
  tosca.capabilities.Endpoint:
    derived_from: tosca.capabilities.Root
    properties:
      protocol: {type: string, default: tcp}
      port: {type: integer, required: false}
      secure: {type: boolean, required: false, default: false}
      url_path: {type: string, required: false}
      port_name: {type: string, required: false}
      network_name: {type: string, required: false, default: PRIVATE}
      initiator: {type: string, required: false, default: source}
      ports: {type: map, required: false, entry_schema: {type: tosca.datatypes.network.PortSpec}}
      # Extension (ditrit.workflows, docs/operations.md): how a worker logs in to the host that
      # offers this endpoint (user; token_type private_key with token = path of the key file on
      # the worker, or password).  Read on a root host's `endpoint` capability.
      credential: {type: tosca.datatypes.Credential, required: false}
    attributes:
      ip_address: {type: string}
  tosca.capabilities.Endpoint.Public:
    derived_from: tosca.capabilities.Endpoint
    properties:
      network_name: {type: string, default: PUBLIC}
      floating: {type: boolean, required: false, default: false}
      dns_name: {type: string, required: false}
  tosca.capabilities.Endpoint.Admin:
    derived_from: tosca.capabilities.Endpoint
    properties:
      secure: {type: boolean, default: true}
  tosca.capabilities.Endpoint.Database:
    derived_from: tosca.capabilities.Endpoint
  tosca.capabilities.Attachment:
    derived_from: tosca.capabilities.Root
  tosca.capabilities.Storage:
    derived_from: tosca.capabilities.Root
    properties:
      name: {type: string, required: false}
  tosca.capabilities.OperatingSystem:
    derived_from: tosca.capabilities.Root
    properties:
      architecture: {type: string, required: false}
      type: {type: string, required: false}
      distribution: {type: string, required: false}
      version: {type: version, required: false}
  tosca.capabilities.Scalable:
    derived_from: tosca.capabilities.Root
    description: >-
      TOSCA 1.3 (5.5.13) gives max_instances a default of 1; the engine treats an absent
      max_instances as UNBOUNDED and an absent default_instances as min_instances.
    properties:
      min_instances: {type: integer, default: 1}
      max_instances: {type: integer, required: false}
      default_instances: {type: integer, required: false}
  tosca.capabilities.Network:
    derived_from: tosca.capabilities.Root
    properties:
      name: {type: string, required: false}
  tosca.capabilities.network.Bindable:
    derived_from: tosca.capabilities.Node
  tosca.capabilities.network.Linkable:
    derived_from: tosca.capabilities.Node

interface_types:
  tosca.interfaces.Root:
    description: The root of every TOSCA interface type (5.8.3).
  tosca.interfaces.node.lifecycle.Standard:
    derived_from: tosca.interfaces.Root
    operations:
      create: {description: Creates the node.}
      configure: {description: Configures the node once created.}
      start: {description: Starts the node once configured.}
      stop: {description: Stops the node.}
      delete: {description: Deletes the node once stopped.}
  tosca.interfaces.relationship.Configure:
    derived_from: tosca.interfaces.Root
    operations:
      pre_configure_source: {description: On the source, before the source is configured.}
      pre_configure_target: {description: On the target, before the target is configured.}
      post_configure_source: {description: On the source, after the source is configured.}
      post_configure_target: {description: On the target, after the target is configured.}
      add_target: {description: Notifies the source that a target is available.}
      add_source: {description: Notifies the target that a source is available.}
      target_changed: {description: Notifies the source that a target changed.}
      remove_target: {description: Notifies the source that a target goes away.}
      remove_source: {description: Notifies the target that a source goes away (not in 5.8.5).}

relationship_types:
  tosca.relationships.Root:
    description: The root of every TOSCA relationship type (5.7.1).
    attributes:
      tosca_id: {type: string}
      tosca_name: {type: string}
      state: {type: string, default: initial}
    interfaces:
      Configure: {type: tosca.interfaces.relationship.Configure}
    # Every relationship whose target is started before its source is created (Root, DependsOn,
    # HostedOn, AttachesTo): the Configure operations follow the SOURCE's lifecycle; the *_target
    # ones and add_source / remove_source run on the target's host (placement.operation_side).
    workflows:
      install: &target_first_install
        source_weaving:
          - before: creating
            wait_target: started
          - after: configuring
            activity: tosca.interfaces.relationships.Configure.pre_configure_source
          - after: configuring
            activity: tosca.interfaces.relationships.Configure.pre_configure_target
          - before: configured
            activity: tosca.interfaces.relationships.Configure.post_configure_source
          - before: configured
            activity: tosca.interfaces.relationships.Configure.post_configure_target
          - after: started
            activity: tosca.interfaces.relationships.Configure.add_target
          - after: started
            activity: tosca.interfaces.relationships.Configure.add_source
      uninstall: &target_first_uninstall
        source_weaving: &target_first_remove
          - after: stopping
            activity: tosca.interfaces.relationships.Configure.remove_target
          - after: stopping
            activity: tosca.interfaces.relationships.Configure.remove_source
        target_weaving:
          - before: stopping
            after_source: deleted

  tosca.relationships.DependsOn:
    derived_from: tosca.relationships.Root
    valid_target_types: [tosca.capabilities.Node]
    workflows:
      install: *target_first_install
      uninstall:
        source_weaving: *target_first_remove
        target_weaving:
          - before: stopping
            after_source: stopped

  tosca.relationships.HostedOn:
    derived_from: tosca.relationships.Root
    valid_target_types: [tosca.capabilities.Container]
    workflows:
      install: *target_first_install
      uninstall: *target_first_uninstall

  tosca.relationships.ConnectsTo:
    derived_from: tosca.relationships.Root
    valid_target_types: [tosca.capabilities.Endpoint]
    properties:
      credential: {type: tosca.datatypes.Credential, required: false}
    workflows:
      install:
        source_weaving:
          - after: configuring
            wait_target: started
            activity: tosca.interfaces.relationships.Configure.pre_configure_source
          - before: configured
            activity: tosca.interfaces.relationships.Configure.post_configure_source
          - before: starting
            wait_target: started
          - after: started
            activity: tosca.interfaces.relationships.Configure.add_target
        target_weaving:
          - after: configuring
            after_source: created
            activity: tosca.interfaces.relationships.Configure.pre_configure_target
          - before: configured
            activity: tosca.interfaces.relationships.Configure.post_configure_target
          - after: started
            activity: tosca.interfaces.relationships.Configure.add_source
      uninstall:
        source_weaving:
          - after: stopping
            activity: tosca.interfaces.relationships.Configure.remove_target
        target_weaving:
          - before: stopping
            after_source: stopped
          - after: stopping
            activity: tosca.interfaces.relationships.Configure.remove_source

  tosca.relationships.AttachesTo:
    derived_from: tosca.relationships.Root
    valid_target_types: [tosca.capabilities.Attachment]
    properties:
      location: {type: string}
      device: {type: string, required: false}
    attributes:
      device: {type: string}
    workflows:
      install: *target_first_install
      uninstall: *target_first_uninstall

  tosca.relationships.RoutesTo:
    derived_from: tosca.relationships.ConnectsTo
    valid_target_types: [tosca.capabilities.Endpoint]

  # TOSCA 1.3 section 8 (networking): dependencies, so they order like DependsOn.
  tosca.relationships.network.LinksTo:
    derived_from: tosca.relationships.DependsOn
    valid_target_types: [tosca.capabilities.network.Linkable]

  tosca.relationships.network.BindsTo:
    derived_from: tosca.relationships.DependsOn
    valid_target_types: [tosca.capabilities.network.Bindable]

""" + NODE_TYPES_YAML

_CACHE: Optional[Dict[str, Any]] = None


def normative_types() -> Dict[str, Any]:
    """The normative library as raw types (same shape as ``types.raw_types_of``), each type
    annotated with ``"_file": "<normative>"``; a fresh copy per call, so callers may mutate it."""
    global _CACHE
    if _CACHE is None:
        import yaml  # here, not at the top: importing the engine must not need PyYAML
        doc = yaml.safe_load(NORMATIVE_YAML)
        raw: Dict[str, Any] = {}
        for section in TYPE_SECTIONS:
            raw[section] = {name: dict(body or {}, _file=NORMATIVE_FILE)
                            for name, body in (doc.get(section) or {}).items()}
        _CACHE = raw
    return copy.deepcopy(_CACHE)
