"""The site file's JSON Schema, exported from the pydantic models (the models are the one source of truth).

Deterministic text (sorted keys, two-space indent, trailing newline) so that a test and CI can prove the
committed schemas/site.schema.json is current, and editors (yaml-language-server modeline in each site
file) validate, complete and describe site files with it.

Editors get two departures from pydantic's output. A dict whose keys have a pattern keeps its value schema
for every key and checks the key's pattern (`propertyNames`). An `anyOf` of plain alternatives of different types (an
optional scalar, a VRID or a list of VRIDs) becomes one schema with a list of types, and every `anyOf`
left (a model or its shorthand) has a title on each alternative, and the field's description rather than
its form's. yaml-language-server's hover takes untitled alternatives as all matched and shows "Port || Port"
with the description replaced by " || ".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import Site

SCHEMA_NAME = "site.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"  # what pydantic v2 generates
# A name, not a location: hacc has no public home, and a URN never sends an editor to fetch anything.
SCHEMA_ID = "urn:hacc:schema:site"

# JSON Schema keywords that constrain one instance type only: alternatives whose keywords never overlap can
# share one schema with a list of types and mean the same.
_KEYWORDS_OF_TYPE = {
    "null": set(),
    "boolean": set(),
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "string": {"pattern", "patternErrorMessage", "minLength", "maxLength", "format"},
    "array": {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"},
    "object": {"properties", "additionalProperties", "patternProperties", "propertyNames", "required"}
    | {"minProperties", "maxProperties"},
}
_ANNOTATIONS = {"title", "description", "examples"}


def _merged(alternatives: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One schema equivalent to anyOf(alternatives), or None when they cannot share one."""
    types = [str(a.get("type")) for a in alternatives]
    if not all(t in _KEYWORDS_OF_TYPE for t in types) or len(set(types)) != len(types):
        return None
    merged: dict[str, Any] = {"type": types}
    for alternative, kind in zip(alternatives, types, strict=True):
        for key, value in alternative.items():
            if key == "enum" and set(types) - {kind} == {"null"}:
                merged["enum"] = [*value, None]  # Literal[...] | None
            elif key in _KEYWORDS_OF_TYPE[kind] or (key in _ANNOTATIONS and key not in merged):
                merged[key] = value
            elif key != "type":
                return None
    return merged


def _alternative_title(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return str(schema.get("type", "value"))


def _key_pattern_to_property_names(node: dict[str, Any]) -> None:
    """pydantic exports a dict whose keys have a pattern as `patternProperties: {pattern: value}`, which lets a
    key that misses the pattern through with any value; the model refuses that key, and so does this."""
    patterns = node.get("patternProperties", {})
    if "propertyNames" in node and len(patterns) == 1 and "additionalProperties" not in node:
        ((pattern, value),) = patterns.items()
        del node["patternProperties"]
        node["additionalProperties"] = value
        node["propertyNames"] = {**node["propertyNames"], "pattern": pattern}


def _for_editors(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _for_editors(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _for_editors(value)
    _key_pattern_to_property_names(node)
    if "anyOf" not in node:
        return
    merged = _merged(node["anyOf"])
    if merged is not None:
        del node["anyOf"]
        node.update({key: value for key, value in merged.items() if key not in node})
    else:
        for alternative in node["anyOf"]:
            alternative.setdefault("title", _alternative_title(alternative))
            if "description" in node and "$ref" not in alternative:
                # the field's own description says more than its form's, and editors show the first they meet
                alternative.pop("description", None)


def site_schema() -> dict[str, Any]:
    schema = Site.model_json_schema()
    _for_editors(schema)
    schema["$schema"] = DIALECT
    schema["$id"] = SCHEMA_ID
    return schema


def schema_files() -> dict[str, str]:
    """{file name under schemas/: text}."""
    return {SCHEMA_NAME: json.dumps(site_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"}


def stale_schemas(out_dir: Path) -> list[str]:
    """Names of the schema files in out_dir that are missing or differ from what the models export."""
    out = []
    for name, text in schema_files().items():
        path = out_dir / name
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            out.append(f"{name} (missing)")
            continue
        if current != text:
            out.append(f"{name} (differs)")
    return out
