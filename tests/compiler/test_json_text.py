"""The VRID lock and the rollout file are written by compiler/jsontext.py, not json.dumps: the text must be
json.dumps's own (indent=2, its separators, sort_keys as each file had it), byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compiler_testlib import EXTRA_SITES, SITE_FILES, copy_site
from hacc.compiler.build import build_from_path
from hacc.compiler.jsontext import dumps_indented
from hacc.compiler.rollout_file import ROLLOUT_FILE
from hacc.compiler.vrid import render_lock

DOCS: list[object] = [
    {},
    [],
    "",
    0,
    None,
    True,
    {"a": {}, "b": [], "c": [[]], "d": [{}], "e": {"f": {"g": []}}},
    {"z": 1, "a": [1, "two", None, True, False, -3, 10**30], "m": {"y": "x", "b": 'é\u2028\x00"\\/\t'}},
    ["\U0001f600 surrogate pair", "ascii", "ctrl \x1f \x7f", 'quote " and backslash \\'],
    ("tuple", ("nested", ()), {"in": ("t",)}),
    {"\u00fcmlaut key": "v", "key\nwith newline": 1, "": ""},
]
# what dumps_indented hands to json.dumps itself: the text is json's either way
FALLBACKS: list[object] = [1.5, {"a": 0.1}, {1: "int key"}, {"a": [float("nan")]}, {None: 1}, {True: 2}]


@pytest.mark.parametrize("doc", DOCS + FALLBACKS, ids=repr)
@pytest.mark.parametrize("sort_keys", [False, True])
def test_same_text_as_json_dumps(doc: object, sort_keys: bool) -> None:
    assert dumps_indented(doc, sort_keys=sort_keys) == json.dumps(doc, indent=2, sort_keys=sort_keys)


def test_unsortable_keys_raise_as_json_does() -> None:
    with pytest.raises(TypeError):
        json.dumps({"a": 1, 2: 3}, indent=2, sort_keys=True)
    with pytest.raises(TypeError):
        dumps_indented({"a": 1, 2: 3}, sort_keys=True)


def test_large_lock_as_json_dumps() -> None:
    vrids = {f"svc{i:05d}_n{i % 7}{'_v6' if i % 3 == 0 else ''}": 1 + i % 255 for i in range(10_240)}
    body = json.loads(render_lock(vrids))
    assert render_lock(vrids) == json.dumps(body, indent=2) + "\n"
    assert body["vrids"] == dict(sorted(vrids.items()))


@pytest.mark.parametrize("site", SITE_FILES + EXTRA_SITES, ids=lambda p: p.stem)
def test_example_sites_lock_and_rollout_as_json_dumps(site: Path, tmp_path: Path) -> None:
    """The old encoding of the same documents: the lock in insertion order, the rollout file sorted."""
    result = build_from_path(copy_site(site, tmp_path))
    assert result.lock_text == json.dumps(json.loads(result.lock_text), indent=2) + "\n"
    rollout = result.files[ROLLOUT_FILE]
    assert rollout == json.dumps(json.loads(rollout), indent=2, sort_keys=True) + "\n"
    # and the committed files, written by the old encoder, are what the build gives
    assert result.lock_text == site.with_name(f"{site.stem}.lock.json").read_text()
    committed = site.with_name(site.stem) / ROLLOUT_FILE
    if committed.exists():
        assert rollout == committed.read_text()
