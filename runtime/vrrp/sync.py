"""vrrp_sync_group: pure helper making member instances change state together (keepalived semantics).

The shell sends every event for a member through the group::

    group = SyncGroup("G1", [vr_a, vr_b])
    actions = group.dispatch(now, vr_a, vr_a.handle_timer(now))

``dispatch`` looks at the member's state after the event and pulls the others along:
Master -> the others in Backup become Master; Backup (from Master) -> the other Masters become
Backup; Fault -> every other member is held in Fault until no member has a fault of its own,
then they all restart in Backup. Actions of all members come back in one list (each action
names its instance).

Simplifications compared with keepalived: no group notify scripts (members notify
individually), no ``global_tracking``/``sync_group_tracking_weight``, and a member's own
Master_Down_Timer still runs while the group is in Backup (as in keepalived, whichever member
times out first takes the whole group to Master).
"""

from __future__ import annotations

from collections.abc import Sequence

from .actions import Action
from .state import StateName, VRRPInstance


class SyncGroup:
    def __init__(self, name: str, members: Sequence[VRRPInstance]) -> None:
        self.name = name
        self.members = tuple(members)
        self._last: dict[str, StateName] = {m.name: m.state for m in self.members}

    def dispatch(self, now: float, member: VRRPInstance, actions: list[Action]) -> list[Action]:
        """Return ``actions`` plus whatever the other members must do to follow ``member``."""
        out = list(actions)
        before, after = self._last.get(member.name), member.state
        faulty = [m.name for m in self.members if m.has_own_fault]
        for m in self.members:
            # keepalived: a fault in one member holds the whole group in Fault until all are clear.
            if m.group_fault != bool(faulty):
                out += m.set_group_fault(now, bool(faulty))
        if not faulty and before != after:
            reason = f"sync group {self.name}: {member.name} became {after}"
            others = [m for m in self.members if m is not member]
            if after == "Master":
                for m in others:
                    out += m.force_master(now, reason)
            elif after == "Backup" and before == "Master":
                for m in others:
                    out += m.force_backup(now, reason)
        self._last = {m.name: m.state for m in self.members}
        return out
