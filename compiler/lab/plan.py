"""The lab, planned: what to build, what to break, what the model predicts. Pure: a BuildResult in, data out.

- `lab_plan` lays out one namespace per node with the site's interfaces and addresses, one bridge per L2
  segment (an IPv4 network), refuses any address outside the documentation ranges, and plans the
  lab-controlled stand-ins for every check (see `hacc.compiler.lab` for how they are mounted).
- `lab_scenarios` lists the failover table's rows (normal, each node down, each check failing on each node)
  and, per node and interface, the interface going down; each with the master predicted for every VIP.
- `fast_config` is `--fast`: the lab copy at VRRPv3, advert_int 0.1 s, checks at interval 1 s, rise/fall 1,
  preempt_delay x0.1. The prediction does not depend on timers.
- `batches` groups the scenarios that can strike one lab at the same time: a scenario's scope is the VIPs of
  the instances its node is a member of (plus any VIP the model says it moves); scenarios on different nodes
  with disjoint scopes cannot influence each other's VIPs (VRRP instances are independent: no sync groups
  are generated), so they run concurrently and each is judged on its own scope.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from ..build import BuildResult
from ..failover import after_failure
from ..failover_table import NORMAL, failover_table
from ..plan import InstancePlan, SitePlan
from ..render import file_mode
from ..resolve import family_interfaces, node_interfaces

# the only addresses the lab runs: the documentation networks of RFC 5737 and RFC 3849 (the lab never leaves
# its namespaces, and refusing anything else keeps a production site's real addresses out of this machine's
# kernel entirely); IPv6 link-local VIPs (a gateway's fe80::1) stay on their namespace's link anyway
LAB_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    *(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")),
    ipaddress.IPv6Network("2001:db8::/32"),
    ipaddress.IPv6Network("fe80::/64"),
)
LAB_RANGES_TEXT = "192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 and fe80::/64"
LAB_SECRET = "hacclab1"  # noqa: S105 - the value of the site's auth secret inside the lab (PASS takes 8 characters)
CONFIG_DIR = "/etc/keepalived"  # where the generated tree is deployed (notify.sh, secrets.conf, down)

ScenarioKind = Literal["normal", "node-down", "check-fails", "interface-down"]
Daemon = Literal["hacc", "keepalived"]


class LabRefused(Exception):
    """The site cannot run in the lab (addresses outside the documentation ranges, odd paths)."""


@dataclass(frozen=True)
class LabInterface:
    name: str  # as the site names it, e.g. eth0
    address: str  # with prefix, e.g. 192.0.2.11/24
    segment: int  # index into LabPlan.segments
    address6: str | None = None  # a dual-stack interface's IPv6 address, e.g. 2001:db8::11/64


@dataclass(frozen=True)
class SwitchArm:
    """One check's command line as the stand-in recognises it, and how the stand-in answers it."""

    check: str
    args: str  # "$*" of the command line
    test: str  # shell condition: true = the check passes


@dataclass(frozen=True)
class StandIn:
    """An executable replaced in a node's private mount namespace by a lab script."""

    path: str  # e.g. /usr/bin/killall
    arms: tuple[SwitchArm, ...]


@dataclass(frozen=True)
class LabNode:
    name: str
    index: int
    interfaces: tuple[LabInterface, ...]
    files: tuple[tuple[str, str, int], ...]  # (name, text, mode) of the node's lab copy of /etc/keepalived
    checks: tuple[tuple[str, int, int], ...]  # (check, fall, rise) of the scripts this node runs
    stand_ins: tuple[StandIn, ...]
    bind_dirs: tuple[str, ...]  # host directories (besides /etc/keepalived) overlaid by a lab directory
    daemon: Daemon


@dataclass(frozen=True)
class Scenario:
    label: str
    kind: ScenarioKind
    node: str | None = None
    check: str | None = None
    interface: str | None = None  # interface-down, and a check on an interface


@dataclass(frozen=True)
class LabPlan:
    site: str
    segments: tuple[str, ...]  # networks, e.g. 192.0.2.0/24
    nodes: tuple[LabNode, ...]
    vips: tuple[str, ...]
    advert_int: float  # the slowest instance's, after --fast
    preempt_delay: float  # the longest, after --fast
    fast: bool
    predicted: Mapping[tuple[str, str], str | None]  # (scenario label, VIP) -> node
    scenarios: tuple[Scenario, ...]
    checks: Mapping[str, tuple[str, str]]  # check -> (kind: script|file|interface, target)
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # VIP -> nodes of its instance


# --- --fast -------------------------------------------------------------------------------------------------

_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>\S+)(?P<rest>.*)$")


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def fast_config(text: str) -> str:
    """The generated keepalived.conf rewritten for the lab's --fast mode (see the module docstring)."""
    out = []
    in_script = False
    for line in text.splitlines(keepends=True):
        m = _LINE.match(line.rstrip("\n"))
        if not m:
            out.append(line)
            continue
        key, rest, indent = m["key"], m["rest"].strip(), m["indent"]
        if key == "vrrp_script" and not indent:
            in_script = True
        elif key == "}" and not indent:
            in_script = False
        new: str | None = None
        if key in ("version", "vrrp_version"):
            new = "3"
        elif key == "advert_int":
            new = "0.1"
        elif key == "preempt_delay":
            new = _num(float(rest) * 0.1)
        elif in_script and key in ("interval", "rise", "fall"):
            new = "1"
        out.append(f"{indent}{key} {new}\n" if new is not None else line)
    return "".join(out)


# --- layout ---------------------------------------------------------------------------------------------------


def _in_lab_ranges(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in n for n in LAB_NETWORKS)


def check_addresses(result: BuildResult) -> list[str]:
    """Every node address and VIP outside the documentation ranges, as a sentence each (empty: ok)."""
    bad = []
    for node in result.plan.nodes:
        for version in (4, 6):
            for ifname, iface in family_interfaces(result.site, node.name, version).items():
                if not _in_lab_ranges(iface.ip):
                    bad.append(f"node {node.name} {ifname} {iface}")
    for inst in result.plan.instances:
        for vip in inst.vips:
            if not _in_lab_ranges(ipaddress.ip_interface(vip).ip):
                bad.append(f"instance {inst.name} VIP {vip}")
    return bad


def _stand_ins(plan: SitePlan, node_name: str) -> tuple[tuple[StandIn, ...], tuple[tuple[str, int, int], ...]]:
    node = next(n for n in plan.nodes if n.name == node_name)
    by_path: dict[str, list[SwitchArm]] = {}
    checks = []
    for script in node.scripts:
        spec = script.spec
        if spec.script:
            words = shlex.split(spec.script)
            path, args = words[0], " ".join(words[1:])
            test = f'[ ! -e "$fail/{script.check}" ]'
        else:
            assert spec.file
            path, args = "/usr/bin/test", f"! -e {spec.file}"
            test = f"[ ! -e {shlex.quote(spec.file)} ]"
        if not PurePosixPath(path).is_absolute():
            raise LabRefused(f"check {script.check}: the lab replaces the script by its absolute path, not {path!r}")
        by_path.setdefault(path, []).append(SwitchArm(script.check, args, test))
        checks.append((script.check, spec.fall, spec.rise))
    return tuple(StandIn(p, tuple(a)) for p, a in sorted(by_path.items())), tuple(checks)


def stand_in_text(stand_in: StandIn, fail_dir: str, log: str) -> str:
    """The script that replaces `stand_in.path`: the check passes unless the lab flipped its switch (a file
    in fail_dir), or, for a maintenance file, unless the file exists; every run is logged with its result."""
    lines = [
        "#!/bin/sh",
        f"# hacc lab: stands in for {stand_in.path} in this node's mount namespace (the generated config is",
        "# unchanged): each check answers from a lab switch or its maintenance file, and every run is logged",
        f"fail={shlex.quote(fail_dir)}",
        f"log={shlex.quote(log)}",
        'case "$*" in',
    ]
    fallback = 'test "$@"' if PurePosixPath(stand_in.path).name in ("test", "[") else "true"
    for arm in stand_in.arms:
        lines.append(f"    {shlex.quote(arm.args)}) c={shlex.quote(arm.check)}; {arm.test} ;;")
    lines += [f"    *) c=-; {fallback} ;;", "esac", "rc=$?", 'echo "$(date +%s.%N) $c $rc" >>"$log"', "exit $rc", ""]
    return "\n".join(lines)


def recorder_text(name: str, log: str) -> str:
    """systemctl, logger, sendmail in the lab: notify.sh's calls are recorded, never made."""
    return f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >>{shlex.quote(log)}\nexit 0\n'


def _node_files(result: BuildResult, node: str, fast: bool) -> tuple[tuple[str, str, int], ...]:
    out = []
    prefix = f"{node}/"
    for rel, text in sorted(result.files.items()):
        if rel.startswith(prefix):
            name = rel[len(prefix) :]
            out.append((name, fast_config(text) if fast and name == "keepalived.conf" else text, file_mode(rel)))
    return tuple(out)


def _secrets(plan: SitePlan) -> tuple[str, str] | None:
    """(path, text) of the node-local secrets file the generated config includes, with the lab's value."""
    if plan.auth is None:
        return None
    return plan.auth.secrets_file, f"${plan.auth.secret}={LAB_SECRET}\n"


def lab_plan(result: BuildResult, daemon: str = "hacc", fast: bool = False) -> LabPlan:
    """The lab for a built site; `daemon` is hacc, keepalived or mixed (alternating, first node hacc)."""
    bad = check_addresses(result)
    if bad:
        raise LabRefused(f"the lab runs only addresses in {LAB_RANGES_TEXT}; outside them: " + "; ".join(bad))
    plan = result.plan
    segments: list[str] = []
    for node in plan.nodes:
        for iface in node_interfaces(result.site, node.name).values():
            if str(iface.network) not in segments:
                segments.append(str(iface.network))
    checks: dict[str, tuple[str, str]] = {}
    for name, check in plan.checks.items():
        check_kind, target = (
            ("script", check.script)
            if check.script
            else ("file", check.file)
            if check.file
            else ("interface", check.interface)
        )
        assert target is not None
        checks[name] = (check_kind, target)
    secrets = _secrets(plan)
    nodes = []
    for index, node in enumerate(plan.nodes):
        v6 = family_interfaces(result.site, node.name, 6)
        ifaces = tuple(
            LabInterface(
                name,
                str(iface),
                segments.index(str(iface.network)),
                str(v6[name]) if name in v6 and v6[name] != iface else None,
            )
            for name, iface in node_interfaces(result.site, node.name).items()
        )
        files = list(_node_files(result, node.name, fast))
        dirs = {str(PurePosixPath(target).parent) for kind, target in checks.values() if kind == "file"}
        if secrets:
            spath = PurePosixPath(secrets[0])
            dirs.add(str(spath.parent))
            if str(spath.parent) == CONFIG_DIR:
                files.append((spath.name, secrets[1], 0o600))
        dirs.discard(CONFIG_DIR)
        runs: Daemon = "keepalived" if daemon == "keepalived" or (daemon == "mixed" and index % 2) else "hacc"
        subs, node_checks = _stand_ins(plan, node.name)
        nodes.append(LabNode(node.name, index, ifaces, tuple(files), node_checks, subs, tuple(sorted(dirs)), runs))
    settings = [i.settings for i in plan.instances]
    advert = 0.1 if fast else max((float(s.advert_int) for s in settings), default=1.0)
    delay = max((float(s.preempt_delay or 0) for s in settings), default=0.0) * (0.1 if fast else 1.0)
    scenarios, predicted = lab_scenarios(result, checks)
    vips = tuple(dict.fromkeys(v.split("/")[0] for i in plan.instances for v in i.vips))
    members: dict[str, frozenset[str]] = {}
    for inst in plan.instances:
        for vip in inst.vips:
            address = vip.split("/")[0]
            members[address] = members.get(address, frozenset()) | {m.node for m in inst.members}
    return LabPlan(
        plan.site_name, tuple(segments), tuple(nodes), vips, advert, delay, fast, predicted, scenarios, checks, members
    )


# --- scenarios and the prediction ---------------------------------------------------------------------------


def _interface_down_master(inst: InstancePlan, plan: SitePlan, node: str, ifname: str) -> str | None:
    """An interface going down on a node: that node's instances on it go to FAULT (keepalived and hacc both
    watch their own interface), and checks tracking it fail; with the normal master as the incumbent."""
    member = next((m for m in inst.members if m.node == node), None)
    down = (node,) if member is not None and member.interface == ifname else ()
    failed = {node: [c for c in inst.track if plan.checks[c].interface == ifname]}
    outcome = after_failure(inst, plan.checks, down=down, failed=failed)
    return outcome.master.node if outcome.master else None


def lab_scenarios(
    result: BuildResult, checks: Mapping[str, tuple[str, str]]
) -> tuple[tuple[Scenario, ...], dict[tuple[str, str], str | None]]:
    """The failover table's rows, then each interface of each node going down; with their predictions.

    The table's rows are predicted by `hacc failover` itself (the thing the lab checks); an interface going
    down is not a row of the table, so its prediction is derived here from the same model."""
    plan = result.plan
    table = failover_table(plan)
    predicted = {key: cell.master for key, cell in table.masters_by_vip().items()}
    out = []
    for row, _ in table.rows:
        if row.label == NORMAL:
            out.append(Scenario(NORMAL, "normal"))
        elif row.down:
            out.append(Scenario(row.label, "node-down", node=row.down[0]))
        else:
            assert row.failed_node and row.failed_check
            kind, target = checks[row.failed_check]
            iface = target if kind == "interface" else None
            out.append(Scenario(row.label, "check-fails", row.failed_node, row.failed_check, iface))
    for node in plan.nodes:
        for ifname in node_interfaces(result.site, node.name):
            label = f"{node.name} {ifname} down"
            out.append(Scenario(label, "interface-down", node.name, interface=ifname))
            for inst in plan.instances:
                master = _interface_down_master(inst, plan, node.name, ifname)
                for vip in inst.vips:
                    predicted[(label, vip.split("/")[0])] = master
    return tuple(out), predicted


def select(plan: LabPlan, labels: list[str]) -> tuple[Scenario, ...]:
    """The scenarios named, all when none is (normal always runs first: it is the lab's baseline); ValueError
    on an unknown label."""
    if not labels:
        return plan.scenarios
    known = {s.label: s for s in plan.scenarios}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = set(labels) | {NORMAL}
    return tuple(s for s in plan.scenarios if s.label in wanted)


# --- scenarios that can run at the same time ---------------------------------------------------------------


def scope(plan: LabPlan, scenario: Scenario) -> frozenset[str]:
    """The VIPs a scenario can move: those of the instances its node is a member of, and any VIP the model
    predicts away from its normal master (none outside the first set, unless the model says otherwise)."""
    if scenario.kind == "normal":
        return frozenset()
    moved = {v for v in plan.vips if plan.predicted[(scenario.label, v)] != plan.predicted[(NORMAL, v)]}
    return frozenset(v for v in plan.vips if scenario.node in plan.members.get(v, ())) | moved


def batches(plan: LabPlan, scenarios: tuple[Scenario, ...]) -> tuple[tuple[Scenario, ...], ...]:
    """The non-normal scenarios in groups that strike one lab together: each group's scenarios are on
    different nodes with disjoint scopes (first fit, in the scenarios' order, so the grouping is stable)."""
    groups: list[list[Scenario]] = []
    used: list[tuple[set[str], set[str]]] = []  # per group: nodes, VIPs in scope
    for s in scenarios:
        if s.kind == "normal":
            continue
        vips = scope(plan, s)
        for group, (nodes, taken) in zip(groups, used, strict=True):
            if s.node not in nodes and not (vips & taken):
                group.append(s)
                nodes.add(str(s.node))
                taken.update(vips)
                break
        else:
            groups.append([s])
            used.append(({str(s.node)}, set(vips)))
    return tuple(tuple(g) for g in groups)
