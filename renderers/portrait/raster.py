"""A z-buffered triangle raster: which triangle covers each pixel, and where in it.

The portrait animator needs, per frame, the triangle ID and barycentric coordinates of every
pixel of the posed avatar seen through the fitted camera: the skin's say where each pixel comes
from in the photo (a piecewise-affine warp, exact and local), the mouth interior's and the
eyeballs' say what to paint.

:class:`Rasterizer` draws them with OpenGL through moderngl (an EGL context without a display;
Mesa's llvmpipe on a machine without a GPU): 24,480 triangles into a 512² ID and barycentric
buffer, read back, in 6-7 ms here. Where no OpenGL context can be made it falls back to
:func:`rasterize`, the same buffers in numpy (every triangle's bounding-box pixels enumerated
at once, edge functions, one ``np.minimum.at`` on a packed (depth, triangle) key): about 190 ms
for the same frame. Pixel (row i, column j) has its centre at x = j, y = i, the convention of
``cv2.remap``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

NO_TRIANGLE = -1
_ID_BITS = 24                      # triangle ids below 2**24 (16.7 M) fit beside a 38-bit depth
_DEPTH_LEVELS = (1 << 38) - 1
_CHUNK = 1 << 21                   # candidate pixels held at once (about 100 MB of temporaries)


@dataclass(frozen=True)
class Raster:
    """The nearest triangle at each pixel of a window of the image.

    Attributes:
        x0, y0: the window's top-left pixel in the image.
        triangle: (h, w) int32 index into the faces given, or ``NO_TRIANGLE``.
        bary: (h, w, 3) float32 barycentric coordinates of the pixel centre in that triangle
            (zeros where there is none).
    """

    x0: int
    y0: int
    triangle: np.ndarray
    bary: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.triangle.shape

    @property
    def covered(self) -> np.ndarray:
        """(h, w) bool: a triangle covers the pixel."""
        return self.triangle != NO_TRIANGLE

    def interpolate(self, values: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-vertex ``values`` (V, C) at every covered pixel -> (h, w, C) float32 (0 elsewhere)."""
        values = np.asarray(values, np.float32)
        out = np.zeros(self.shape + values.shape[1:], np.float32)
        hit = self.covered
        corners = values[faces[self.triangle[hit]]]  # (n, 3, C)
        out[hit] = np.einsum("nk,nk...->n...", self.bary[hit], corners)
        return out


def rasterize(points: np.ndarray, depth: np.ndarray, faces: np.ndarray, window: tuple[int, int, int, int],
              cull_back: bool = True) -> Raster:
    """Rasterise triangles with a z-buffer (nearest wins) inside a window of the image.

    Args:
        points: (V, 2) float image positions, pixels (x right, y down).
        depth: (V,) float distance from the camera (larger is farther), any unit.
        faces: (F, 3) int vertex indices; front faces run clockwise on the image (y down), as a
            mesh whose triangles run counter-clockwise seen from outside in a y-up frame does.
        window: (x0, y0, width, height) in pixels; only pixels inside are drawn.
        cull_back: drop triangles seen from behind.

    Returns:
        The :class:`Raster` of the window.
    """
    x0, y0, w, h = (int(v) for v in window)
    points = np.asarray(points, np.float64)
    depth = np.asarray(depth, np.float64)
    faces = np.asarray(faces, np.int64)
    tri = points[faces]  # (F, 3, 2)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo = np.ceil(tri.min(axis=1)).astype(np.int64)    # (F, 2) first pixel centre inside the box
    hi = np.floor(tri.max(axis=1)).astype(np.int64)
    lo = np.maximum(lo, (x0, y0))
    hi = np.minimum(hi, (x0 + w - 1, y0 + h - 1))
    keep = np.all(hi >= lo, axis=1) & (np.abs(area) > 1e-12)
    if cull_back:
        keep &= area < 0  # clockwise on a y-down image
    ids = np.flatnonzero(keep)
    zbuf = np.full(w * h, np.iinfo(np.int64).max, np.int64)
    if len(ids):
        d = depth[faces[ids]]
        d_lo, d_hi = float(d.min()), float(d.max())
        scale = _DEPTH_LEVELS / max(d_hi - d_lo, 1e-12)
        widths = hi[ids, 0] - lo[ids, 0] + 1
        counts = widths * (hi[ids, 1] - lo[ids, 1] + 1)
        ends = np.cumsum(counts)
        start = 0
        while start < len(ids):
            done = ends[start - 1] if start else 0
            stop = max(int(np.searchsorted(ends, done + _CHUNK, side="right")), start + 1)
            _draw(zbuf, tri, area, depth, faces, ids[start:stop], lo, widths[start:stop], counts[start:stop],
                  x0, y0, w, d_lo, scale)
            start = stop
    hit = zbuf != np.iinfo(np.int64).max
    triangle = np.full(w * h, NO_TRIANGLE, np.int32)
    triangle[hit] = (zbuf[hit] & ((1 << _ID_BITS) - 1)).astype(np.int32)
    bary = np.zeros((w * h, 3), np.float32)
    pix = np.flatnonzero(hit)
    bary[pix] = _barycentric(tri[triangle[pix]], area[triangle[pix]], pix % w + x0, pix // w + y0)
    return Raster(x0, y0, triangle.reshape(h, w), bary.reshape(h, w, 3))


def _draw(zbuf, tri, area, depth, faces, ids, lo, widths, counts, x0, y0, w, d_lo, scale) -> None:
    """Enumerate the candidate pixels of triangles ``ids`` and keep the nearest per pixel in ``zbuf``."""
    owner = np.repeat(np.arange(len(ids)), counts)
    local = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    f = ids[owner]
    px = lo[f, 0] + local % widths[owner]
    py = lo[f, 1] + local // widths[owner]
    bary = _barycentric(tri[f], area[f], px, py)
    inside = np.all(bary >= -1e-9, axis=1)
    f, px, py, bary = f[inside], px[inside], py[inside], bary[inside]
    z = np.einsum("nk,nk->n", bary, depth[faces[f]])
    key = (np.clip((z - d_lo) * scale, 0, _DEPTH_LEVELS).astype(np.int64) << _ID_BITS) | f
    np.minimum.at(zbuf, (py - y0) * w + (px - x0), key)


def _barycentric(tri: np.ndarray, area: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """(n, 3, 2) triangles, (n,) signed doubled areas, pixel centres (n,) -> (n, 3) barycentric."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    w_a = (b[:, 0] - px) * (c[:, 1] - py) - (b[:, 1] - py) * (c[:, 0] - px)
    w_b = (c[:, 0] - px) * (a[:, 1] - py) - (c[:, 1] - py) * (a[:, 0] - px)
    out = np.stack([w_a, w_b], axis=1) / area[:, None]
    return np.column_stack([out, 1.0 - out.sum(axis=1)])


_VERTEX_SHADER = """
#version 330
uniform vec2 origin;
uniform vec2 size;
uniform vec2 depth_range;
in vec3 position;
in vec2 corner;
noperspective out vec2 v_corner;
void main() {
    v_corner = corner;
    vec2 window = position.xy - origin + 0.5;  // pixel centres at integer image coordinates
    float z = (position.z - depth_range.x) / (depth_range.y - depth_range.x);
    gl_Position = vec4(window / size * 2.0 - 1.0, z * 2.0 - 1.0, 1.0);
}
"""
_FRAGMENT_SHADER = """
#version 330
noperspective in vec2 v_corner;
layout(location = 0) out int triangle;
layout(location = 1) out vec2 bary;
void main() {
    triangle = gl_PrimitiveID + 1;  // 0 is the cleared background
    bary = v_corner;
}
"""


class Rasterizer:
    """Rasterises one triangle list (fixed at construction) into windows of one size, many times.

    Args:
        faces: (F, 3) int vertex indices, front faces clockwise on the image (see :func:`rasterize`).
        size: (width, height) of every window drawn, pixels.
        backend: 'auto' (OpenGL where a context can be made, else numpy), 'gl' or 'numpy'.

    Raises:
        RuntimeError: ``backend='gl'`` and no OpenGL 3.3 context can be made.
    """

    def __init__(self, faces: np.ndarray, size: tuple[int, int], backend: str = "auto"):
        self.faces = np.asarray(faces, np.int64)
        self.size = (int(size[0]), int(size[1]))
        self._gl = None
        if backend in ("auto", "gl"):
            try:
                self._gl = _GLRaster(self.faces, self.size)
            except Exception as exc:  # moderngl missing, no EGL/GL driver: both raise their own types
                if backend == "gl":
                    raise RuntimeError(f"no OpenGL 3.3 context for the rasteriser ({exc})") from exc
                log.info("OpenGL rasteriser unavailable (%s); using numpy (about 30x slower)", exc)
        self.backend = "gl" if self._gl is not None else "numpy"

    def __call__(self, points: np.ndarray, depth: np.ndarray, origin: tuple[int, int] = (0, 0)) -> Raster:
        """The :class:`Raster` of the window at ``origin`` (x0, y0) for vertices ``points`` (V, 2)
        pixels and ``depth`` (V,) (larger is farther)."""
        if self._gl is not None:
            return self._gl.draw(points, depth, origin)
        return rasterize(points, depth, self.faces, (*origin, *self.size))

    def close(self) -> None:
        """Free the OpenGL context (the numpy path holds nothing)."""
        if self._gl is not None:
            self._gl.release()
            self._gl = None


class _GLRaster:
    """The OpenGL path: unindexed triangles carrying their corners' barycentric coordinates, the
    primitive ID and the interpolated coordinates written to integer and float buffers."""

    def __init__(self, faces: np.ndarray, size: tuple[int, int]):
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(require=330)
        except Exception:  # no display: a headless EGL context (Mesa's llvmpipe without a GPU)
            self.ctx = moderngl.create_standalone_context(require=330, backend="egl")
        ctx = self.ctx
        self.faces = faces
        self.size = size
        self.program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.program["size"].value = size
        self.fbo = ctx.framebuffer([ctx.renderbuffer(size, components=1, dtype="i4"),
                                    ctx.renderbuffer(size, components=2, dtype="f4")],
                                   ctx.depth_renderbuffer(size))
        corners = np.tile(np.array([[1, 0], [0, 1], [0, 0]], np.float32), (len(faces), 1))
        self.vertices = ctx.buffer(reserve=len(faces) * 3 * 3 * 4)
        self.corners = ctx.buffer(corners.tobytes())
        self.vao = ctx.vertex_array(self.program, [(self.vertices, "3f", "position"), (self.corners, "2f", "corner")])
        self._moderngl = moderngl

    def draw(self, points: np.ndarray, depth: np.ndarray, origin: tuple[int, int]) -> Raster:
        w, h = self.size
        corners = np.empty((len(self.faces), 3, 3), np.float32)  # (F, corner, xyz)
        corners[..., :2] = np.asarray(points, np.float32)[self.faces]
        corners[..., 2] = np.asarray(depth, np.float32)[self.faces]
        lo, hi = float(corners[..., 2].min()), float(corners[..., 2].max())
        pad = max(hi - lo, 1e-6) * 0.01
        # made current for this draw: a second rasteriser in the process (another portrait) made
        # its own context current, and this one's calls went to it
        with self.ctx:
            self.program["origin"].value = (float(origin[0]), float(origin[1]))
            self.program["depth_range"].value = (lo - pad, hi + pad)
            self.vertices.write(corners.tobytes())
            self.fbo.use()
            self.fbo.clear(depth=1.0)
            self.ctx.enable(self._moderngl.DEPTH_TEST | self._moderngl.CULL_FACE)
            self.ctx.front_face = "cw"
            self.vao.render(self._moderngl.TRIANGLES)
            triangle = np.frombuffer(self.fbo.read(components=1, attachment=0, dtype="i4"), np.int32).reshape(h, w) - 1
            uv = np.frombuffer(self.fbo.read(components=2, attachment=1, dtype="f4"), np.float32).reshape(h, w, 2)
        bary = np.zeros((h, w, 3), np.float32)
        hit = triangle != NO_TRIANGLE
        bary[..., :2] = uv
        bary[..., 2] = 1.0 - uv[..., 0] - uv[..., 1]
        bary[~hit] = 0.0
        return Raster(int(origin[0]), int(origin[1]), triangle, bary)

    def release(self) -> None:
        with self.ctx:
            for thing in (self.vao, self.vertices, self.corners, self.fbo, self.program):
                thing.release()
        self.ctx.release()
