"""`hacc run --config-test` is honest: over Debian's keepalived sample configs (installed with the
keepalived package), its verdict matches whether `hacc run` then starts.

Each sample runs in a namespace of its own making with eth0 and eth1 (veth pairs kept inside it), so no
packet leaves; the samples' private addresses are first rewritten to documentation addresses (each
distinct address to its own), which keeps every relation between them. `hacc run` uses --lvs-dry-run:
this kernel has no IPVS, and whether IPVS exists is not what a config test judges (tests/uml runs the
real one).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import HACC, PREFIX, sh, wait_until

SAMPLES = Path("/usr/share/doc/keepalived/samples")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")
_DOC = [f"203.0.113.{i}" for i in range(1, 255)] + [f"198.51.100.{i}" for i in range(2, 255)]


def samples() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("keepalived.conf*") if p.is_file())


def documentation_addresses(text: str) -> str:
    """Private and public IPv4 addresses -> distinct documentation addresses (loopback and masks kept)."""
    mapping: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        text_addr = m.group(1)
        try:
            addr = ipaddress.IPv4Address(text_addr)
        except ValueError:
            return text_addr
        if addr.is_loopback or addr.is_multicast or text_addr.startswith("255.") or addr == ipaddress.IPv4Address(0):
            return text_addr
        if text_addr not in mapping:
            mapping[text_addr] = _DOC[len(mapping)]
        return mapping[text_addr]

    return _IPV4.sub(swap, text)


@pytest.fixture(scope="module")
def sample_ns() -> Iterator[str]:
    ns = f"{PREFIX}samples"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for i, addr in ((0, "192.0.2.1/24"), (1, "192.0.2.129/25")):
            sh("ip", "-n", ns, "link", "add", f"eth{i}", "type", "veth", "peer", "name", f"eth{i}p")
            sh("ip", "-n", ns, "addr", "add", addr, "dev", f"eth{i}")
            sh("ip", "-n", ns, "link", "set", f"eth{i}", "up")
            sh("ip", "-n", ns, "link", "set", f"eth{i}p", "up")
        yield ns
    finally:
        sh("ip", "netns", "del", ns, check=False)


def test_debian_ships_the_samples() -> None:
    assert len(samples()) >= 20, "keepalived's samples are missing (.ci/run installs keepalived)"


@pytest.mark.parametrize("sample", samples(), ids=lambda p: p.name.removeprefix("keepalived.conf."))
def test_config_test_verdict_matches_whether_hacc_run_starts(sample_ns: str, tmp_path: Path, sample: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(documentation_addresses(sample.read_text(errors="replace")))
    test = subprocess.run(
        ["ip", "netns", "exec", sample_ns, *HACC, "run", "--config-test", "--check-interfaces", "-f", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    usable = test.returncode == 0
    sock = tmp_path / "c.sock"
    log = tmp_path / "run.log"
    argv = [*HACC, "run", "-f", str(conf), "--no-watch", "--lvs-dry-run", "--control-socket", str(sock)]
    with log.open("wb") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", sample_ns, *argv], stdout=out, stderr=subprocess.STDOUT)
    try:
        started = wait_until(lambda: sock.exists() or proc.poll() is not None, 20) and sock.exists()
        if started:
            time.sleep(0.3)
            started = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    verdict = f"config-test said {'usable' if usable else 'NOT usable'}:\n{test.stdout}\nhacc run:\n{log.read_text()}"
    assert usable == started, verdict
    if not usable:
        assert proc.returncode == 1, verdict
