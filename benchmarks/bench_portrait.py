"""The portrait animator, measured on its own output: MP4s of real recordings on real portraits,
read back frame by frame with MediaPipe Face Landmarker.

    python benchmarks/bench_portrait.py [--quick] [--scales] [--strip docs/portrait_strip.png]
        [--emotion-sheet docs/portrait_emotions.png] [--speed]

Takes: speech/arctic_a0007.wav (used while building the animator) and
speech/asterisk-demo-congrats.wav (held out: never looked at while tuning), each animated with
``emoflame.animate`` as neutral, happy, surprised, sad and angry (intensity 0.8; Whisper's words
for the held-out take) and rendered
with ``render_portrait`` at 512 px (longer side) on renderers/portrait/default_portrait.jpg
(Grace Hopper, neutral mouth)
and tests/data/astronaut.jpg (smiling, teeth showing). Per portrait and recording it prints:

* lip r: Pearson r between the video's inner-lip opening (MediaPipe, points 80-310 / 88-318, in
  eye spans) and the clip's (the same surface points on the posed avatar, metres), per take;
* blinks: keyed blinks (the clip's eyeBlink crossing 0.5) seen as blinks (the video's eye
  opening below half the take's median within a frame of the key);
* emotion: each emotion's characteristic MediaPipe channels minus the same take rendered
  neutral, means over the whole take, over its rest frames (pauses at least 0.12 s from any
  speech sound, by forced alignment) and over its speech frames (the middle of each vowel), the
  frame choice of ``bench_emotion_readback.choose_frames``;
* background: the largest change of any pixel outside the head region, over the whole video,
  in the raw frames against the photo and in the decoded video against its first frame (/255),
  also beyond one 16-px macroblock of the region (H.264 re-codes a block that straddles it), and
  the share of background pixels that ever change by more than 2/255;
* flicker: mean absolute frame-to-frame change (/255) over the face's static pixels (where the
  avatar moves under 0.25 px all take), neutral take without head motion, raw and decoded;
* speed: ms per frame (``PortraitAnimator.frame``), the per-photo fit, and the end-to-end
  real-time factor of ``render_portrait`` (fit + frames + encoding) / the recording's length.

``--scales`` renders arctic_a0007 (neutral) on grace_hopper scaled down to smaller faces and
prints lip r and the closure on the P of "superlative" against the eye span: the evidence for
``face.MIN_EYE_SPAN_PX``. ``--strip`` writes the contact sheet (rest, open vowel, closure on the
P, blink, the emotion at its peak) of the happy arctic take on both portraits. ``--emotion-sheet
PATH`` writes the five emotions at one rest frame of the held-out take on both portraits, and
beside it PATH's ``_unlabelled`` twin with each row's columns shuffled (seed 10; the key is
printed), to show to someone who is not told the emotions.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import emoflame
from emoflame.core.audio.load import load_audio
from emoflame.core.audio.speech import analyse_speech
from emoflame.renderers.portrait import FaceReader, PortraitAnimator, render_portrait
from emoflame.renderers.portrait.correspondence import correspondence
from emoflame.renderers.portrait.face import check_photo, inner_lip_gap
from emoflame.renderers.portrait.render import load_photo
from emoflame.renderers.video_file import write_mp4
from bench_emotion_readback import choose_frames  # this folder is the script's sys.path[0]

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "data" / "speech"
PORTRAITS = {"grace_hopper": REPO / "renderers" / "portrait" / "default_portrait.jpg",
             "astronaut": REPO / "tests" / "data" / "astronaut.jpg"}
TAKES = {"arctic_a0007": ("and you always want to see it in the superlative degree", "tuning"),
         "asterisk-demo-congrats": ("auto", "held out")}
EMOTIONS = ("neutral", "happy", "surprised", "sad", "angry")
CHANNELS = {"happy": ("mouthSmileLeft", "mouthSmileRight", "cheekSquintLeft", "cheekSquintRight"),
            "surprised": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeWideLeft", "eyeWideRight", "jawOpen"),
            "sad": ("browInnerUp", "mouthFrownLeft", "mouthFrownRight", "mouthShrugLower"),
            "angry": ("browDownLeft", "browDownRight", "mouthPressLeft", "mouthPressRight", "noseSneerLeft")}
RESOLUTION = 512
P_CLOSURE_S = (2.30, 2.46)  # the P of "superlative" in arctic_a0007 (forced alignment, shared/NOTES.md)
STATIC_PX = 0.25


def read_video(path: Path, shape: tuple[int, int]) -> list[np.ndarray]:
    """Every frame of an MP4 as (H, W, 3) uint8 RGB (PyAV), cut to the photo's ``shape`` (H, W)
    (the encoder pads odd sides by one)."""
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24")[: shape[0], : shape[1]] for f in container.decode(video=0)]


def mediapipe_track(reader: FaceReader, frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per frame: inner-lip gap and eye opening (in eye spans / eye widths) and the blendshapes."""
    gap, eyes, scores = [], [], []
    for frame in frames:
        faces = reader.read(frame)
        if not faces:
            gap.append(np.nan), eyes.append(np.nan), scores.append({})
            continue
        f = faces[0]
        gap.append(f.inner_lip_gap() / f.eye_span)
        eyes.append((f.eye_opening("L") + f.eye_opening("R")) / 2)
        scores.append(f.blendshapes)
    names = sorted({k for s in scores for k in s})
    return {"gap": np.array(gap), "eyes": np.array(eyes),
            "scores": {n: np.array([s.get(n, np.nan) for s in scores]) for n in names}}


def avatar_lip_opening(animator: PortraitAnimator, clip) -> np.ndarray:
    """(T,) the clip's inner-lip opening on the avatar, metres (the same surface points MediaPipe's
    inner-lip landmarks sit on)."""
    avatar = animator.mesh.avatar
    corr = correspondence(avatar)
    w = animator.mesh.avatar_weights(clip.weights, clip.channels)
    v = avatar.vertices_for(w)
    return inner_lip_gap(corr.points(v, avatar.faces))  # (T, 478, 3) -> (T,)


def blink_keys(clip) -> list[int]:
    """Frames where the clip's blink (mean of both eyes) peaks above 0.5."""
    b = (clip.channel("eyeBlink_L") + clip.channel("eyeBlink_R")) / 2
    above = b > 0.5
    keys, t = [], 0
    while t < len(b):
        if above[t]:
            end = t
            while end < len(b) and above[end]:
                end += 1
            keys.append(t + int(np.argmax(b[t:end])))
            t = end
        t += 1
    return keys


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def static_mask(animator: PortraitAnimator, clip) -> np.ndarray:
    """(H, W) bool: pixels covered at rest by avatar skin whose three vertices move under
    STATIC_PX pixels in every frame of ``clip`` (no head motion)."""
    from emoflame.renderers.portrait.mesh import SKIN

    w = animator.mesh.avatar_weights(clip.weights, clip.channels)
    most = np.zeros(animator.mesh.num_vertices)
    for t in range(len(w)):
        points, _ = animator.fit.camera.project(animator.mesh.posed(w[t]))
        most = np.maximum(most, np.linalg.norm(points + animator.fit.correction - animator.source, axis=1))
    win = animator.window
    r = animator.raster(animator.source, animator.rest_depth, (win.x0, win.y0))
    tri = np.maximum(r.triangle, 0)
    still = r.covered & (animator.mesh.kind[tri] == SKIN) & np.all(most[animator.mesh.faces[tri]] < STATIC_PX, axis=-1)
    mask = np.zeros(animator.photo.shape[:2], bool)
    mask[win.slices] = still
    return mask


def flicker(frames: list[np.ndarray], mask: np.ndarray) -> float:
    d = [np.abs(a.astype(np.int16) - b.astype(np.int16))[mask].mean() for a, b in zip(frames, frames[1:])]
    return float(np.mean(d))


def clips_for(name: str, emotions=EMOTIONS) -> dict:
    transcript = TAKES[name][0]
    return {e: emoflame.animate(SPEECH / f"{name}.wav", emotion=e, intensity=0.8, transcript=transcript,
                                progress=False) for e in emotions}


def rest_and_speech(name: str, clip) -> tuple[np.ndarray, np.ndarray]:
    """(rest frames, speech frames) of a take: every one ``choose_frames`` admits, from the
    phones forced-aligned to the take's own words."""
    samples, _ = load_audio(SPEECH / f"{name}.wav")
    words = clip.meta.get("transcript") or TAKES[name][0]
    speech = analyse_speech(samples, clip.fps, phones=True, transcript=words)
    return choose_frames(speech, clip.channel("eyeBlink_L"), clip.num_frames)


def bench_portrait(portrait: str, take: str, clips: dict, parts: tuple[np.ndarray, np.ndarray],
                   reader: FaceReader, work: Path) -> dict:
    """Every figure of one portrait and take; ``parts``: the take's (rest, speech) frames."""
    import cv2

    photo = load_photo(PORTRAITS[portrait], RESOLUTION)
    result = {"portrait": portrait, "take": take, "role": TAKES[take][1], "size": photo.shape[:2],
              "load": os.getloadavg()[0]}
    start = time.perf_counter()
    animator = PortraitAnimator(photo)
    result["fit_s"] = time.perf_counter() - start
    neutral = clips["neutral"]
    w = animator.mesh.avatar_weights(neutral.weights, neutral.channels)
    times, raw_bg = [], 0
    still_clip = dataclasses.replace(neutral, head_pose=None)
    raw_still = []
    for t in range(neutral.num_frames):
        start = time.perf_counter()
        frame = animator.frame(w[t], neutral.head_pose[t] if neutral.head_pose is not None else None)
        times.append(time.perf_counter() - start)
        raw_bg = max(raw_bg, int(np.abs(frame.astype(np.int16) - photo)[~animator.head_region].max(initial=0)))
    for t in range(neutral.num_frames):
        raw_still.append(animator.frame(w[t]))
    result["ms_per_frame"] = 1000 * float(np.mean(times))
    result["ms_per_frame_p95"] = 1000 * float(np.percentile(times, 95))
    result["raw_background_max"] = raw_bg
    mask = static_mask(animator, still_clip)
    result["static_px"] = int(mask.sum())
    result["flicker_raw"] = flicker(raw_still, mask)
    still_mp4 = render_portrait(still_clip, photo, work / f"{portrait}_{take}_still.mp4", force=True, progress=False)
    result["flicker_decoded"] = flicker(read_video(still_mp4, photo.shape[:2]), mask)
    region = animator.head_region
    # H.264 codes 16x16 macroblocks: one that straddles the head region's edge changes as a whole
    macroblock = cv2.dilate(region.astype(np.uint8), np.ones((33, 33), np.uint8)) > 0
    result["head_region_share"] = float(region.mean())
    # the codec's own share: the photo alone, as many frames as the take, through the same encoder
    # (x264 re-codes the still background at every keyframe, every 250 frames)
    still = read_video(write_mp4([photo] * neutral.num_frames, neutral.fps, work / "photo.mp4", force=True, progress=False), photo.shape[:2])
    change = np.max([np.abs(f.astype(np.int16) - still[0]).max(axis=2) for f in still], axis=0)
    result["codec_still_max"], result["codec_still_share"] = int(change.max()), float((change > 2).mean())
    opening = {}
    tracks = {}
    for emotion, clip in clips.items():
        start = time.perf_counter()
        path = render_portrait(clip, photo, work / f"{portrait}_{take}_{emotion}.mp4", force=True, progress=False)
        wall = time.perf_counter() - start
        frames = read_video(path, photo.shape[:2])
        tracks[emotion] = mediapipe_track(reader, frames)
        opening[emotion] = avatar_lip_opening(animator, clip)
        change = np.zeros(region.shape, np.int16)  # largest change of each pixel over the video
        for f in frames:
            np.maximum(change, np.abs(f.astype(np.int16) - frames[0]).max(axis=2), out=change)
        result.setdefault("rtf", {})[emotion] = wall / clip.duration
        result.setdefault("decoded_background_max", {})[emotion] = int(change[~region].max(initial=0))
        result.setdefault("decoded_background_far", {})[emotion] = int(change[~macroblock].max(initial=0))
        result.setdefault("decoded_background_share", {})[emotion] = float((change[~region] > 2).mean())
        result.setdefault("lip_r", {})[emotion] = pearson(tracks[emotion]["gap"], opening[emotion])
        keys = blink_keys(clip)
        eyes = tracks[emotion]["eyes"]
        rest = np.nanmedian(eyes)
        seen = [np.nanmin(eyes[max(0, k - 1):k + 2]) < 0.5 * rest for k in keys]
        result.setdefault("blinks", {})[emotion] = (int(sum(seen)), len(keys))
        result.setdefault("frames", {})[emotion] = (len(frames), clip.num_frames)
        if take == "arctic_a0007":
            lo, hi = (int(round(s * clip.fps)) for s in P_CLOSURE_S)
            result.setdefault("p_closure_gap", {})[emotion] = float(np.nanmin(tracks[emotion]["gap"][lo:hi + 1]))
            result.setdefault("vowel_gap", {})[emotion] = float(np.nanmax(tracks[emotion]["gap"]))
    rest, vowels = parts
    result["rest_frames"], result["speech_frames"] = len(rest), len(vowels)
    for emotion, names in CHANNELS.items():
        if emotion in tracks and "neutral" in tracks:
            for part, frames in (("take", slice(None)), ("rest", rest), ("speech", vowels)):
                result.setdefault("emotion_rise", {}).setdefault(emotion, {})[part] = {
                    n: float(np.nanmean(tracks[emotion]["scores"][n][frames])
                             - np.nanmean(tracks["neutral"]["scores"][n][frames])) for n in names}
    animator.close()
    return result


def report(r: dict) -> None:
    print(f"\n== {r['portrait']} ({r['size'][1]}x{r['size'][0]}) x {r['take']} ({r['role']}) ==  "
          f"[load average {r['load']:.1f} on {os.cpu_count()} cores]")
    print(f"fit {r['fit_s']:.2f} s; frame {r['ms_per_frame']:.1f} ms (p95 {r['ms_per_frame_p95']:.1f}); "
          f"real-time factor end to end " + ", ".join(f"{e} {v:.2f}" for e, v in r["rtf"].items()))
    print("lip r: " + ", ".join(f"{e} {v:.3f}" for e, v in r["lip_r"].items())
          + f"  (mean {np.mean(list(r['lip_r'].values())):.3f})")
    seen = sum(s for s, _ in r["blinks"].values()), sum(n for _, n in r["blinks"].values())
    print(f"blinks seen: {seen[0]}/{seen[1]} = {100 * seen[0] / max(seen[1], 1):.0f} % "
          + str({e: f"{s}/{n}" for e, (s, n) in r["blinks"].items()}))
    if "p_closure_gap" in r:
        print("inner-lip gap (eye spans) at the P / widest: " + ", ".join(
            f"{e} {r['p_closure_gap'][e]:.3f}/{r['vowel_gap'][e]:.3f}" for e in r["p_closure_gap"]))
    print(f"emotion minus neutral, MediaPipe's scores: whole take / {r['rest_frames']} rest frames / "
          f"{r['speech_frames']} vowel frames")
    for emotion, rise in r.get("emotion_rise", {}).items():
        print(f"  {emotion:9s} " + ", ".join(
            f"{n} {rise['take'][n]:+.3f}/{rise['rest'][n]:+.3f}/{rise['speech'][n]:+.3f}" for n in rise["take"]))
    print(f"background outside the head region ({100 * (1 - r['head_region_share']):.0f} % of the frame): raw max "
          f"{r['raw_background_max']}/255; decoded, largest change over the video vs its first frame: "
          + ", ".join(f"{e} {v}" for e, v in r["decoded_background_max"].items())
          + "; beyond one 16-px macroblock of the region: "
          + ", ".join(f"{e} {v}" for e, v in r["decoded_background_far"].items())
          + "; share of background pixels ever changed by more than 2/255: "
          + ", ".join(f"{e} {100 * v:.2f} %" for e, v in r["decoded_background_share"].items())
          + f"; the photo alone repeated through the same encoder: max {r['codec_still_max']}, "
          f"{100 * r['codec_still_share']:.2f} % over 2/255")
    print(f"flicker on {r['static_px']} static face pixels: raw {r['flicker_raw']:.3f}/255, decoded "
          f"{r['flicker_decoded']:.3f}/255; frames written/expected {r['frames']}")


def scales(reader: FaceReader, work: Path) -> None:
    clip = clips_for("arctic_a0007", ("neutral",))["neutral"]
    base = check_photo(PORTRAITS["grace_hopper"])
    lo, hi = (int(round(s * clip.fps)) for s in P_CLOSURE_S)
    print("\n== face size: grace_hopper scaled, arctic_a0007 neutral ==")
    for scale in (1.0, 0.7, 0.55, 0.45, 0.35, 0.28):
        photo = load_photo(base, int(round(max(base.shape[:2]) * scale)))
        try:
            animator = PortraitAnimator(photo)
        except emoflame.core.errors.EmoflameError as exc:
            print(f"scale {scale}: {exc}")
            continue
        span = animator.fit.reading.eye_span
        opening = avatar_lip_opening(animator, clip)
        animator.close()
        path = render_portrait(clip, photo, work / f"scale_{scale}.mp4", force=True, progress=False)
        track = mediapipe_track(reader, read_video(path, photo.shape[:2]))
        print(f"scale {scale}: eye span {span:.0f} px, lip r {pearson(track['gap'], opening):.3f}, gap at the P "
              f"{np.nanmin(track['gap'][lo:hi + 1]):.3f} vs widest {np.nanmax(track['gap']):.3f} eye spans")


def strip(clips: dict, reader: FaceReader, out: Path, work: Path) -> None:
    """Rows: portraits; columns: photo, rest, open vowel, closure on the P, blink, emotion peak."""
    clip = clips["happy"]
    lo, hi = (int(round(s * clip.fps)) for s in P_CLOSURE_S)
    smile = clip.channel("mouthSmile_L") + clip.channel("mouthSmile_R")
    rows = []
    for name in PORTRAITS:
        photo = load_photo(PORTRAITS[name], RESOLUTION)
        animator = PortraitAnimator(photo)
        opening = avatar_lip_opening(animator, clip)
        face = face_box(animator)
        animator.close()
        frames = read_video(render_portrait(clip, photo, work / f"strip_{name}.mp4", force=True, progress=False),
                            photo.shape[:2])
        silent = int(np.argmin(opening[: max(1, int(0.4 * clip.fps))]))
        keys = blink_keys(clip) or [int(np.argmax(clip.channel("eyeBlink_L")))]
        open_eyes = (clip.channel("eyeBlink_L") + clip.channel("eyeBlink_R")) < 0.2
        picks = [("photo", None), ("rest", silent), ("open vowel", int(np.argmax(opening))),
                 ("closure (P)", lo + int(np.argmin(opening[lo:hi + 1]))), ("blink", keys[0]),
                 ("happy peak", int(np.argmax(np.where(open_eyes, smile, -1.0))))]
        rows.append(np.hstack([tile(photo if t is None else frames[t], face,
                                    label if t is None else f"{label} ({t / clip.fps:.2f} s)")
                               for label, t in picks]))
    write_sheet(rows, out)


def face_box(animator: PortraitAnimator) -> tuple[slice, slice]:
    """A square around the face MediaPipe found in the photo, with room for the hair and chin."""
    marks = animator.fit.reading.points[:, :2]
    centre, half = (marks.min(0) + marks.max(0)) / 2, (marks.max(0) - marks.min(0)).max() * 0.75
    y0, x0 = (max(0, int(c - half)) for c in centre[::-1])
    return slice(y0, int(centre[1] + half)), slice(x0, int(centre[0] + half))


def tile(image: np.ndarray, face: tuple[slice, slice], text: str) -> np.ndarray:
    """(300, 300, 3) the face of ``image``, captioned."""
    import cv2

    out = cv2.resize(np.ascontiguousarray(image[face]), (300, 300), interpolation=cv2.INTER_CUBIC)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_sheet(rows: list[np.ndarray], out: Path) -> None:
    import cv2

    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    cv2.imwrite(str(out), np.vstack(rows)[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out}")


def emotion_sheet(clips: dict, rest: np.ndarray, out: Path) -> None:
    """The five emotions at the middle of the held-out take's longest pause (``rest``: its rest
    frames), on both portraits (``out``), and the same with each row shuffled and numbered
    (``out``'s ``_unlabelled`` twin)."""
    pauses = np.split(rest, np.flatnonzero(np.diff(rest) > 1) + 1)
    longest = max(pauses, key=len)
    t = int(longest[len(longest) // 2])
    rng = np.random.default_rng(10)
    labelled, unlabelled = [], []
    for name in PORTRAITS:
        animator = PortraitAnimator(load_photo(PORTRAITS[name], RESOLUTION))
        face = face_box(animator)
        images = {}
        for emotion in EMOTIONS:
            clip = clips[emotion]
            w = animator.mesh.avatar_weights(clip.weights[t:t + 1], clip.channels)[0]
            images[emotion] = animator.frame(w, None if clip.head_pose is None else clip.head_pose[t])
        animator.close()
        labelled.append(np.hstack([tile(images[e], face, f"{e} ({t / clip.fps:.2f} s)") for e in EMOTIONS]))
        order = rng.permutation(len(EMOTIONS))
        unlabelled.append(np.hstack([tile(images[EMOTIONS[i]], face, str(k + 1)) for k, i in enumerate(order)]))
        print(f"{name}: " + ", ".join(f"{k + 1} = {EMOTIONS[i]}" for k, i in enumerate(order)))
    write_sheet(labelled, out)
    write_sheet(unlabelled, out.with_name(f"{out.stem}_unlabelled{out.suffix}"))


def speed() -> None:
    """ms per frame at 512 px on both portraits, the first 100 frames of the neutral arctic take,
    after 5 warm-up frames; median and mean (the machine is shared: the median is the steadier)."""
    clip = clips_for("arctic_a0007", ("neutral",))["neutral"]
    print(f"\n== speed at {RESOLUTION} px (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores) ==")
    for name, path in PORTRAITS.items():
        photo = load_photo(path, RESOLUTION)
        start = time.perf_counter()
        animator = PortraitAnimator(photo)
        fit = time.perf_counter() - start
        w = animator.mesh.avatar_weights(clip.weights, clip.channels)
        for t in range(5):
            animator.frame(w[t], clip.head_pose[t])
        times = []
        for t in range(clip.num_frames):
            start = time.perf_counter()
            animator.frame(w[t], clip.head_pose[t])
            times.append(time.perf_counter() - start)
        print(f"{name} {photo.shape[1]}x{photo.shape[0]}: fit {fit:.2f} s, frame median {1000 * np.median(times):.1f} ms, "
              f"mean {1000 * np.mean(times):.1f} ms ({animator.raster.backend} raster, window "
              f"{animator.window.w}x{animator.window.h})")
        animator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="arctic_a0007 only")
    parser.add_argument("--scales", action="store_true", help="the face-size study")
    parser.add_argument("--strip", type=Path, help="write the contact sheet here")
    parser.add_argument("--emotion-sheet", type=Path, help="write the emotions side by side here (and an unlabelled twin)")
    parser.add_argument("--no-bench", action="store_true", help="skip the main figures")
    parser.add_argument("--speed", action="store_true", help="only the ms per frame")
    args = parser.parse_args()
    if args.speed:
        return speed()
    with tempfile.TemporaryDirectory() as folder, FaceReader() as reader:
        work = Path(folder)
        takes = ["arctic_a0007"] if args.quick else list(TAKES)
        clips, parts = {}, {}

        def take_of(name):
            # animated and forced-aligned once, whatever uses it
            if name not in clips:
                clips[name] = clips_for(name)
                parts[name] = rest_and_speech(name, clips[name]["neutral"])
            return clips[name]

        if not args.no_bench:
            for take in takes:
                for portrait in PORTRAITS:
                    report(bench_portrait(portrait, take, take_of(take), parts[take], reader, work))
        if args.strip:
            strip(take_of("arctic_a0007"), reader, args.strip, work)
        if args.emotion_sheet:
            held_out = "asterisk-demo-congrats"
            emotion_sheet(take_of(held_out), parts[held_out][0], args.emotion_sheet)
        if args.scales:
            scales(reader, work)


if __name__ == "__main__":
    main()
