"""Valid YAML that PyYAML and ruamel users write is read as they expect: merge keys, a byte-order mark,
top-level `x-` keys for anchors. Each spelling compiles to exactly what the spelled-out site compiles to,
and a diagnostic inside merged or anchored YAML still points at the line that holds the value."""

from __future__ import annotations

from pathlib import Path

import pytest
from compiler_testlib import SITES
from hacc.compiler.build import compile_site
from hacc.compiler.errors import SiteError
from hacc.compiler.loader import load_text

PLAIN = """\
site: t
nodes:
  lb1: {address: 192.0.2.11/24}
  lb2: {address: 192.0.2.12/24}
checks:
  haproxy: {script: /usr/bin/killall -0 haproxy, interval: 1, weight: 20}
services:
  web:
    mode: mb
    nodes: [lb1, lb2]
    advert_int: 2
    track: [haproxy]
    vips: [192.0.2.100/24]
  api:
    mode: mb
    nodes: [lb1, lb2]
    advert_int: 2
    track: [haproxy]
    vips: [192.0.2.101/24]
    priority: 150
"""

MERGED = """\
x-pair: &pair
  mode: mb
  nodes: [lb1, lb2]
  advert_int: 2
  track: [haproxy]
x-fast: &fast
  priority: 150
  advert_int: 3
site: t
nodes:
  lb1: {address: 192.0.2.11/24}
  lb2: {address: 192.0.2.12/24}
checks:
  haproxy: {script: /usr/bin/killall -0 haproxy, interval: 1, weight: 20}
services:
  web:
    <<: *pair
    vips: [192.0.2.100/24]
  api:
    <<: [*pair, *fast]
    vips: [192.0.2.101/24]
"""


def _files(text: str) -> dict[str, str]:
    site, smap = load_text(text, "t.yaml")
    return compile_site(site, smap, {}, "t.yaml").files


def test_merge_keys_and_x_keys_compile_like_the_spelled_out_site() -> None:
    # merge order (YAML merge spec): keys written in the mapping win, then earlier merged mappings
    assert _files(MERGED) == _files(PLAIN)


def test_byte_order_mark_is_ignored() -> None:
    assert _files("\ufeff" + PLAIN) == _files(PLAIN)


@pytest.mark.parametrize("site", sorted(SITES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_sites_read_with_a_bom(site: Path) -> None:
    text = site.read_text()
    assert _files("\ufeff" + text) == _files(text)


def _errors(text: str) -> list[str]:
    with pytest.raises(SiteError) as exc:
        site, smap = load_text(text, "t.yaml")
        compile_site(site, smap, {}, "t.yaml")
    return [d.format() for d in exc.value.diagnostics]


def test_a_bad_value_in_an_anchor_points_at_the_anchor() -> None:
    text = MERGED.replace("  advert_int: 2\n", "  advert_int: 0\n")
    assert _errors(text) == [
        "t.yaml:4:15: services.api.advert_int: advert_int 0 must be above 0 and at most 255",
        "t.yaml:4:15: services.web.advert_int: advert_int 0 must be above 0 and at most 255",
    ]


def test_a_bad_merge_key_is_reported() -> None:
    text = MERGED.replace("<<: *pair\n", "<<: 5\n")
    assert _errors(text) == [
        "t.yaml:17:9: services.web.<<: a merge key `<<` takes an alias to a mapping (<<: *name) or a list of them"
    ]


def test_x_keys_are_only_ignored_at_the_top() -> None:
    text = PLAIN.replace("  web:\n    mode: mb", "  web:\n    x-note: 1\n    mode: mb")
    assert _errors(text) == ["t.yaml:9:5: services.web.x-note: unknown field `x-note`: see schemas/site.schema.json"]
