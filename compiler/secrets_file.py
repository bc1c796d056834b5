"""A node-local secrets file, read exactly as keepalived reads it through the generated `include`.

The reader is the runtime's (hacc.runtime.kaconf: comments, quotes, `${NAME}`, continuation lines, nested
includes), so `--secrets-file` judges the value keepalived's `auth_pass $NAME` will receive, not the raw
text after the `=`: `$VRRP_PASS="s3cret12"` is 8 characters, because keepalived drops the quotes when it
reads the substituted line. This is the one place the compiler uses the runtime.
"""

from __future__ import annotations

from pathlib import Path

from hacc.runtime.kaconf.diagnostics import DiagnosticSink
from hacc.runtime.kaconf.lexer import Lexer
from hacc.runtime.kaconf.loader import default_config_id

from .errors import Diagnostic, SiteError


def read_secrets(path: Path) -> dict[str, str]:
    """name -> the word keepalived's `auth_pass $name` reads; SiteError when the file cannot be read."""
    sink = DiagnosticSink()
    lexer = Lexer(sink, default_config_id())
    lexer.read_main(path)
    errors = [d for d in sink.items if d.severity == "error"]
    if errors:
        raise SiteError([Diagnostic(d.file, max(d.line, 1), 1, "(secrets)", d.message) for d in errors])
    out = {}
    for name in sorted(lexer.params):
        probe = Lexer(DiagnosticSink(), lexer.config_id, params=dict(lexer.params))
        probe.feed_text(f"auth_pass ${{{name}}}\n", "<auth_pass>", path.parent)
        words = [t.text for line in probe.lines for t in line][1:]
        out[name] = " ".join(words)  # more than one word: keepalived takes the first, a check reports it
    return out
