"""Every sample config Debian's keepalived package ships loads, and counts match an independent count."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hacc.runtime.kaconf import load_config

SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")
SAMPLES = sorted(p for p in SAMPLES_DIR.glob("keepalived.conf.*"))
# Samples keepalived itself rejects for reasons that are errors for us too.
EXPECTED_ERRORS = {
    # `vrrp_sync_group VG1 { VI_2 VI_3 }` lacks `group { }`; keepalived: "Unknown keyword 'VI_2'"
    "keepalived.conf.vrrp.lvs_syncd": ["vrrp_sync_group VG1: group { ... } with its instances is required"],
}


def _plain_copy(sample: Path, tmp_path: Path) -> Path:
    if sample.suffix != ".gz":
        return sample
    target = tmp_path / sample.stem
    target.write_bytes(gzip.decompress(sample.read_bytes()))
    return target


def _count_openers(text: str, keyword: str) -> int:
    """Count `keyword NAME` statements outside comments, by regex, independently of the reader."""
    pattern = re.compile(rf"^\s*(?:@\^?\S+\s+)?{keyword}\s+\S", re.MULTILINE)
    uncommented = re.sub(r"[!#].*", "", text)
    return len(pattern.findall(uncommented))


def test_debian_ships_the_samples() -> None:
    assert len(SAMPLES) >= 20, f"expected Debian's keepalived samples in {SAMPLES_DIR}"


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_loads_with_matching_counts(sample: Path, tmp_path: Path) -> None:
    path = _plain_copy(sample, tmp_path)
    text = path.read_text()
    result = load_config(path, config_id="high")
    assert not any("internal error" in d.message for d in result.diagnostics)
    config = result.config
    assert len(config.vrrp_instances) == _count_openers(text, "vrrp_instance")
    assert len(config.virtual_servers) == _count_openers(text, "virtual_server")
    assert sum(len(vs.real_servers) for vs in config.virtual_servers) == _count_openers(text, "real_server")
    assert len(config.vrrp_scripts) == _count_openers(text, "vrrp_script")
    assert len(config.vrrp_sync_groups) == _count_openers(text, "vrrp_sync_group")
    expected = EXPECTED_ERRORS.get(path.name, [])
    assert [d.message for d in result.errors] == expected
    for diagnostic in result.diagnostics:
        assert diagnostic.file == str(path) and diagnostic.line > 0


def test_sample_details_read_correctly() -> None:
    conf = load_config(SAMPLES_DIR / "keepalived.conf.vrrp.localcheck").config
    vi1 = conf.instance("VI_1")
    assert vi1 is not None
    assert [(t.name, t.weight) for t in vi1.track_interface] == [("eth1", 2), ("eth2", -2), ("eth3", None)]
    assert [(t.name, t.weight) for t in vi1.track_script][:2] == [("chk_sshd", None), ("chk_haproxy", 2)]
    sshd = conf.script("chk_sshd")
    assert sshd is not None and (sshd.script, sshd.interval, sshd.weight, sshd.fall, sshd.rise) == (
        "killall -0 sshd",
        2.0,
        -4,
        2,
        2,
    )
    fwmark = load_config(SAMPLES_DIR / "keepalived.conf.fwmark").config.virtual_servers[0]
    assert (fwmark.fwmark, fwmark.persistence_timeout, [rs.address for rs in fwmark.real_servers]) == (
        1,
        900,
        ["192.168.201.100", "192.168.201.101"],
    )


def test_conditional_sample_follows_config_id() -> None:
    path = SAMPLES_DIR / "keepalived.conf.conditional_conf"
    high = load_config(path, config_id="high").config
    low = load_config(path, config_id="low").config
    other = load_config(path, config_id="elsewhere")
    assert high.vrrp_instances[0].priority == 170 and low.vrrp_instances[0].priority == 85
    assert high.vrrp_scripts[0].script == "/etc/keepalived/scripts/check_high_VI_0.sh"
    # Like keepalived without -i: no script line survives, so the script and its use are errors.
    assert [d.message for d in other.errors] == [
        "vrrp_script check_VI_0: script is required",
    ]
