"""Fixtures for the `hacc sync` tests, defined in sync_lib.py: a uniquely named module, because several
test directories have a conftest.py and `from conftest import ...` would pick whichever loaded last."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sync_lib import _stale_namespaces, keys, origin  # noqa: F401 - pytest finds fixtures by name here
