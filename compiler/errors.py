"""The compiler's one root error and the diagnostics it carries.

A diagnostic is user-facing text tied to a place in the site file; tracebacks are for bugs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
Loc = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a site: where (file, line, column, field path) and what."""

    file: str
    line: int
    column: int
    field: str
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {self.field}: {prefix}{self.message}"


def format_loc(loc: Loc) -> str:
    """('services', 'web', 'vips', 1) -> 'services.web.vips[1]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(site)"


class HaccError(Exception):
    """Root of every error the compiler reports to a user (exit status 1 unless stated otherwise)."""

    exit_code = 1


class SiteError(HaccError):
    """The site has errors; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class OutputError(HaccError):
    """The output tree could not be written (nothing was changed)."""

    exit_code = 3


class StaleError(HaccError):
    """`--check` / `--frozen`: what is on disk is not what a fresh build produces."""
