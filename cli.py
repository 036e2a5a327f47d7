"""The ``emoflame`` command: a recording becomes an animated FLAME head in a .blend and a video.

    emoflame animate speech.wav --emotion happy -o take.blend --render take.mp4

Imports are lazy (torch and bpy load only once a command runs) so ``emoflame --help`` is
instant. Errors a user can fix (core/errors.py) print one line on stderr and exit with 2;
``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("emoflame")

RENDER_ENGINES = ("workbench", "eevee", "cycles")
EXIT_USER_ERROR = 2


def build_parser(prog: str = "emoflame") -> argparse.ArgumentParser:
    """The argument parser of ``emoflame`` and its sub-commands; ``prog`` is the name the help shows
    (``blender -c emoflame`` inside Blender)."""
    from .core.emotion.vocabulary import MEAD_EMOTIONS
    from .core.expression import DEFAULT_ENGINE, ENGINES

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Speech to emotional, lip-synced facial animation for FLAME heads.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="log everything and show tracebacks")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    animate = commands.add_parser(
        "animate", parents=[common], help="animate the default FLAME avatar from a recording",
        description="Animate the default FLAME avatar from a recording and save a Blender scene "
                    "(the head, a new Action of shape-key animation, the sound on frame 1), "
                    "optionally rendered to an MP4 with the sound.",
    )
    animate.add_argument("audio", type=Path, help="the recording: wav, flac, ogg or mp3, any sample rate")
    animate.add_argument("--emotion", default="neutral",
                         help=f"{', '.join(MEAD_EMOTIONS)} (or a synonym; default: neutral); with --engine "
                              "learned also free text such as 'quietly furious'")
    animate.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.blend",
                         help="the Blender file to write")
    animate.add_argument("--render", type=Path, metavar="OUT.mp4",
                         help="also render an MP4 (H.264 + AAC, with the sound)")
    animate.add_argument("--render-engine", choices=RENDER_ENGINES, default="workbench",
                         help="Blender engine for --render (default: workbench, fast on a CPU; eevee and "
                              "cycles use the materials and a light rig, and want a GPU: minutes a "
                              "frame on a CPU)")
    animate.add_argument("--resolution", type=_resolution, default=512, metavar="PIXELS",
                         help="side of the square video frame (default: 512)")
    animate.add_argument("--intensity", default="audio", metavar="audio|0.0-1.0|CURVE.csv",
                         help="emotion intensity: predicted from the audio (default), a constant, "
                              "or a per-frame curve in a CSV file")
    animate.add_argument("--transcript", metavar="TEXT|FILE",
                         help="what is said (text, or a text file): aligns the lips to it")
    animate.add_argument("--engine", choices=tuple(ENGINES), default=DEFAULT_ENGINE,
                         help="; ".join(f"{name}: {what}" for name, what in ENGINES.items())
                              + f" (default: {DEFAULT_ENGINE})")
    animate.add_argument("--fps", type=_positive_float, default=25.0, help="frames per second (default: 25)")
    animate.add_argument("--seed", default="0", help="random seed, a whole number from 0 to 4294967295 (default: 0)")
    animate.add_argument("--head-motion", choices=("on", "off"), default="on",
                         help="nods on accents, sway and the emotion's posture (default: on)")
    animate.add_argument("--clip", type=Path, metavar="OUT.npz",
                         help="also save the AnimationClip (for the add-on, or another rig)")
    animate.add_argument("--flame-model", type=Path, metavar="MODEL.pkl",
                         help="your FLAME model file (generic_model.pkl, flame2023.pkl): animate "
                              "that head, rigged as the MPI FLAME add-on does (Exp keys, jaw bone), "
                              "instead of the default avatar")
    animate.add_argument("--force", action="store_true", help="replace output files that exist")
    animate.set_defaults(run=run_animate)
    return parser


def main(argv: list[str] | None = None, prog: str = "emoflame") -> int:
    """Entry point of the ``emoflame`` console script; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="emoflame: %(message)s", stream=sys.stderr)
    from .core.errors import EmoflameError

    try:
        return args.run(args)
    except EmoflameError as exc:
        if args.debug:
            log.exception("failed")
        print(f"emoflame: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("emoflame: interrupted; the file being written was removed", file=sys.stderr)
        return 130


def run_animate(args: argparse.Namespace) -> int:
    """``emoflame animate``: check the outputs, animate, write the .blend, then render."""
    outputs = [(args.output, ".blend"), (args.render, ".mp4"), (args.clip, ".npz")]
    outputs = [(Path(p).expanduser().resolve(), suffix) for p, suffix in outputs if p is not None]
    if args.flame_model is not None and not args.flame_model.expanduser().is_file():
        from .core.errors import ModelFileError

        raise ModelFileError(f"FLAME model file not found: {args.flame_model}; download generic_model.pkl or "
                             f"flame2023.pkl from https://flame.is.tue.mpg.de and give its path")
    created = check_outputs(outputs, force=args.force)
    try:
        return _animate_and_write(args)
    except BaseException:
        _remove_empty(created)
        raise


def _animate_and_write(args: argparse.Namespace) -> int:
    from .core.pipeline import animate

    progress = not args.quiet
    log.info("animating %s as %s", args.audio, args.emotion)
    start = time.perf_counter()
    clip = animate(args.audio, emotion=args.emotion, intensity=parse_intensity(args.intensity),
                   transcript=args.transcript, fps=args.fps, seed=args.seed, engine=args.engine,
                   head_motion=args.head_motion == "on", progress=progress)
    seconds = time.perf_counter() - start
    log.info("animated %d frames (%.1f s of audio) in %.1f s", clip.num_frames, clip.duration, seconds)
    written = []
    if args.clip:
        written.append(_save_clip(clip, args.clip, force=args.force))

    from tqdm import tqdm

    from .addon.blend_file import save_blend
    from .addon.scene import build_scene, show_face_in_viewports
    from .renderers.blender_video import configure_render, frame_face, quiet_stdout, render_video

    start = time.perf_counter()
    with tqdm(total=3, desc="scene", unit="step", disable=not progress, file=sys.stderr) as bar:
        bar.set_postfix_str("avatar and take")
        scene, face, landmarks = build_scene(clip, flame_model=args.flame_model)
        bar.update()
        bar.set_postfix_str("camera and render settings")
        # Configured even without --render, so Render Animation in the saved file gives the video.
        configure_render(scene, engine=args.render_engine, resolution=args.resolution)
        frame_face(scene, face, landmarks)
        show_face_in_viewports()
        bar.update()
        bar.set_postfix_str("saving")
        with quiet_stdout():
            written.append(save_blend(args.output, force=args.force))
        bar.update()
    log.info("saved %s in %.1f s", written[-1].name, time.perf_counter() - start)
    if args.render:
        log.info("rendering %d frames with %s", scene.frame_end - scene.frame_start + 1, args.render_engine)
        start = time.perf_counter()
        written.append(render_video(scene, args.render, force=args.force, progress=progress))
        log.info("rendered %s in %.1f s", written[-1].name, time.perf_counter() - start)
    for path in written:
        print(path)
    return 0


def check_outputs(outputs: list[tuple[Path, str]], *, force: bool) -> list[Path]:
    """Check, before any slow work, that every output can be written.

    Creates missing parent folders (returned, so a failed run can remove them again) and
    writes and deletes a probe file in each folder: ``os.access`` says yes to root on a
    read-only file system.

    Args:
        outputs: ``(path, expected suffix)`` pairs, absolute paths.
        force: allow replacing files that exist.

    Returns:
        The folders created, outermost first.

    Raises:
        OutputError: for a wrong suffix, a path given twice, a file that exists without
            ``force``, an existing directory, or a folder that cannot be created or written.
    """
    from .core.errors import OutputError

    paths = [p for p, _ in outputs]
    for path, suffix in outputs:
        if path.is_dir():
            raise OutputError(f"{path} is a folder; give a file name such as {path / ('take' + suffix)}")
        if path.suffix.lower() != suffix:
            raise OutputError(f"{path} should end in {suffix}; name the file {path.with_suffix(suffix).name}")
        if paths.count(path) > 1:
            raise OutputError(f"{path} is given as two outputs; give each output its own file name")
        if path.exists() and not force:
            raise OutputError(f"{path} already exists; choose another name or pass --force to replace it")
    created = []
    for path, _ in outputs:
        created += [p for p in reversed(path.parents) if not p.exists() and p not in created]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as exc:
            _remove_empty(created)
            raise OutputError(f"cannot write to the folder {path.parent} ({exc.strerror}); "
                              f"choose a folder you can write") from None
    return created


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders this run created, innermost first, if they are still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


def _save_clip(clip, path: Path, *, force: bool) -> Path:
    """Save the clip atomically: a temporary file in the same folder, renamed when complete."""
    from .core.errors import OutputError

    path = Path(path).resolve()
    if path.exists() and not force:
        raise OutputError(f"{path} already exists; choose another name or pass --force to replace it")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        clip.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def parse_intensity(text: str) -> str | float:
    """``--intensity``: 'audio', a number (the pipeline checks its range), or a CSV path."""
    try:
        return float(text)
    except ValueError:
        return text


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _resolution(text: str) -> int:
    value = int(text)
    if value < 64 or value % 2:
        raise argparse.ArgumentTypeError(f"{text} cannot be encoded as H.264; give an even number, 64 or more")
    return value


if __name__ == "__main__":
    sys.exit(main())
