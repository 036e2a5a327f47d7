"""Do the 8 emotions read on the default avatar? MediaPipe's read-back of takes on real speech.

    python benchmarks/bench_emotion_readback.py [--frames 6] [--resolution 512] [--save SCORES.json]
    python benchmarks/bench_emotion_readback.py --load SCORES.json   # the analysis alone

For each recording (RECORDINGS: the repository's example and the asterisk prompts but
tt-monkeys, each cut to an excerpt of at most EXCERPT_S at its quietest moment and given PAD_S of
silence before and after the line, as a take's handles), every emotion at
every intensity of INTENSITIES is animated as a user would (``emoflame.animate``, the phonetic
engine, a constant intensity, head motion on), and front stills (``renderers.stills``: the
scene and camera of ``emoflame animate``, Workbench) of rest frames (pauses, the leading and
trailing silence) and speech frames (the middle of vowels) are read by MediaPipe Face
Landmarker (``renderers.portrait.face.FaceReader``: 52 blendshape scores). Frames in a blink of
the eye layer are skipped; the same frames are read in every take of a recording. Intensity 0 is
one take per recording: every emotion at intensity 0 is the neutral take, as is neutral at every
intensity (tests/test_emotion_readback.py checks the first on the weights).

Prints, for rest and speech frames apart, the mean score of each emotion's CHARACTERISTIC
MediaPipe channels at each intensity and whether they rise monotonically; then a nearest-centroid
classifier over the 52 scores, fitted on FIT_RECORDING's takes at intensity 1 (the recording
looked at while tuning) and tested on the held-out recordings: the confusion matrix of takes (a
take's mean scores → the nearest emotion centroid) and of frames, at intensities 1, 0.75 and 0.5.

What MediaPipe cannot read on this head (``docs/avatar_shape_readback.json``): cheekSquint,
noseSneer and cheekPuff read 0 on ICT's own renders too, so happy's cheek raise shows as
eyeSquint and disgust's nose wrinkle as mouthUpperUp; browDown reads weakly on FLAME's face.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

import emoflame
from emoflame.core.audio.load import SAMPLE_RATE, load_audio
from emoflame.core.audio.speech import analyse_speech
from emoflame.core.channels import CHANNEL_INDEX
from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS
from emoflame.renderers.portrait.face import FaceReader
from emoflame.renderers.stills import render_stills

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
RECORDINGS = {
    "arctic_a0007": ROOT / "examples" / "arctic_a0007.wav",
    "asterisk-basic-pbx-ivr-main": SPEECH / "asterisk-basic-pbx-ivr-main.wav",
    "asterisk-demo-congrats": SPEECH / "asterisk-demo-congrats.wav",
    "asterisk-demo-instruct": SPEECH / "asterisk-demo-instruct.wav",
    "asterisk-priv-callee-options": SPEECH / "asterisk-priv-callee-options.wav",
}
FIT_RECORDING = "arctic_a0007"
"""The recording the classifier is fitted on, and the only one looked at while the FACS
prototypes, the avatar's gains and ``phonetic.combine`` were tuned; the others are held out."""
INTENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
EXCERPT_S = 12.0
"""Longest excerpt of a recording, seconds: 29 takes of each, each aligned anew."""
PAD_S = 0.5
"""Silence before and after the line, seconds: the rest frames of a take's handles."""
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
REST_MARGIN_S = 0.12
"""Rest frames lie this far from any speech sound (the mouth has settled)."""
BLINK_FREE = 0.05
"""Frames whose eye-layer blink is above this (eyeBlink of the neutral take) are not read."""

CHARACTERISTIC = {
    "happy": ("mouthSmileLeft", "mouthSmileRight", "eyeSquintLeft", "eyeSquintRight"),
    "sad": ("browInnerUp", "mouthFrownLeft", "mouthFrownRight"),
    "angry": ("browDownLeft", "browDownRight", "eyeSquintLeft", "eyeSquintRight", "mouthPressLeft", "mouthPressRight"),
    "fearful": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeWideLeft", "eyeWideRight",
                "mouthStretchLeft", "mouthStretchRight"),
    "disgusted": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "surprised": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeWideLeft", "eyeWideRight", "jawOpen"),
    "contempt": ("mouthSmileRight", "mouthDimpleRight"),
}
"""MediaPipe channels that each emotion's FACS prototype (``core.emotion.facs``) should raise:
MediaPipe's Right is the subject's right, as ARKit's (contempt's smirk is R12+R14)."""


@dataclass
class Readings:
    """MediaPipe's scores of one recording's takes.

    Attributes:
        categories: (52,) MediaPipe's category names, the columns of every array.
        rest, speech: (F,) clip frames read as rest and as speech.
        scores: (emotion, intensity) -> {"rest": (F_r, 52), "speech": (F_s, 52)}.
    """

    categories: tuple[str, ...]
    rest: np.ndarray
    speech: np.ndarray
    scores: dict = field(default_factory=dict)


def excerpt(path: Path, folder: Path, max_s: float = EXCERPT_S, pad_s: float = PAD_S) -> Path:
    """The recording as read: its beginning, cut at the quietest 50 ms between 0.7 and 1 ×
    ``max_s`` (in a pause) when it is longer, with ``pad_s`` of silence before and after the line;
    a 16 kHz wav under ``folder``."""
    samples, _ = load_audio(path)
    if len(samples) > max_s * SAMPLE_RATE:
        hop = SAMPLE_RATE // 20
        lo, hi = int(0.7 * max_s * SAMPLE_RATE) // hop, int(max_s * SAMPLE_RATE) // hop
        energy = [float(np.mean(samples[i * hop:(i + 1) * hop] ** 2)) for i in range(lo, hi)]
        samples = samples[:(lo + int(np.argmin(energy))) * hop + hop // 2]
    pad = np.zeros(int(pad_s * SAMPLE_RATE), np.float32)
    out = folder / f"{path.stem}-excerpt.wav"
    sf.write(out, np.concatenate([pad, samples, pad]), SAMPLE_RATE, subtype="PCM_16")
    return out


def choose_frames(speech, blink: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest frames, speech frames), ``count`` of each at most, evenly spread over the take.

    Rest: frames in silences (SIL phones, the leading and trailing silence) at least
    REST_MARGIN_S from any other phone. Speech: the middle frame of every vowel. Both without a
    blink (``blink``: (T,) the neutral take's eyeBlink).
    """
    times = np.arange(speech.num_frames) / speech.fps
    sounding = np.zeros(speech.num_frames, bool)
    middles = []
    for p in speech.phones:
        if p.name == "SIL":
            continue
        sounding |= (times > p.start - REST_MARGIN_S) & (times < p.end + REST_MARGIN_S)
        if p.name in VOWELS:
            middles.append(int(round(0.5 * (p.start + p.end) * speech.fps)))
    open_eyes = blink <= BLINK_FREE
    rest = np.flatnonzero(~sounding & open_eyes)
    vowels = np.array([f for f in middles if f < speech.num_frames and open_eyes[f]], int)
    return _spread(rest, count), _spread(vowels, count)


def _spread(frames: np.ndarray, count: int) -> np.ndarray:
    if len(frames) <= count:
        return frames
    return frames[np.round(np.linspace(0, len(frames) - 1, count)).astype(int)]


def read_recording(wav: Path, emotions, intensities, count: int, resolution: int, reader: FaceReader,
                   log=print) -> Readings:
    """Animate ``wav`` with every emotion at every intensity and read the chosen frames back."""
    first = emoflame.animate(wav, emotion="neutral", intensity=0.0, progress=False)
    words = first.meta.get("transcript") or "auto"
    samples, _ = load_audio(wav)
    speech = analyse_speech(samples, first.fps, phones=True, transcript=words)
    rest, vowels = choose_frames(speech, first.weights[:, CHANNEL_INDEX["eyeBlink_L"]], count)
    frames = np.concatenate([rest, vowels])
    readings = None
    takes = [("neutral", 0.0)] + [(e, i) for e in emotions for i in intensities if i > 0 and e != "neutral"]
    for emotion, intensity in takes:
        started = time.perf_counter()
        clip = first if intensity == 0 else emoflame.animate(wav, emotion=emotion, intensity=intensity,
                                                             transcript=words, progress=False)
        stills = render_stills(clip, [int(f) for f in frames], views=("front",), resolution=resolution)["front"]
        rows = []
        for image in stills:
            faces = reader.read(image)
            rows.append(faces[0].blendshapes if faces else {})
        if readings is None:
            names = next((tuple(r) for r in rows if r), ())
            readings = Readings(names, rest, vowels)
        scores = np.array([[r.get(c, np.nan) for c in readings.categories] for r in rows], np.float32)
        entry = {"rest": scores[:len(rest)], "speech": scores[len(rest):]}
        # the neutral take stands for every emotion at intensity 0 and for neutral at every intensity
        keys = [(e, 0.0) for e in emotions] + [("neutral", i) for i in intensities] if intensity == 0 else [(emotion, intensity)]
        for key in keys:
            readings.scores[key] = entry
        log(f"  {emotion:9s} {intensity:4.2f}: {len(frames)} frames in {time.perf_counter() - started:4.1f} s")
    return readings


def save_readings(path: Path, results: dict[str, Readings]) -> None:
    """Every frame's scores as JSON, for :func:`load_readings` (analysis without rendering)."""
    data = {name: {"categories": list(r.categories), "rest": r.rest.tolist(), "speech": r.speech.tolist(),
                   "scores": [[e, i, s["rest"].tolist(), s["speech"].tolist()] for (e, i), s in r.scores.items()]}
            for name, r in results.items()}
    path.write_text(json.dumps(data) + "\n")


def load_readings(path: Path) -> dict[str, Readings]:
    """What :func:`save_readings` wrote."""
    out = {}
    for name, d in json.loads(path.read_text()).items():
        r = Readings(tuple(d["categories"]), np.array(d["rest"], int), np.array(d["speech"], int))
        n = len(r.categories)
        for e, i, rest, speech in d["scores"]:
            r.scores[(e, float(i))] = {"rest": np.array(rest, np.float32).reshape(-1, n),
                                       "speech": np.array(speech, np.float32).reshape(-1, n)}
        out[name] = r
    return out


def characteristic(readings: Readings, emotion: str, intensity: float, part: str) -> float:
    """Mean score of ``emotion``'s CHARACTERISTIC channels over the ``part`` frames (rest/speech)."""
    cols = [readings.categories.index(c) for c in CHARACTERISTIC[emotion]]
    return float(np.nanmean(readings.scores[(emotion, intensity)][part][:, cols]))


def take_features(readings: Readings, emotion: str, intensity: float) -> np.ndarray:
    """(F, 52) every read frame of a take, rest and speech."""
    s = readings.scores[(emotion, intensity)]
    return np.concatenate([s["rest"], s["speech"]])


@dataclass(frozen=True)
class NearestCentroid:
    """Nearest centroid over standardised scores (each of the 52 divided by its spread in the
    fitting frames, so that a weakly read channel such as browDown counts as much as a strong one).

    Attributes:
        emotions: (K,) class names.
        centroids: (K, 52) mean standardised scores per emotion.
        scale: (52,) the fitting frames' standard deviation per channel (floored).
    """

    emotions: tuple[str, ...]
    centroids: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: dict[str, np.ndarray]) -> "NearestCentroid":
        """``features``: emotion -> (F, 52) frames."""
        emotions = tuple(features)
        every = np.concatenate([np.nan_to_num(features[e]) for e in emotions])
        scale = np.maximum(every.std(axis=0), 0.01)
        centroids = np.stack([np.nan_to_num(features[e]).mean(axis=0) / scale for e in emotions])
        return cls(emotions, centroids, scale)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, 52) scores -> (N,) indices into :attr:`emotions`."""
        z = np.nan_to_num(np.atleast_2d(x)) / self.scale
        return np.argmin(((z[:, None, :] - self.centroids[None]) ** 2).sum(-1), axis=1)


def confusion(model: NearestCentroid, tests: list[Readings], intensity: float) -> tuple[np.ndarray, np.ndarray]:
    """(take confusion, frame confusion), each (K, K) counts: rows the emotion asked for,
    columns the one classified."""
    k = len(model.emotions)
    takes, frames = np.zeros((k, k), int), np.zeros((k, k), int)
    for readings in tests:
        for i, emotion in enumerate(model.emotions):
            x = take_features(readings, emotion, intensity)
            takes[i, model.predict(np.nanmean(x, axis=0))[0]] += 1
            np.add.at(frames[i], model.predict(x), 1)
    return takes, frames


def _print_matrix(title: str, emotions, matrix: np.ndarray) -> None:
    print(title)
    print("            " + " ".join(f"{e[:7]:>7s}" for e in emotions))
    for e, row in zip(emotions, matrix):
        print(f"  {e:9s} " + " ".join(f"{v:7d}" for v in row))
    right = np.trace(matrix) / max(matrix.sum(), 1)
    print(f"  right: {np.trace(matrix)} of {matrix.sum()} ({100 * right:.0f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=6, help="rest and speech frames read per take (each)")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--json", type=Path, help="write every mean score here")
    parser.add_argument("--recordings", nargs="*", default=list(RECORDINGS), choices=list(RECORDINGS))
    parser.add_argument("--save", type=Path, help="write every frame's scores here (JSON)")
    parser.add_argument("--load", type=Path, help="analyse the scores saved by --save instead of rendering")
    args = parser.parse_args()
    emotions = list(MEAD_EMOTIONS)
    started = time.perf_counter()
    results: dict[str, Readings] = load_readings(args.load) if args.load else {}
    with tempfile.TemporaryDirectory(prefix="emoflame-readback-") as tmp, FaceReader(num_faces=1) as reader:
        for name in ([] if args.load else args.recordings):
            wav = excerpt(RECORDINGS[name], Path(tmp))
            print(f"{name}: {sf.info(str(wav)).duration:.1f} s", flush=True)
            results[name] = read_recording(wav, emotions, INTENSITIES, args.frames, args.resolution, reader,
                                           log=lambda m: print(m, flush=True))
            r = results[name]
            print(f"  rest frames {r.rest.tolist()}, speech frames {r.speech.tolist()}")
    print(f"\nread in {time.perf_counter() - started:.0f} s")
    if args.save:
        save_readings(args.save, results)

    summary = {}
    for group, names in (("tuning", [n for n in results if n == FIT_RECORDING]),
                         ("held out", [n for n in results if n != FIT_RECORDING])):
        if not names:
            continue
        for part in ("rest", "speech"):
            print(f"\nCharacteristic channels, {part} frames, {group} recordings ({', '.join(names)}): "
                  f"mean score at intensities {', '.join(f'{i:g}' for i in INTENSITIES)}")
            for emotion in emotions[1:]:
                curve = [float(np.mean([characteristic(results[n], emotion, i, part) for n in names])) for i in INTENSITIES]
                rises = all(b > a for a, b in zip(curve, curve[1:]))
                summary[f"{group}/{part}/{emotion}"] = curve
                print(f"  {emotion:9s} {' '.join(f'{v:5.3f}' for v in curve)}  {'rises' if rises else 'NOT MONOTONIC'}"
                      f"  ({', '.join(CHARACTERISTIC[emotion])})")

    tests = [results[n] for n in results if n != FIT_RECORDING]
    if FIT_RECORDING in results and tests:
        for intensity in (1.0, 0.75, 0.5):
            model = NearestCentroid.fit({e: take_features(results[FIT_RECORDING], e, intensity) for e in emotions})
            takes, frames = confusion(model, tests, intensity)
            print(f"\nNearest centroid fitted on {FIT_RECORDING} at intensity {intensity:g}, tested on "
                  f"{len(tests)} held-out recordings")
            _print_matrix("takes (a take's mean scores):", emotions, takes)
            _print_matrix("frames:", emotions, frames)
            summary[f"confusion/takes/{intensity:g}"] = takes.tolist()
            summary[f"confusion/frames/{intensity:g}"] = frames.tolist()
            for readings, name in zip(tests, [n for n in results if n != FIT_RECORDING]):
                per = confusion(model, [readings], intensity)[0]
                print(f"  {name}: {np.trace(per)} of 8 takes right")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
