"""keepalived.conf text -> logical lines of tokens, each token tagged with its file and line.

keepalived reads its config line by line, and so do we. For each physical line, in keepalived's order:
1. comments are cut (`#` or `!` outside quotes, anywhere on the line);
2. `include` lines are expanded in place (path relative to the including file, globs and csh-style
   braces allowed); this happens before steps 3-5, as in keepalived;
3. `@ID` / `@^ID` conditional lines are kept or dropped by comparing ID with the config id;
4. `$NAME=VALUE` defines a parameter (a value ending in `\\` continues on the next lines);
5. `$NAME` (followed by whitespace or the line end) and `${NAME}` are substituted, recursively;
   an undefined name stays literal text, as in keepalived, but we warn about it;
6. the line is split into tokens: words, quoted strings, `{` and `}` (also when glued to a word).
"""

from __future__ import annotations

import glob
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from hacc.runtime.kaconf.diagnostics import DiagnosticSink, SourceLoc

MAX_INCLUDE_DEPTH = 16
MAX_EXPANSION_DEPTH = 32  # nested multi-line parameter uses
MAX_SUBSTITUTIONS = 1000  # per line: bounds self-referencing parameters
MAX_LINE_CHARS = 1_000_000
MAX_EXPANDED_LINES = 100_000  # lines produced by multi-line parameters, over the whole config

INCLUDE_KEYWORDS = frozenset({"include", "includer", "includem", "includew", "includeb", "includea"})
_STRICT_INCLUDES = INCLUDE_KEYWORDS - {"include"}  # variants that make a failed include an error
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z", re.DOTALL)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?:\s+\d+){0,2})\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|\Z)")
_COMMENT = re.compile(r"[#!]")
_UNQUOTED = re.compile(r"[{}]|[^\s{}]+")
_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class Token(NamedTuple):
    """A word or brace. A tuple rather than a frozen dataclass: a config has tens of thousands of tokens,
    and a frozen dataclass's __init__ (one object.__setattr__ per field) costs 5x a tuple's."""

    text: str
    loc: SourceLoc
    quoted: bool = False  # a quoted "{" is a word, not a brace

    @property
    def is_open(self) -> bool:
        return self.text == "{" and not self.quoted

    @property
    def is_close(self) -> bool:
        return self.text == "}" and not self.quoted


Line = list[Token]
FileReader = Callable[[Path], str]
MISSING_INCLUDE = "missing-include"  # Diagnostic.code of a plain include that matched no file


def decode_config_bytes(data: bytes) -> str:
    """Bytes that are not UTF-8 are replaced, never fatal: a config is text we only diagnose."""
    return data.decode("utf-8", errors="replace")


def read_text_file(path: Path) -> str:
    return decode_config_bytes(path.read_bytes())


def strip_comment(text: str) -> str:
    """Cut `#`/`!` comments; inside quotes they are literal (use ${_HASH}/${_BANG} elsewhere)."""
    if '"' not in text and "'" not in text:
        # most lines have no quotes: the first `#` or `!` starts the comment (no per-character loop)
        m = _COMMENT.search(text)
        return text if m is None else text[: m.start()]
    return _strip_comment_quoted(text)


def _strip_comment_quoted(text: str) -> str:
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "#!":
            return text[:i]
        i += 1
    return text


def _unescape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape starting after the backslash at text[i-1]; return (char, next index)."""
    ch = text[i]
    if ch in _ESCAPES:
        return _ESCAPES[ch], i + 1
    if ch in "01234567":
        m = re.match(r"[0-7]{1,3}", text[i:])
        assert m is not None
        return chr(int(m.group(0), 8) & 0xFF), i + len(m.group(0))
    if ch == "x":
        m = re.match(r"[0-9A-Fa-f]{1,2}", text[i + 1 :])
        if m is None:
            return "x", i + 1
        return chr(int(m.group(0), 16)), i + 1 + len(m.group(0))
    if ch == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1].upper()) & 0x1F), i + 2
    return ch, i + 1


def tokenize(text: str, loc: SourceLoc, sink: DiagnosticSink) -> Line:
    """Split one logical line into words, quoted strings and braces."""
    if '"' not in text and "'" not in text:
        # no quotes (most lines): words are runs of non-space, non-brace characters, as in
        # _tokenize_quoted's loop (the regex's \s and str.isspace agree on what whitespace is)
        return [Token(word, loc) for word in _UNQUOTED.findall(text)]
    return _tokenize_quoted(text, loc, sink)


def _tokenize_quoted(text: str, loc: SourceLoc, sink: DiagnosticSink) -> Line:
    tokens: Line = []
    word: list[str] = []
    quoted = False
    in_word = False

    def flush() -> None:
        nonlocal word, quoted, in_word
        if in_word:
            tokens.append(Token("".join(word), loc, quoted))
        word, quoted, in_word = [], False, False

    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            flush()
            i += 1
        elif ch in "{}":
            flush()
            tokens.append(Token(ch, loc))
            i += 1
        elif ch in "\"'":
            in_word = quoted = True
            i += 1
            while i < len(text) and text[i] != ch:
                if text[i] == "\\" and i + 1 < len(text):
                    decoded, i = _unescape(text, i + 1)
                    word.append(decoded)
                else:
                    word.append(text[i])
                    i += 1
            if i >= len(text):
                sink.warning(loc, f"unterminated quoted string (missing {ch})")
            i += 1
        else:
            in_word = True
            word.append(ch)
            i += 1
    flush()
    return tokens


def expand_braces(pattern: str) -> list[str]:
    """csh-style `{a,b}` expansion for include paths, e.g. `{x/{,c,d},y}`; unmatched braces stay."""
    depth = 0
    start = -1
    for i, ch in enumerate(pattern):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                alternatives = _split_top_level_commas(inner)
                if len(alternatives) < 2:
                    continue
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for alt in alternatives:
                    out.extend(expand_braces(head + alt + tail))
                return out
    return [pattern]


def _split_top_level_commas(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += (ch == "{") - (ch == "}")
        current.append(ch)
    parts.append("".join(current))
    return parts


@dataclass
class _Pending:
    """A multi-line `$NAME= \\` definition being collected."""

    name: str
    lines: list[str]


@dataclass
class Lexer:
    """Reads a config and its includes into logical lines of tokens; problems go to `sink`."""

    sink: DiagnosticSink
    config_id: str
    read: FileReader = read_text_file
    params: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    expanded: int = 0

    def read_main(self, path: Path) -> None:
        self.files.append(str(path))
        self._read_file(path, (path.resolve(),), None)

    def feed_text(self, text: str, filename: str, base_dir: Path) -> None:
        self.files.append(filename)
        self._feed(text, filename, base_dir, ())

    def _read_file(self, path: Path, stack: tuple[Path, ...], include_loc: SourceLoc | None) -> None:
        try:
            text = self.read(path)
        except OSError as exc:
            at = include_loc or SourceLoc(str(path), 0)
            self.sink.error(at, f"cannot read {path}: {exc.strerror or exc}")
            return
        self._feed(text, str(path), path.parent, stack)

    def _feed(self, text: str, filename: str, base_dir: Path, stack: tuple[Path, ...]) -> None:
        pending: _Pending | None = None
        pending_loc = SourceLoc(filename, 0)
        for lineno, raw in enumerate(text.splitlines(), start=1):
            loc = SourceLoc(filename, lineno)
            body = strip_comment(raw).strip()
            if pending is not None:
                if body.endswith("\\"):
                    pending.lines.append(body[:-1].strip())
                    continue
                pending.lines.append(body)
                self.params[pending.name] = [ln for ln in pending.lines if ln]
                pending = None
                continue
            if not body:
                continue
            keyword = body.split(None, 1)[0]
            if keyword in INCLUDE_KEYWORDS:
                self._include(body, keyword, loc, base_dir, stack)
                continue
            started = self._logical(body, loc, base_dir, 0)
            if started is not None:
                pending, pending_loc = started, loc
        if pending is not None:
            self.sink.warning(pending_loc, f"multi-line definition of ${pending.name} ends at end of file")
            self.params[pending.name] = [ln for ln in pending.lines if ln]

    def _include(self, body: str, keyword: str, loc: SourceLoc, base_dir: Path, stack: tuple[Path, ...]) -> None:
        pattern = body[len(keyword) :].strip()
        if len(pattern) >= 2 and pattern[0] == pattern[-1] and pattern[0] in "\"'":
            pattern = pattern[1:-1]
        if not pattern:
            self.sink.error(loc, f"{keyword} needs a file name or pattern")
            return
        strict = keyword in _STRICT_INCLUDES
        if len(stack) >= MAX_INCLUDE_DEPTH:
            self.sink.error(loc, f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels; {pattern} not read")
            return
        candidates = [base_dir / p for p in expand_braces(pattern)]
        magic = any(glob.has_magic(str(c)) for c in candidates) or len(candidates) > 1
        matches: list[Path] = []
        for cand in candidates:
            found = sorted(glob.glob(str(cand)))  # noqa: PTH207 - absolute patterns, brace-expanded if glob.has_magic(str(cand)) else [str(cand)]
            matches.extend(Path(m) for m in found if os.path.lexists(m))
        if not matches:
            if strict:
                self.sink.error(loc, f"{keyword}: no file matches {pattern}")
            elif not magic:
                # keepalived carries on; a missing secrets file then shows as undefined parameters.
                self.sink.warning(loc, f"included file {pattern} not found", code=MISSING_INCLUDE)
            return
        for match in matches:
            resolved = match.resolve()
            if resolved in stack:
                chain = " -> ".join(str(p) for p in (*stack, resolved))
                self.sink.error(loc, f"include cycle: {chain}")
                continue
            if match.is_dir():
                self.sink.error(loc, f"included path {match} is a directory")
                continue
            self.files.append(str(match))
            self._read_file(match, (*stack, resolved), loc)

    def _logical(self, body: str, loc: SourceLoc, base_dir: Path, depth: int) -> _Pending | None:
        """Steps 3-6 for one line; returns a started multi-line definition, if any."""
        text = body.strip()
        if text.startswith("@"):
            m = re.match(r"@(\^?)(\S*)\s*(.*)\Z", text, re.DOTALL)
            assert m is not None
            negate, ident, rest = m.group(1) == "^", m.group(2), m.group(3)
            if (ident == self.config_id) == negate:
                return None
            text = rest
        if not text:
            return None
        definition = _DEFINITION.match(text)
        if definition is not None:
            name, value = definition.group(1), definition.group(2).strip()
            if value.endswith("\\"):
                first = value[:-1].strip()
                if depth > 0:
                    self.sink.warning(loc, f"multi-line definition of ${name} inside an expansion is not supported")
                    return None
                return _Pending(name, [first] if first else [])
            self.params[name] = [value]
            return None
        out = self._substitute(text, loc, base_dir)
        if len(out) == 1:
            self._emit(out[0], loc)
        elif depth >= MAX_EXPANSION_DEPTH:
            self.sink.error(loc, f"parameter expansion nested deeper than {MAX_EXPANSION_DEPTH} levels")
        elif self.expanded + len(out) > MAX_EXPANDED_LINES:
            self.sink.error(loc, f"multi-line parameters expand to more than {MAX_EXPANDED_LINES} lines")
        else:
            self.expanded += len(out)
            for piece in out:
                if piece.strip():
                    self._logical(piece, loc, base_dir, depth + 1)
        return None

    def _substitute(self, text: str, loc: SourceLoc, base_dir: Path) -> list[str]:
        """Replace parameters; a multi-line value splits the result into several lines."""
        pos = 0
        for _ in range(MAX_SUBSTITUTIONS):
            m = _REFERENCE.search(text, pos)
            if m is None:
                return [text]
            name = m.group(1) or m.group(3)
            value = self._value(name, m.group(2) or "", base_dir)
            if value is None:
                self.sink.warning(loc, f"parameter ${name} is not defined; it is kept as literal text")
                pos = m.end()
                continue
            if len(value) > 1:
                return [text[: m.start()] + value[0], *value[1:-1], value[-1] + text[m.end() :]]
            text = text[: m.start()] + (value[0] if value else "") + text[m.end() :]
            pos = m.start()  # the value may itself hold references: keepalived substitutes recursively
            if len(text) > MAX_LINE_CHARS:
                break
        self.sink.error(loc, "parameter substitution does not terminate (a parameter refers to itself?)")
        return []

    def _value(self, name: str, args: str, base_dir: Path) -> list[str] | None:
        if name in self.params:
            return self.params[name]
        if args.strip() and name != "_RANDOM":
            return None
        builtin = {"_PWD": str(base_dir), "_INSTANCE": self.config_id, "_HASH": "#", "_BANG": "!"}
        if name in builtin:
            return [builtin[name]]
        if name == "_RANDOM":
            bounds = [int(x) for x in args.split()]
            low = bounds[0] if bounds else 0
            high = bounds[1] if len(bounds) > 1 else 32767
            return [str(random.randint(min(low, high), max(low, high)))]  # noqa: S311 - not crypto
        return None

    def _emit(self, text: str, loc: SourceLoc) -> None:
        tokens = tokenize(text, loc, self.sink)
        if tokens:
            self.lines.append(tokens)
