"""Pagecall's OpenAPI spec as the emulator reads it: the shipped ``openapi3.json``, the route
table built from its ``paths``, query-parameter coercion, and a validator for the JSON-schema
subset the spec uses. Standard library only: the emulator runs without pyyaml or jsonschema.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

Schema = dict[str, Any]


class SpecError(ValueError):
    """A value that does not follow the spec; the message says where and why."""


@cache
def load_spec() -> dict[str, Any]:
    """The parsed spec (cached; callers must not mutate it)."""
    text = resources.files(__package__).joinpath("openapi3.json").read_text("utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def _resolve_pointer(doc: dict[str, Any], ref: str) -> Schema:
    if not ref.startswith("#/"):
        raise SpecError(f"unsupported $ref {ref!r}")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise SpecError(f"$ref {ref!r} does not name a schema")
    return node


def resolve(schema: Schema, doc: dict[str, Any] | None = None) -> Schema:
    """``schema`` with its ``$ref`` followed; sibling keys (e.g. ``default``) win."""
    doc = load_spec() if doc is None else doc
    seen = 0
    while "$ref" in schema:
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**_resolve_pointer(doc, schema["$ref"]), **siblings}
        seen += 1
        if seen > 32:
            raise SpecError("$ref cycle")
    return schema


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "null":
        return value is None
    return True


def validate(value: Any, schema: Schema, where: str = "body") -> None:
    """Raise :class:`SpecError` naming the first place ``value`` breaks ``schema``."""
    schema = resolve(schema)
    expected = schema.get("type")
    if expected is None and "properties" in schema:
        expected = "object"
    if isinstance(expected, str) and not _type_ok(value, expected):
        raise SpecError(f"{where} must be of type {expected}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(c) for c in schema["enum"])
        raise SpecError(f"{where} must be one of {choices}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise SpecError(f"{where}.{name} is required")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                validate(value[name], sub, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{index}]")


def apply_defaults(value: Any, schema: Schema) -> Any:
    """A copy of a valid ``value`` with the schema's ``default`` filled in where absent."""
    schema = resolve(schema)
    if isinstance(value, dict):
        out = dict(value)
        for name, sub in schema.get("properties", {}).items():
            sub = resolve(sub)
            if name in out:
                out[name] = apply_defaults(out[name], sub)
            elif "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
        return out
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def coerce_query(name: str, raw: str, schema: Schema) -> Any:
    """A query string value converted to the parameter's schema type."""
    schema = resolve(schema)
    kind = schema.get("type", "string")
    value: Any = raw
    if kind == "integer":
        try:
            value = int(raw, 10)
        except ValueError:
            raise SpecError(f"query parameter {name!r} must be an integer") from None
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise SpecError(f"query parameter {name!r} must be a number") from None
    elif kind == "boolean":
        if raw not in ("true", "false"):
            raise SpecError(f"query parameter {name!r} must be true or false")
        value = raw == "true"
    validate(value, schema, f"query parameter {name!r}")
    return value


@dataclass(frozen=True)
class Operation:
    """One method of one spec path."""

    method: str  # upper case
    template: str  # "/rooms/{id}", relative to the base path
    operation_id: str
    parameters: tuple[Schema, ...]
    request_schema: Schema | None
    responses: dict[str, Any] = field(repr=False)

    def query_parameters(self) -> dict[str, Schema]:
        return {p["name"]: p.get("schema", {}) for p in self.parameters if p.get("in") == "query"}


@dataclass(frozen=True)
class Route:
    template: str
    segments: tuple[str, ...]
    operations: dict[str, Operation]

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.segments, parts, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                params[want[1:-1]] = unquote(got)
            elif want != got:
                return None
        return params


def _split(path: str) -> list[str]:
    return path.strip("/").split("/") if path.strip("/") else []


@cache
def routes() -> tuple[Route, ...]:
    """Every spec path with its operations, literal paths before templated ones."""
    spec = load_spec()
    found: list[Route] = []
    for template, item in spec["paths"].items():
        shared = tuple(item.get("parameters", []))
        operations: dict[str, Operation] = {}
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            operations[method.upper()] = Operation(
                method=method.upper(),
                template=template,
                operation_id=op["operationId"],
                parameters=shared + tuple(op.get("parameters", [])),
                request_schema=body.get("schema"),
                responses=op.get("responses", {}),
            )
        found.append(Route(template, tuple(_split(template)), operations))
    found.sort(key=lambda r: sum(s.startswith("{") for s in r.segments))
    return tuple(found)


def base_path() -> str:
    """The path part of the spec's server URL: ``/v1``."""
    url: str = load_spec()["servers"][0]["url"]
    after_scheme = url.split("://", 1)[-1]
    return "/" + after_scheme.split("/", 1)[1].strip("/") if "/" in after_scheme else ""


def find_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route matching ``path`` (relative to the base path) and its path parameters."""
    parts = _split(path)
    for route in routes():
        params = route.match(parts)
        if params is not None:
            return route, params
    return None
