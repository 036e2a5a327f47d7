"""Render the README's strip: 8 frames of the README's example take on the default avatar.

    python docs/make_render_strip.py

Animates ``examples/arctic_a0007.wav`` as ``emoflame animate examples/arctic_a0007.wav --emotion
happy`` does (the defaults: the phonetic engine, intensity from the audio, the automatic
transcript, head motion) and writes ``docs/render_strip.png``: one row of front Workbench stills
(``renderers.stills``, the command's scene and look), in the order of the README's caption: rest
before the line, a blink, the "you", a smile, the P of "superlative" closed, an open vowel, a
second blink, and rest after the line. The frames are found in the take: phones from the
alignment, blinks from the eye layer's eyeBlink, the smile and the open vowel from the weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.signal import find_peaks

import emoflame
from emoflame.core.audio.load import load_audio
from emoflame.core.audio.speech import analyse_speech
from emoflame.core.channels import CHANNEL_INDEX
from emoflame.renderers.stills import render_stills

DOCS = Path(__file__).resolve().parent
WAV = DOCS.parent / "examples" / "arctic_a0007.wav"
HEIGHT = 256  # pixels per frame on the strip
MARGIN = 1.3  # the camera's framing margin: the face fills the frame
VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "EY", "IH", "IY", "OW", "OY", "UH", "UW")


def strip_frames(clip, phones) -> list[tuple[str, int]]:
    """(caption, clip frame) in the caption's order."""
    fps = clip.fps
    mid = lambda p: int(round(0.5 * (p.start + p.end) * fps))  # noqa: E731
    w = lambda name: clip.weights[:, CHANNEL_INDEX[name]]  # noqa: E731
    spoken = [p for p in phones if p.name != "SIL"]
    first, last = int(spoken[0].start * fps), int(np.ceil(spoken[-1].end * fps))
    blinks, _ = find_peaks(w("eyeBlink_L"), height=0.6, distance=int(0.5 * fps))
    you = next(p for p in spoken if p.name == "UW")
    bilabial = next(p for p in spoken if p.name in ("P", "B", "M"))
    vowels = [mid(p) for p in spoken if p.name in VOWELS]
    open_vowel = max(vowels, key=lambda f: w("jawOpen")[f])
    spread = [f for f in vowels if w("mouthFunnel")[f] < 0.1 and w("jawOpen")[f] < 0.3]
    smile = max(spread, key=lambda f: w("mouthSmile_L")[f] + w("mouthSmile_R")[f])
    first_blink = int(blinks[0]) if len(blinks) else first // 2
    second_blink = int(blinks[-1]) if len(blinks) > 1 else (last + clip.num_frames) // 2
    return [("rest", max(first // 2, 0)), ("blink", first_blink), ('"you"', mid(you)), ("smile", smile),
            ("P closed", mid(bilabial)), ("open vowel", open_vowel), ("blink", second_blink),
            ("rest", min((last + clip.num_frames) // 2, clip.num_frames - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS / "render_strip.png")
    parser.add_argument("--captions", action="store_true", help="write each frame's caption on it (for checking)")
    args = parser.parse_args()
    clip = emoflame.animate(WAV, emotion="happy", progress=False)
    samples, _ = load_audio(WAV)
    phones = analyse_speech(samples, clip.fps, phones=True, transcript=clip.meta.get("transcript") or "auto").phones
    chosen = strip_frames(clip, phones)
    print("frames:", ", ".join(f"{c} {f}" for c, f in chosen))
    stills = render_stills(clip, [f for _, f in chosen], resolution=2 * HEIGHT, margin=MARGIN)["front"]
    strip = Image.new("RGB", (HEIGHT * len(stills), HEIGHT))
    for k, ((caption, frame), image) in enumerate(zip(chosen, stills)):
        cell = Image.fromarray(image).resize((HEIGHT, HEIGHT), Image.LANCZOS)
        if args.captions:
            ImageDraw.Draw(cell).text((6, 4), f"{caption} ({frame})", fill=(255, 255, 255), font_size=16)
        strip.paste(cell, (k * HEIGHT, 0))
    strip.save(args.out, optimize=True)


if __name__ == "__main__":
    main()
