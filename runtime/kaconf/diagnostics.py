"""Diagnostics (problems found while reading a config) and the package's root error class."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


class KaconfError(Exception):
    """Root error class of hacc.runtime.kaconf.

    Reading never raises it: problems become diagnostics. It is raised only on request, by
    `LoadResult.raise_for_errors()`, for callers that want an exception.
    """


@dataclass(frozen=True)
class SourceLoc:
    """Where a token came from. `line` is 1-based; 0 means "the file as a whole"."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line > 0 else self.file


@dataclass(frozen=True)
class Diagnostic:
    """One problem. `str()` gives `file:line: message`, with `warning: ` before warnings' text."""

    severity: Severity
    file: str
    line: int
    message: str
    # a stable name for the kinds a caller may treat differently (e.g. "missing-include"); not shown
    code: str = field(default="", compare=False)

    def __str__(self) -> str:
        where = str(SourceLoc(self.file, self.line))
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


@dataclass
class DiagnosticSink:
    """Collects diagnostics in the order they are found."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, at: SourceLoc, message: str) -> None:
        self.items.append(Diagnostic("error", at.file, at.line, message))

    def warning(self, at: SourceLoc, message: str, code: str = "") -> None:
        self.items.append(Diagnostic("warning", at.file, at.line, message, code))
