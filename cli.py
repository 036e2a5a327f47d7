"""The ``emoflame`` command: a recording becomes an animated FLAME head in a .blend, a video and
the files game engines import; a manifest of recordings becomes a batch of them.

    emoflame animate speech.wav --emotion happy -o take.blend -o take.glb --render take.mp4
    emoflame batch lines.csv --out-dir takes --formats blend,npz,glb,csv --workers 2

Imports are lazy (torch and bpy load only once a command runs) so ``emoflame --help`` is
instant. Errors a user can fix (core/errors.py), usage errors included, print one line on stderr
and exit with 2; ``--debug`` shows the traceback as well. Every output is written under a
temporary name and renamed only when the whole take succeeded (core/outputs.py); SIGINT and
SIGTERM remove the temporaries and exit with 130 and 143, leaving every existing file as it was.
stdout holds only the paths written.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("emoflame")

RENDER_ENGINES = ("workbench", "eevee", "cycles", "portrait", "neural")
"""Blender's engines render the avatar; ``portrait`` and ``neural`` render a photo (``--portrait``)."""
PHOTO_ENGINES = ("portrait", "neural")
EXIT_USER_ERROR = 2
MAX_RESOLUTION = 8192
_RAY_AUTO = "\0auto"  # --ray without an address


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (the problem, then where the help is) and exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"emoflame: error: {message} (see {self.prog} --help)\n")


def build_parser(prog: str = "emoflame") -> argparse.ArgumentParser:
    """The argument parser of ``emoflame`` and its sub-commands; ``prog`` is the name the help shows
    (``blender -c emoflame`` inside Blender)."""
    from .core.emotion.vocabulary import MEAD_EMOTIONS
    from .core.exports import SUFFIXES
    from .core.expression import DEFAULT_ENGINE, ENGINES

    parser = _Parser(prog=prog, description="Speech to emotional, lip-synced facial animation for FLAME heads.")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="log everything and show tracebacks")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars (emoflame's or its libraries'), "
                                                                   "warnings only")
    take = _Parser(add_help=False)
    take.add_argument("--engine", choices=tuple(ENGINES), default=DEFAULT_ENGINE,
                      help="; ".join(f"{name}: {what}" for name, what in ENGINES.items())
                           + f" (default: {DEFAULT_ENGINE})")
    take.add_argument("--fps", type=_fps, default=25.0, help="frames per second, 1 to 240 (default: 25)")
    take.add_argument("--seed", type=_seed, default=0, help="random seed, a whole number from 0 to 4294967295 (default: 0)")
    take.add_argument("--head-motion", choices=("on", "off"), default="on",
                      help="nods on accents, sway and the emotion's posture (default: on)")
    take.add_argument("--transition", type=_transition, default=None, metavar="SECONDS",
                      help="with an emotion track (--emotion 'neutral@0,angry@2.5' or a time,emotion CSV): seconds "
                           "over which one emotion eases into the next, 0 to 10 (default: 0.3)")
    for dial, what in (("jaw", "how far the jaw opens"), ("lips", "how far the lips shape")):
        take.add_argument(f"--{dial}", type=_dial, default=1.0, metavar="0-2",
                          help=f"phonetic engine: {what}, 0 to 2 (default: 1, as the voice's effort says)")
    take.add_argument("--render-engine", choices=RENDER_ENGINES, default=None,
                      help="what renders the video: Blender's workbench (the default without --portrait; fast on "
                           "a CPU), cycles (the materials and a light rig) or eevee (needs a GPU, refused without "
                           "one) render the avatar; with --portrait, portrait (the default: the photo moved by the "
                           "avatar's 3D motion, no download) or neural (LivePortrait's networks, weights from "
                           "$EMOFLAME_LIVEPORTRAIT, a GPU job)")
    take.add_argument("--portrait", nargs="?", const="default", default=None, metavar="PHOTO",
                      help="render the video from this photo (PNG or JPEG, one face from the front) instead of the "
                           "avatar; without a file, the shipped neutral portrait (Grace Hopper, public domain)")
    take.add_argument("--resolution", type=_resolution, default=None, metavar="PIXELS",
                      help="the video's side: the square avatar frame (default: 512) or the portrait's longer side "
                           "(default: the photo's size)")
    take.add_argument("--flame-model", metavar="MODEL.pkl",
                      help="your FLAME model file (generic_model.pkl, flame2023.pkl): animate that head, rigged as "
                           "the MPI FLAME add-on does (Exp keys, jaw bone), instead of the default avatar; needed "
                           "for FLAME parameter files")
    take.add_argument("--force", action="store_true", help="replace output files that exist (only once every "
                                                            "output of the take is complete)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    animate = commands.add_parser(
        "animate", parents=[common, take], help="animate the default FLAME avatar from a recording",
        description="Animate the default FLAME avatar from a recording and save a Blender scene "
                    "(the head, a new Action of shape-key animation, the sound on frame 1), "
                    "the formats game engines import, and optionally an MP4 with the sound.",
    )
    animate.add_argument("audio", help="the recording: wav, flac, ogg or mp3, any sample rate")
    animate.add_argument("--emotion", default="neutral",
                         help=f"{', '.join(MEAD_EMOTIONS)} (or a synonym; default: neutral); with --engine "
                              "learned also free text such as 'quietly furious'")
    animate.add_argument("-o", "--output", action="append", default=[], metavar="OUT.blend",
                         help="a file to write, its format by suffix, repeatable: .blend (Blender scene), .glb/.gltf "
                              "(glTF: morph targets and their animation), .fbx, .usdc/.usda (USD blend shapes), "
                              ".csv (Live Link Face, for Unreal), .npz (FLAME parameters, needs --flame-model)")
    animate.add_argument("--render", metavar="OUT.mp4", help="also render an MP4 (H.264 + AAC, with the sound)")
    animate.add_argument("--intensity", default="audio", metavar="audio|0.0-1.0|CURVE.csv",
                         help="emotion intensity: predicted from the audio (default), a constant, "
                              "or a per-frame curve in a CSV file")
    animate.add_argument("--transcript", metavar="auto|none|TEXT|FILE",
                         help="what is said: auto (default: Whisper recognises the words, the phones are "
                              "aligned to them), none (phones recognised directly), or the words as text or "
                              "a text file (the best lip sync)")
    animate.add_argument("--clip", metavar="OUT.npz",
                         help="also save the AnimationClip (for the add-on, or another rig)")
    animate.set_defaults(run=run_animate, suffixes=SUFFIXES)

    batch = commands.add_parser(
        "batch", parents=[common, take], help="animate every line of a manifest, in parallel",
        description="Animate every line of a manifest (CSV or JSON Lines with the columns audio, emotion, "
                    "intensity, transcript, name; only audio required; paths relative to the manifest) into "
                    "OUT_DIR/NAME.<format>, in local worker processes or on a Ray cluster. Lines finished by an "
                    "earlier run with the same inputs are skipped; a line that fails is reported and the batch "
                    "goes on; emoflame_batch_report.csv/.json in OUT_DIR say what became of each line.",
    )
    batch.add_argument("manifest", help="the manifest: .csv or .jsonl")
    batch.add_argument("--out-dir", required=True, metavar="DIR", help="the folder for the outputs and the report")
    batch.add_argument("--formats", default="blend,npz", metavar="LIST",
                       help="comma-separated: blend, npz (the AnimationClip), glb, gltf, fbx, usdc, usda, csv (Live "
                            "Link Face), flame (FLAME parameters NAME.flame.npz, needs --flame-model), mp4 "
                            "(default: blend,npz)")
    batch.add_argument("--workers", type=_workers, default=None, metavar="N",
                       help="worker processes on this machine (default: the number of CPU cores); each loads the "
                            "models once and takes line after line")
    batch.add_argument("--ray", nargs="?", const=_RAY_AUTO, default=None, metavar="ADDRESS",
                       help="run the lines as Ray tasks: on the cluster at ADDRESS, on the one RAY_ADDRESS or "
                            "'ray start' made when no address is given, or on a new local one with 'local' "
                            '(pip install "emoflame[ray]"); without an address, give it after the manifest')
    batch.set_defaults(run=run_batch_command)
    return parser


def main(argv: list[str] | None = None, prog: str = "emoflame") -> int:
    """Entry point of the ``emoflame`` console script; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    # The libraries' own INFO lines (Whisper's VAD, ...) stay out unless --debug.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="emoflame: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("emoflame").setLevel(level)
    if args.quiet:
        _silence_library_progress_bars()
    from .core.errors import EmoflameError
    from .core.outputs import Interrupted, discard_all, exit_code, interrupted_message, interruptible

    try:
        with interruptible():
            code = args.run(args)
            if argv is None and args.run is run_animate:
                _exit_now(code)
            return code
    except Interrupted as exc:  # a batch driver, once its workers are stopped
        discard_all()
        print(interrupted_message(exc.signum), file=sys.stderr)
        return exit_code(exc.signum)
    except EmoflameError as exc:
        if args.debug:
            log.exception("failed")
        print(f"emoflame: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # only where the handlers could not be installed (not the main thread)
        print("emoflame: interrupted; unfinished outputs were removed, existing files are as they were", file=sys.stderr)
        return 130


def _exit_now(code: int) -> None:
    """End the console script's finished take at once, still inside :func:`interruptible`.

    Python's shutdown puts the default SIGINT/SIGTERM handlers back before Blender's and torch's
    teardown, which takes seconds: a signal then killed the process by its default action after a
    successful take. Every output is renamed into place and every path printed by now; what the
    shutdown would still do is flush the streams and remove Blender's temporary folder."""
    import shutil

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if "bpy" in sys.modules:
        shutil.rmtree(sys.modules["bpy"].app.tempdir, ignore_errors=True)
    os._exit(code)


def run_animate(args: argparse.Namespace) -> int:
    """``emoflame animate``: check every output before any work, make the take, then rename every
    output into place at once and print the paths."""
    from .core.batch.job import TakeRequest
    from .core.errors import SettingsError
    from .core.outputs import Transaction, user_path

    if not args.output and not args.render and not args.clip:
        raise SettingsError("nothing to write: give -o OUT.blend (or .glb, .fbx, .usdc, .csv), --render OUT.mp4 "
                            "or --clip OUT.npz")
    request = TakeRequest(
        audio=user_path(args.audio), outputs=tuple(_animate_outputs(args)), emotion=args.emotion,
        intensity=parse_intensity(args.intensity), transcript=args.transcript, fps=args.fps, seed=args.seed,
        engine=args.engine, head_motion=args.head_motion == "on", transition=args.transition, jaw=args.jaw,
        lips=args.lips, flame_model=_flame_model(args.flame_model), render_engine=_render_engine(args),
        resolution=args.resolution,
        portrait=_portrait(args.portrait), progress=not args.quiet)
    _check_request(request)
    with Transaction(force=args.force) as outputs:
        outputs.check([o.path for o in request.outputs], inputs=request.inputs())
        write_take(request, outputs)
        outputs.commit()
    for output in request.outputs:
        print(output.path)
    return 0


def _animate_outputs(args: argparse.Namespace) -> list:
    """The outputs of ``emoflame animate`` as :class:`core.batch.job.Output`: the clip, every
    ``-o`` by its suffix, the video. Each path normalised (``~``, absolute, name length)."""
    from .core.batch.job import Output
    from .core.errors import OutputError
    from .core.outputs import output_path

    outputs = []
    if args.clip is not None:
        outputs.append(Output(_with_suffix(output_path(args.clip), (".npz",), "--clip"), "clip"))
    for text in args.output:
        path = output_path(text)
        if path.is_dir():
            raise OutputError(f"{path} is a folder; give a file name such as {path / 'take.blend'}")
        kind = _kind_of(path)
        if kind is None:
            raise OutputError(f"{path} should end in {', '.join(args.suffixes[:-1])} or {args.suffixes[-1]} "
                              f"(a video is --render OUT.mp4); name the file {path.with_suffix('.blend').name}")
        outputs.append(Output(path, kind))
    if args.render is not None:
        outputs.append(Output(_with_suffix(output_path(args.render), (".mp4",), "--render"), "mp4"))
    return outputs


def _render_engine(args: argparse.Namespace) -> str:
    """``--render-engine`` with its default: portrait with ``--portrait``, else workbench.

    Raises:
        SettingsError: a photo engine without a photo, or a Blender engine with one.
    """
    from .core.errors import SettingsError

    engine = args.render_engine or ("portrait" if args.portrait else "workbench")
    if engine in PHOTO_ENGINES and not args.portrait:
        raise SettingsError(f"--render-engine {engine} renders a photo: add --portrait PHOTO (or --portrait alone "
                            "for the shipped portrait)")
    if args.portrait and engine not in PHOTO_ENGINES:
        raise SettingsError(f"--portrait renders with --render-engine portrait or neural, not {engine}")
    return engine


def _portrait(text: str | None):
    """``--portrait``: "default", or the photo's absolute path.

    Raises:
        PortraitError: the photo does not exist.
    """
    if text is None or text == "default":
        return text
    from .core.errors import PortraitError
    from .core.outputs import user_path

    path = user_path(text)
    if not path.is_file():
        raise PortraitError(f"portrait photo not found: {text}; give a PNG or JPEG with one face seen from the front")
    return path


def _kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    kinds = {".blend": "blend", ".glb": "glb", ".gltf": "gltf", ".fbx": "fbx", ".usd": "usd", ".usdc": "usdc",
             ".usda": "usda", ".csv": "csv", ".npz": "flame"}
    return kinds.get(suffix)


def _with_suffix(path: Path, suffixes: tuple[str, ...], option: str) -> Path:
    from .core.errors import OutputError

    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name such as {path / ('take' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise OutputError(f"{path} should end in {suffixes[0]}; name the file {path.with_suffix(suffixes[0]).name} "
                          f"({option})")
    return path


def _flame_model(text: str | None) -> Path | None:
    """``--flame-model``: the file's absolute path.

    Raises:
        ModelFileError: the file does not exist (named, with where to get one).
    """
    if text is None:
        return None
    from .core.errors import ModelFileError
    from .core.outputs import user_path

    path = user_path(text)
    if not path.is_file():
        raise ModelFileError(f"FLAME model file not found: {text}; download generic_model.pkl or "
                             f"flame2023.pkl from https://flame.is.tue.mpg.de and give its path")
    return path


def _check_request(request) -> None:
    """What can be refused before any work beyond the paths: a FLAME parameter file without a
    model, EEVEE without a GPU."""
    from .core.errors import ModelFileError

    kinds = {o.kind for o in request.outputs}
    if "flame" in kinds and request.flame_model is None:
        raise ModelFileError("a .npz output holds FLAME parameters and needs your FLAME model: add --flame-model "
                             "generic_model.pkl (from https://flame.is.tue.mpg.de); the AnimationClip itself is --clip")
    if "mp4" in kinds and request.render_engine not in PHOTO_ENGINES:
        from .renderers.blender_video import check_engine

        check_engine(request.render_engine)


SCENE_KINDS = {"blend", "glb", "gltf", "fbx", "usd", "usdc", "usda", "mp4"}
"""Outputs made from the Blender scene (the others need none)."""


def write_take(request, outputs) -> object:
    """Make one take and stage every output of ``request`` in ``outputs`` (a
    ``core.outputs.Transaction``; the caller commits it). The one function ``emoflame animate``
    and every line of ``emoflame batch`` run.

    Steps: ``core.pipeline.animate``; the clip and the exports that need no Blender; the scene
    (``addon.scene.build_scene``, which also resets Blender's session, so a worker can take line
    after line), the camera and render settings, the .blend and Blender's exporters; the video.

    Returns:
        The AnimationClip.

    Raises:
        EmoflameError: bad input (audio, emotion, intensity, transcript, model), an output that
            cannot be written (a full disk named as such).
    """
    from .core.pipeline import animate

    progress = request.progress
    model = None
    if request.flame_model is not None:  # a broken model file fails before the audio work
        from .core.exports import load_model

        model = load_model(request.flame_model)
    animator = _photo_renderer(request) if "mp4" in {o.kind for o in request.outputs} else None
    log.info("animating %s as %s", request.audio, request.emotion)
    start = time.perf_counter()
    clip = animate(str(request.audio), emotion=request.emotion, intensity=request.intensity,
                   transcript=request.transcript, fps=request.fps, seed=request.seed, engine=request.engine,
                   head_motion=request.head_motion, jaw=request.jaw, lips=request.lips, progress=progress,
                   **({} if request.transition is None else {"transition": request.transition}))
    log.info("animated %d frames (%.1f s of audio) in %.1f s", clip.num_frames, clip.duration,
             time.perf_counter() - start)
    kinds = [o.kind for o in request.outputs]
    for output in request.outputs:
        if output.kind == "clip":
            outputs.write(output.path, clip.save)
        elif output.kind == "csv":
            from .core.exports import livelink

            outputs.write(output.path, lambda temporary: livelink.write(clip, temporary))
        elif output.kind == "flame":
            from .core.exports import flame_params, load_model

            outputs.write(output.path, lambda temporary: flame_params.write(clip, temporary, load_model(model)))
        elif output.kind == "mp4" and animator is not None:
            log.info("rendering the portrait with %s", request.render_engine)
            outputs.write(output.path, lambda temporary: animator(clip, temporary))
    scene_kinds = SCENE_KINDS - ({"mp4"} if animator is not None else set())
    if not scene_kinds & set(kinds):
        return clip

    from tqdm import tqdm

    from .addon.blend_file import write_blend
    from .addon.exports import export_objects, write_blender_export
    from .addon.scene import build_scene, show_face_in_viewports
    from .renderers.blender_video import configure_render, frame_face, render_video

    start = time.perf_counter()
    files = [o for o in request.outputs if o.kind in SCENE_KINDS - {"mp4"}]
    with tqdm(total=2 + len(files), desc="scene", unit="step", disable=not progress, file=sys.stderr) as bar:
        bar.set_postfix_str("avatar and take")
        scene, face, landmarks = build_scene(clip, flame_model=model)
        bar.update()
        bar.set_postfix_str("camera and render settings")
        # Configured even without a video, so Render Animation in the saved file gives it.
        configure_render(scene, engine="workbench" if animator is not None else request.render_engine,
                         resolution=request.resolution or DEFAULT_RESOLUTION)
        frame_face(scene, face, landmarks)
        show_face_in_viewports()
        bar.update()
        for output in files:
            bar.set_postfix_str(f"writing {output.path.suffix}")
            if output.kind == "blend":
                write_blend(outputs.stage(output.path), target=output.path)
            else:
                outputs.write(output.path, lambda temporary: write_blender_export(temporary, export_objects(face), scene,
                                                                   target=output.path))
            bar.update()
    log.info("wrote %s in %.1f s", ", ".join(o.path.name for o in files) or "the scene", time.perf_counter() - start)
    for output in request.outputs:
        if output.kind == "mp4" and animator is None:
            log.info("rendering %d frames with %s", scene.frame_end - scene.frame_start + 1, request.render_engine)
            start = time.perf_counter()
            render_video(scene, output.path, progress=progress, outputs=outputs)
            log.info("rendered %s in %.1f s", output.path.name, time.perf_counter() - start)
    return clip


DEFAULT_RESOLUTION = 512
"""The avatar video's side in pixels when no --resolution is given."""


def _photo_renderer(request):
    """For a photo engine, ``render(clip, path)`` writing the portrait video (the photo checked now,
    before the audio work); None for Blender's engines.

    Raises:
        PortraitError: the photo has no face, several faces, a tiny face or a profile view.
        ModelFileError: ``neural`` without LivePortrait's weights.
    """
    if request.render_engine not in PHOTO_ENGINES:
        return None
    photo = None if request.portrait in (None, "default") else str(request.portrait)
    if request.render_engine == "portrait":
        from .renderers.portrait import PortraitAnimator, render_portrait
        from .renderers.portrait.render import load_photo

        PortraitAnimator(load_photo(photo, request.resolution)).close()  # a bad photo fails now, at once
        return lambda clip, path: render_portrait(clip, photo, path, resolution=request.resolution, force=True,
                                                  progress=request.progress)
    from .renderers.neural.render import render_neural

    return render_neural(photo, resolution=request.resolution, progress=request.progress)


def run_batch_command(args: argparse.Namespace) -> int:
    """``emoflame batch``: every manifest line through :func:`write_take`, then the report."""
    from . import __version__
    from .core.batch import parse_formats, run_batch
    from .core.batch.job import TakeRequest
    from .core.errors import SettingsError

    if "bpy" in sys.modules and getattr(sys.modules["bpy"].app, "binary_path", ""):
        raise SettingsError("emoflame batch starts Python worker processes: run it with the emoflame console "
                            "script (pip install emoflame), not inside Blender")
    kinds = parse_formats(args.formats)
    template = TakeRequest(audio=Path(), outputs=(), fps=args.fps, seed=args.seed, engine=args.engine,
                           head_motion=args.head_motion == "on", transition=args.transition, jaw=args.jaw,
                           lips=args.lips, flame_model=_flame_model(args.flame_model),
                           render_engine=_render_engine(args), resolution=args.resolution,
                           portrait=_portrait(args.portrait), progress=False)
    if "mp4" in kinds and template.render_engine not in PHOTO_ENGINES:
        from .renderers.blender_video import check_engine

        check_engine(template.render_engine)
    ray = False if args.ray is None else (None if args.ray == _RAY_AUTO else args.ray)
    summary = run_batch(args.manifest, args.out_dir, write_take, template=template, kinds=kinds,
                        workers=args.workers, ray=ray, force=args.force, version=__version__,
                        progress=not args.quiet)
    counts = summary.counts()
    log.info("batch: %d done, %d skipped, %d failed in %.1f s", counts["done"], counts["skipped"], counts["failed"],
             summary.seconds)
    for path in summary.report:
        print(path)
    if summary.failed:
        print(f"emoflame: error: {len(summary.failed)} of {len(summary.results)} lines failed; their errors are in "
              f"{summary.report[0]}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


def _silence_library_progress_bars() -> None:
    """``-q``: no progress bars from the libraries either (transformers' and sentence-transformers'
    "Loading weights", huggingface_hub's). transformers reads huggingface_hub's switch when it is
    first imported; if it already is, its own switch is turned too."""
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass
    if "transformers.utils.logging" in sys.modules:
        sys.modules["transformers.utils.logging"].disable_progress_bar()


def parse_intensity(text: str) -> str | float:
    """``--intensity``: 'audio', a number (the pipeline checks its range), or a CSV path."""
    try:
        return float(text)
    except ValueError:
        return text


def _in_range(text: str, low: float, high: float) -> float | None:
    """``text`` as a finite number in [low, high], or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def _fps(text: str) -> float:
    value = _in_range(text, 1.0, 240.0)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate; give a number from 1 to 240 (25, 29.97, 30, 60)")
    return value


def _seed(text: str) -> int:
    from .core.errors import SettingsError
    from .core.validate import seed

    try:
        return seed(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _transition(text: str) -> float:
    value = _in_range(text, 0.0, 10.0)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a transition; give 0 to 10 seconds")
    return value


def _dial(text: str) -> float:
    value = _in_range(text, 0.0, 2.0)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dial setting; give 0 to 2 (1 is the voice's own)")
    return value


def _resolution(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of pixels; give an even whole number, 64 or "
                                         f"more") from None
    if value < 64 or value % 2 or value > MAX_RESOLUTION:
        raise argparse.ArgumentTypeError(f"{text} cannot be encoded as H.264; give an even number from 64 to "
                                         f"{MAX_RESOLUTION}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of worker processes; give a whole number, 1 or more")
    return value


if __name__ == "__main__":
    sys.exit(main())
