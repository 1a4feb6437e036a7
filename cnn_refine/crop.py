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
"""
from typing import NamedTuple

import cv2
import numpy as np

from cascade.pdm import procrustes_align
from cascade.shapes import apply_similarity, similarity_fit


def make_template(shapes, crop_size, face_fraction):
    """``(L, 2)`` template in crop pixels from ``(n, L, 2)`` training shapes."""
    _, mean = procrustes_align(shapes)
    mean = mean - (mean.min(axis=0) + mean.max(axis=0)) / 2
    extent = (mean.max(axis=0) - mean.min(axis=0)).max()
    return mean * (face_fraction * crop_size / extent) + (crop_size - 1) / 2


def crop_transforms(shapes, template):
    """Similarities ``(A (n, 2, 2), t (n, 2))`` taking each ``(n, L, 2)`` shape onto the template."""
    return similarity_fit(shapes, np.broadcast_to(template, np.shape(shapes)))


def warp_crops(images, A, t, crop_size, out=None):
    """Grey ``(n, crop_size, crop_size)`` float32 crops of ``images`` under the similarities.

    Only the crop is read and converted to grey, never the whole image, so a
    very large photo costs no more than a small one.
    """
    n = len(images)
    crops = np.empty((n, crop_size, crop_size), np.float32) if out is None else out
    for i, image in enumerate(images):
        matrix = np.concatenate([A[i], t[i][:, None]], axis=1)
        crop = cv2.warpAffine(image, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        crops[i] = crop
    return crops


def warp_patches(images, centres, A, patch_size):
    """Grey ``(n, L, P, P)`` float32 patches of ``images``, each centred on one of the ``(n, L, 2)``
    ``centres`` (image pixels) and sampled on the pixel grid of the crop that the similarities
    ``A`` (image -> crop) define: bilinear, border repeated."""
    n, n_landmarks = centres.shape[:2]
    patches = np.empty((n, n_landmarks, patch_size, patch_size), np.float32)
    steps = np.arange(patch_size) - (patch_size - 1) / 2
    grid = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)     # (P * P, 2): x, y
    inverse = np.linalg.inv(A)
    for i, image in enumerate(images):
        # the crop's grid around each point, mapped into the image: centre + inverse(A) @ step;
        # x and y apart, as (L, P * P) sums, which NumPy adds far faster than (..., 2) pairs
        steps_in_image = (grid @ inverse[i].T).T.astype(np.float32)
        map_x, map_y = (np.add.outer(centres[i, :, k].astype(np.float32), steps_in_image[k])
                        .reshape(n_landmarks * patch_size, patch_size) for k in (0, 1))
        sampled = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if sampled.ndim == 3:
            sampled = cv2.cvtColor(sampled, cv2.COLOR_BGR2GRAY)
        patches[i] = sampled.reshape(n_landmarks, patch_size, patch_size)
    return patches


def to_crop(shapes, A, t):
    """Map ``(n, L, 2)`` shapes from image pixels into their crops."""
    return apply_similarity(shapes, A, t)


def from_crop(crop_shapes, A, t):
    """Map ``(n, L, 2)`` shapes from crop pixels back to image pixels."""
    inverse = np.linalg.inv(A)
    return apply_similarity(crop_shapes, inverse, -np.einsum("nij,nj->ni", inverse, t))


class NetworkInputs(NamedTuple):
    """What a network reads for a batch of faces, and how to go back to the image.

    ``pixels`` float32 grey levels 0-255: the crops ``(n, 1, S, S)``, or a local
    stage's patches ``(n, L, P, P)``; ``offsets`` ``(n, L, 2)`` float32, the shapes
    in the crop minus the template, in crop pixels / ``S`` (the shape's own
    deformation, which the pixels alone do not show); ``points`` the shapes in crop
    pixels (float64); ``A``, ``t`` the similarities image -> crop; ``crop_size`` ``S``.
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
    if patch_size is None:
        pixels = warp_crops(images, A, t, crop_size)[:, None]
    else:
        pixels = warp_patches(images, np.asarray(shapes, dtype=np.float64), A, patch_size)
    offsets = ((points - template) / crop_size).astype(np.float32)
    return NetworkInputs(pixels, offsets, points, A, t, crop_size)
