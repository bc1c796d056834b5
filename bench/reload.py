"""Hot-reload figures of `hacc run` vs keepalived 2.2.7, measured in network namespaces (needs root).

A 2-node LAN (the integration tests' harness): node 1, the daemon under test, is MASTER (priority 150)
of `changed` (VRID 51, VIP 192.0.2.100) and `steady` (VRID 52, VIP 192.0.2.110); node 2 is a BACKUP
(priority 100) of both, of the same kind (a hacc pair or a keepalived pair). VRRPv3.

1. Reload latency: node 1's keepalived.conf is replaced atomically (tmp file + os.replace), each time
   adding or, alternately, removing 192.0.2.101 in `changed`; from time.time() right after the replace
   to the RTM_NEWADDR/RTM_DELADDR of 192.0.2.101 that `ip -ts monitor address` prints in node 1's
   namespace. Triggers: hacc's file watch, hacc --no-watch + SIGHUP, keepalived + SIGHUP (on its
   parent PID), each signal sent right after the replace. Node 2 never reloads here.
2. Over the same reloads, from both namespaces' monitors: disappearances of `steady`'s VIP on node 1,
   takeovers (node 2 adding a VIP) of `steady` and of `changed`, drops of 192.0.2.100 on node 1.
   Section (1+2) runs at advert_int 0.1 (--reloads, default 100) and at advert_int 1 (a tenth of that).
3. Rolling VIP-list change: node 1 gets 192.0.2.101 added to `changed` (then, next round, removed),
   node 2 the same 2 s later; the longest time 192.0.2.100 / 192.0.2.101 were held by both nodes.

    python bench/reload.py                 # full: about 6 minutes
    python bench/reload.py --quick         # 10 reloads, no advert_int 1 section: under a minute
    python bench/reload.py --reloads 30

Prints figures only: nothing here asserts on speed. Every namespace and process it starts is removed
(processes by PID) in a finally, on Ctrl-C or SIGTERM too.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from harness import (
    KEEPALIVED,
    Daemon,
    Lan,
    hacc_status,
    remove_stale_namespaces,
    start_hacc,
    start_keepalived,
    wait_until,
)
from reload_lib import AddressMonitor, AddrEvent, deletions, double_holding

T = TypeVar("T")
CHANGED_VIP, EXTRA_VIP, STEADY_VIP = "192.0.2.100", "192.0.2.101", "192.0.2.110"
INSTANCES = (("changed", 51), ("steady", 52))
ROLLING_DELAY = 2.0  # node 2 reloads this long after node 1


@dataclass(frozen=True)
class Setup:
    daemon: str  # "hacc" | "keepalived"
    trigger: str  # "file" | "SIGHUP"


SETUPS = (Setup("hacc", "file"), Setup("hacc", "SIGHUP"), Setup("keepalived", "SIGHUP"))


@dataclass
class Row:
    setup: Setup
    advert_int: float
    reloads: int = 0
    latencies: list[float] = field(default_factory=list)
    missed: int = 0  # reloads whose change never showed up in node 1's kernel
    steady_drops: int = 0
    steady_takeovers: int = 0
    changed_takeovers: int = 0
    changed_drops: int = 0  # 192.0.2.100 (never edited) deleted on node 1
    error: str = ""


@dataclass
class Rolling:
    daemon: str
    direction: str  # "add" | "remove"
    double_hold: dict[str, float] = field(default_factory=dict)
    error: str = ""


# --- configs and the LAN --------------------------------------------------------------------------


def node_conf(node: int, advert_int: float, extra_vip: bool) -> str:
    """keepalived.conf of node 1 (MASTER, 150) or node 2 (BACKUP, 100); `extra_vip` adds .101 to `changed`."""
    state, priority = ("MASTER", 150) if node == 1 else ("BACKUP", 100)
    out = [f"global_defs {{\n    router_id n{node}\n    vrrp_version 3\n}}\n"]
    for name, vrid in INSTANCES:
        vips = [CHANGED_VIP, EXTRA_VIP] if name == "changed" and extra_vip else []
        vips = vips or [CHANGED_VIP if name == "changed" else STEADY_VIP]
        vip_lines = "".join(f"        {v}/24 dev eth0\n" for v in vips)
        out.append(
            f"vrrp_instance {name} {{\n    state {state}\n    interface eth0\n    virtual_router_id {vrid}\n"
            f"    priority {priority}\n    advert_int {advert_int:g}\n"
            f"    virtual_ipaddress {{\n{vip_lines}    }}\n}}\n"
        )
    return "".join(out)


def land(conf: Path, text: str) -> float:
    """Replace conf atomically (a tmp file beside it, then rename, as deploy tools do); the wall time
    right after the rename."""
    tmp = conf.with_name(f".{conf.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, conf)
    return time.time()


def conf_path(d: Daemon) -> Path:
    return d.workdir / "keepalived.conf"


def parent_pid(d: Daemon) -> int:
    """The PID to signal: keepalived's parent (its pid file, which is `ip netns exec`'s exec'd PID)."""
    try:
        return int((d.workdir / "keepalived.pid").read_text().strip())
    except (OSError, ValueError):
        return d.proc.pid


def applied_reloads(d: Daemon) -> int:
    """Reloads the daemon applied so far: hacc's status counter, keepalived's log."""
    if d.name.startswith("hacc"):
        counters = hacc_status(d)["reloads"]
        return int(counters["applied"]) if isinstance(counters, dict) else -1
    return d.log().count("Reload complete")


def ready(d: Daemon, node: int) -> bool:
    want = "MASTER" if node == 1 else "BACKUP"
    if not d.alive():
        return False
    if d.name.startswith("hacc"):
        try:
            insts = hacc_status(d)["instances"]
        except (OSError, ValueError, KeyError):
            return False
        return isinstance(insts, list) and sorted(str(i["state"]) for i in insts) == [want, want]
    log = d.log()
    return all(f"({name}) Entering {want} STATE" in log for name, _ in INSTANCES)


_shield_depth = 0
_pending_signal: int | None = None


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: KeyboardInterrupt, unless cleanup is running (then right after it)."""
    global _pending_signal
    if _shield_depth:
        _pending_signal = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def shielded() -> Iterator[None]:
    """Run a cleanup to its end even if Ctrl-C lands in it; the interrupt is raised afterwards."""
    global _shield_depth, _pending_signal
    _shield_depth += 1
    try:
        yield
    finally:
        _shield_depth -= 1
        if _shield_depth == 0 and _pending_signal is not None:
            signum, _pending_signal = _pending_signal, None
            raise KeyboardInterrupt(f"signal {signum} (deferred until cleanup ended)")


@contextmanager
def pair(setup: Setup, advert_int: float, work: Path, tag: str) -> Iterator[tuple[Lan, Daemon, Daemon]]:
    """A LAN with node 1 Master and node 2 Backup of both instances, settled; removed on exit."""
    lan = Lan.create(tag, 2)
    started: list[Daemon] = []
    try:
        for node in (1, 2):
            text, name = node_conf(node, advert_int, False), f"{setup.daemon}-{tag}-{node}"
            if setup.daemon == "hacc":
                extra = ("--no-watch",) if setup.trigger == "SIGHUP" else ()
                started.append(start_hacc(lan.ns(node), work, text, name, extra))
            else:
                started.append(start_keepalived(lan.ns(node), work, text, name))
        n1, n2 = started

        def settled() -> bool:
            return lan.holders(CHANGED_VIP) == [1] and lan.holders(STEADY_VIP) == [1] and ready(n1, 1) and ready(n2, 2)

        if not wait_until(settled, 10 + 4 * advert_int, step=0.1):
            raise RuntimeError(f"{setup.daemon} pair did not settle:\n{n1.log()[-1500:]}\n{n2.log()[-1500:]}")
        time.sleep(3 * advert_int + 0.2)  # past a Master_Down_Interval: node 2 hears node 1
        if not settled():
            raise RuntimeError(f"{setup.daemon} pair did not stay settled")
        yield lan, n1, n2
    finally:
        with shielded():
            for d in reversed(started):
                d.stop()
            lan.close()


class Monitors:
    """An AddressMonitor per node namespace; `last_line_with` reads its output while it runs."""

    def __init__(self, lan: Lan, logdir: Path) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.mons = [AddressMonitor(ns, logdir / f"mon-{i}.log") for i, ns in enumerate(lan.nodes, start=1)]

    def start(self) -> None:
        for m in self.mons:
            m.start()
        time.sleep(0.2)  # `ip monitor` subscribes asynchronously

    def last_line_with(self, node: int, text: str) -> str:
        path = self.mons[node - 1].path
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if text in ln] if path.exists() else []
        return lines[-1] if lines else ""

    def stop(self) -> list[AddrEvent]:
        events = [e for m in self.mons for e in m.stop()]
        return sorted(events, key=lambda e: e.time)


@contextmanager
def monitoring(lan: Lan, logdir: Path) -> Iterator[Monitors]:
    mons = Monitors(lan, logdir)
    try:
        mons.start()
        yield mons
    finally:
        with shielded():
            mons.stop()  # idempotent: the caller's stop() already read the events


# --- 1 + 2: latency and flaps over many reloads ---------------------------------------------------


def reload_series(setup: Setup, advert_int: float, reloads: int, work: Path, tag: str) -> Row:
    row = Row(setup, advert_int, reloads)
    extra_held = f"inet {EXTRA_VIP}/"
    with pair(setup, advert_int, work, tag) as (lan, n1, _n2), monitoring(lan, work / f"{tag}-mon") as mons:
        ns1, ns2 = lan.ns(1), lan.ns(2)
        landed: list[tuple[float, bool]] = []
        for k in range(reloads):
            adding = k % 2 == 0
            t0 = land(conf_path(n1), node_conf(1, advert_int, adding))
            if setup.trigger == "SIGHUP":
                os.kill(parent_pid(n1) if setup.daemon == "keepalived" else n1.proc.pid, signal.SIGHUP)
            landed.append((t0, adding))

            def applied(adding: bool = adding) -> bool:
                last = mons.last_line_with(1, extra_held)
                return bool(last) and ("Deleted" not in last) == adding

            wait_until(applied, 5 + 4 * advert_int, step=0.005)
            # past a Master_Down_Interval, so a takeover this reload causes shows before the next one;
            # at a random phase of the advert timer
            time.sleep(4 * advert_int + random.uniform(0, advert_int))
        time.sleep(3 * advert_int + 0.5)  # a late takeover still shows
        events = mons.stop()
    for k, (t0, adding) in enumerate(landed):
        end = landed[k + 1][0] if k + 1 < len(landed) else math.inf
        hit = next(
            (e for e in events if e.ns == ns1 and e.address == EXTRA_VIP and e.added == adding and t0 <= e.time < end),
            None,
        )
        if hit is None:
            row.missed += 1
        else:
            row.latencies.append(hit.time - t0)
    node1 = [e for e in events if e.ns == ns1]
    row.steady_drops = len(deletions(node1, STEADY_VIP))
    row.changed_drops = len(deletions(node1, CHANGED_VIP))
    row.steady_takeovers = sum(1 for e in events if e.ns == ns2 and e.added and e.address == STEADY_VIP)
    row.changed_takeovers = sum(1 for e in events if e.ns == ns2 and e.added and e.address == CHANGED_VIP)
    return row


# --- 3: rolling VIP-list change -------------------------------------------------------------------


def rolling(daemon: str, rounds: int, work: Path, tag: str) -> list[Rolling]:
    """Node 1 reloads with .101 added to (then removed from) `changed`, node 2 the same 2 s later;
    a hacc pair reloads on the file watch, a keepalived pair on SIGHUP."""
    setup = Setup(daemon, "file" if daemon == "hacc" else "SIGHUP")
    out: list[Rolling] = []
    vips = (CHANGED_VIP, EXTRA_VIP)
    with pair(setup, 0.1, work, tag) as (lan, n1, n2):
        for r in range(rounds):
            adding = r % 2 == 0
            res = Rolling(daemon, "add" if adding else "remove")
            out.append(res)
            initial = {v: {ns: lan.holds(i, v) for i, ns in enumerate(lan.nodes, start=1)} for v in vips}
            before = applied_reloads(n2)
            with monitoring(lan, work / f"{tag}-r{r}") as mons:
                t0 = 0.0
                for node, d in ((1, n1), (2, n2)):
                    if node == 2:
                        time.sleep(max(0.0, t0 + ROLLING_DELAY - time.time()))
                    t = land(conf_path(d), node_conf(node, 0.1, adding))
                    t0 = t0 or t
                    if daemon == "keepalived":
                        os.kill(parent_pid(d), signal.SIGHUP)
                time.sleep(1.0)
                settled = wait_until(
                    lambda a=adding: lan.holders(CHANGED_VIP) == [1] and lan.holds(1, EXTRA_VIP) == a, 3, step=0.05
                )
                time.sleep(0.5)
                events = mons.stop()
            if not wait_until(lambda b=before: applied_reloads(n2) > b, 3, step=0.05):
                res.error = "node 2 did not apply its reload"
            elif not settled:
                res.error = f"not settled: .100 on {lan.holders(CHANGED_VIP)}, .101 on {lan.holders(EXTRA_VIP)}"
            res.double_hold = {v: double_holding(events, v, initial[v]) for v in vips}
    return out


# --- output ---------------------------------------------------------------------------------------


def machine() -> str:
    ka = subprocess.run([KEEPALIVED, "-v"], capture_output=True, text=True, timeout=10)
    ka_line = (ka.stderr or ka.stdout).strip().splitlines()[0] if (ka.stderr or ka.stdout).strip() else "?"
    return (
        f"machine: nproc {os.cpu_count()}, kernel {platform.release()}, python {platform.python_version()}, {ka_line}"
    )


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (defined for any non-empty sample)."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def ms(x: float) -> str:
    return f"{x * 1000:8.1f}" if math.isfinite(x) else "     inf"


def table(rows: list[Row]) -> str:
    head = (
        f"{'daemon':10s} {'trigger':7s} {'advert':>6s} {'reloads':>7s} {'median ms':>9s} {'p90 ms':>8s} "
        f"{'max ms':>8s} {'steady disapp':>13s} {'steady takeov':>13s} {'changed takeov':>14s} "
        f"{'.100 drops':>10s} {'missed':>6s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.error:
            lines.append(f"{r.setup.daemon:10s} {r.setup.trigger:7s} {r.advert_int:6g} FAILED: {r.error}")
            continue
        lat = r.latencies or [math.nan]
        lines.append(
            f"{r.setup.daemon:10s} {r.setup.trigger:7s} {r.advert_int:6g} {r.reloads:7d} "
            f"{ms(statistics.median(lat)):>9s} {ms(pct(lat, 0.9))} {ms(max(lat))} {r.steady_drops:13d} "
            f"{r.steady_takeovers:13d} {r.changed_takeovers:14d} {r.changed_drops:10d} {r.missed:6d}"
        )
    return "\n".join(lines)


def rolling_table(results: list[Rolling]) -> str:
    head = f"{'pair':10s} {'round':6s} {'both held .100 ms':>17s} {'both held .101 ms':>17s}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.daemon:10s} {r.direction:6s} {ms(r.double_hold.get(CHANGED_VIP, math.nan)):>17s} "
            f"{ms(r.double_hold.get(EXTRA_VIP, math.nan)):>17s}" + (f"  ({r.error})" if r.error else "")
        )
    return "\n".join(lines)


def run_guarded(what: str, fn: Callable[[], T]) -> tuple[T | None, str]:
    """Run one measurement; a broken run is reported in the table, not fatal (Ctrl-C still is)."""
    try:
        return fn(), ""
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"  {what}: {exc}", file=sys.stderr, flush=True)
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reloads", type=int, default=100, help="reloads per row at advert_int 0.1 (default 100)")
    ap.add_argument("--quick", action="store_true", help="10 reloads, 2 rolling rounds, no advert_int 1 section")
    ap.add_argument("--logs", type=Path, help="keep daemon logs and monitor output here (default: a temporary dir)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    reloads = 10 if args.quick else max(1, args.reloads)
    slow_reloads = 0 if args.quick else max(4, reloads // 10)
    rounds = 2 if args.quick else 4
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's `cmd &` starts us with it ignored
        signal.signal(sig, _on_signal)
    print(machine(), flush=True)
    remove_stale_namespaces()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    keep = nullcontext(str(args.logs.resolve())) if args.logs else None
    try:
        with keep or tempfile.TemporaryDirectory(prefix="hacc-bench-reload-") as tmp:
            return run_all(Path(tmp), reloads, slow_reloads, rounds)
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); every namespace and process started was removed", file=sys.stderr)
        return 130


def run_all(work: Path, reloads: int, slow_reloads: int, rounds: int) -> int:
    rows: list[Row] = []
    roll: list[Rolling] = []
    began = time.monotonic()
    plan = [(s, 0.1, reloads) for s in SETUPS] + [(s, 1.0, slow_reloads) for s in SETUPS if slow_reloads]
    for n, (setup, adv, count) in enumerate(plan):
        tag = f"r{n}"
        what = f"{setup.daemon}/{setup.trigger}"
        row, err = run_guarded(what, lambda s=setup, a=adv, c=count, t=tag: reload_series(s, a, c, work, t))
        result = row or Row(setup, adv, count, error=err)
        rows.append(result)
        lat = result.latencies
        print(
            f"  {setup.daemon}/{setup.trigger} advert_int {adv:g}: {count} reloads, "
            + (f"median {statistics.median(lat) * 1000:.1f} ms" if lat else "no figures")
            + f" ({time.monotonic() - began:.0f} s)",
            flush=True,
        )
    for n, daemon in enumerate(("hacc", "keepalived")):
        res, err = run_guarded(f"rolling {daemon}", lambda d=daemon, t=f"v{n}": rolling(d, rounds, work, t))
        roll.extend(res if res is not None else [Rolling(daemon, "-", error=err)])
        print(f"  rolling {daemon}: {rounds} rounds ({time.monotonic() - began:.0f} s)", flush=True)
    print()
    print("Reload: new keepalived.conf landed (os.replace) -> 192.0.2.101 added/removed in node 1's kernel;")
    print("disappearances / takeovers counted by `ip -ts monitor address` on both nodes over the same reloads")
    print(table(rows))
    print(
        "(node 2 never reloads in this section: with 192.0.2.101 added, node 1's VIP list differs from node 2's;\n"
        " keepalived 2.2.x backups then discard the Master's adverts, so its `changed takeovers` are expected)"
    )
    print()
    print(f"Rolling VIP-list change (advert_int 0.1): node 2 reloads {ROLLING_DELAY:g} s after node 1;")
    print("longest time a VIP was held by both nodes at once")
    print(rolling_table(roll))
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0 if all(not r.error for r in rows) and all(not r.error for r in roll) else 1


if __name__ == "__main__":
    sys.exit(main())
