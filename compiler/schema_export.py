"""The site file's JSON Schema, exported from the pydantic models (the models are the one source of truth).

Deterministic text (sorted keys, two-space indent, trailing newline) so that a test and CI can prove the
committed schemas/site.schema.json is current, and editors (yaml-language-server modeline in each site
file) validate and complete site files with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import Site

SCHEMA_NAME = "site.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"  # what pydantic v2 generates


def site_schema() -> dict[str, Any]:
    schema = Site.model_json_schema()
    schema["$schema"] = DIALECT
    schema.setdefault("description", "A hacc site: nodes, tracked checks and services compiled into keepalived.conf")
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
