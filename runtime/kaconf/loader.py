"""The reader's entry points: `load_config(path)` and `parse_text(text, filename)`.

Neither raises on bad input: everything wrong with the text becomes a Diagnostic, and an internal
failure is reported as one too (a reader that crashes on a typo would take the daemon down with it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hacc.runtime.kaconf.checks import check_config
from hacc.runtime.kaconf.convert import Reader
from hacc.runtime.kaconf.diagnostics import Diagnostic, DiagnosticSink, KaconfError, SourceLoc
from hacc.runtime.kaconf.lexer import FileReader, Lexer, read_text_file
from hacc.runtime.kaconf.model import KeepalivedConfig
from hacc.runtime.kaconf.sections import build_config
from hacc.runtime.kaconf.tree import build_tree


@dataclass(frozen=True)
class LoadResult:
    """The model and every problem found. With errors the model is best-effort: never apply it."""

    config: KeepalivedConfig
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when the config is usable (warnings allowed)."""
        return not self.errors

    def raise_for_errors(self) -> KeepalivedConfig:
        if self.errors:
            raise KaconfError("\n".join(str(d) for d in self.errors))
        return self.config


def default_config_id() -> str:
    """keepalived's default config id: the first part of the node name (for `@ID` lines)."""
    return os.uname().nodename.split(".", 1)[0]


def _finish(lexer: Lexer, sink: DiagnosticSink) -> LoadResult:
    nodes = build_tree(lexer.lines, sink)
    built = build_config(nodes, Reader(sink), tuple(dict.fromkeys(lexer.files)))
    check_config(built, sink)
    unique = tuple(dict.fromkeys(sink.items))  # expanded lines can repeat a warning
    return LoadResult(built.config, unique)


def _guarded(lexer: Lexer, sink: DiagnosticSink, main: str, feed: Callable[[], None]) -> LoadResult:
    try:
        feed()
        return _finish(lexer, sink)
    except RecursionError:
        sink.error(SourceLoc(main, 0), "configuration is nested too deeply to read")
    except Exception as exc:  # a reader bug must not crash the daemon: report it instead
        sink.error(SourceLoc(main, 0), f"internal error while reading the configuration: {exc!r}")
    return LoadResult(KeepalivedConfig(files=(main,)), tuple(dict.fromkeys(sink.items)))


def load_config(path: Path, *, config_id: str | None = None, read: FileReader = read_text_file) -> LoadResult:
    """Read keepalived.conf at `path` with its includes."""
    sink = DiagnosticSink()
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "not found"
        sink.error(SourceLoc(str(path), 0), f"configuration file {problem}")
        return LoadResult(KeepalivedConfig(files=(str(path),)), tuple(sink.items))
    lexer = Lexer(sink, config_id if config_id is not None else default_config_id(), read)
    return _guarded(lexer, sink, str(path), lambda: lexer.read_main(path))


def parse_text(
    text: str, filename: str = "<string>", *, config_id: str | None = None, base_dir: Path | None = None
) -> LoadResult:
    """Read config text; includes resolve against `base_dir` (default: the file name's directory)."""
    sink = DiagnosticSink()
    lexer = Lexer(sink, config_id if config_id is not None else default_config_id())
    directory = base_dir if base_dir is not None else Path(filename).parent
    return _guarded(lexer, sink, filename, lambda: lexer.feed_text(text, filename, directory))
