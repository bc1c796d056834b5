"""The site schema documents itself: every field has a description (a new field without one fails here),
every keyword is JSON Schema's (or VS Code's patternErrorMessage, which yaml-language-server shows), the
`$id` is stable, and nothing is left that editors render as "X || X"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hacc.compiler.model import StrictModel
from hacc.compiler.schema_export import SCHEMA_ID, site_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas/site.schema.json").read_text())

# JSON Schema 2020-12 keywords (core, applicator, validation, meta-data, format vocabularies)
KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "prefixItems", "items",
    "contains", "properties", "patternProperties", "additionalProperties", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties", "type", "enum", "const", "multipleOf", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties", "required",
    "dependentRequired", "title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
    "format",
}  # fmt: skip
EDITOR_KEYWORDS = {"patternErrorMessage"}
# keywords whose value is a map of names to schemas / holds data rather than schemas
NAMED_SCHEMAS = {"properties", "patternProperties", "$defs"}
DATA = {"enum", "const", "default", "examples", "required"}


def _schemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (sub)schema with its JSON pointer."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key, value in node.items():
        if key in NAMED_SCHEMAS:
            for name, sub in value.items():
                yield from _schemas(sub, f"{path}/{key}/{name}")
        elif key in DATA:
            continue
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _schemas(sub, f"{path}/{key}/{i}")
        else:
            yield from _schemas(value, f"{path}/{key}")


def undescribed(schema: dict[str, Any]) -> list[str]:
    """Pointers of the properties and models that have no description."""
    out = []
    for path, node in _schemas(schema):
        for name, prop in node.get("properties", {}).items():
            if not str(prop.get("description", "")).strip():
                out.append(f"{path}/properties/{name}")
    out += [f"#/$defs/{name}" for name, model in schema.get("$defs", {}).items() if not model.get("description")]
    return out


def test_every_field_and_model_has_a_description() -> None:
    fields = [p for path, node in _schemas(SCHEMA) for p in node.get("properties", {})]
    assert len(fields) >= 96
    assert undescribed(SCHEMA) == []


def test_a_field_without_description_is_caught() -> None:
    """The check above would fail for a new field added without a description (negative control)."""

    class Probe(StrictModel):
        """A model with one described and one undescribed field."""

        told: int = 1
        tolddesc: int = 2

    probe = Probe.model_json_schema()
    probe["properties"]["tolddesc"]["description"] = "described"
    assert undescribed(probe) == ["#/properties/told"]


def test_only_json_schema_keywords() -> None:
    """pydantic once exported a range as stray "ge"/"le" keys that no validator reads."""
    used = {key for _, node in _schemas(SCHEMA) for key in node}
    assert used - KEYWORDS - EDITOR_KEYWORDS == set()


def test_no_x_or_x_artefacts() -> None:
    for path, node in _schemas(SCHEMA):
        for alternative in node.get("anyOf", []):
            # an untitled alternative makes yaml-language-server's hover say "Port || Port"
            assert alternative.get("title"), path
        if "anyOf" in node:
            plain = [a for a in node["anyOf"] if "$ref" not in a and "anyOf" not in a]
            # plain alternatives of different types are one schema with a list of types
            assert len({a.get("type") for a in plain}) == len(plain) and len(plain) < len(node["anyOf"]), path


def test_stable_id_and_committed_schema() -> None:
    assert SCHEMA["$id"] == SCHEMA_ID == "urn:hacc:schema:site"
    assert json.loads(json.dumps(site_schema())) == SCHEMA


def test_dict_keys_are_checked_and_values_described() -> None:
    """Named maps (nodes, checks, services, interfaces, priorities) check the key's pattern and keep the value's
    schema for every key: pydantic's patternProperties form would let a badly named key through unchecked."""
    for path, node in _schemas(SCHEMA):
        if "propertyNames" in node:
            assert "pattern" in node["propertyNames"] and isinstance(node["additionalProperties"], dict), path
        if path != "#":  # the site's own `x-` keys are the one deliberate patternProperties
            assert "patternProperties" not in node, path
