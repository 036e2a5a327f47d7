"""Time writing 52 channels × 1500 frames to an Action: bulk (emoflame's writer) vs keyframe_insert.

    python benchmarks/bench_action_write.py [--frames 1500]

Both write the same values to a new Action on the default avatar's shape keys; prints the two
wall times and their ratio.
"""

import argparse
import time

import bpy
import numpy as np

import emoflame
from emoflame.addon.action_writer import target_values, write_action
from emoflame.addon.avatar_object import add_avatar_object
from emoflame.core.channels import ARKIT_CHANNELS
from emoflame.core.clip import AnimationClip
from emoflame.core.flame.rigmap import rigmap_for_shape_keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1500)
    frames = parser.parse_args().frames

    bpy.ops.wm.read_factory_settings(use_empty=True)
    face = add_avatar_object(emoflame.default_avatar())
    key = face.data.shape_keys
    # 52 shape keys named after the 52 channels: one F-curve each.
    for name in ARKIT_CHANNELS:
        if name not in key.key_blocks:
            face.shape_key_add(name=name, from_mix=False)
    rigmap = rigmap_for_shape_keys(ARKIT_CHANNELS)
    weights = np.random.default_rng(0).random((frames, len(ARKIT_CHANNELS)), dtype=np.float32)
    clip = AnimationClip(25.0, np.zeros(frames), np.zeros((frames, 0)), weights, ARKIT_CHANNELS)

    start = time.perf_counter()
    write_action(key, clip, rigmap, name="bulk")
    bulk = time.perf_counter() - start

    values = target_values(clip, rigmap)  # (T, 52)
    key.animation_data.action = bpy.data.actions.new("keyframe_insert")
    blocks = [key.key_blocks[t] for t in rigmap.targets]
    start = time.perf_counter()
    for t in range(frames):
        for block, value in zip(blocks, values[t]):
            block.value = value
            block.keyframe_insert("value", frame=1 + t)
    per_key = time.perf_counter() - start

    n = len(blocks)
    print(f"{n} channels x {frames} frames = {n * frames} keys")
    print(f"bulk (keyframe_points.add + foreach_set): {bulk:.3f} s")
    print(f"keyframe_insert per key:                  {per_key:.3f} s")
    print(f"ratio: {per_key / bulk:.0f}x")


if __name__ == "__main__":
    main()
