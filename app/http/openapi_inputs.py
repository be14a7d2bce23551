"""The input rules every endpoint applies, written into the schemas of the OpenAPI document's inputs.

Litestar's generated schemas say what each body and parameter is, not what the app refuses beyond
that, so a client generated from ``/schema`` (or a contract fuzzer) would send requests the schema
calls valid and get a 400. Every request body and parameter schema is tightened here:

- text holds no NUL character (``pattern``), since SPEC makes that a 400 everywhere;
- bodies with declared members take no others (``additionalProperties: false``: the structs forbid
  unknown fields);
- free-form objects (``metadata``) hold JSON values without NUL (the ``JsonValue`` component).

Response schemas are left alone: problem documents may carry extension members (RFC 9457).
"""

from __future__ import annotations

import copy
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

__all__ = ["JSON_VALUE", "NO_NUL", "InputRulesJsonPlugin", "tighten_inputs"]

NO_NUL = "^[^\\u0000]*$"
_JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE: dict[str, Any] = {
    "description": "Any JSON value whose text holds no NUL character (nested at most 32 levels).",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _JSON_VALUE_REF},
        {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": _JSON_VALUE_REF},
    ],
}
_CONSTRAINED = frozenset(("pattern", "enum", "const", "format"))


def _is(schema: dict[str, Any], kind: str) -> bool:
    declared = schema.get("type")
    return declared == kind or (isinstance(declared, list) and kind in declared)


def _tighten(schema: Any, components: dict[str, Any], seen: set[str]) -> None:
    """Tighten ``schema`` in place, and every component it refers to (once each)."""
    if isinstance(schema, list):
        for item in schema:
            _tighten(item, components, seen)
        return
    if not isinstance(schema, dict):
        return
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/components/schemas/"):
        name = reference.rsplit("/", 1)[1]
        if name not in seen and name in components:
            seen.add(name)
            _tighten(components[name], components, seen)
        return
    if _is(schema, "string") and not _CONSTRAINED & schema.keys():
        schema["pattern"] = NO_NUL
    if _is(schema, "object"):
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
        elif schema.get("additionalProperties", True) in (True, {}):
            schema["additionalProperties"] = dict(_JSON_VALUE_REF)
            schema["propertyNames"] = {"pattern": NO_NUL}
    for key in ("properties", "patternProperties"):
        for member in (schema.get(key) or {}).values():
            _tighten(member, components, seen)
    for key in ("items", "additionalProperties", "oneOf", "anyOf", "allOf", "not"):
        if key in schema:
            _tighten(schema[key], components, seen)


def tighten_inputs(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the OpenAPI ``document`` whose request bodies and parameters state the input rules."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["JsonValue"] = JSON_VALUE
    seen: set[str] = {"JsonValue"}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _tighten(parameter.get("schema"), components, seen)
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                _tighten(media.get("schema"), components, seen)
    return document


class InputRulesJsonPlugin(JsonRenderPlugin):
    """Serves the OpenAPI document as JSON with :func:`tighten_inputs` applied (computed once)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The tightened document."""
        if self._rendered is None:
            self._rendered = self.render_json(request, tighten_inputs(openapi_schema))
        return self._rendered
