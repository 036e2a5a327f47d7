"""Head motion figures on real speech (../shared/data/speech), tuned and held-out recordings apart.

    python benchmarks/bench_head_motion.py

The generator (``core.expression.head``) was tuned on arctic_a0007, asterisk-demo-instruct and
asterisk-basic-pbx-ivr-main. asterisk-demo-congrats, asterisk-priv-callee-options and
asterisk-tt-monkeys were not looked at while tuning: their figures are printed separately.

Prints, per recording (neutral, 5 seeds pooled): head rotation per axis in degrees (p5–p95 and
max |angle|); the nods, the pitch accents, the share of nods within 120 ms of an accent and the
chance share against accents shuffled over the voiced frames (500 shuffles). Then, on a take of
≥ 60 s of each set: the mean pose in degrees (the largest |mean| over 10 seeds); each emotion's
mean pose at intensity 0.5 and 1.0; the 25 fps motion against the 60 fps motion (the same
seconds); and the time the generator takes.

Definitions (``core.expression.head``, independent of the generator's own accent detector): a
pitch accent is a voiced F0 peak (median-filtered over 0.1 s against octave errors) at least
2 semitones above the speaker's median, standing 1 semitone above its surroundings, 0.2 s from
the next; a nod is a peak of the downward pitch velocity of at least 5°/s, 0.2 s from the next.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "data" / "speech"
TUNED = ("arctic_a0007", "asterisk-demo-instruct", "asterisk-basic-pbx-ivr-main")
HELD_OUT = ("asterisk-demo-congrats", "asterisk-priv-callee-options", "asterisk-tt-monkeys")
FPS = 25
SEEDS = range(5)
WINDOW_S = 0.12


def load(names: tuple[str, ...]) -> np.ndarray:
    """The recordings joined by 0.5 s of silence: (N,) float32 at 16 kHz."""
    from emoflame.core.audio.load import SAMPLE_RATE, load_audio

    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    parts = [load_audio(SPEECH / f"{name}.wav")[0] for name in names]
    return np.concatenate([x for part in parts for x in (part, gap)][:-1])


def motion_deg(tracks, emotion="neutral", level=0.0, seed=0, fps=FPS) -> np.ndarray:
    from emoflame.core.expression.head import head_motion

    return np.degrees(head_motion(tracks, fps, emotion, np.full(len(tracks.f0), level), seed))


def recording_figures(name: str) -> str:
    from emoflame.core.audio.features import prosody
    from emoflame.core.expression.head import nod_times, pitch_accents, share_near

    tracks = prosody(load((name,)), FPS)
    poses = [motion_deg(tracks, seed=seed) for seed in SEEDS]
    pooled = np.concatenate(poses)
    lo, hi, top = np.percentile(pooled, 5, axis=0), np.percentile(pooled, 95, axis=0), np.abs(pooled).max(axis=0)
    ranges = "  ".join(f"{axis} {a:+.1f}..{b:+.1f} (max {m:.1f})"
                       for axis, a, b, m in zip(("pitch", "yaw", "roll"), lo, hi, top))
    accents = pitch_accents(tracks, FPS)
    nods = [nod_times(np.radians(pose), FPS) for pose in poses]
    share = np.nanmean([share_near(n, accents, WINDOW_S) for n in nods])
    rng = np.random.default_rng(0)
    voiced = np.flatnonzero(tracks.voiced) / FPS
    chance = np.nanmean([share_near(nods[k % len(nods)], rng.choice(voiced, len(accents), replace=False), WINDOW_S)
                         for k in range(500)])
    duration = len(tracks.f0) / FPS
    return (f"  {name:30s} {duration:5.1f} s  {ranges}\n"
            f"  {'':30s} accents {len(accents):3d}, nods {np.mean([len(n) for n in nods]):5.1f}/take, "
            f"nods within {1000 * WINDOW_S:.0f} ms of an accent {share:.2f} (chance {chance:.2f})")


def long_take_figures(names: tuple[str, ...]) -> None:
    from emoflame.core.audio.features import prosody
    from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS

    samples = load(names)
    tracks = prosody(samples, FPS)
    print(f"  take: {' + '.join(names)} ({len(tracks.f0) / FPS:.1f} s)")
    means = np.array([motion_deg(tracks, seed=seed).mean(axis=0) for seed in range(10)])  # (10, 3)
    worst = np.abs(means).max(axis=0)
    print(f"  mean pose, neutral, largest |mean| over 10 seeds (deg): "
          f"pitch {worst[0]:.3f}  yaw {worst[1]:.3f}  roll {worst[2]:.3f}")
    print("  posture: mean pose (deg, pitch down + / yaw to the subject's left + / roll to the right +), seed 0")
    for emotion in MEAD_EMOTIONS:
        cells = []
        for level in (0.5, 1.0):
            mean = motion_deg(tracks, emotion, level).mean(axis=0)
            cells.append(f"{level:.1f}: {mean[0]:+5.2f} {mean[1]:+5.2f} {mean[2]:+5.2f}")
        spread = motion_deg(tracks, emotion, 1.0).std(axis=0)
        print(f"    {emotion:10s} {'   '.join(cells)}   sd at 1.0: {spread[0]:.2f} {spread[1]:.2f} {spread[2]:.2f}")
    frame_rate_figures(samples)
    start = time.perf_counter()
    motion_deg(tracks, "happy", 0.5)
    elapsed = time.perf_counter() - start
    print(f"  generator time: {1000 * elapsed:.0f} ms for {len(tracks.f0) / FPS:.0f} s at {FPS} fps")


def frame_rate_figures(samples: np.ndarray) -> None:
    """The same take at 24, 25 and 30 fps against 60 fps (prosody computed at each rate), compared
    at the lower rate's frame times."""
    from emoflame.core.audio.features import prosody

    reference = motion_deg(prosody(samples, 60), "happy", 0.7, 3, fps=60)
    reference_times = np.arange(len(reference)) / 60
    for fps in (24, 25, 30):
        pose = motion_deg(prosody(samples, fps), "happy", 0.7, 3, fps=fps)
        times = np.arange(len(pose)) / fps
        resampled = np.stack([np.interp(times, reference_times, reference[:, k]) for k in range(3)], axis=1)
        difference = np.abs(pose - resampled)
        print(f"  {fps} fps vs 60 fps (happy 0.7, deg): mean {difference.mean():.3f}  p99 "
              f"{np.percentile(difference, 99):.2f}  max {difference.max():.2f}")


def main() -> None:
    for label, names in (("tuned on", TUNED), ("held out", HELD_OUT)):
        print(f"recordings {label}: neutral, seeds {SEEDS.start}-{SEEDS.stop - 1}, {FPS} fps; "
              f"rotation p5..p95 (max |angle|) in degrees")
        for name in names:
            print(recording_figures(name))
        long_take_figures(tuple(n for n in names if n.startswith("asterisk")))
        print()


if __name__ == "__main__":
    main()
