"""Render a scene's talking head to an MP4 (H.264 video, AAC sound) with Blender.

A framed, lit close-up of the face: an 85 mm portrait camera fitted to the face's landmarks,
Workbench with studio light and the vertex colours by default (fast on a CPU), or EEVEE /
Cycles with a three-point light rig and the avatar's materials.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..addon.compat import EEVEE_ENGINE, node_tree, set_movie_output
from ..core.errors import OutputError

log = logging.getLogger(__name__)


def _load_triton_before_any_render() -> None:
    """Load triton (torch's kernel compiler, when installed) before Blender renders in this process.

    A render on a machine without a GPU loads Mesa's llvmpipe through EGL, and with it Mesa's
    LLVM; importing triton afterwards (transformers pulls it in through torch._dynamo, e.g. for
    the text encoder) crashes the process in LLVM's initialisers (seen with bpy 5.0.1, torch
    2.14.1). Loaded first, the two coexist.
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


_load_triton_before_any_render()

#: The ``--render-engine`` choices and Blender's engine identifiers.
ENGINES = {"workbench": "BLENDER_WORKBENCH", "eevee": EEVEE_ENGINE, "cycles": "CYCLES"}
SENSOR_MM = 36.0
MIN_FREE_BYTES = 1 << 20
"""Below this much free space, an incomplete movie is put down to a full disk."""
CAMERA_NAME = "emoflame_camera"


def frame_face(scene: bpy.types.Scene, obj: bpy.types.Object, points=None, *, lens_mm: float = 85.0,
               margin: float = 1.6) -> bpy.types.Object:
    """Add (or reuse) emoflame's camera, make it the scene camera and aim it at the face of
    ``obj``, straight on.

    The face's forward direction is the object's local +Z (FLAME's), taken to world space.
    The camera stands on that axis at the distance where the points, scaled by ``margin``
    around their centre, fill the shorter side of the frame: set the resolution first
    (:func:`configure_render`).

    Args:
        obj: the head mesh.
        points: (N, 3) points in ``obj``'s local coordinates (metres) to frame, such as the
            avatar's 68 landmarks; the object's bounding box when None.
        lens_mm: focal length on a 36 mm sensor; 85 mm is a portrait lens (little distortion).
        margin: how much larger than the points' extent the frame is (room for the forehead,
            an open jaw and some air).

    Returns:
        The camera object ``emoflame_camera``, set as ``scene.camera`` (a camera the scene had
        is left where it is).
    """
    bpy.context.view_layer.update()  # matrix_world is stale until the depsgraph is evaluated
    world = obj.matrix_world
    local = np.asarray(points if points is not None else [tuple(c) for c in obj.bound_box], np.float64)
    pts = np.array([world @ Vector(p) for p in local])  # (N, 3) world metres
    forward = (world.to_3x3() @ Vector((0.0, 0.0, 1.0))).normalized()
    up = (world.to_3x3() @ Vector((0.0, 1.0, 0.0))).normalized()
    right = up.cross(forward)
    center = Vector(pts.mean(axis=0))
    offsets = pts - np.asarray(center)
    extent = max(np.ptp(offsets @ np.asarray(right)), np.ptp(offsets @ np.asarray(up))) * margin
    front = float((offsets @ np.asarray(forward)).max())
    # With sensor_fit AUTO the sensor spans the longer side of the frame: fit the shorter one.
    aspect = min(scene.render.resolution_x, scene.render.resolution_y) / max(scene.render.resolution_x, scene.render.resolution_y)
    distance = front + extent / 2 / (SENSOR_MM / 2 / lens_mm * aspect)

    camera = bpy.data.objects.get(CAMERA_NAME)
    if camera is None:  # a user's own camera is never moved: emoflame adds its own
        camera = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
        scene.collection.objects.link(camera)
    scene.camera = camera
    camera.data.lens = lens_mm
    camera.data.sensor_width = SENSOR_MM
    camera.data.sensor_fit = "AUTO"
    camera.data.clip_start = 0.01
    camera.data.clip_end = 10.0
    camera.matrix_world = Matrix.Translation(center + forward * distance) @ (-forward).to_track_quat("-Z", "Y").to_matrix().to_4x4()
    _light_rig(scene, center, forward, up, right, distance)
    return camera


def _light_rig(scene, center: Vector, forward: Vector, up: Vector, right: Vector, distance: float) -> None:
    """Key (front-right, above), fill (front-left, dimmer) and rim (behind) area lights for EEVEE
    and Cycles; Workbench ignores them and uses its studio light."""
    for name, direction, watts, size in (
        ("emoflame_key", forward + right * 0.7 + up * 0.6, 8.0, 0.4),
        ("emoflame_fill", forward - right * 0.9 + up * 0.1, 3.0, 0.6),
        ("emoflame_rim", -forward + up * 0.8 - right * 0.3, 6.0, 0.3),
    ):
        light = bpy.data.objects.get(name)
        if light is None:
            light = bpy.data.objects.new(name, bpy.data.lights.new(name, "AREA"))
            scene.collection.objects.link(light)
        light.data.energy = watts
        light.data.size = size
        location = center + direction.normalized() * distance
        light.matrix_world = Matrix.Translation(location) @ (center - location).to_track_quat("-Z", "Y").to_matrix().to_4x4()


def configure_render(scene: bpy.types.Scene, *, engine: str = "workbench", resolution: int = 512) -> None:
    """Set the engine, the look and H.264 + AAC MP4 output on ``scene``.

    Args:
        engine: 'workbench' (studio light, the avatar's textures and cavity shading, under a second
            a frame at 512 px on a CPU), 'eevee' or 'cycles' (materials, ambient occlusion and the
            light rig; far slower without a GPU).
        resolution: the square frame's side in pixels (even, H.264 needs it).

    Raises:
        ValueError: for an unknown engine or an odd or tiny resolution.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown render engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if resolution < 64 or resolution % 2:
        raise ValueError(f"resolution {resolution} cannot be encoded; give an even number of pixels, 64 or more")
    render = scene.render
    render.engine = ENGINES[engine]
    render.resolution_x = render.resolution_y = resolution
    render.resolution_percentage = 100
    world = scene.world or bpy.data.worlds.new("emoflame_world")
    scene.world = world
    world.color = (0.18, 0.19, 0.21)
    if engine == "workbench":
        shading = scene.display.shading
        shading.light = "STUDIO"
        shading.studio_light = "paint.sl"
        # the textures: soft lip and brow borders (per-vertex colours smear across FLAME's 3-7 mm triangles)
        shading.color_type = "TEXTURE"
        shading.show_specular_highlight = True
        # screen-space curvature darkens folds (nasolabial, brow furrow) and lights ridges; unlike
        # the world-space cavity it needs no samples, so FXAA's one sample a frame stays clean
        shading.show_cavity = True
        shading.cavity_type = "SCREEN"
        shading.curvature_ridge_factor, shading.curvature_valley_factor = 0.5, 1.0
        # FXAA: one sample a frame, 3x faster than 8-sample anti-aliasing on a CPU for a look
        # that differs only in the cavity shading (compared on renders of the default avatar).
        scene.display.render_aa = "FXAA"
    else:
        node_tree(world).nodes["Background"].inputs["Color"].default_value = (0.05, 0.055, 0.06, 1.0)
        if engine == "eevee":
            scene.eevee.taa_render_samples = 32
        else:
            scene.cycles.samples = 16
            scene.cycles.use_denoising = True
            scene.cycles.device = "GPU" if _enable_cycles_gpu() else "CPU"
            log.info("Cycles renders on the %s", scene.cycles.device)
    # AgX keeps the lit skin's hue where Standard clips it (compared on Workbench renders); the
    # light rig over-exposes the skin to near white by a stop (compared on Cycles renders).
    scene.view_settings.view_transform = "AgX"
    scene.view_settings.exposure = 0.0 if engine == "workbench" else -1.0

    set_movie_output(render.image_settings)  # before the container and codecs (NOTES.md)
    render.ffmpeg.format = "MPEG4"
    render.ffmpeg.codec = "H264"
    render.ffmpeg.constant_rate_factor = "HIGH"
    render.ffmpeg.ffmpeg_preset = "GOOD"
    render.ffmpeg.audio_codec = "AAC"
    render.ffmpeg.audio_bitrate = 192
    render.ffmpeg.audio_channels = "MONO"


def _enable_cycles_gpu() -> bool:
    """Enable the first GPU back end that has a device (OptiX, CUDA, HIP, oneAPI); False if none.

    These are user preferences, not saved in the .blend: a render node sets its own.
    """
    preferences = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI"):
        try:
            preferences.compute_device_type = backend
        except TypeError:  # a back end this Blender build lacks
            continue
        preferences.get_devices()
        gpus = [d for d in preferences.devices if d.type == backend]
        if gpus:
            for device in preferences.devices:
                device.use = device.type == backend
            return True
    preferences.compute_device_type = "NONE"
    return False


def render_video(scene: bpy.types.Scene, path, *, force: bool = False, progress: bool = True,
                 outputs=None) -> Path:
    """Render the scene's frame range to exactly ``path`` (MP4 with the scene's sound strips).

    Blender names a movie after the frame range ("out0001-0100.mp4"); the render goes to a
    temporary folder beside ``path``, and the finished movie is checked (:func:`verify_movie`: a
    complete MP4 with every frame; Blender's writer reports no error on a full disk) before it
    becomes ``path``, so a failed or interrupted render leaves nothing behind and replaces
    nothing. Call :func:`configure_render` first.

    Args:
        path: the .mp4 to write.
        force: replace ``path`` if it exists (only once the movie is complete).
        progress: show a tqdm bar of frames rendered (on stderr); Blender's own per-frame lines
            are silenced either way.
        outputs: a ``core.outputs.Transaction`` to stage the movie in (its caller commits it with
            the job's other outputs); None renders and renames at once.

    Returns:
        The absolute path written (with ``outputs``: the path it will have once committed).

    Raises:
        OutputError: if ``path`` exists and ``force`` is False, its folder cannot be written, the
            disk is full, or Blender produced no complete movie.
    """
    from ..core.outputs import Transaction, output_path

    path = output_path(path)
    if outputs is None:
        with Transaction(force=force) as own:
            own.check([path])
            render_video(scene, path, progress=progress, outputs=own)
            return own.commit()[0]
    staged = outputs.stage(path)
    folder = outputs.scratch_dir(path)
    scene.render.filepath = os.path.join(folder, "render")
    scene.render.use_file_extension = True
    with quiet_stdout(), _held_stderr() as terminal, _frame_progress(scene, progress, terminal):
        bpy.ops.render.render(animation=True, scene=scene.name)
    movies = sorted(Path(folder).glob("*.mp4"))
    if not movies:
        raise _render_failure(path, f"Blender wrote no movie for {path}; run with --debug to see its output")
    os.replace(movies[0], staged)
    verify_movie(staged, scene.frame_end - scene.frame_start + 1, target=path)
    return path


def verify_movie(path, frames: int, *, target=None) -> None:
    """Check that ``path`` is a complete MP4 that plays ``frames`` frames.

    Its top-level boxes must tile the file and include ``moov`` (the index a player needs) and
    ``mdat``; then Blender's FFmpeg reader opens it and counts the frames.

    Args:
        frames: the number of frames rendered.
        target: the file ``path`` will become, for messages.

    Raises:
        OutputError: a truncated or unplayable movie, or fewer frames than rendered; a full disk is
            named as such.
    """
    path, target = Path(path), Path(target or path)
    boxes = _mp4_boxes(path)
    if boxes is None or "moov" not in boxes or "mdat" not in boxes:
        raise _render_failure(target, f"Blender wrote an incomplete movie for {target.name} "
                                      f"({path.stat().st_size} bytes, no complete MP4 index)")
    clip = bpy.data.movieclips.load(str(path))
    try:
        found = clip.frame_duration
    finally:
        bpy.data.movieclips.remove(clip)
    if found < frames:
        raise _render_failure(target, f"the movie for {target.name} has {found} of its {frames} frames")


def _render_failure(target: Path, message: str) -> OutputError:
    from ..core.outputs import disk_full_error, free_bytes

    # Blender's movie writer reports nothing when the disk fills up: the file just ends early.
    if free_bytes(target.parent) < MIN_FREE_BYTES:
        return disk_full_error(target)
    return OutputError(f"{message}; run with --debug to see Blender's output")


def _mp4_boxes(path: Path) -> list[str] | None:
    """The types of an MP4's top-level boxes (ISO/IEC 14496-12 Sec. 4.2), or None if they do not
    tile the file exactly (a truncated write)."""
    size = path.stat().st_size
    types, offset = [], 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            header = f.read(8)
            if len(header) < 8:
                return None
            length, kind = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            if length == 1:
                large = f.read(8)
                if len(large) < 8:
                    return None
                length = int.from_bytes(large, "big")
            elif length == 0:
                length = size - offset
            if length < 8 or offset + length > size:
                return None
            types.append(kind)
            offset += length
    return types


def check_engine(engine: str) -> None:
    """Refuse an engine this machine cannot render with in reasonable time, before any work.

    EEVEE rasterises through OpenGL/EGL: without a GPU it falls back to Mesa's software renderer
    (llvmpipe), where one 512 px frame takes 30-40 s on 2 cores and a take takes hours. A GPU is
    taken to be there when the kernel exposes a render node (``/dev/dri/renderD*``) or NVIDIA's
    device (``/dev/nvidia0``).

    Raises:
        SettingsError: ``eevee`` on a machine without a GPU; the message names workbench and cycles.
    """
    from ..core.errors import SettingsError

    if engine == "eevee" and not has_gpu():
        raise SettingsError("--render-engine eevee needs a GPU and this machine has none (EEVEE would render in "
                            "software for minutes a frame); use --render-engine workbench (fast on a CPU) or cycles "
                            "(the materials and lights, slower)")


def has_gpu() -> bool:
    """True when a GPU render node or an NVIDIA device is present (see :func:`check_engine`)."""
    from glob import glob

    return bool(glob("/dev/dri/renderD*") or os.path.exists("/dev/nvidia0"))


@contextmanager
def _frame_progress(scene, enabled: bool, stream):
    """A tqdm bar on ``stream`` advanced by Blender's render_post handler, one step per frame."""
    from tqdm import tqdm

    bar = tqdm(total=scene.frame_end - scene.frame_start + 1, desc="render", unit="frame",
               disable=not enabled, file=stream)

    def advance(*_):
        bar.update(1)

    bpy.app.handlers.render_post.append(advance)
    try:
        yield bar
    finally:
        bpy.app.handlers.render_post.remove(advance)
        bar.close()


@contextmanager
def quiet_stdout():
    """Keep what Blender prints from C (a line per rendered frame, "Info: Saved ...") off the
    command's stdout, which holds only the paths it wrote: to stderr with debug logging, to
    /dev/null otherwise (``core.outputs.native_stdout_to``, which also flushes C's buffer)."""
    from ..core.outputs import native_stdout_to

    with native_stdout_to("stderr" if log.isEnabledFor(logging.DEBUG) else "null"):
        yield


@contextmanager
def _held_stderr():
    """Hold what Blender writes to file descriptor 2 while rendering, then log it, less the
    harmless "EGL_BAD_MATCH" lines a headless GPU context prints (NOTES.md).

    Yields a stream on the real stderr for the progress bar. With debug logging on, nothing is
    held.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    terminal = os.fdopen(os.dup(saved), "w")
    try:
        yield terminal
    finally:
        terminal.close()
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        text = held.read().decode(errors="replace")
        held.close()
        for line in text.splitlines():
            if line.strip() and "EGL" not in line:
                log.info("blender: %s", line.strip())
