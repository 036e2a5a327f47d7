"""Gain invariance of the learned models: each recording at -12 dB and +6 dB against itself.

    python benchmarks/bench_gain.py [--folder flame_assets] [--clip] [--no-lips]

Recordings: ``examples/arctic_a0007.wav``, ``../shared/data/speech/asterisk-*.wav`` except
``asterisk-tt-monkeys.wav`` (monkey calls), and the held-out FACEGOOD take 1114_3_16. For every
copy the analysis runs afresh, as the pipeline would run it on a file recorded at that gain, at
25 fps:

- intensity: P's curve (seed 0, the pipeline's temperature) against the original's, mean
  absolute difference per frame, and the mean intensity of each copy (a predictor that follows
  the gain loses intensity at -12 dB);
- lips: the learned engine (neutral, phones aligned to the automatic transcript of the copy, as
  ``animate`` finds them), the inner-lip gap of the default avatar (landmarks 61-63 minus 65-67,
  as ``benchmarks/bench_lipsync_english.py`` measures it), mean absolute difference per frame
  against the original, mm.

Samples are scaled, not clipped: +6 dB takes these recordings past full scale (peaks 0.64-0.88).
``--clip`` clips the copies to [-1, 1], as a 16-bit file would; ``--folder`` reads P, M and T from
another folder (the previous checkpoints, for the before figure).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
GAINS_DB = (-12.0, 6.0)
FPS = 25.0
LIMIT_INTENSITY, LIMIT_GAP_MM = 0.05, 1.0
"""Issue 9's bounds: mean absolute difference per frame."""


def recordings() -> list[tuple[str, np.ndarray]]:
    from emoflame.core.audio.load import load_audio

    paths = [REPO / "examples" / "arctic_a0007.wav"] + sorted(
        p for p in (DATA / "speech").glob("asterisk-*.wav") if p.name != "asterisk-tt-monkeys.wav")
    paths.append(DATA / "facegood" / "wav" / "1114_3_16.wav")
    return [(p.name, load_audio(p)[0]) for p in paths]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=REPO / "flame_assets")
    parser.add_argument("--clip", action="store_true", help="clip the louder copies to [-1, 1]")
    parser.add_argument("--no-lips", action="store_true", help="intensity only (no transcript, no engine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from emoflame.core.audio.speech import analyse_speech
    from emoflame.core.emotion.track import read_emotion_track
    from emoflame.core.expression.learned import LearnedEngine
    from emoflame.core.flame.avatar import default_avatar
    from emoflame.core.flame.rigmap import rigmap_for_avatar
    from emoflame.core.intensity.learned import load_learned_intensity

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_lipsync_english import lip_geometry  # the measure of the gap

    predictor = load_learned_intensity(folder=args.folder)
    engine = None if args.no_lips else LearnedEngine.load(folder=args.folder)
    avatar = default_avatar()
    rigmap = rigmap_for_avatar(avatar)
    neutral = read_emotion_track("neutral")
    print(f"checkpoints {args.folder}: P front end {predictor.ckpt['meta']['front_end']}"
          + ("" if engine is None else f", T front end {engine.t_ckpt['meta']['front_end']}")
          + f"; copies {'clipped to ±1' if args.clip else 'scaled, not clipped'}\n")
    print(f"{'recording':<34} {'gain':>6} {'mean I':>7} {'|ΔI|':>6} {'|Δgap| mm':>9} {'phones':<40}")
    worst_i, worst_gap = 0.0, 0.0
    started = time.perf_counter()
    for name, samples in recordings():
        base_i = base_gap = None
        for db in (0.0, *GAINS_DB):
            copy = samples * np.float32(10 ** (db / 20))
            if args.clip:
                copy = np.clip(copy, -1.0, 1.0)
            speech = analyse_speech(copy, FPS, phones=engine is not None)
            curve = predictor.predict(speech, seed=0)
            gap, source = None, "-"
            if engine is not None:
                weights = engine.generate(speech, neutral, np.zeros(speech.num_frames, np.float32), 0).weights
                gap = lip_geometry(avatar, rigmap, weights)[0]
                source = speech.phone_source
            if db == 0.0:
                base_i, base_gap = curve, gap
                print(f"{name:<34} {'0 dB':>6} {curve.mean():>7.3f} {'':>6} {'':>9} {source[:40]:<40}")
                continue
            d_i = float(np.abs(curve - base_i).mean())
            d_gap = float(np.abs(gap - base_gap).mean()) if gap is not None else float("nan")
            worst_i = max(worst_i, d_i)
            worst_gap = max(worst_gap, d_gap) if gap is not None else worst_gap
            print(f"{'':<34} {db:>+4.0f}dB {curve.mean():>7.3f} {d_i:>6.3f} {d_gap:>9.3f} {source[:40]:<40}")
    print(f"\nworst mean |Δ intensity| per frame: {worst_i:.4f} (bound {LIMIT_INTENSITY})"
          + ("" if engine is None else f"; worst mean |Δ lip gap|: {worst_gap:.3f} mm (bound {LIMIT_GAP_MM} mm)")
          + f"; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
