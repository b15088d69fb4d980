# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read one TOSCA service template and the files it imports into one set of raw types.

The loader only parses and merges; meaning (inheritance, workflows, templates) is given by
``types`` and ``templates``.  It records the file of every type so that later errors can point at
the file a user has to edit, and it turns YAML-only values (dates, non-string keys) into JSON ones
because everything it returns may be stored in the Space as JSON.
"""
from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, cast


from ..errors import ToscaError
from . import bounded_yaml

SUPPORTED_VERSIONS = (
    "tosca_simple_yaml_1_0",
    "tosca_simple_yaml_1_1",
    "tosca_simple_yaml_1_2",
    "tosca_simple_yaml_1_3",
)

TYPE_SECTIONS = (
    "node_types",
    "relationship_types",
    "capability_types",
    "interface_types",
    "data_types",
    "artifact_types",
    "group_types",
    "policy_types",
)

# Keynames of a TOSCA service template (1.0 to 1.3); anything else is most likely a typo.
_TOP_KEYS = set(TYPE_SECTIONS) | {
    "tosca_definitions_version", "namespace", "metadata", "description", "dsl_definitions",
    "repositories", "imports", "topology_template",
    "template_name", "template_author", "template_version",  # TOSCA 1.0 metadata keynames
}


@dataclass
class Document:
    """A root file merged with everything it imports."""

    file: str                                   # the root file, as given
    version: str                                # tosca_definitions_version of the root file
    description: Optional[str]
    types: Dict[str, Dict[str, Dict[str, Any]]]  # section -> type name -> raw definition
    type_files: Dict[str, Dict[str, str]]       # section -> type name -> file defining it
    topology_template: Optional[Dict[str, Any]]  # of the root file only
    files: List[str] = field(default_factory=list)   # every file read, root first
    metadata: Dict[str, Any] = field(default_factory=dict)
    imports: Dict[str, List[str]] = field(default_factory=dict)        # file -> files it imports
    prefixes: Dict[str, Dict[str, str]] = field(default_factory=dict)  # file -> namespace_prefix -> file

    @property
    def node_types(self) -> Dict[str, Dict[str, Any]]:
        return self.types["node_types"]

    @property
    def relationship_types(self) -> Dict[str, Dict[str, Any]]:
        return self.types["relationship_types"]

    def file_of(self, section: str, name: str) -> Optional[str]:
        return self.type_files.get(section, {}).get(name)


def _plain(value: Any, file: str, path: str) -> Any:
    """The JSON equivalent of a YAML value: the Space stores JSON, so a date becomes its ISO text
    and a number used as a key becomes a string; values JSON has no form for are refused here,
    where the file can still be named."""
    if isinstance(value, dict):
        out: Dict[str, Any] = {}
        for k, v in value.items():
            k = _plain_key(k, file, path)
            out[k] = _plain(v, file, "%s.%s" % (path, k) if path else k)
        return out
    if isinstance(value, list):
        return [_plain(v, file, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
    return _plain_scalar(value, file, path)


def _plain_key(k: Any, file: str, path: str) -> str:
    """A mapping key as JSON text: numbers and dates become their text, others are refused."""
    if isinstance(k, bool) or k is None:
        raise ToscaError("key %r is not a string (quote it)" % (k,), file=file, path=path or None)
    if isinstance(k, (int, float)):
        return str(k)
    if isinstance(k, (datetime.date, datetime.datetime)):
        return k.isoformat()
    if not isinstance(k, str):
        raise ToscaError("key %r is not a string" % (k,), file=file, path=path or None)
    return k


def _plain_scalar(value: Any, file: str, path: str) -> Any:
    """A YAML scalar as a JSON value (see ``_plain``)."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        shown = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        raise ToscaError("%s has no JSON form (quote it if it is text)" % shown, file=file,
                         path=path or None)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ToscaError("value of YAML type %s has no JSON form" % type(value).__name__,
                     file=file, path=path or None)


def _read_yaml(file: str) -> Dict[str, Any]:
    # Bounded: size, file kind, nesting and aliases (limits.py); each is one line naming the file.
    data = bounded_yaml.load(bounded_yaml.read_text(file), file)
    if data is None:
        raise ToscaError("empty document (no tosca_definitions_version)", file=file)
    if not isinstance(data, dict):
        raise ToscaError("a TOSCA document is a mapping, not a %s" % type(data).__name__, file=file)
    return cast(Dict[str, Any], _plain(data, file, ""))


def _check_version(data: Dict[str, Any], file: str) -> str:
    version = data.get("tosca_definitions_version")
    if version is None:
        raise ToscaError("missing tosca_definitions_version (one of %s)" % ", ".join(SUPPORTED_VERSIONS),
                         file=file)
    if isinstance(version, str) and version.startswith("tosca_2"):
        # TOSCA 2.0 changed the grammar itself (workflows, functions, imports), not only names:
        # reading it as 1.3 would run something else than what the author wrote.
        raise ToscaError("unsupported tosca_definitions_version %r: TOSCA 2.0 is not supported (supported: %s)"
                         % (version, ", ".join(SUPPORTED_VERSIONS)),
                         file=file, path="tosca_definitions_version")
    if version not in SUPPORTED_VERSIONS:
        raise ToscaError("unsupported tosca_definitions_version %r (one of %s)"
                         % (version, ", ".join(SUPPORTED_VERSIONS)),
                         file=file, path="tosca_definitions_version")
    return cast(str, version)


def _import_target(item: Any, file: str, index: int) -> Tuple[str, Optional[str]]:
    """(relative or absolute path, namespace_prefix or None) of one ``imports`` entry."""
    where = "imports[%d]" % index
    target: Any = item
    prefix: Any = None
    if isinstance(item, dict):
        if "file" in item:
            target = item
        elif len(item) == 1:                 # TOSCA 1.0 named form: - name: path | {file: path}
            target = next(iter(item.values()))
        else:
            raise ToscaError("an import is a path or a mapping with 'file'", file=file, path=where)
        if isinstance(target, dict):
            unknown = set(target) - {"file", "namespace_uri", "namespace_prefix", "repository"}
            if unknown:
                raise ToscaError("unknown import keys: %s" % ", ".join(sorted(unknown)), file=file, path=where)
            if target.get("repository"):
                raise ToscaError("import of %r from repository %r refused: the engine reads local files only; "
                                 "download the file next to the model and import it by path"
                                 % (target.get("file"), target["repository"]), file=file, path=where)
            prefix = target.get("namespace_prefix")
            target = target.get("file")
    if not isinstance(target, str) or not target:
        raise ToscaError("an import is a path or a mapping with 'file'", file=file, path=where)
    if "://" in target:
        raise ToscaError("remote import %r refused: the engine reads local files only; download it next to "
                         "the model and import it by path" % target, file=file, path=where)
    if prefix is not None:
        if not isinstance(prefix, str) or not prefix or ":" in prefix or " " in prefix:
            raise ToscaError("namespace_prefix must be a name without ':' or spaces, got %r" % (prefix,),
                             file=file, path=where + ".namespace_prefix")
        if prefix == "tosca":
            raise ToscaError("namespace_prefix 'tosca' is reserved for the normative types (TOSCA 1.3 3.1)",
                             file=file, path=where + ".namespace_prefix")
    return target, prefix


class _Loader:
    def __init__(self, root: str):
        self.root = root
        self.root_dir = os.path.dirname(os.path.abspath(root))
        self.types: Dict[str, Dict[str, Dict[str, Any]]] = {s: {} for s in TYPE_SECTIONS}
        self.type_files: Dict[str, Dict[str, str]] = {s: {} for s in TYPE_SECTIONS}
        self.done: Dict[str, str] = {}        # realpath -> display file (read or being read)
        self.files: List[str] = []
        self.imports: Dict[str, List[str]] = {}
        self.prefixes: Dict[str, Dict[str, str]] = {}

    def load(self, file: str) -> Dict[str, Any]:
        """Read ``file`` and, first, what it imports.  Each file is read once, so files may import
        each other (TOSCA does not forbid it and CSARs of several type files do it)."""
        data = _read_yaml(file)
        real = os.path.realpath(file)
        self.done[real] = file
        _check_version(data, file)
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ToscaError("unknown top-level keys: %s" % ", ".join(sorted(unknown)), file=file)
        imports = data.get("imports") or []
        if not isinstance(imports, list):
            raise ToscaError("imports must be a list", file=file, path="imports")
        edges = self.imports.setdefault(file, [])
        for i, item in enumerate(imports):
            target, prefix = _import_target(item, file, i)
            path = target if os.path.isabs(target) else os.path.normpath(
                os.path.join(os.path.dirname(file), target))
            treal = os.path.realpath(path)
            if treal not in self.done:
                if not os.path.isfile(path):
                    raise ToscaError("imported file %s not found (looked for %s)" % (target, path),
                                     file=file, path="imports[%d]" % i)
                self.load(path)
            shown = self.done[treal]
            edges.append(shown)
            if prefix is not None:
                known = self.prefixes.setdefault(file, {})
                if known.get(prefix, shown) != shown:
                    raise ToscaError("namespace_prefix %r already names the import of %s" % (prefix, known[prefix]),
                                     file=file, path="imports[%d].namespace_prefix" % i)
                known[prefix] = shown
        self.merge(data, file)
        self.files.append(file)
        return data

    def merge(self, data: Dict[str, Any], file: str) -> None:
        for section in TYPE_SECTIONS:
            defs = data.get(section)
            if defs is None:
                continue
            if not isinstance(defs, dict):
                raise ToscaError("%s must be a mapping of type names to definitions" % section,
                                 file=file, path=section)
            for name, body in defs.items():
                if body is None:
                    body = {}
                if not isinstance(body, dict):
                    raise ToscaError("a type definition is a mapping", file=file,
                                     path="%s.%s" % (section, name))
                if name in self.types[section] and self.types[section][name] != body:
                    raise ToscaError("%s %s is defined differently in %s and %s"
                                     % (section[:-1].replace("_", " "), name,
                                        self.type_files[section][name], file),
                                     file=file, path="%s.%s" % (section, name))
                if name not in self.types[section]:
                    self.types[section][name] = body
                    self.type_files[section][name] = file


def load_document(path: str) -> Document:
    """Load ``path`` and, recursively, the files it imports (paths relative to the importing file).

    Types of all files are merged (one name defined twice with different content is an error);
    the topology of imported files is ignored, as TOSCA imports bring definitions only.  Each file
    is read once: mutual imports are allowed.
    """
    path = str(path)
    loader = _Loader(path)
    data = loader.load(path)
    topo = data.get("topology_template")
    if topo is not None and not isinstance(topo, dict):
        raise ToscaError("topology_template must be a mapping", file=path, path="topology_template")
    desc = data.get("description")
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ToscaError("metadata must be a mapping", file=path, path="metadata")
    files = [path] + [f for f in loader.files if f != path]
    return Document(file=path, version=data["tosca_definitions_version"],
                    description=desc if isinstance(desc, str) else None,
                    types=loader.types, type_files=loader.type_files,
                    topology_template=topo, files=files, metadata=meta,
                    imports=loader.imports, prefixes=loader.prefixes)
