"""The refiner's crop: each face warped so that its current shape lands on a fixed template.

The template is the Procrustes mean of the training shapes, centred in a square
crop of ``crop_size`` pixels with the larger side of its tight box spanning
``face_fraction`` of the crop. A face's crop is the similarity taking its
current shape onto the template (least squares over its points), applied to
the image with bilinear sampling; pixels outside the image repeat the border.
Crop coordinates follow the package convention (0-based pixel centres), so
the network's output, a correction in crop pixels divided by ``crop_size``,
maps back to the image by the inverse similarity.

A point-local stage reads no whole crop but one ``patch_size`` square patch
centred on each current point, on the pixel grid of its (never built) crop:
the patches come straight from the image, so their cost does not grow with
the crop.

Pixels in cells
---------------
The networks read their pixels in ``CELL`` x ``CELL`` cells: an ``S x S`` grid
is given as ``(16, S / 4, S / 4)``, channel ``4 dy + dx`` holding the pixel
``(4 cy + dy, 4 cx + dx)`` at ``(cy, cx)`` ("space to depth"). Their first layer
is then a 1 x 1 convolution over 16 channels, which ONNX Runtime runs in int8
many times faster than the 4 x 4 stride-4 convolution of one channel it equals.
The grids are sampled straight into that order, so nothing is rearranged.

Grey
----
Pixels are grey. :func:`grey_faces` turns each colour face's neighbourhood grey
once for all of a refiner's stages; a face too large for that to pay is read in
colour and only its samples are turned grey.
"""
import functools
import math
from typing import NamedTuple

import cv2
import numpy as np

from .pdm import procrustes_align
from .shapes import apply_similarity, similarity_fit

#: The side of the square cells the networks read their pixels in.
CELL = 4
#: How far around a face's shape (a share of its size, each side) its grey neighbourhood reaches:
#: enough for the crop around it, turned by up to 45 degrees, and for the patches.
GREY_MARGIN = 0.5
#: A colour face whose neighbourhood has more pixels than this is not turned grey whole: a big
#: face in a big photo, where converting it costs more than the grey of the samples read.
MAX_GREY_PIXELS = 200_000


def make_template(shapes, crop_size, face_fraction):
    """``(L, 2)`` template in crop pixels from ``(n, L, 2)`` training shapes."""
    _, mean = procrustes_align(shapes)
    mean = mean - (mean.min(axis=0) + mean.max(axis=0)) / 2
    extent = (mean.max(axis=0) - mean.min(axis=0)).max()
    return mean * (face_fraction * crop_size / extent) + (crop_size - 1) / 2


def crop_transforms(shapes, template):
    """Similarities ``(A (n, 2, 2), t (n, 2))`` taking each ``(n, L, 2)`` shape onto the template."""
    return similarity_fit(shapes, np.broadcast_to(template, np.shape(shapes)))


@functools.lru_cache(maxsize=None)
def cell_grid(side):
    """``(2, side * side)`` offsets (x, then y) of a ``side x side`` pixel grid from its centre, in the
    cell order the networks read (see "Pixels in cells"); read-only."""
    cells = side // CELL
    dy, dx, cy, cx = np.meshgrid(*(np.arange(n) for n in (CELL, CELL, cells, cells)), indexing="ij")
    grid = np.stack([(cx * CELL + dx).ravel(), (cy * CELL + dy).ravel()]) - (side - 1) / 2
    grid.flags.writeable = False
    return grid


def sample_grids(images, centres, A, side):
    """Grey ``(n, k, side * side)`` float32 pixels: for each face ``i`` and each of its ``k`` centres
    ``(n, k, 2)`` (image pixels), the :func:`cell_grid` of crop pixels around it, the crop being the
    similarity ``A[i]`` (image -> crop); bilinear, border repeated."""
    n, k = centres.shape[:2]
    steps = (np.linalg.inv(A) @ cell_grid(side)).astype(np.float32)       # (n, 2, G): crop grid -> image
    out = np.empty((n, k, side * side), np.float32)
    for i, image in enumerate(images):
        # one face's maps at a time (they stay in the cache), x and y apart as (k, G) sums
        map_x, map_y = (np.add.outer(centres[i, :, d].astype(np.float32), steps[i, d]).reshape(k * side, side)
                        for d in (0, 1))                  # OpenCV's maps: under 32,767 columns
        sampled = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = (cv2.cvtColor(sampled, cv2.COLOR_BGR2GRAY) if sampled.ndim == 3 else sampled).reshape(k, -1)
    return out


def grey_faces(images, shapes):
    """``(regions, offsets)``: the pixels around each face at the ``(n, L, 2)`` shapes (their tight
    box grown by :data:`GREY_MARGIN` of its larger side each way, clipped to the image), grey, and
    where those regions start in the images, ``(n, 2)``: a shape moves into its region by
    subtracting its offset. A colour region of more than :data:`MAX_GREY_PIXELS` is not converted
    (a view of the image: the samples are turned grey instead). A region OpenCV cannot warp, over
    32,766 pixels on a side, is refused with a ValueError."""
    faces, offsets = [], np.zeros((len(images), 2))
    low, high = np.nanmin(shapes, axis=1), np.nanmax(shapes, axis=1)
    margin = GREY_MARGIN * (high - low).max(axis=1, keepdims=True)
    for i, image in enumerate(images):
        height, width = image.shape[:2]
        left, top = (min(max(math.floor(v), 0), size - 1)
                     for v, size in zip((low[i] - margin[i]).tolist(), (width, height)))
        right, bottom = (min(max(math.ceil(v) + 2, start + 1), size)
                         for v, start, size in zip((high[i] + margin[i]).tolist(), (left, top), (width, height)))
        if max(right - left, bottom - top) >= 2 ** 15 - 1:
            raise ValueError(f"face {i} spans {right - left} x {bottom - top} pixels: too large to refine")
        region = image[top:bottom, left:right]
        if image.ndim == 3 and region.shape[0] * region.shape[1] <= MAX_GREY_PIXELS:
            region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
        faces.append(region)
        offsets[i] = left, top
    return faces, offsets


def to_crop(shapes, A, t):
    """Map ``(n, L, 2)`` shapes from image pixels into their crops."""
    return apply_similarity(shapes, A, t)


def from_crop(crop_shapes, A, t):
    """Map ``(n, L, 2)`` shapes from crop pixels back to image pixels."""
    inverse = np.linalg.inv(A)
    return apply_similarity(crop_shapes, inverse, -np.einsum("nij,nj->ni", inverse, t))


class NetworkInputs(NamedTuple):
    """What a network reads for a batch of faces, and how to go back to the image.

    ``pixels`` float32 grey levels 0-255 in cells (see "Pixels in cells"): the crops
    ``(n, 16, S / 4, S / 4)``, or a local stage's patches ``(n, 16 L, P / 4, P / 4)``;
    ``offsets`` ``(n, L, 2)`` float32, the shapes in the crop minus the template, in crop
    pixels / ``S`` (the shape's own deformation, which the pixels alone do not show);
    ``points`` the shapes in crop pixels (float64); ``A``, ``t`` the similarities
    image -> crop; ``crop_size`` ``S``.
    """

    pixels: np.ndarray
    offsets: np.ndarray
    points: np.ndarray
    A: np.ndarray
    t: np.ndarray
    crop_size: int

    def corrected(self, corrections):
        """Image-pixel shapes once the points move by ``corrections`` (crop pixels / ``S``)."""
        moved = self.points + np.asarray(corrections, dtype=np.float64) * self.crop_size
        return from_crop(moved, self.A, self.t)


def network_inputs(images, shapes, template, crop_size, patch_size=None):
    """The :class:`NetworkInputs` of faces at ``(n, L, 2)`` shapes: whole crops, or with a
    ``patch_size`` the patches around the points."""
    A, t = crop_transforms(shapes, template)
    points = to_crop(shapes, A, t)
    n, side = len(images), crop_size if patch_size is None else patch_size
    if patch_size is None:                   # one grid: the crop, about its centre
        centres = from_crop(np.full((n, 1, 2), (crop_size - 1) / 2), A, t)
    else:                                    # a patch about each point
        centres = np.asarray(shapes, dtype=np.float64)
    cells = sample_grids(images, centres, A, side)
    pixels = cells.reshape(n, -1, side // CELL, side // CELL)
    offsets = ((points - template) / crop_size).astype(np.float32)
    return NetworkInputs(pixels, offsets, points, A, t, crop_size)
