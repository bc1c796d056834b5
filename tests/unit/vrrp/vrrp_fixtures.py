"""Loads the keepalived captures (tests/fixtures/vrrp/keepalived_adverts.json) for the VRRP tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "vrrp"
CAPTURES = FIXTURE_DIR / "keepalived_adverts.json"
CAPTURES6 = FIXTURE_DIR / "keepalived_adverts_ipv6.json"


def load_captures(ipv6: bool = False) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((CAPTURES6 if ipv6 else CAPTURES).read_text())["captures"]
    return data


def capture_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("capture_keepalived", FIXTURE_DIR / "capture_keepalived.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
