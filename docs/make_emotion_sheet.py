"""Render the emotions contact sheet: the 8 emotions on the default avatar, in a take of real speech.

    python docs/make_emotion_sheet.py

Writes ``docs/emotions.png``: one row per emotion of ``emoflame animate examples/arctic_a0007.wav
--emotion E --intensity I`` (the phonetic engine, head motion on, Workbench stills through
``renderers.stills``, framed closer than a take), with columns: intensity 0.5 front and
three-quarter, intensity 1.0 front and three-quarter, all at a rest frame (the silence after the line), then front close-ups of the
mouth at intensity 1.0 at rest, at the bilabial closure (the P of "superlative") and at an open
vowel (the vowel where the neutral take's jaw opens most). And ``docs/emotions_unlabelled.png``,
the same cells with the rows shuffled (UNLABELLED_SEED) and numbered instead of named, for a
viewer who is not told the emotions; the row order is printed, not written into the picture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import emoflame
from emoflame.core.audio.load import load_audio
from emoflame.core.audio.speech import analyse_speech
from emoflame.core.channels import CHANNEL_INDEX
from emoflame.core.emotion.vocabulary import MEAD_EMOTIONS
from emoflame.renderers.stills import MOUTH, render_stills

DOCS = Path(__file__).resolve().parent
WAV = DOCS.parent / "examples" / "arctic_a0007.wav"
CELL = 288  # pixels per cell on the sheet
RENDER = 512  # rendered, then scaled down to CELL
INTENSITIES = (0.5, 1.0)
UNLABELLED_SEED = 8
COLUMNS = ("0.5 front", "0.5 three-quarter", "1.0 front", "1.0 three-quarter",
           "mouth at rest", "bilabial closure", "open vowel")
REST_MARGIN_S = 0.15
FACE_MARGIN = 1.4  # framing margin on the face cells: closer than a take's 1.6, so expressions can be judged, while the head still fits the three-quarter view
HEADER, LABEL = 30, 110  # pixels: the column titles' row, the row names' column


def key_frames(wav: Path) -> dict[str, int]:
    """Clip frames of the neutral take: ``rest`` (the blink-free silent frame furthest from any
    speech sound, after the line if it can), ``closure`` (the middle of the first bilabial),
    ``vowel`` (the vowel middle where jawOpen is largest)."""
    clip = emoflame.animate(wav, emotion="neutral", intensity=0.0, progress=False)
    samples, _ = load_audio(wav)
    speech = analyse_speech(samples, clip.fps, phones=True, transcript=clip.meta.get("transcript") or "auto")
    times = np.arange(clip.num_frames) / clip.fps
    gap = np.full(clip.num_frames, np.inf)
    for p in speech.phones:
        if p.name != "SIL":
            gap = np.minimum(gap, np.maximum(p.start - times, 0) + np.maximum(times - p.end, 0))
    blink = clip.weights[:, CHANNEL_INDEX["eyeBlink_L"]]
    silent = np.flatnonzero((gap >= REST_MARGIN_S) & (blink < 0.05))
    after = silent[times[silent] > speech.phones[-1].start]
    rest = int((after if len(after) else silent)[np.argmax(gap[after if len(after) else silent])])
    bilabial = next(p for p in speech.phones if p.name in ("P", "B", "M"))
    vowels = [int(round(0.5 * (p.start + p.end) * clip.fps)) for p in speech.phones
              if p.name in ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "EY", "IH", "IY", "OW", "UH", "UW")]
    jaw = clip.weights[:, CHANNEL_INDEX["jawOpen"]]
    return {"rest": rest, "closure": int(round(0.5 * (bilabial.start + bilabial.end) * clip.fps)),
            "vowel": max(vowels, key=lambda f: jaw[f])}


def emotion_cells(wav: Path, frames: dict[str, int]) -> dict[str, list[Image.Image]]:
    """emotion -> the row's cells (COLUMNS), each CELL x CELL."""
    rows = {}
    for emotion in MEAD_EMOTIONS:
        cells = []
        for intensity in INTENSITIES:
            clip = emoflame.animate(wav, emotion=emotion, intensity=intensity, progress=False)
            views = render_stills(clip, [frames["rest"]], views=("front", "three_quarter"), resolution=RENDER,
                                  margin=FACE_MARGIN)
            cells += [views["front"][0], views["three_quarter"][0]]
        mouth = render_stills(clip, [frames["rest"], frames["closure"], frames["vowel"]], resolution=RENDER,
                              landmarks=MOUTH, margin=1.5)["front"]
        rows[emotion] = [Image.fromarray(c).resize((CELL, CELL), Image.LANCZOS) for c in cells + mouth]
        print(f"rendered {emotion}", flush=True)
    return rows


def sheet(rows: list[tuple[str, list[Image.Image]]]) -> Image.Image:
    """Rows of cells under the column titles, each row named on its left."""
    out = Image.new("RGB", (LABEL + len(COLUMNS) * CELL, HEADER + len(rows) * CELL), "white")
    draw = ImageDraw.Draw(out)
    for c, title in enumerate(COLUMNS):
        draw.text((LABEL + c * CELL + 8, 6), title, fill=(0, 0, 0), font_size=18)
    for r, (name, cells) in enumerate(rows):
        draw.text((8, HEADER + r * CELL + CELL // 2 - 10), name, fill=(0, 0, 0), font_size=20)
        for c, cell in enumerate(cells):
            out.paste(cell, (LABEL + c * CELL, HEADER + r * CELL))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS / "emotions.png")
    parser.add_argument("--unlabelled", type=Path, default=DOCS / "emotions_unlabelled.png")
    args = parser.parse_args()
    frames = key_frames(WAV)
    print("frames", frames)
    rows = emotion_cells(WAV, frames)
    sheet([(e, rows[e]) for e in MEAD_EMOTIONS]).save(args.out, optimize=True)
    order = [MEAD_EMOTIONS[i] for i in np.random.default_rng(UNLABELLED_SEED).permutation(len(MEAD_EMOTIONS))]
    sheet([(f"{k + 1}", rows[e]) for k, e in enumerate(order)]).save(args.unlabelled, optimize=True)
    print("unlabelled rows:", ", ".join(f"{k + 1} {e}" for k, e in enumerate(order)))


if __name__ == "__main__":
    main()
