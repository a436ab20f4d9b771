"""OIDCClient manifests, checked in Python by the rules a Kubernetes API server applies with our CRD.

This module owns applying the defaults of the CustomResourceDefinition (as ``kubeoidc_contract.crd``
reads it) and validating an object against it: the OpenAPI schema (types, required fields, enums,
patterns, lengths, list sizes, uniqueness of ``set`` and ``map`` lists, map sizes, formats) and every
``x-kubernetes-validations`` CEL rule, evaluated with cel-python. Tests and ``kubeoidc dev`` use it, so
a manifest a cluster would refuse is refused here too, with the CRD's own messages, and without a
cluster. It never imports kopf or the Kubernetes client.

How it follows the API server:

- defaults are applied before validation, after dropping ``null`` fields (the API server prunes nulls
  of non-nullable fields, so ``redirectURIs:`` left empty in YAML means "absent");
- unknown fields are violations (``unknown field``), as with kubectl's default strict field
  validation; other clients would see them pruned with a warning, which hides typos;
- CEL rules are skipped when the object has a type error (the API server reports "some validation rules
  were not checked ..." then); a rule with ``oldSelf`` (a transition rule) is evaluated only when the
  previous object is given and holds that field too;
- ``status``, when present, is validated as well: the API server ignores it on writes to the main
  resource, but this lets tests check the status the operator computes.

Not reproduced: ratcheting of unchanged invalid fields on update, validation of ``metadata`` beyond
``metadata.name``, and CEL cost estimation (the CRD bounds every string and list a rule touches).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import celpy
import celpy.adapter
import celpy.celtypes
import celpy.evaluation
import yaml

from kubeoidc_contract import API_VERSION, KIND
from kubeoidc_contract.crd import served_schema as _schema

__all__ = [
    "RULES_NOT_CHECKED",
    "InvalidOIDCClient",
    "Violation",
    "apply_defaults",
    "checked_oidcclient",
    "load_manifests",
    "validate_oidcclient",
]

Schema = Mapping[str, Any]

#: The object's fields a CEL rule at the root may see, as on the API server.
_ROOT_FIELDS = ("apiVersion", "kind", "spec", "status")
_ROOT_METADATA_FIELDS = ("name", "generateName")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_OLD_SELF = re.compile(r"\boldSelf\b")
_INT64 = (-(2**63), 2**63 - 1)

#: The API server's message when type errors keep it from evaluating the CEL rules.
RULES_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


@dataclass(frozen=True)
class Violation:
    """One reason an object is refused: where (``spec.redirectURIs[0]``; empty for the whole object)
    and why (the CRD rule's message, or the schema check's)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidOIDCClient(ValueError):
    """An OIDCClient the API server would refuse; ``violations`` says why."""

    def __init__(self, name: str, violations: Sequence[Violation]) -> None:
        self.name = name
        self.violations = tuple(violations)
        details = "; ".join(str(v) for v in self.violations)
        super().__init__(f"OIDCClient {name!r} is invalid: {details}")


# --- YAML --------------------------------------------------------------------------------------------


class _KubernetesLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: an unquoted timestamp stays a string (JSON has no dates)."""


_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a (multi-document) YAML text; empty documents are skipped.

    Raises ``ValueError`` when a document is not a mapping, and ``yaml.YAMLError`` on bad YAML.
    """
    objects: list[dict[str, Any]] = []
    for index, document in enumerate(yaml.load_all(text, Loader=_KubernetesLoader)):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ValueError(f"YAML document {index + 1} is not a mapping")
        objects.append(document)
    return objects


# --- Defaults ----------------------------------------------------------------------------------------


def apply_defaults(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with the CRD's defaults applied, as the API server stores it.

    ``null`` fields are dropped first (they mean "absent"); an object's default (``{}``) is itself
    defaulted, so ``secretRotation.gracePeriod`` is always there.
    """
    result = copy.deepcopy(dict(obj))
    _default(result, _schema())
    return result


def _default(node: Any, schema: Schema) -> None:
    if isinstance(node, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        for key in [k for k, v in node.items() if v is None and not properties.get(k, {}).get("nullable")]:
            del node[key]
        for key, property_schema in properties.items():
            if key not in node and "default" in property_schema:
                node[key] = copy.deepcopy(property_schema["default"])
        for key, child in node.items():
            child_schema = properties.get(key) or _additional(schema)
            if child_schema is not None:
                _default(child, child_schema)
    elif isinstance(node, list) and "items" in schema:
        for item in node:
            _default(item, schema["items"])


def _additional(schema: Schema) -> Schema | None:
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


# --- Validation --------------------------------------------------------------------------------------


def validate_oidcclient(obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[Violation]:
    """Every reason the API server would refuse ``obj`` (an update of ``old`` when given); empty if none.

    Defaults are applied to both first. The schema is checked, then every CEL rule of the CRD.
    """
    if not isinstance(obj, Mapping):
        return [Violation("", "an OIDCClient must be a mapping")]
    header = _check_header(obj)
    if header:
        return header
    new = apply_defaults(obj)
    previous = apply_defaults(old) if isinstance(old, Mapping) else None
    checker = _SchemaChecker()
    checker.check(new, _schema(), "")
    violations = checker.violations + _check_name(new.get("metadata"))
    if checker.blocked or any(v.field.startswith("metadata") for v in violations):
        violations.append(Violation("", RULES_NOT_CHECKED))
        return violations
    violations.extend(_check_rules(_root_view(new), _root_view(previous), _schema(), ""))
    return violations


def checked_oidcclient(obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``obj`` with its defaults applied, or ``InvalidOIDCClient`` listing what the API server would
    refuse."""
    violations = validate_oidcclient(obj, old)
    if violations:
        metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        raise InvalidOIDCClient(str(name or "<unnamed>"), violations)
    return apply_defaults(obj)


def _check_header(obj: Mapping[str, Any]) -> list[Violation]:
    violations = []
    if obj.get("apiVersion") != API_VERSION:
        violations.append(Violation("apiVersion", f"must be {API_VERSION}, not {obj.get('apiVersion')!r}"))
    if obj.get("kind") != KIND:
        violations.append(Violation("kind", f"must be {KIND}, not {obj.get('kind')!r}"))
    return violations


def _check_name(metadata: Any) -> list[Violation]:
    if metadata is None:
        return [Violation("metadata", "Required value")]
    if not isinstance(metadata, Mapping):
        return []  # the schema reports the type
    name = metadata.get("name")
    if name is None:
        return [Violation("metadata.name", "Required value")]
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [
            Violation(
                "metadata.name",
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


class _SchemaChecker:
    """Walks an object along the OpenAPI schema, collecting violations; ``blocked`` on a type error."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.blocked = False

    def fail(self, path: str, message: str) -> None:
        self.violations.append(Violation(path, message))

    def check(self, node: Any, schema: Schema, path: str) -> None:
        expected = schema.get("type")
        if expected is not None and not _has_type(node, expected):
            self.fail(path, f"must be of type {expected}, not {_json_type(node)}")
            self.blocked = True
            return
        if "enum" in schema and node not in schema["enum"]:
            supported = ", ".join(json.dumps(v) for v in schema["enum"])
            self.fail(path, f"Unsupported value: {json.dumps(node)}: supported values: {supported}")
        if isinstance(node, dict):
            self.check_object(node, schema, path)
        elif isinstance(node, list):
            self.check_array(node, schema, path)
        elif isinstance(node, str):
            self.check_string(node, schema, path)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            self.check_number(node, schema, path)

    def check_object(self, node: dict[str, Any], schema: Schema, path: str) -> None:
        if path == "metadata":
            return  # ObjectMeta is the API server's own; only its name is checked (see _check_name).
        properties: Mapping[str, Schema] = schema.get("properties", {})
        additional = _additional(schema)
        for key in schema.get("required", ()):
            if key not in node:
                self.fail(_join(path, key), "Required value")
        if "maxProperties" in schema and len(node) > schema["maxProperties"]:
            self.fail(path, f"Too many: {len(node)}: must have at most {schema['maxProperties']} properties")
        for key, child in node.items():
            child_path = _join(path, key) if key in properties or additional is None else _index(path, key)
            if key in properties:
                self.check(child, properties[key], child_path)
            elif additional is not None:
                self.check(child, additional, child_path)
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                self.fail(child_path, "unknown field")

    def check_array(self, node: list[Any], schema: Schema, path: str) -> None:
        if "maxItems" in schema and len(node) > schema["maxItems"]:
            self.fail(path, f"Too many: {len(node)}: must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(node) < schema["minItems"]:
            self.fail(path, f"must have at least {schema['minItems']} items")
        item_schema: Schema | None = schema.get("items")
        if item_schema is not None:
            for index, item in enumerate(node):
                self.check(item, item_schema, f"{path}[{index}]")
        list_type = schema.get("x-kubernetes-list-type")
        if list_type in ("set", "map"):
            keys: Sequence[str] = schema.get("x-kubernetes-list-map-keys", ())
            seen: set[str] = set()
            for index, item in enumerate(node):
                identity = _list_identity(item, keys if list_type == "map" else None)
                if identity in seen:
                    self.fail(f"{path}[{index}]", f"Duplicate value: {identity}")
                seen.add(identity)

    def check_string(self, node: str, schema: Schema, path: str) -> None:
        if "maxLength" in schema and len(node) > schema["maxLength"]:
            self.fail(path, f"Too long: may not be more than {schema['maxLength']} characters")
        if "minLength" in schema and len(node) < schema["minLength"]:
            self.fail(path, f"must be at least {schema['minLength']} characters long")
        if "pattern" in schema and not re.search(schema["pattern"], node):
            self.fail(path, f"should match '{schema['pattern']}'")
        if schema.get("format") == "date-time" and not _is_date_time(node):
            self.fail(path, "must be a date-time (RFC 3339), such as 2024-05-01T12:00:00Z")

    def check_number(self, node: float, schema: Schema, path: str) -> None:
        if "minimum" in schema and node < schema["minimum"]:
            self.fail(path, f"must be greater than or equal to {schema['minimum']}")
        if "maximum" in schema and node > schema["maximum"]:
            self.fail(path, f"must be less than or equal to {schema['maximum']}")
        if schema.get("format") == "int64" and not _INT64[0] <= node <= _INT64[1]:
            self.fail(path, "must fit in a 64-bit integer")


def _has_type(node: Any, expected: str) -> bool:
    if expected == "object":
        return isinstance(node, dict)
    if expected == "array":
        return isinstance(node, list)
    if expected == "string":
        return isinstance(node, str)
    if expected == "boolean":
        return isinstance(node, bool)
    if expected == "integer":
        return isinstance(node, int) and not isinstance(node, bool)
    if expected == "number":
        return isinstance(node, int | float) and not isinstance(node, bool)
    return True


def _json_type(node: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if _has_type(node, name):
            return name
    return "null" if node is None else type(node).__name__


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _list_identity(item: Any, keys: Sequence[str] | None) -> str:
    if keys is not None and isinstance(item, Mapping):
        item = {key: item.get(key) for key in keys}
    return json.dumps(item, sort_keys=True)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, key: str) -> str:
    return f"{path}[{key}]"


# --- CEL rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    rule: str
    message: str
    field_path: str
    transition: bool


@functools.cache
def _environment() -> celpy.Environment:
    return celpy.Environment()


@functools.cache
def _program(rule: str) -> celpy.Runner:
    environment = _environment()
    return environment.program(environment.compile(rule))


def _rules(schema: Schema) -> Iterator[_Rule]:
    for entry in schema.get("x-kubernetes-validations", ()):
        rule = str(entry["rule"])
        message = str(entry.get("message") or f"failed rule: {rule}")
        yield _Rule(rule, message, str(entry.get("fieldPath", "")), bool(_OLD_SELF.search(rule)))


def _root_view(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a rule at the root sees: the object, but of its metadata only the name (generated or not)."""
    if obj is None:
        return None
    view = {key: obj[key] for key in _ROOT_FIELDS if key in obj}
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        view["metadata"] = {key: metadata[key] for key in _ROOT_METADATA_FIELDS if key in metadata}
    return view


def _check_rules(node: Any, old: Any, schema: Schema, path: str) -> list[Violation]:
    """Evaluates the rules of ``schema`` on ``node``, then those of its children, depth first."""
    violations = [
        violation
        for rule in _rules(schema)
        if not (rule.transition and old is None)
        for violation in _evaluate(rule, node, old, path)
    ]
    if isinstance(node, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        additional = _additional(schema)
        old_map = old if isinstance(old, dict) else {}
        for key, child in node.items():
            if key in properties:
                violations += _check_rules(child, old_map.get(key), properties[key], _join(path, key))
            elif additional is not None:
                violations += _check_rules(child, old_map.get(key), additional, _index(path, key))
    elif isinstance(node, list) and "items" in schema:
        # Transition rules see an old item only in a ``map`` list, found by its keys, as on the API server.
        keys: Sequence[str] = schema.get("x-kubernetes-list-map-keys", ())
        correlatable = schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list)
        old_items = {_list_identity(item, keys): item for item in old} if correlatable else {}
        for index, item in enumerate(node):
            old_item = old_items.get(_list_identity(item, keys))
            violations += _check_rules(item, old_item, schema["items"], f"{path}[{index}]")
    return violations


def _evaluate(rule: _Rule, node: Any, old: Any, path: str) -> list[Violation]:
    where = _join(path, rule.field_path.lstrip(".")) if rule.field_path else path
    activation = {"self": celpy.adapter.json_to_cel(node)}
    if rule.transition:
        activation["oldSelf"] = celpy.adapter.json_to_cel(old)
    try:
        result = _program(rule.rule).evaluate(activation)
    except (celpy.evaluation.CELEvalError, celpy.evaluation.CELUnsupportedError) as error:
        return [Violation(where, f"error evaluating rule {rule.rule!r}: {error}")]
    if isinstance(result, celpy.evaluation.CELEvalError):
        return [Violation(where, f"error evaluating rule {rule.rule!r}: {result}")]
    if not isinstance(result, celpy.celtypes.BoolType):
        return [Violation(where, f"rule {rule.rule!r} gave {result!r}, not a boolean")]
    return [] if result else [Violation(where, rule.message)]
