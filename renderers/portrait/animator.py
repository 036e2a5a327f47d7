"""PortraitAnimator: a photo moved, frame by frame, by the default avatar's own 3D motion.

Per photo (once): find the face (:mod:`.face`), fit the avatar to it (:mod:`.fit`): a camera,
the photo's own expression at rest and a 2D correction for this person's shape. Then

* ``source`` = where each avatar vertex lies in the photo (its rest projection plus the
  correction);
* the photo's skin with its eye and mouth openings filled in from the surrounding skin
  (``cv2.inpaint``, Telea's method): the colour of a lid or lip that the photo does not show;
* the head region (the avatar's head silhouette grown by :data:`HAIR_MARGIN` eye spans for hair,
  fading out over :data:`FADE_MARGIN` more) outside which nothing ever moves;
* a colour transfer for what the photo never shows (teeth, gums, tongue): the avatar's whites
  matched in Lab to the photo's (its teeth when it shows them, else the whites of its eyes, no
  darker than its skin says; :mod:`.mouth`).

Per frame: the avatar posed by the clip (blendshape weights and the head rotation) is projected
through the same camera with the same correction (``target``), rasterised with a z-buffer
(:mod:`.raster`), and every pixel covered by skin or eyeball takes the photo's colour at the
same point of the same triangle at rest: a piecewise-affine warp through ``cv2.remap``, exact
per triangle, so lips part and meet where the avatar's do (displacement = project(avatar posed
by the clip) − project(avatar at the photo's rest expression)). Skin that the photo hid at rest
(a lid closing over the eye, a lip rolling out) takes the filled-in skin; the teeth, gums, tongue
and the mouth's lining (with the band where the lips turn inwards) are painted from the avatar
(:func:`shading.paint`) at 3 x 3 sub-pixels a pixel, colour-matched and shaded with depth
behind the front teeth, except where the photo itself showed the same surface at rest. Pixels
outside the avatar but inside the head region follow the avatar's nearest motion: the displacement at the avatar's edge carried outwards (:func:`warp.push_pull`) and faded
out towards the background. Method: the 3D-aware reenactment route (a face
model's motion, not 2D landmarks, drives the warp) as in Blanz & Vetter-style expression
transfer; the piecewise-affine warp on a mesh raster as in Active Appearance Models (Cootes et
al., 2001).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ...core.flame.geometry import axis_angle_to_matrix
from .correspondence import correspondence
from .face import EYE_LOWER, EYE_UPPER, FaceReader, check_photo, detect_face, inner_lip_gap
from .fit import fit_portrait
from .mesh import EYEBALL, INTERIOR, MOUTH_INNER, SKIN, AvatarMesh
from .raster import Rasterizer
from .mouth import MIN_TEETH_PX, mouth_colour
from .shading import paint, vertex_normals
from .warp import push_pull

HAIR_MARGIN = 0.45
"""Eye spans around the avatar's head silhouette that still move fully with the head (hair)."""
FADE_MARGIN = 0.35
"""Eye spans over which the head's motion fades out into the still background."""
WINDOW_MARGIN = 0.1
"""Eye spans of room below the chin for the jaw to open into."""
STRETCH = (1.3, 2.0)
"""Area ratios (frame / photo) over which stretched skin gives way to the filled-in skin."""
MOUTH_SHADOW_METRES = 0.15
"""Depth behind the front teeth over which the mouth's inside darkens by a factor e (its own
shadow, as posed). Mild, since the avatar's palettes already darken the lining, teeth and tongue
towards the back by their depth at rest (``flame_assets/paint.py``): at 60 mm the two together
left a wide-open mouth a dark hole; the throat is dark by its own colour."""
INNER_LIP_OPEN_METRES = 0.003
"""Inner-lip opening beyond the photo's own over which the inner lips give up the photo's pixels
for the avatar's: in a closed-mouth photo they are the lip seam, which opened reads as a pale ring."""
LID_TEXTURE_BELOW = 0.25
LID_TEXTURE_PX = 1.5
LID_TEXTURE_GAIN = 0.5
"""The filled-in skin's texture: the frame's own detail (above a Gaussian of this many pixels)
from this many eye spans below it (under the eye, past the lower lashes), at this strength.
Flat, a closed lid read as a patch pasted over the eye (two blind viewers, on Grace Hopper);
at full strength MediaPipe read her closed eyes as 0.56 open, at half 0.43."""
TEETH_PATCH_PX = 9
"""Smallest patch of the photo's own teeth (pixels) kept in a frame."""
TEETH_UNDER_LIPS = 0.06
"""Eye spans from the mouth opening at rest within which the photo's pixels that look like its
teeth, not its lips, are taken for teeth although the fitted lips cover them: the avatar's upper
lip sits 2-3 px low on the astronaut's smile, and as her mouth closed those rows of teeth rode
down with the lip as a dotted white line in the lip seam (two blind viewers)."""
LASH_WIDTH = 0.03
"""The closed eye's lash line, in eye spans."""
LASH_STRENGTH = 0.9
EDGE_PX = 1.2
"""Gaussian sigma (pixels) softening the edges of painted regions."""
MOUTH_SUPERSAMPLE = 3
"""Sub-pixels per pixel side at which the mouth is painted, then averaged (odd: the middle
sub-pixel is the pixel's centre). Sampled once per pixel, a tooth a pixel or two tall came out as
a row of specks, and blurred to hide them the teeth went grey (the open mouth read as "a dark
oval, no teeth" to blind viewers)."""
MOUTH_RASTER_METRES = 0.035
"""The supersampled raster draws the mouth's inside and the face within this distance of the
mouth opening's centre at rest (the lips and cheeks that can hide it), not the whole head."""


@dataclass(frozen=True)
class _Window:
    x0: int
    y0: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y0 + self.h), slice(self.x0, self.x0 + self.w)


class PortraitAnimator:
    """Animates one portrait photo with AnimationClips (or raw avatar weights).

    Args:
        photo: a path to a PNG/JPEG or an (H, W, 3) uint8 RGB array with one face.
        avatar: the avatar whose motion drives the photo (the default avatar when None).
        reader: an open :class:`~.face.FaceReader` to reuse.
        backend: the rasteriser's ('auto', 'gl' or 'numpy'; :class:`~.raster.Rasterizer`).

    Attributes:
        photo: (H, W, 3) uint8 the photo as animated.
        fit: the :class:`~.fit.PortraitFit` (camera, rest expression, correction, MediaPipe's reading).
        mesh: the :class:`~.mesh.AvatarMesh` that drives it.
        rest_weights: (S,) float32 the photo's rest expression as avatar blendshape weights.
        source: (N, 2) float64 where each stacked avatar vertex lies in the photo, pixels.
        window: the box (x0, y0, w, h) of the photo that frames may touch.
        head_region: (H, W) bool, the only pixels any frame may change.

    Raises:
        PortraitError: the photo has no face, several faces, a tiny face or a profile view, or
            is not an image.
        ModelFileError: a missing avatar or correspondence file.
    """

    def __init__(self, photo, avatar=None, reader: FaceReader | None = None, backend: str = "auto"):
        from ...core.flame.avatar import default_avatar

        self.photo = check_photo(photo)
        reading = detect_face(self.photo, reader)
        self.mesh = AvatarMesh.of(avatar if avatar is not None else default_avatar())
        self.corr = correspondence(self.mesh.avatar)
        self.fit = fit_portrait(reading, self.mesh, self.corr, self.mesh.to_avatar)
        self.rest_weights = self.fit.rest @ self.mesh.to_avatar  # (S,)
        rest = self.mesh.posed(self.rest_weights)
        self.source, self.rest_depth = self._project(rest)
        self.normals = vertex_normals(rest, self.mesh.faces)
        span = reading.eye_span
        self.window = self._window(span)
        self.raster = Rasterizer(self.mesh.faces, (self.window.w, self.window.h), backend)
        origin = (self.window.x0, self.window.y0)
        r = self.raster(self.source, self.rest_depth, origin)
        kind = np.where(r.covered, self.mesh.kind[np.maximum(r.triangle, 0)], -1)
        self._under_lips = self._teeth_under_lips(kind, r.triangle, span)
        self.fill, self.hidden = self._hidden_at_rest(kind, r.triangle, span)
        self.rest_triangle = r.triangle  # which triangle the photo shows at each pixel of the window
        self.exterior_weight, self.head_region = self._head_region(r.covered, span)
        self._lid_rest = {side: self._lids(rest, side) for side in "LR"}
        self._lash_px = max(1, int(round(span * LASH_WIDTH)))
        self.colour = mouth_colour(self.mesh, rest, self.fit.camera.rotation, self.photo, r)
        self._grid = np.stack(np.meshgrid(np.arange(self.window.w, dtype=np.float32) + self.window.x0,
                                          np.arange(self.window.h, dtype=np.float32) + self.window.y0), axis=-1)
        self._origin = np.array(origin, np.float32)
        # per-triangle tables with a last row for "no triangle" (raster id -1)
        self._kind = np.append(self.mesh.kind, -1).astype(np.int8)
        self._teeth = np.unique(self.mesh.faces[self.mesh.teeth])  # the teeth's vertices
        self._lip_gap_rest = self._lip_gap(rest)
        self._corners = np.concatenate([self.source[self.mesh.faces], np.zeros((1, 3, 2))]).astype(np.float32)
        centre = rest[self.mesh.faces[self.mesh.kind == MOUTH_INNER]].reshape(-1, 3).mean(axis=0)
        near = np.linalg.norm(rest - centre, axis=1) < MOUTH_RASTER_METRES
        self._mouth_faces = np.flatnonzero(near[self.mesh.faces].any(axis=1) | (self.mesh.kind == INTERIOR))
        self._mouth_raster = None  # made at the first open mouth, grown with it

    # --- per photo ---------------------------------------------------------------------------

    def _project(self, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, depth = self.fit.camera.project(vertices)
        return points + self.fit.correction, depth

    def _hidden_at_rest(self, kind: np.ndarray, triangle: np.ndarray, span: float):
        """What the photo hides at rest, from the rest raster (window-sized arrays):

        * ``fill`` (H, W, 3) uint8: the photo with its eyes painted in the colour of the upper
          lid's skin (the brighter half of a band above each eye's lashes) and its mouth opening filled
          from the lips around it (``cv2.inpaint``, Telea): for skin that a frame uncovers, or
          stretches far beyond the pixels the photo has of it (a lid closing over the eye);
        * ``hidden`` (h, w) float32 in [0, 1]: where that is (softened); the photo's teeth under
          the fitted lips (:meth:`_teeth_under_lips`) are filled too, but not hidden.
        """
        import cv2

        win = self.window
        crop = self.photo[win.slices]
        fill = crop.copy()
        self._lash_colour = {}
        faces = self.mesh.avatar.faces
        grow = max(1, int(round(span * 0.02)))
        for side in ("eyeball_L", "eyeball_R"):
            on_eye = np.zeros(kind.shape, bool)
            eye_tri = kind == EYEBALL
            on_eye[eye_tri] = self.mesh.avatar.masks[side][faces[triangle[eye_tri], 0]]
            if not on_eye.any():
                continue
            eye = cv2.dilate(on_eye.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8))
            outer = cv2.dilate(eye, np.ones((4 * grow + 1,) * 2, np.uint8))
            # the lid's skin: a ring around the lashes, its brighter half (not the crease's
            # shadow, brows or a spectacle frame; above the eye alone, Hopper's frame darkened it)
            near = cv2.dilate(eye, np.ones((4 * grow + 1,) * 2, np.uint8))
            far = cv2.dilate(eye, np.ones((10 * grow + 1,) * 2, np.uint8))
            band = (far > 0) & (near == 0)
            if band.sum() >= 4:
                lid = crop[band].astype(np.float32)
                luma = lid @ np.array([0.299, 0.587, 0.114], np.float32)
                fill[outer > 0] = np.median(lid[luma >= np.median(luma)], axis=0).astype(np.uint8)
            lashes = crop[on_eye].astype(np.float32)
            self._lash_colour[side] = np.percentile(lashes, 10, axis=0)
        mouth = cv2.dilate(np.isin(kind, (MOUTH_INNER, INTERIOR)).astype(np.uint8), np.ones((3, 3), np.uint8))
        mouth |= (self._under_lips > 0.5).astype(np.uint8)
        if mouth.any():
            fill = cv2.inpaint(fill, mouth, max(3.0, span / 25), cv2.INPAINT_TELEA)
        hidden = np.isin(kind, (EYEBALL, MOUTH_INNER, INTERIOR)).astype(np.float32)
        full = self.photo.copy()
        full[win.slices] = fill
        return full, cv2.GaussianBlur(hidden, (0, 0), EDGE_PX)

    def _teeth_under_lips(self, kind: np.ndarray, triangle: np.ndarray, span: float) -> np.ndarray:
        """(h, w) float32 in [0, 1], softened: the photo's teeth that its fitted lips cover at rest
        (the lips' pixels within :data:`TEETH_UNDER_LIPS` of the opening whose Lab colour lies
        nearer the median of the teeth it shows than of its lips); zeros when it shows fewer than
        ``MIN_TEETH_PX`` teeth."""
        import cv2

        covered = triangle >= 0
        teeth = covered & self.mesh.teeth[np.maximum(triangle, 0)]
        lips = covered & self.mesh.lips[np.maximum(triangle, 0)]
        out = np.zeros(kind.shape, np.float32)
        if teeth.sum() < MIN_TEETH_PX or not lips.any():
            return out
        reach = max(1, int(round(TEETH_UNDER_LIPS * span)))
        opening = np.isin(kind, (MOUTH_INNER, INTERIOR)).astype(np.uint8)
        near = (cv2.dilate(opening, np.ones((2 * reach + 1,) * 2, np.uint8)) > 0) & (kind == SKIN)
        lab = cv2.cvtColor(self.photo[self.window.slices], cv2.COLOR_RGB2Lab).astype(np.float32)
        to_teeth = np.linalg.norm(lab - np.median(lab[teeth], axis=0), axis=-1)
        to_lips = np.linalg.norm(lab - np.median(lab[lips], axis=0), axis=-1)
        out[near & (to_teeth < to_lips)] = 1.0
        return cv2.GaussianBlur(out, (0, 0), EDGE_PX)

    def _window(self, span: float) -> _Window:
        """The box every frame may touch: the head's silhouette grown by the hair and fade margins."""
        h, w = self.photo.shape[:2]
        head = self.source[self.mesh.head_weight > 0]
        grow = (HAIR_MARGIN + FADE_MARGIN + WINDOW_MARGIN) * span
        lo = np.floor(head.min(axis=0) - grow).astype(int)
        hi = np.ceil(head.max(axis=0) + grow).astype(int)
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, (w, h))
        return _Window(int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1]))

    def _head_region(self, covered: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray]:
        """(h, w) float32 weight of the head's rigid motion off the avatar, and (H, W) bool region."""
        import cv2

        head = self.source[self.mesh.head_weight > 0.5] - (self.window.x0, self.window.y0)
        hull = cv2.convexHull(head.astype(np.float32)).astype(np.int32)
        inside = np.zeros((self.window.h, self.window.w), np.uint8)
        cv2.fillConvexPoly(inside, hull, 1)
        outside_dist = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
        t = np.clip((outside_dist - HAIR_MARGIN * span) / (FADE_MARGIN * span), 0.0, 1.0)
        weight = (1.0 - t * t * (3 - 2 * t)).astype(np.float32)
        region = np.zeros(self.photo.shape[:2], bool)
        region[self.window.slices] = (weight > 0) | covered
        return weight, region

    # --- per frame ---------------------------------------------------------------------------

    def frame(self, weights: np.ndarray, head_pose: np.ndarray | None = None) -> np.ndarray:
        """One frame: avatar blendshape weights (S,) and a head pose (3,) axis-angle radians
        (None: still) -> (H, W, 3) uint8 RGB, the photo's size."""
        import cv2

        v = self.mesh.posed(weights, head_pose)
        target, depth = self._project(v)
        win = self.window
        r = self.raster(target, depth, (win.x0, win.y0))
        tri = r.triangle  # -1 (no triangle) picks the tables' last row
        kind = self._kind[tri]
        warped = kind >= 0  # every avatar pixel has a source point; the painted kinds may use it
        source = np.einsum("hwk,hwkc->hwc", r.bary, self._corners[tri])  # where each pixel was in the photo
        shift = source - self._grid  # backward displacement, frame -> photo
        # off the avatar: the avatar edge's displacement carried outwards and faded (no tear at the edge)
        outside = push_pull(shift, warped) * self.exterior_weight[..., None]
        maps = self._grid + np.where(warped[..., None], shift, outside)
        # bicubic: bilinear at the warp's fractional offsets kept 60 % of the photo's fine detail
        # (Laplacian variance of the face), bicubic 85 %, for 3 ms a frame
        out = cv2.remap(self.photo, maps, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        local = maps - self._origin
        # skin the photo hid at rest (a lid closing, a lip rolling out) or has too few pixels of
        # (the lid's few rows stretched over the eye): the filled-in skin
        stretch = np.append(self._stretch(target), 0.0)[tri]
        gap = self._lip_gap(v)
        # the photo's teeth under its lips give way to the filled-in lip as the mouth closes
        closing = np.clip((self._lip_gap_rest - gap) / INNER_LIP_OPEN_METRES, 0.0, 1.0)
        hidden = self.hidden if closing == 0 else np.maximum(self.hidden, closing * self._under_lips)
        revealed = np.maximum(cv2.remap(hidden, local, None, cv2.INTER_LINEAR, borderValue=0.0),
                              np.clip((stretch - STRETCH[0]) / (STRETCH[1] - STRETCH[0]), 0.0, 1.0))
        revealed = cv2.GaussianBlur(revealed * (kind == SKIN), (0, 0), EDGE_PX)
        rows, cols = np.nonzero(revealed > 1e-3)
        if len(rows):
            box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
            fill = cv2.remap(self.fill, maps[box], None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            # the filled-in skin is flat (any texture it had would stretch with the lid's few
            # rows): the fine detail of this frame's skin below it, in grey, gives it a surface
            below = max(1, int(round(LID_TEXTURE_BELOW * self.fit.reading.eye_span)))
            grey = out[box[0].start + below:box[0].stop + below, box[1]].mean(axis=2)
            detail = np.zeros(fill.shape[:2], np.float32)
            if len(grey):  # none when the box reaches the window's foot
                detail[:len(grey)] = grey - cv2.GaussianBlur(grey, (0, 0), LID_TEXTURE_PX)
            out[box] += revealed[box][..., None] * (fill + LID_TEXTURE_GAIN * detail[..., None] - out[box])
        self._draw_lashes(out, v)
        painted = (kind == MOUTH_INNER) | (kind == INTERIOR)
        if painted.any():
            out = self._paint_mouth(out, v, r, target, depth, painted, local, head_pose, gap)
        frame = self.photo.copy()
        np.copyto(frame[win.slices], np.clip(out + 0.5, 0, 255).astype(np.uint8),
                  where=self.head_region[win.slices][..., None])
        return frame

    def _lids(self, v: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """The upper and lower lid margins of one eye ('L' or 'R') on posed vertices ``v``, as
        image points (MediaPipe's lid landmarks on the avatar, through the camera and correction)."""
        faces = self.mesh.avatar.faces
        out = []
        for marks in (EYE_UPPER[side], EYE_LOWER[side]):
            tri, bary = self.corr.triangle[list(marks)], self.corr.bary[list(marks)]
            points, _ = self.fit.camera.project(np.einsum("lk,lkc->lc", bary, v[faces[tri]]))
            out.append(points + np.einsum("lk,lkc->lc", bary, self.fit.correction[faces[tri]]))
        return out[0], out[1]

    def _draw_lashes(self, out: np.ndarray, v: np.ndarray) -> None:
        """A closing eye's lash line: the photo's darkest lash colour along the avatar's upper lid
        margin, as strong as the eye is shut (a closed eye is skin over a dark seam, which is what
        makes it read as closed)."""
        import cv2

        for side, eyeball in (("L", "eyeball_L"), ("R", "eyeball_R")):
            if eyeball not in self._lash_colour:
                continue
            up, down = self._lids(v, side)
            rest_up, rest_down = self._lid_rest[side]
            gap = np.linalg.norm(up[2:-2] - down[2:-2], axis=1).mean()
            rest_gap = max(np.linalg.norm(rest_up[2:-2] - rest_down[2:-2], axis=1).mean(), 1e-3)
            shut = float(np.clip(1.0 - gap / rest_gap, 0.0, 1.0)) ** 2
            if shut < 0.05:
                continue
            lo = np.floor(up.min(axis=0)).astype(int) - 3 * self._lash_px
            hi = np.ceil(up.max(axis=0)).astype(int) + 3 * self._lash_px
            lo = np.maximum(lo - (self.window.x0, self.window.y0), 0)
            hi = np.minimum(hi - (self.window.x0, self.window.y0), (self.window.w, self.window.h))
            if np.any(hi <= lo):
                continue
            mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
            line = np.rint((up - (self.window.x0, self.window.y0) - lo) * 4).astype(np.int32)  # 2 bits of subpixel
            cv2.polylines(mask, [line], False, 255, self._lash_px, cv2.LINE_AA, shift=2)
            alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.5 * self._lash_px) * shut * LASH_STRENGTH
            patch = out[lo[1]:hi[1], lo[0]:hi[0]]
            patch += alpha[..., None] * (self._lash_colour[eyeball] - patch)

    def _paint_mouth(self, out, v, r, target, depth, painted, local, head_pose, gap):
        """The avatar's mouth, lit, darkened with depth into the mouth and colour-matched, except
        where it shows what the photo itself showed at rest (its teeth, which move with the
        avatar's, and the inner lips while the mouth is no more open than the photo's, see
        :data:`INNER_LIP_OPEN_METRES`); painted at :data:`MOUTH_SUPERSAMPLE`, its edge against
        the photo softened."""
        import cv2

        # the mouth's box, with room for the soft edge
        ys, xs = np.nonzero(painted)
        pad = int(np.ceil(3 * EDGE_PX)) + 1
        box = (slice(max(0, ys.min() - pad), ys.max() + 1 + pad), slice(max(0, xs.min() - pad), xs.max() + 1 + pad))
        painted = painted[box]
        tri = r.triangle[box][painted]
        # the photo's own mouth: where this pixel's surface point was the one the photo showed
        h, w = self.rest_triangle.shape
        at = np.rint(local[box][painted]).astype(int)
        inside = (at[:, 0] >= 0) & (at[:, 0] < w) & (at[:, 1] >= 0) & (at[:, 1] < h)
        shown = np.full(len(tri), -1)
        shown[inside] = self.rest_triangle[at[inside, 1], at[inside, 0]]
        same = (shown >= 0) & np.any(
            self.mesh.faces[np.maximum(shown, 0)][:, :, None] == self.mesh.faces[tri][:, None, :], axis=(1, 2))
        opened = np.clip((gap - self._lip_gap_rest) / INNER_LIP_OPEN_METRES, 0.0, 1.0)
        band = self.mesh.kind[tri] == MOUTH_INNER
        teeth = np.zeros(painted.shape, np.uint8)
        teeth[painted] = same & ~band
        # a few scattered pixels of the photo's teeth, left where the avatar's lips now hide
        # most of them, read as grey specks in the dark: only patches of TEETH_PATCH_PX stay
        _, label, stats, _ = cv2.connectedComponentsWithStats(teeth, connectivity=8)
        teeth = (stats[:, cv2.CC_STAT_AREA] >= TEETH_PATCH_PX)[label][painted] & (label[painted] > 0)
        # the avatar's paint where the photo has nothing to show (none: the photo's own mouth)
        need = 1.0 - np.where(band, same * (1.0 - opened), teeth)
        if not need.any():
            return out
        cover = np.zeros(painted.shape, np.float32)
        cover[painted] = need
        colour, sampled = self._mouth_supersampled(v, target, depth, box, cover > 0, head_pose)
        # inside, the supersampled colour; past its edge, carried out over the soft edge
        alpha = cv2.GaussianBlur(cover, (0, 0), EDGE_PX)
        carried = cv2.GaussianBlur(colour * cover[..., None], (0, 0), EDGE_PX) / np.maximum(alpha, 1e-3)[..., None]
        colour = np.where(sampled[..., None], colour, carried)
        out[box] += alpha[..., None] * (colour - out[box])
        return out

    def _mouth_supersampled(self, v, target, depth, box, wanted, head_pose):
        """The avatar's mouth at the ``wanted`` (h, w) pixels of the window's ``box``: each the
        mean of its :data:`MOUTH_SUPERSAMPLE`² sub-pixels that show the mouth (teeth, gums, tongue,
        throat, the lips' inner surfaces), lit, colour-matched and shaded with depth behind the
        front teeth. Returns ((h, w, 3) float32 0-255, (h, w) bool: which pixels have any)."""
        s = MOUTH_SUPERSAMPLE
        h, w = wanted.shape
        x0, y0 = self.window.x0 + box[1].start, self.window.y0 + box[0].start
        have = (0, 0) if self._mouth_raster is None else self._mouth_raster.size
        if have[0] < s * w or have[1] < s * h:
            if self._mouth_raster is not None:
                self._mouth_raster.close()
            # room to open further, and never narrower than before (a box tall one frame and
            # wide the next would make a new OpenGL context every frame)
            size = tuple(max(old, -(-int(1.25 * n) // 16) * 16) for old, n in zip(have, (s * w, s * h)))
            self._mouth_raster = Rasterizer(self.mesh.faces[self._mouth_faces], size, self.raster.backend)
        # sub-pixel k of pixel j has its centre at j + (k + 0.5) / s - 0.5, that is at s j + k
        r = self._mouth_raster(s * (target - (x0, y0)) + (s - 1) / 2, depth)
        triangle = np.append(self._mouth_faces, -1)[r.triangle[: s * h, : s * w]]
        bary = r.bary[: s * h, : s * w]
        kind = self._kind[triangle]
        sub = ((kind == MOUTH_INNER) | (kind == INTERIOR)) & np.repeat(np.repeat(wanted, s, axis=0), s, axis=1)
        tri, bary = triangle[sub], bary[sub]
        normals = self.normals if head_pose is None else self._turned_normals(head_pose)
        lit = paint(self.mesh, v, self.fit.camera.rotation, tri, bary, normals)
        is_teeth = self.mesh.teeth[tri]
        for part, transfer in ((is_teeth, self.colour.teeth), (~is_teeth, self.colour.lining)):
            if part.any():
                lit[part] = transfer(lit[part])
        # the cavity's own shadow, from the teeth's front: light enters past the lips, and a
        # fall-off from the lips' front put the visible teeth in shade and the tongue in black
        behind = np.einsum("nk,nk->n", bary, depth[self.mesh.faces[tri]]) - depth[self._teeth].min()
        lit *= np.exp(-np.maximum(behind, 0.0) / (MOUTH_SHADOW_METRES * self.fit.camera.scale))[:, None]
        total = np.zeros((s * h, s * w, 3), np.float32)
        total[sub] = lit
        total = total.reshape(h, s, w, s, 3).sum(axis=(1, 3))
        count = sub.reshape(h, s, w, s).sum(axis=(1, 3))
        return 255.0 * total / np.maximum(count, 1)[..., None], count > 0

    def _lip_gap(self, v: np.ndarray) -> float:
        """The inner-lip opening of posed stacked vertices ``v``, metres (at MediaPipe's landmarks)."""
        return float(inner_lip_gap(self.corr.points(v[: self.mesh.avatar.num_vertices], self.mesh.avatar.faces)))

    def _stretch(self, target: np.ndarray) -> np.ndarray:
        """(F,) each triangle's area in this frame over its area in the photo."""
        def area(p):
            t = p[self.mesh.faces]
            return np.abs((t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1])
                          - (t[:, 1, 1] - t[:, 0, 1]) * (t[:, 2, 0] - t[:, 0, 0]))
        return area(target) / np.maximum(area(self.source), 1e-3)

    def _turned_normals(self, head_pose: np.ndarray) -> np.ndarray:
        return self.normals @ axis_angle_to_matrix(head_pose)[0].T

    def frames(self, clip) -> Iterator[np.ndarray]:
        """The clip's frames on the photo: one (H, W, 3) uint8 RGB array per clip frame.

        Args:
            clip: an :class:`~emoflame.core.clip.AnimationClip` (``weights`` over ``channels``,
                optional ``head_pose`` (T, 3) radians).

        Raises:
            RigError: the clip has a channel that is not an ARKit name.
        """
        weights = self.mesh.avatar_weights(clip.weights, clip.channels)
        pose = clip.head_pose
        for t in range(len(weights)):
            yield self.frame(weights[t], None if pose is None else pose[t])

    def close(self) -> None:
        """Free the rasterisers' OpenGL contexts."""
        self.raster.close()
        if self._mouth_raster is not None:
            self._mouth_raster.close()
            self._mouth_raster = None
