"""keepalived's enable_script_security, enforced: a script runs only if nobody but root (or the user it
runs as) can change what runs.

A script is refused when the file, or any directory above it, is owned by someone other than root and
the run-as user, or is writable by group or others: such a script could be replaced by a non-root user
and then run as root on the next transition (keepalived check_script_secure does the same walk). The
command's first word is resolved like the kernel would (absolute path, else PATH). A refused script is
never run and the refusal is logged with the path component at fault; the config itself still loads
(keepalived carries on the same way), and `hacc run --config-test --strict` fails on it.

`script_user` / `script_group` (global_defs) and a vrrp_script's own `user` decide who scripts run as.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from hacc.runtime.check.spec import MiscSpec
from hacc.runtime.kaconf.model import GlobalDefs
from hacc.runtime.process import split_command
from hacc.runtime.spec import DaemonSpec, NotifySpec


@dataclass(frozen=True, slots=True)
class RunAs:
    user: str | None = None
    group: str | None = None

    @property
    def uid(self) -> int:
        if self.user is None:
            return 0
        try:
            return pwd.getpwnam(self.user).pw_uid
        except KeyError:
            return -1


def script_problem(command: str, run_as_uid: int = 0) -> str | None:
    """Why `command` may not run under enable_script_security, or None when it may."""
    argv = split_command(command)
    if not argv:
        return "empty command"
    found = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if found is None or not Path(found).exists():
        return f"{argv[0]} not found"
    real = Path(found).resolve()
    for path in (real, *real.parents):
        st = path.stat()
        if st.st_uid not in (0, run_as_uid):
            return f"{path} is owned by uid {st.st_uid}, not root"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{path} is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'}"
    if not os.access(real, os.X_OK):
        return f"{real} is not executable"
    return None


def check_group(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        grp.getgrnam(name)
    except KeyError:
        return f"group {name} does not exist"
    return None


def secure_spec(spec: DaemonSpec, defs: GlobalDefs) -> tuple[DaemonSpec, list[str]]:
    """The spec with insecure scripts removed (when enable_script_security is set) and every script's
    run-as user applied; plus one message per refused script."""
    run_as = RunAs(defs.script_user, defs.script_group)
    problems: list[str] = []
    if run_as.user is not None and run_as.uid < 0:
        problems.append(f"script_user {run_as.user} does not exist: scripts run as root")
        run_as = RunAs()
    if not defs.enable_script_security:
        return _with_user(spec, run_as), problems

    checked: dict[tuple[str, int], str | None] = {}  # one notify script serves many instances: stat it once

    def ok(what: str, command: str | None, uid: int | None = None) -> bool:
        if command is None:
            return True
        key = (command, run_as.uid if uid is None else uid)
        if key not in checked:
            checked[key] = script_problem(*key)
        why = checked[key]
        if why is not None:
            problems.append(f"{what}: script refused (enable_script_security): {why}")
        return why is None

    scripts = tuple(s for s in spec.scripts if ok(f"vrrp_script {s.name}", s.command))
    kept = {s.name for s in scripts}
    instances = []
    for inst in spec.instances:
        n = inst.notify
        notify = NotifySpec(
            master=n.master if ok(f"vrrp_instance {inst.name} notify_master", n.master) else None,
            backup=n.backup if ok(f"vrrp_instance {inst.name} notify_backup", n.backup) else None,
            fault=n.fault if ok(f"vrrp_instance {inst.name} notify_fault", n.fault) else None,
            stop=n.stop if ok(f"vrrp_instance {inst.name} notify_stop", n.stop) else None,
            generic=n.generic if ok(f"vrrp_instance {inst.name} notify", n.generic) else None,
            timeout=n.timeout,
        )
        # a refused vrrp_script is not tracked at all (keepalived drops it from the instance too)
        tracked = tuple(t for t in inst.vrrp.track_scripts if t.name in kept or spec.script(t.name) is None)
        vrrp = dataclasses.replace(inst.vrrp, track_scripts=tracked)
        instances.append(dataclasses.replace(inst, notify=notify, vrrp=vrrp))
    virtual_servers = []
    for vs in spec.virtual_servers:
        real_servers = []
        for rs in vs.real_servers:
            where = f"virtual_server {vs.key} real_server {rs.key}"
            checkers = tuple(
                c
                for c in rs.checkers
                if not isinstance(c, MiscSpec)
                or ok(f"{where} MISC_CHECK", " ".join(c.argv), RunAs(c.user).uid if c.user is not None else None)
            )
            real_servers.append(
                dataclasses.replace(
                    rs,
                    checkers=checkers,
                    notify_up=rs.notify_up if ok(f"{where} notify_up", rs.notify_up) else None,
                    notify_down=rs.notify_down if ok(f"{where} notify_down", rs.notify_down) else None,
                )
            )
        virtual_servers.append(
            dataclasses.replace(
                vs,
                real_servers=tuple(real_servers),
                quorum_up=vs.quorum_up if ok(f"virtual_server {vs.key} quorum_up", vs.quorum_up) else None,
                quorum_down=vs.quorum_down if ok(f"virtual_server {vs.key} quorum_down", vs.quorum_down) else None,
            )
        )
    secured = dataclasses.replace(
        spec, scripts=scripts, instances=tuple(instances), virtual_servers=tuple(virtual_servers)
    )
    return _with_user(secured, run_as), problems


def _with_user(spec: DaemonSpec, run_as: RunAs) -> DaemonSpec:
    if run_as.user is None and run_as.group is None:
        return spec
    scripts = tuple(
        s if s.user is not None else dataclasses.replace(s, user=run_as.user, group=run_as.group) for s in spec.scripts
    )
    instances = tuple(
        dataclasses.replace(i, notify=dataclasses.replace(i.notify, user=run_as.user, group=run_as.group))
        for i in spec.instances
    )
    # a MISC_CHECK without its own `user` runs as script_user too (keepalived's default for every script),
    # as do the virtual server's notify_up/down and quorum_up/down lines
    virtual_servers = tuple(
        dataclasses.replace(
            vs,
            script_user=run_as.user,
            script_group=run_as.group,
            real_servers=tuple(
                dataclasses.replace(
                    rs,
                    checkers=tuple(
                        dataclasses.replace(c, user=run_as.user, group=run_as.group)
                        if isinstance(c, MiscSpec) and c.user is None
                        else c
                        for c in rs.checkers
                    ),
                )
                for rs in vs.real_servers
            ),
        )
        for vs in spec.virtual_servers
    )
    return dataclasses.replace(spec, scripts=scripts, instances=instances, virtual_servers=virtual_servers)
