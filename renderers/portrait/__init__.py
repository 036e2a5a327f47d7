"""The portrait animator: photoreal video from any portrait photo, with nothing to download.

A photo with one face is moved, frame by frame, by the default avatar's own 3D motion seen
through a camera fitted to the photo (the 3D-aware route: the animated avatar's vertices, not
a 2D landmark guess), relative to the photo's own expression at rest, so a smiling photo still
closes its lips on an M. MediaPipe Face Landmarker (Apache-2.0, ``face_landmarker.task`` ships
here with NOTICE-mediapipe.txt) finds the face; OpenCV warps and composites; the avatar's teeth,
gums and tongue fill the open mouth; PyAV writes the MP4 (``renderers/video_file.py``).

Modules:
    face.py            MediaPipe: landmarks, blendshape scores, head pose; the photo's checks.
    correspondence.py  MediaPipe's 478 landmarks as surface points of the FLAME mesh
                       (``mediapipe_flame.npz``, made by build_correspondence.py).
    camera.py          the weak-perspective camera.
    fit.py             camera, the photo's rest expression and the per-person 2D correction.
    mesh.py            skin, eyeballs and mouth interior as one posed mesh, with head motion.
    raster.py          z-buffered triangle-ID raster (OpenGL via moderngl, numpy fallback).
    warp.py            push-pull fill of the displacement off the avatar.
    shading.py         the avatar's own colours at pixels (textures, vertex colours, light).
    mouth.py           colour transfer of the painted mouth into the photo's light.
    animator.py        ``PortraitAnimator(photo).frame(weights, head_pose)`` / ``.frames(clip)``.
    render.py          ``render_portrait(clip, photo, out)`` -> MP4.
"""

from ...core.lazy import lazy_attributes

_PUBLIC = {
    "render_portrait": ".render",
    "DEFAULT_PORTRAIT": ".render",
    "PortraitAnimator": ".animator",
    "PortraitError": "...core.errors",
    "FaceReader": ".face",
    "FaceReading": ".face",
    "detect_face": ".face",
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)
