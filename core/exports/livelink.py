"""A take as the CSV that Epic's Live Link Face app records, which Unreal's Live Link Face
importer (the LiveLinkFaceImporter plugin) turns into a Level Sequence of facial curves.

The layout is the app's own, column for column: ``Timecode``, ``BlendShapeCount`` (61), the 52
ARKit blendshapes in the app's order and PascalCase spelling (``EyeBlinkLeft``, ...,
``JawForward, JawRight, JawLeft``, ..., ``TongueOut``), then ``HeadYaw, HeadPitch, HeadRoll,
LeftEyeYaw, LeftEyePitch, LeftEyeRoll, RightEyeYaw, RightEyePitch, RightEyeRoll`` in radians.
Source of the header and of the conventions below: takes exported by the app, e.g.
github.com/alexdjulin/LiveLinkFace-CSV-Retarget-For-Motionbuilder ``anim/alex_rom_3.csv`` (4030
rows, header ``Timecode,BlendShapeCount,EyeBlinkLeft,...,RightEyeRoll``).

Timecode: ``HH:MM:SS:FF.fff``, frames ``FF`` counted at the nominal rate (round(fps): 30 for
29.97, non-drop), ``.fff`` the sub-frame in thousandths of a frame (the app's rows step ``FF``
while ``.fff`` drifts slowly, so it is not milliseconds); a clip's frames lie on whole frames,
``.000``. Frame 0 of the clip is ``00:00:00:00.000`` plus its ``audio_offset``.

Rotations: the app's eye angles fall with gaze to the subject's left (yaw < 0) and up (pitch < 0)
(measured on that take: LeftEyeYaw ≈ -0.61 rad × (EyeLookOutLeft - EyeLookInLeft), LeftEyePitch ≈
-0.56 rad × (EyeLookUpLeft - EyeLookDownLeft)). That is Unreal's FRotator of the rotation taken to
Unreal's left-handed axes with X into the face: X = -z, Y = x, Z = y of FLAME's frame (x the
subject's left, y up, z forward). The head is converted the same way, so for small angles
HeadYaw = -y (turn to the subject's right is positive), HeadPitch = +x (nod down), HeadRoll = -z
(tilt to the subject's left shoulder) of ``clip.head_pose``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..channels import canonical_channel

BLENDSHAPES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
"""The 52 ARKit blendshapes as Live Link Face writes them, in its column order."""
ROTATIONS: tuple[str, ...] = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                              "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount") + BLENDSHAPES + ROTATIONS
BLENDSHAPE_COUNT = len(BLENDSHAPES) + len(ROTATIONS)  # 61, as the app writes in every row

# FLAME's frame (x the subject's left, y up, z forward) -> Unreal's (X into the face, Y, Z up).
_TO_UNREAL = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF.000`` of a whole frame number at the nominal rate round(fps) (non-drop)."""
    rate = max(1, round(fps))
    seconds, frames = divmod(int(frame), rate)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}.000"


def yaw_pitch_roll(axis_angle: np.ndarray) -> np.ndarray:
    """FLAME-frame rotations (T, 3) axis-angle radians -> (T, 3) Live Link yaw, pitch, roll radians.

    The rotation is taken to Unreal's axes (:data:`_TO_UNREAL`) and read as an FRotator
    (Unreal's ``FRotationMatrix``: X axis image (cos P cos Y, cos P sin Y, sin P)).
    """
    from ..flame.geometry import axis_angle_to_matrix

    rotation = axis_angle_to_matrix(np.asarray(axis_angle, np.float64).reshape(-1, 3))  # (T, 3, 3)
    unreal = _TO_UNREAL @ rotation @ _TO_UNREAL.T
    x_axis, y_axis, z_axis = unreal[:, :, 0], unreal[:, :, 1], unreal[:, :, 2]
    pitch = np.arcsin(np.clip(x_axis[:, 2], -1.0, 1.0))
    yaw = np.arctan2(x_axis[:, 1], x_axis[:, 0])
    roll = np.arctan2(-y_axis[:, 2], z_axis[:, 2])
    return np.stack([yaw, pitch, roll], axis=1)


def eye_poses(clip, avatar=None) -> tuple[np.ndarray, np.ndarray]:
    """The clip's eye rotations from its eyeLook channels: ((T, 3) left, (T, 3) right) axis-angle,
    radians, FLAME frame, as the default avatar's eyeballs turn (25° up/down, 30° in/out at
    weight 1; :func:`core.flame.rigmap.eye_rotations`)."""
    from ..flame.avatar import default_avatar
    from ..flame.rigmap import eye_rotations

    rotations, _ = eye_rotations(avatar if avatar is not None else default_avatar(), tuple(clip.channels))
    eyes = np.asarray(clip.weights, np.float64) @ rotations  # (T, 6)
    return eyes[:, :3], eyes[:, 3:]


def rows(clip, avatar=None) -> list[list[str]]:
    """The CSV's rows, header first: one row per clip frame.

    Blendshapes are the clip's channels by name (``EyeBlinkLeft`` is ``eyeBlink_L``), clipped to
    [0, 1]; a channel the clip lacks is 0. Rotations as the module docstring says; a clip without
    ``head_pose`` has a still head (0).
    """
    index = {canonical_channel(name): k for k, name in enumerate(clip.channels)}
    weights = np.clip(np.asarray(clip.weights, np.float64), 0.0, 1.0)
    columns = np.zeros((clip.num_frames, len(BLENDSHAPES)))
    for j, name in enumerate(BLENDSHAPES):
        k = index.get(canonical_channel(name))
        if k is not None:
            columns[:, j] = weights[:, k]
    head = clip.head_pose if clip.head_pose is not None else np.zeros((clip.num_frames, 3))
    left, right = eye_poses(clip, avatar)
    angles = np.concatenate([yaw_pitch_roll(head), yaw_pitch_roll(left), yaw_pitch_roll(right)], axis=1)
    first = round(clip.audio_offset * clip.fps)
    out = [list(HEADER)]
    for i in range(clip.num_frames):
        out.append([timecode(first + i, clip.fps), str(BLENDSHAPE_COUNT)]
                   + [f"{v:.10f}" for v in columns[i]] + [f"{v:.10f}" for v in angles[i]])
    return out


def write(clip, path: str | Path, avatar=None) -> Path:
    """Write the clip's Live Link Face CSV to exactly ``path`` (callers write to a temporary name
    and rename: :mod:`core.outputs`).

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    with open(path, "w", newline="", encoding="ascii") as f:
        csv.writer(f, lineterminator="\n").writerows(rows(clip, avatar))
    return path


def read(path: str | Path) -> dict[str, np.ndarray]:
    """Read a Live Link Face CSV back: {column: (T,) values}, ``Timecode`` as strings, the rest
    as float64. For round trips and tests.

    Raises:
        OSError: the file cannot be read; ValueError: a malformed number.
    """
    with open(path, newline="", encoding="ascii") as f:
        header, *body = list(csv.reader(f))
    data = {name: np.array([row[j] for row in body]) for j, name in enumerate(header)}
    for name in header[1:]:
        data[name] = data[name].astype(np.float64)
    return data
