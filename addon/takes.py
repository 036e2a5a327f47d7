"""emoflame's takes in a file: find them, and clear them without touching anything else.

A take is an Action that ``action_writer`` marked with ``emoflame_take``; an Action a take
replaced waits on a muted ``[Action Stash]`` NLA track and comes back when the take is cleared.
"""

from __future__ import annotations

import bpy

from .action_writer import STASH_TRACK, TAKE_PROPERTY


def take_actions(ids=None) -> list:
    """emoflame's takes (Actions marked ``emoflame_take``); with ``ids``, only those used by them."""
    takes = [a for a in bpy.data.actions if a.get(TAKE_PROPERTY)]
    if ids is None:
        return takes
    return [a for a in takes if any(user in ids for slot in a.slots for user in slot.users())]


def clear_takes(ids=None) -> int:
    """Remove emoflame's takes (of ``ids`` or everywhere), with the NLA strips that use them; an
    Action a take had replaced comes back from its muted ``[Action Stash]`` track. Other Actions
    are not touched. Returns the number of takes removed."""
    takes = take_actions(ids)
    for block in ids if ids is not None else _animated_ids():
        data = block.animation_data
        if data is None:
            continue
        for track in list(data.nla_tracks):
            ours = [strip for strip in track.strips if strip.action in takes]
            for strip in ours:
                track.strips.remove(strip)
            if ours and not track.strips:
                data.nla_tracks.remove(track)
        if data.action not in takes:
            continue
        data.action = None
        stash = next((t for t in reversed(data.nla_tracks) if t.name == STASH_TRACK and t.strips), None)
        if stash is not None:
            strip = stash.strips[0]
            data.action, slot = strip.action, strip.action_slot
            if slot is not None:
                data.action_slot = slot
            data.nla_tracks.remove(stash)
    for action in takes:
        bpy.data.actions.remove(action)
    return len(takes)


def _animated_ids():
    for collection in (bpy.data.shape_keys, bpy.data.objects):
        yield from (block for block in collection if block.animation_data)
