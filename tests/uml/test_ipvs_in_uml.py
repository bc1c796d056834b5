"""IPVS against a real kernel: one user-mode-linux guest per session runs tests/uml/guest_tests/.

This machine's kernel has no IPVS, so the guest tests (guest_*.py, never collected on the host) run in
one pytest session inside UML. The session fixture boots the guest once; then every guest test maps to
one host test here (parametrised from the guest files' test functions), which passes only if that test
passed in the guest according to its JUnit XML. A guest that does not boot, or a guest test that did
not run, fails here: nothing is skipped.
"""

from __future__ import annotations

import ast
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from uml_guest import GuestResult, missing_requirements, run_in_uml

ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(__file__).parent / "guest_tests"
GUEST_FILES = sorted(GUEST_DIR.glob("guest_*.py"))
GUEST_TIMEOUT = 300.0


def _guest_tests() -> list[str]:
    """`file::test_name` of every test function in the guest files (read statically, nothing imported)."""
    names = []
    for path in GUEST_FILES:
        tree = ast.parse(path.read_text())
        names += [
            f"{path.stem}::{n.name}" for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
        ]
    return names


@dataclass(frozen=True)
class GuestSession:
    result: GuestResult
    outcomes: dict[str, str]  # "file::test" -> passed / failed / error / skipped
    details: dict[str, str]


def _outcomes(junit: Path) -> tuple[dict[str, str], dict[str, str]]:
    outcomes: dict[str, str] = {}
    details: dict[str, str] = {}
    if not junit.exists():
        return outcomes, details
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name', '').split('[')[0]}"
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = tag if tag != "failure" else "failed"
                details[name] = (found.get("message") or "") + "\n" + (found.text or "")
        if outcomes.get(name, "passed") == "passed":
            outcomes[name] = outcome
    return outcomes, details


@pytest.fixture(scope="session")
def guest_session() -> Iterator[GuestSession]:
    missing = missing_requirements()
    assert not missing, "user-mode-linux harness needs: " + "; ".join(missing)
    with tempfile.TemporaryDirectory(prefix="hacc-uml-junit-") as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            *map(str, GUEST_FILES),
        ]
        result = run_in_uml(argv, timeout=GUEST_TIMEOUT, cwd=ROOT)
        outcomes, details = _outcomes(junit)
        print(f"\nuser-mode-linux guest: boot + pytest session took {result.elapsed:.1f} s")
        yield GuestSession(result, outcomes, details)


def test_guest_session_ran_and_passed(guest_session: GuestSession) -> None:
    result = guest_session.result
    print(result.output)
    assert not result.timed_out, result.describe()
    assert result.returncode == 0, result.describe()
    assert set(guest_session.outcomes) == set(_guest_tests()), result.describe()


@pytest.mark.parametrize("name", _guest_tests())
def test_in_guest(guest_session: GuestSession, name: str) -> None:
    outcome = guest_session.outcomes.get(name)
    assert outcome == "passed", f"{name}: {outcome}\n{guest_session.details.get(name, '')}\n" + (
        guest_session.result.describe() if outcome is None else ""
    )
