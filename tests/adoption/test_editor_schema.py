"""The schema as documentation, tested as an editor uses it: the real yaml-language-server (npm, pinned in
tests/adoption/yamlls/, installed by .ci/run) driven over LSP stdio reads each site's
`# yaml-language-server: $schema=../schemas/site.schema.json` modeline, finds nothing wrong in the example
sites, describes every key of them on hover (no "X || X" from nullable fields), and reports a broken site's
mistakes where they are. No network: the schema store is off, so the modeline is the only schema source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lsp_client import LspClient

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests/adoption/yamlls/node_modules/.bin/yaml-language-server"
SCHEMA = ROOT / "schemas/site.schema.json"
SITES = sorted((ROOT / "sites").glob("*.yaml"))
SETTINGS = {"yaml": {"validate": True, "hover": True, "completion": True, "schemaStore": {"enable": False}}}
SOURCE = f"Source: [site.schema.json]({SCHEMA.as_uri()})"


@pytest.fixture(scope="module")
def editor() -> Iterator[LspClient]:
    assert SERVER.exists(), f"{SERVER} missing: run `npm ci --prefix tests/adoption/yamlls` (.ci/run does)"
    client = LspClient([str(SERVER), "--stdio"], ROOT, SETTINGS)
    try:
        yield client
    finally:
        client.shutdown()


def _keys(node: yaml.Node) -> Iterator[tuple[int, int, str]]:
    """(line, column, key) of every mapping key in a composed YAML document, 0-based as LSP counts."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key.start_mark.line, key.start_mark.column, str(key.value)
            yield from _keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _keys(item)


def _description(hover: str) -> str:
    """The hover text without its heading and schema link."""
    lines = [line for line in hover.splitlines() if line and not line.startswith("#### ") and line != SOURCE]
    return "\n".join(lines)


def test_every_example_site_validates_and_every_key_is_described(editor: LspClient) -> None:
    hovered = 0
    for site in SITES:
        text = site.read_text()
        uri = site.as_uri()
        assert editor.open(uri, text) == [], site.name
        root = yaml.compose(text)
        assert root is not None
        for line, column, key in _keys(root):
            hover = editor.hover(uri, line, column + 1)
            where = f"{site.name}:{line + 1}:{column + 1} {key}"
            assert hover is not None and hover.endswith(SOURCE), (where, hover)
            assert "||" not in hover, (where, hover)
            assert _description(hover), (where, hover)
            hovered += 1
        editor.close(uri)
    assert hovered > 250, hovered


def _hover_at(editor: LspClient, uri: str, text: str, needle: str) -> str:
    line = next(i for i, row in enumerate(text.splitlines()) if needle in row)
    hover = editor.hover(uri, line, text.splitlines()[line].index(needle) + 1)
    assert hover is not None, needle
    return hover.replace("\\_", "_")  # markdown escapes


def test_hover_shows_the_models_descriptions_and_examples(editor: LspClient) -> None:
    site = ROOT / "sites/prod.yaml"
    text = site.read_text()
    uri = site.as_uri()
    editor.open(uri, text)
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    defs = schema["$defs"]
    # a nullable number (a service's override): one title, its description, no "Preempt Delay || Preempt Delay"
    assert _hover_at(editor, uri, text, "preempt_delay: 30") == (
        f"#### Preempt Delay\n\n{defs['Service']['properties']['preempt_delay']['description']}\n\n{SOURCE}"
    )
    # a VRID or a list of them: still one title and the field's description
    vrid = _hover_at(editor, uri, text, "vrid: 200")
    assert vrid.startswith("#### Vrid\n\nexplicit VRID (mb) or one per node (mm)"), vrid
    # a pattern-checked address shows its example
    address = _hover_at(editor, uri, text, "address: 192.0.2.11/24")
    assert "primary address with prefix on the node's main interface" in address
    assert "Example:" in address and "192.0.2.11/24" in address
    # a model or its ADDRESS:PORT shorthand: the form as title, the field's description
    sorry = _hover_at(editor, uri, text, "sorry_server: 192.0.2.250:80")
    assert sorry.startswith("#### ADDRESS:PORT\n\nwhere traffic goes while every real server is down"), sorry
    # an enum lists its values
    assert "* `wlc`" in _hover_at(editor, uri, text, "lb_algo: wlc")
    editor.close(uri)


BROKEN = {
    # (text in prod.yaml, replacement, message the editor must show on that line)
    "unknown key": ("  advert_int: 1", "  advert_intt: 1", "Property advert_intt is not allowed."),
    "mode": ("    mode: mm", "    mode: ab", 'Value is not accepted. Valid values: "mm", "mb", "anycast".'),
    "vrid": ("    vrid: 200", "    vrid: 256", "Value is above the maximum of 255."),
    "address without prefix": (
        "    address: 192.0.2.12/24",
        "    address: 192.0.2.12",
        "expected an IPv4 or IPv6 address with its prefix length (the prefix gives the L2 subnet), like 192.0.2.11/24",
    ),
    "node name": (
        "  lb3:",
        "  3lb:",
        "expected a name: 1-32 letters, digits, '_' or '-', starting with a letter, like lb1",
    ),
    "type": ("    preempt_delay: 30", "    preempt_delay: soon", "Incorrect type. Expected one of number, null."),
}


def test_a_broken_site_is_reported_where_it_is_wrong(editor: LspClient) -> None:
    text = (ROOT / "sites/prod.yaml").read_text()
    expected = {}
    for old, new, message in BROKEN.values():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
        expected[next(i for i, row in enumerate(text.splitlines()) if row == new)] = message
    # a document that exists only in the editor, beside the example sites so that the modeline resolves
    uri = (ROOT / "sites/editor-broken.yaml").as_uri()
    diagnostics = editor.open(uri, text)
    editor.close(uri)
    found = {d["range"]["start"]["line"]: d["message"] for d in diagnostics}
    assert found == expected, json.dumps(diagnostics, indent=1)
    assert all(d["data"]["schemaUri"] == [SCHEMA.as_uri()] for d in diagnostics)
