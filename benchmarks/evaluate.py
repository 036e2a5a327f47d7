"""Evaluate the learned method (Xu et al.) against baselines; prints the issue's tables.

    python benchmarks/evaluate.py [--data ../shared/data] [--curves 2] [--folder flame_assets]
                                  [--only lipsync intensity range control mediapipe]

``--folder`` reads P, M and T from another folder (e.g. the previous checkpoints, for a
before/after comparison); ``--only`` runs some of the sections.

1. Lip sync on the held-out FACEGOOD take (1114_3_16, never trained on), at 30 fps, on the
   default avatar: Pearson r of mouth opening (inner-lip landmark gap, mm) against the capture,
   and LVE (FaceFormer / CodeTalker: per frame the largest squared lip-vertex error, averaged;
   mm²), for T as it comes, T with its range calibration, the learned engine with calibration
   and the constraints of the phones (aligned to the automatic transcript, as the pipeline
   finds them; on Mandarin these are English phones, so the figure says what the constraints
   cost where the alignment is poor), the phonetic engine and a loudness-only baseline.
   Range: percentiles of jawOpen, the lip channels and the inner-lip gap, T against the capture.
2. Audio-to-intensity: Pearson r and RMSE of P's prediction against the held-out take's
   pseudo-intensity (loudness as the baseline).
3. Intensity controllability (Xu et al. Table 3): target curves per emotion and recording;
   the generated frames' pseudo-intensity (avatar landmarks against the same audio generated
   neutral, divided by the emotion's full-intensity L) against the target: Intensity-L2 (RMSE)
   and Pearson r, for re-normalization and the three baselines (interpolation with neutral,
   concatenated intensity scalar, feature scaled by the scalar).
4. Frame-wise against constant intensity (Table 4): the same curves given frame by frame, or
   as their mean.
5. An independent reading: frames of each emotion at several intensities, painted from the
   avatar mesh (matplotlib, flat-shaded, 512 px) and read back by the MediaPipe face landmarker
   in ../shared/data/models (52 blendshape scores); the emotion's characteristic channels (FACS
   weight ≥ 0.5, left and right averaged) should rise with the intensity asked for.
6. Speed: real-time factor of the learned engine on this CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from emoflame.core.audio.features import prosody  # noqa: E402
from emoflame.core.audio.load import load_audio  # noqa: E402
from emoflame.core.channels import ARKIT_CHANNELS  # noqa: E402
from emoflame.core.emotion.adapter import AdapterConfig, EmotionAdapter  # noqa: E402
from emoflame.core.emotion.facs import emotion_direction  # noqa: E402
from emoflame.core.audio.speech import analyse_speech  # noqa: E402
from emoflame.core.emotion.track import read_emotion_track  # noqa: E402
from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS  # noqa: E402
from emoflame.core.expression.learned import ASSETS, LearnedEngine  # noqa: E402
from emoflame.core.expression.transformer import ExpressionTransformer, TransformerConfig  # noqa: E402
from emoflame.core.intensity.learned import load_learned_intensity  # noqa: E402
from emoflame.core.intensity.pseudo_labels import avatar_vertices, raw_intensity  # noqa: E402
from emoflame.core.train.augment import random_intensity_curves  # noqa: E402
from emoflame.core.checkpoints import load_checkpoint  # noqa: E402
from emoflame.core.train.dataset import intensity_label_raw  # noqa: E402
from emoflame.core.train.facegood import FPS, HELD_OUT, load_take  # noqa: E402

UPPER_INNER_LIP, LOWER_INNER_LIP = 62, 66
"""68-point scheme: the inner lip midpoints."""


def pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def lip_metrics(avatar, weights, truth) -> tuple[float, float]:
    """(mouth-opening r, LVE in mm²) of (T, 52) weights against the captured (T, 52)."""
    v, g = avatar_vertices(weights, avatar), avatar_vertices(truth, avatar)
    lips = avatar.masks["lips"]
    lve = float((((v[:, lips] - g[:, lips]) * 1000) ** 2).sum(-1).max(-1).mean())

    def opening(verts):
        lmk = avatar.landmarks(verts)
        return np.linalg.norm(lmk[:, UPPER_INNER_LIP] - lmk[:, LOWER_INNER_LIP], axis=-1) * 1000

    return pearson(opening(v), opening(g)), lve


def loudness_baseline(samples, n) -> np.ndarray:
    """jawOpen from loudness alone (10th–95th percentile of dB mapped to 0–0.5)."""
    loud = prosody(samples, FPS).loudness[:n]
    lo, hi = np.percentile(loud, [10, 95])
    w = np.zeros((n, len(ARKIT_CHANNELS)), np.float32)
    w[:, ARKIT_CHANNELS.index("jawOpen")] = 0.5 * np.clip((loud - lo) / (hi - lo), 0, 1)
    return w


def phonetic_weights(wav: Path, n: int) -> np.ndarray:
    from emoflame.core.pipeline import animate

    clip = animate(wav, "neutral", intensity=0.0, fps=FPS, engine="phonetic", progress=False)
    w = np.zeros((n, len(ARKIT_CHANNELS)), np.float32)
    m = min(n, clip.num_frames)
    for k, name in enumerate(ARKIT_CHANNELS):
        if name in clip.channels:
            w[:m, k] = clip.channel(name)[:m]
    return w


RANGE_CHANNELS = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDown_L", "mouthUpperUp_L",
                  "mouthPress_L", "mouthRollLower", "mouthStretch_L", "mouthSmile_L")
RANGE_PERCENTILES = (50, 90, 95, 99)


def uncalibrated(engine: LearnedEngine) -> LearnedEngine:
    """The same M and T without T's range calibration."""
    meta = {k: v for k, v in engine.t_ckpt["meta"].items() if k != "calibration"}
    return LearnedEngine(engine.adapter, engine.a_ckpt, engine.transformer, {**engine.t_ckpt, "meta": meta})


def inner_gap_mm(avatar, weights) -> np.ndarray:
    """(T,) inner-lip gap of the avatar (mean of landmarks 61-63 minus 65-67, vertical), mm."""
    lmk = avatar.landmarks(avatar_vertices(weights, avatar))
    return 1000 * (lmk[:, 61:64, 1].mean(axis=1) - lmk[:, 65:68, 1].mean(axis=1))


def range_table(avatar, rows: dict[str, np.ndarray]) -> None:
    """Percentiles of the range channels and of the inner-lip gap for each (T, 52) in ``rows``."""
    print("| weights | " + " | ".join(f"{c} p{'/'.join(map(str, RANGE_PERCENTILES))}" for c in RANGE_CHANNELS)
          + " | inner-lip gap mm p50/p95/p99 |")
    print("|---" * (len(RANGE_CHANNELS) + 2) + "|")
    for label, w in rows.items():
        cells = ["/".join(f"{v:.2f}" for v in np.percentile(w[:, ARKIT_CHANNELS.index(c)], RANGE_PERCENTILES))
                 for c in RANGE_CHANNELS]
        gap = np.percentile(inner_gap_mm(avatar, w), (50, 95, 99))
        print(f"| {label} | " + " | ".join(cells) + " | " + "/".join(f"{g:.1f}" for g in gap) + " |")


def ablation_engine(mode: str) -> LearnedEngine:
    folder = REPO / "core" / "train" / "ablations"
    a, ac = load_checkpoint(folder / f"emotion_adapter_{mode}.pt", EmotionAdapter, AdapterConfig)
    t, tc = load_checkpoint(folder / f"expression_transformer_{mode}.pt", ExpressionTransformer, TransformerConfig)
    return LearnedEngine(a, ac, t, tc)


def generate(engine: LearnedEngine, speech, emotion: str, curve: np.ndarray) -> np.ndarray:
    """(T, 52) weights of ``engine`` for ``emotion`` at the intensity ``curve`` (T,)."""
    return engine.generate(speech, read_emotion_track(emotion, free_text=True), curve).weights


def measured_intensity(avatar, gen, neutral_gen, emotion) -> np.ndarray:
    """Pseudo-intensity of generated frames against the same audio generated neutral, scaled by the
    emotion's full-intensity L on the avatar."""
    full = raw_intensity(emotion_direction(emotion)[None], avatar=avatar)[0]
    return np.clip(raw_intensity(gen, neutral=neutral_gen, avatar=avatar) / full, 0, 1)


def controllability(engines, avatar, recordings, n_curves, seed=0):
    """Tables 3 and 4: {method: [(rmse, r), ...]} over emotions × recordings × curves."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("renorm", "interp", "concat", "scale", "constant")}
    for name, speech in recordings:
        neutral = {k: generate(e, speech, "neutral", np.zeros(speech.num_frames, np.float32)) for k, e in engines.items()}
        n = len(neutral["renorm"])
        for emotion in MEAD_EMOTIONS[1:]:
            full = generate(engines["renorm"], speech, emotion, np.ones(n, np.float32))
            curves = [np.linspace(0, 1, n, dtype=np.float32)] + list(random_intensity_curves(rng, n_curves - 1, n))
            for curve in curves:
                for k in ("renorm", "concat", "scale"):
                    if k in engines:
                        gen = generate(engines[k], speech, emotion, curve)
                        got = measured_intensity(avatar, gen, neutral[k], emotion)
                        rows[k].append((float(np.sqrt(np.mean((got - curve) ** 2))), pearson(got, curve)))
                interp = (1 - curve[:, None]) * neutral["renorm"] + curve[:, None] * full
                got = measured_intensity(avatar, interp, neutral["renorm"], emotion)
                rows["interp"].append((float(np.sqrt(np.mean((got - curve) ** 2))), pearson(got, curve)))
                const = generate(engines["renorm"], speech, emotion, np.full(n, curve.mean(), np.float32))
                got = measured_intensity(avatar, const, neutral["renorm"], emotion)
                rows["constant"].append((float(np.sqrt(np.mean((got - curve) ** 2))), pearson(got, curve)))
        print(f"  controllability done on {name}", file=sys.stderr)
    return rows


def paint(avatar, weights) -> np.ndarray:
    """(512, 512, 3) uint8 front view of the avatar driven by (52,) weights: flat shading,
    vertex colours, painter's order (no GPU, no Blender)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    v = avatar_vertices(weights[None], avatar)[0]
    tri = v[avatar.faces]
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-12
    front = nrm[:, 2] > 0
    order = np.argsort(tri[front, :, 2].mean(1))
    shade = 0.35 + 0.65 * np.clip(nrm[front][order] @ np.array([0.2, 0.3, 0.93]), 0, 1)
    colour = avatar.vertex_colors[avatar.faces[front][order]].mean(1)
    fig = plt.figure(figsize=(5.12, 5.12), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.add_collection(PolyCollection(tri[front][order][:, :, :2], facecolors=np.clip(colour * shade[:, None], 0, 1),
                                     edgecolors="none"))
    ax.set_xlim(-0.1, 0.1); ax.set_ylim(-0.11, 0.09); ax.axis("off")
    fig.patch.set_facecolor((0.25, 0.25, 0.3))
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


def mediapipe_readback(engine, avatar, speech, task: Path, levels=(0.0, 0.33, 0.67, 1.0), frames=(20, 50, 80)):
    """{emotion: [mean MediaPipe score of its characteristic channels at each level]}."""
    import mediapipe as mp

    from emoflame.core.channels import canonical_channel

    opts = mp.tasks.vision.FaceLandmarkerOptions(base_options=mp.tasks.BaseOptions(model_asset_path=str(task)),
                                                 output_face_blendshapes=True, num_faces=1)
    out, misses = {}, 0
    with mp.tasks.vision.FaceLandmarker.create_from_options(opts) as landmarker:
        n = speech.num_frames
        for emotion in MEAD_EMOTIONS[1:]:
            d = emotion_direction(emotion)
            wanted = {ARKIT_CHANNELS[k] for k in np.flatnonzero(d >= 0.5)}
            scores = []
            for level in levels:
                w = generate(engine, speech, emotion, np.full(n, level, np.float32))
                vals = []
                for f in frames:
                    res = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=paint(avatar, w[f])))
                    if not res.face_blendshapes:
                        misses += 1
                        continue
                    vals += [c.score for c in res.face_blendshapes[0] if canonical_channel(c.category_name) in wanted]
                scores.append(float(np.mean(vals)) if vals else float("nan"))
            out[emotion] = (sorted(wanted), scores)
    return out, misses


SECTIONS = ("lipsync", "intensity", "range", "control", "mediapipe")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--folder", type=Path, default=ASSETS, help="the folder of P, M and T (default flame_assets)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--curves", type=int, default=2, help="target curves per emotion and recording (a ramp + random)")
    parser.add_argument("--english", type=int, default=2, help="English recordings used for Table 3 (0 = held-out take only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import emoflame

    avatar = emoflame.default_avatar()
    engine = LearnedEngine.load(folder=args.folder)
    predictor = load_learned_intensity(folder=args.folder)
    print(f"checkpoints: {args.folder} (front ends: P {predictor.ckpt['meta']['front_end']}, "
          f"T {engine.t_ckpt['meta']['front_end']}; T calibrated on {len(engine.calibration.columns)} channels)\n")
    take = load_take(args.data / "facegood", HELD_OUT)
    held = analyse_speech(take.samples, FPS, phones=False)
    truth = take.weights * take.valid
    n = len(truth)

    t0 = time.time()
    intensity = predictor.predict(held, seed=0)
    t_gen = generate(engine, held, "neutral", np.zeros(len(intensity), np.float32))
    rtf = (time.time() - t0) / (len(take.samples) / 16000)
    m = min(n, len(t_gen))
    if "lipsync" in args.only or "range" in args.only:
        raw = generate(uncalibrated(engine), held, "neutral", np.zeros(held.num_frames, np.float32))[:m]
        held_phones = analyse_speech(take.samples, FPS, phones=True)
        constrained = generate(engine, held_phones, "neutral", np.zeros(held.num_frames, np.float32))[:m]
    if "lipsync" in args.only:
        print(f"## Lip sync on held-out take {HELD_OUT} ({m / FPS:.0f} s, Mandarin, 30 fps, default avatar)\n")
        print("| method | mouth-opening r | LVE (mm²) |\n|---|---|---|")
        wav = args.data / "facegood" / "wav" / f"{HELD_OUT}.wav"
        for label, w in (("learned T (neutral, as it comes)", raw), ("learned T + range calibration", t_gen[:m]),
                         (f"learned engine, calibrated + phones ({held_phones.phone_source})", constrained),
                         ("phonetic engine", phonetic_weights(wav, m)),
                         ("loudness-only jawOpen", loudness_baseline(take.samples, m))):
            r, lve = lip_metrics(avatar, w * take.valid, truth[:m])
            print(f"| {label} | {r:.3f} | {lve:.2f} |")
    if "range" in args.only:
        print(f"\n## Articulation range on {HELD_OUT} (percentiles; capture against T)\n")
        range_table(avatar, {"capture": truth[:m], "T as it comes": raw * take.valid,
                             "T + range calibration": t_gen[:m] * take.valid})

    if "intensity" in args.only:
        label = np.clip(intensity_label_raw(truth) / predictor.ckpt["meta"]["label_scale"], 0, 1)
        draws = np.mean([predictor.predict(held, seed=s) for s in range(3)], axis=0)
        loud = prosody(take.samples, FPS).loudness[:n]
        from scipy.ndimage import uniform_filter1d

        loud_s = uniform_filter1d(loud, 31)
        print(f"\n## Audio-to-intensity on {HELD_OUT}\n")
        print("| predictor | Pearson r | RMSE |\n|---|---|---|")
        for name, pred in (("P, seed 0, T=0.667", intensity[:n]), ("P, mean of 3 seeds", draws[:n])):
            print(f"| {name} | {pearson(pred, label[:len(pred)]):.3f} | {np.sqrt(np.mean((pred - label[:len(pred)]) ** 2)):.3f} |")
        print(f"| smoothed loudness (baseline, r only) | {pearson(loud_s, label[:len(loud_s)]):.3f} | – |")

    recordings = [(HELD_OUT, held)]
    english = [args.data / "speech" / "arctic_a0007.wav"] + sorted((args.data / "speech").glob("asterisk-*.wav"))
    for path in english[: args.english]:
        recordings.append((path.name, analyse_speech(load_audio(path)[0], FPS, phones=False)))
    if "control" in args.only:
        engines = {"renorm": engine}
        for mode in ("concat", "scale"):
            try:
                engines[mode] = ablation_engine(mode)
            except Exception as exc:  # noqa: BLE001 — a missing ablation is reported, the rest still runs
                print(f"(baseline {mode} unavailable: {exc})", file=sys.stderr)
        rows = controllability(engines, avatar, recordings, args.curves)
        names = ", ".join(r[0] for r in recordings)
        print(f"\n## Intensity controllability (Table 3), 7 emotions × {args.curves} curves × {len(recordings)} recordings ({names})\n")
        print("| intensity input | Intensity-L2 (RMSE) ↓ | Pearson r ↑ |\n|---|---|---|")
        for k, label_ in (("interp", "interpolation with neutral"), ("concat", "concatenated scalar"),
                          ("scale", "feature × scalar"), ("renorm", "re-normalization (ours)")):
            if rows[k]:
                a = np.array(rows[k])
                print(f"| {label_} | {np.nanmean(a[:, 0]):.3f} | {np.nanmean(a[:, 1]):.3f} |")
        print("\n## Frame-wise against constant intensity (Table 4)\n")
        print("| intensity given | Intensity-L2 (RMSE) ↓ | Pearson r ↑ |\n|---|---|---|")
        for k, label_ in (("constant", "constant (the curve's mean)"), ("renorm", "frame-wise")):
            a = np.array(rows[k])
            print(f"| {label_} | {np.nanmean(a[:, 0]):.3f} | {np.nanmean(a[:, 1]):.3f} |")
    if "mediapipe" in args.only:
        readback, misses = mediapipe_readback(engine, avatar, recordings[1][1] if len(recordings) > 1 else held,
                                              args.data / "models" / "face_landmarker.task")
        print("\n## MediaPipe read-back of painted frames (mean score of the emotion's characteristic channels; "
              f"3 frames of {recordings[1][0] if len(recordings) > 1 else HELD_OUT}, {misses} frames without a face)\n")
        print("| emotion | channels | intensity 0 | 0.33 | 0.67 | 1.0 | rises (monotonic ±0.01) |\n|---|---|---|---|---|---|---|")
        for emotion, (chans, sc) in readback.items():
            rises = all(b >= a - 0.01 for a, b in zip(sc, sc[1:])) and sc[-1] > sc[0]  # monotonic within 0.01
            print(f"| {emotion} | {', '.join(chans)} | " + " | ".join(f"{x:.3f}" for x in sc) + f" | {'yes' if rises else 'no'} |")
    print(f"\n## Speed\n\nlearned engine (features + P + T) real-time factor on this CPU, 1 thread: {rtf:.3f}")


if __name__ == "__main__":
    main()
