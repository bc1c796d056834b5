"""schemas/site.schema.json is exactly what the models export, every site names it in its modeline, and
it accepts every example site (and rejects a broken one, so the check can fail)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hacc.compiler.errors import SiteError
from hacc.compiler.loader import load_text
from hacc.compiler.model import Site
from hacc.compiler.schema_export import SCHEMA_NAME, schema_files
from review_repo import SMALL_SITE, hacc

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / SCHEMA_NAME
SITES = sorted((ROOT / "sites").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/site.schema.json"


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_text() == schema_files()[SCHEMA_NAME], "schemas/ is stale: run `hacc schema`"
    data = json.loads(SCHEMA.read_text())
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["title"] == Site.model_config["title"]
    assert set(data["properties"]) == set(Site.model_fields)


def test_schema_command_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    stale = hacc("schema", "-o", str(out), "--check")
    assert stale.exit_code == 1 and "site.schema.json (missing)" in stale.output
    assert not out.exists()
    assert hacc("schema", "-o", str(out)).exit_code == 0
    assert (out / SCHEMA_NAME).read_text() == SCHEMA.read_text()
    assert hacc("schema", "-o", str(out), "--check").exit_code == 0
    (out / SCHEMA_NAME).write_text("{}\n")
    assert "site.schema.json (differs)" in hacc("schema", "-o", str(out), "--check").output


def test_every_site_has_the_modeline() -> None:
    assert len(SITES) >= 4
    for site in SITES:
        assert site.read_text().splitlines()[0] == MODELINE, site


def test_schema_accepts_every_site() -> None:
    result = _check_jsonschema(*SITES)
    assert result.returncode == 0, result.stdout + result.stderr


def _model_accepts(text: str) -> bool:
    try:
        load_text(text, "t.yaml")
    except SiteError:
        return False
    return True


def test_schema_agrees_with_the_model(tmp_path: Path) -> None:
    """Shorthands the loader accepts (scalar vrid, 'ip:port' sorry server, VIP sets as lists) pass the schema;
    field-level mistakes fail both."""
    vip2 = "vips: [192.0.2.200/24]"
    variants = {  # name: (text in SMALL_SITE, replacement, accepted)
        "as is": ("", "", True),
        "scalar vrid": (vip2, f"vrid: 7\n    {vip2}", True),
        "vrid list": (vip2, f"vrid: [7]\n    {vip2}", True),
        "sorry server": ("lb_algo: rr", "lb_algo: rr\n        sorry_server: 127.0.0.1:80", True),
        "vip set": ("[192.0.2.100/24]", "[[192.0.2.100/24, {address: 192.0.2.101/24}]]", True),
        "bad lb_algo": ("lb_algo: rr", "lb_algo: fastest", False),
        "bad mode": ("mode: mb", "mode: ab", False),
        "unknown key": ("advert_int: 1", "advert_intt: 1", False),
        "scalar vips": (vip2, "vips: 192.0.2.200/24", False),
        "vrid 256": (vip2, f"vrid: 256\n    {vip2}", False),
        # the patterns editors check agree with the validators
        "netmask": ("192.0.2.11/24", "192.0.2.11/255.255.255.0", True),
        "bare VIP": ("[192.0.2.100/24]", "[192.0.2.100]", True),
        "no prefix": ("192.0.2.11/24", "192.0.2.11", False),
        "bad octet": ("192.0.2.11/24", "192.0.2.256/24", False),
        "leading zero": ("[192.0.2.100/24]", "[192.0.2.010/24]", False),
        "bad node name": ("  lb1: {", "  1lb: {", False),
        "bad unit": ("units: [haproxy.service]", "units: [haproxy service]", False),
        "relative file": ('script: "/usr/bin/killall -0 haproxy"', "file: etc/down", False),
        "bad real server": ("address: 192.0.2.21", "address: 192.0.2.21/32", False),
    }
    for name, (old, new, ok) in variants.items():
        text = SMALL_SITE.replace(old, new, 1)
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(text)
        assert _model_accepts(text) is ok, name
        result = _check_jsonschema(path)
        assert (result.returncode == 0) is ok, (name, result.stdout)
