"""Colour for what the photo never shows: the avatar's teeth, gums and tongue in the photo's light.

The avatar's mouth interior is painted with its own colours (:func:`shading.paint`), then moved
into the photo's exposure and white balance by matching whites in CIE Lab: the photo's teeth
where its mouth shows them at rest, else the whites of its eyes (the brightest
:data:`SCLERA_SHARE` of the eye openings: sclera, not iris or lashes), against the avatar's own
at the same pixels. Eye whites read dark behind tinted lenses (Grace Hopper's: a gain of 0.6
where her skin says 1.0), so with them the lightness gain is at least the face skin's (the
median lightness of the photo's face over the avatar's at the same pixels): the skin cannot
make a dark-skinned face's teeth too dark, since the larger of the two is taken. The lining,
gums and tongue take the same gain and the chroma shift of the photo's lips. Lightness is
scaled (a darker photo gets darker teeth, not greyer ones) and the chroma shifted, each within
bounds so that a misread reference cannot turn teeth black or blue. Reinhard et al., "Color
Transfer between Images" (2001), with the means of a reference region instead of whole images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh import EYEBALL, SKIN
from .shading import paint

MIN_TEETH_PX = 40
"""Visible teeth pixels at rest below which the eyes' whites are the reference instead."""
SCLERA_SHARE = 0.15
LIGHTNESS_GAIN = (0.6, 1.1)
CHROMA_SHIFT = 6.0
"""Bounds of the transfer: lightness gain, and the largest a/b shift (Lab units)."""


@dataclass(frozen=True)
class LabTransfer:
    """RGB -> RGB in [0, 1]: Lab lightness times ``gain``, a and b plus ``shift``."""

    gain: float
    shift: np.ndarray

    @classmethod
    def between(cls, avatar: np.ndarray, photo: np.ndarray) -> "LabTransfer":
        """The transfer taking the mean of ``avatar`` (n, 3) RGB in [0, 1] to that of ``photo`` (m, 3)."""
        a, p = _lab(avatar).mean(axis=0), _lab(photo).mean(axis=0)
        gain = float(np.clip(p[0] / max(a[0], 1.0), *LIGHTNESS_GAIN))
        return cls(gain, np.clip(p[1:] - a[1:], -CHROMA_SHIFT, CHROMA_SHIFT))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        lab = _lab(rgb)
        lab[:, 0] *= self.gain
        lab[:, 1:] += self.shift
        return np.clip(cv2.cvtColor(lab[None].astype(np.float32), cv2.COLOR_Lab2RGB)[0], 0.0, 1.0)


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.asarray(rgb, np.float32).reshape(1, -1, 3), cv2.COLOR_RGB2Lab)[0].astype(np.float64)


@dataclass(frozen=True)
class MouthColour:
    """The transfers into the photo's light: ``teeth`` from the reference whites, ``lining``
    (gums, tongue, throat, the lips' inner surfaces) with the same lightness gain and the chroma
    shift of the photo's lips over the avatar's: mucosa is the lips' colour turned inwards, and
    the whites' shift (the astronaut's warm teeth: a* +6) pushed her tongue to magenta where her
    lips are paler than the avatar's (a* -8)."""

    teeth: LabTransfer
    lining: LabTransfer


def mouth_colour(mesh, vertices: np.ndarray, rotation: np.ndarray, photo: np.ndarray, r) -> MouthColour:
    """The mouth's transfers from the photo at rest: the reference whites (and, with the eyes'
    whites, the face skin's lightness as the gain's floor) and the lips.

    Args:
        mesh: the :class:`~.mesh.AvatarMesh`; vertices: (N, 3) its rest pose; rotation: the
            camera's (3, 3); photo: (H, W, 3) uint8; r: the rest :class:`~.raster.Raster`.
    """
    hit = r.covered
    tri = np.where(hit, r.triangle, 0)
    kind = np.where(hit, mesh.kind[tri], -1)
    is_teeth = hit & mesh.teeth[tri]
    crop = photo[r.y0:r.y0 + r.shape[0], r.x0:r.x0 + r.shape[1]].astype(np.float32) / 255.0

    def at(where):
        ys, xs = np.nonzero(where)
        return paint(mesh, vertices, rotation, r.triangle[ys, xs], r.bary[ys, xs]), crop[ys, xs]

    def on_skin(mask):
        out = np.zeros_like(hit)
        skin = kind == SKIN
        out[skin] = mask[mesh.faces[tri[skin]]].all(axis=1)
        return out

    def median_lab(rgb):
        return np.median(_lab(rgb), axis=0)

    if is_teeth.sum() >= MIN_TEETH_PX:
        whites = LabTransfer.between(*at(is_teeth))
    else:
        ours, theirs = at(kind == EYEBALL)
        eyes = LabTransfer.between(_brightest(ours), _brightest(theirs))
        ours, theirs = at(on_skin(mesh.avatar.masks["face"]))
        skin_gain = median_lab(theirs)[0] / max(median_lab(ours)[0], 1.0)
        whites = LabTransfer(float(np.clip(max(eyes.gain, skin_gain), *LIGHTNESS_GAIN)), eyes.shift)
    ours, theirs = at(hit & mesh.lips[tri])
    lips = np.clip(median_lab(theirs)[1:] - median_lab(ours)[1:], -CHROMA_SHIFT, CHROMA_SHIFT) if len(ours) else whites.shift
    return MouthColour(whites, LabTransfer(whites.gain, lips))


def _brightest(rgb: np.ndarray) -> np.ndarray:
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    return rgb[luma >= np.quantile(luma, 1 - SCLERA_SHARE)] if len(rgb) >= 1 / SCLERA_SHARE else rgb
