"""The refiner's crop: each face warped so that its current shape lands on a fixed template.

The template is the Procrustes mean of the training shapes, centred in a square
crop of ``crop_size`` pixels with the larger side of its tight box spanning
``face_fraction`` of the crop. A face's crop is the similarity taking its
current shape onto the template (least squares over its points), applied to
the image with bilinear sampling; pixels outside the image repeat the border.
Crop coordinates follow the package convention (0-based pixel centres), so
the network's output, a correction in crop pixels divided by ``crop_size``,
maps back to the image by the inverse similarity.
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


def to_crop(shapes, A, t):
    """Map ``(n, L, 2)`` shapes from image pixels into their crops."""
    return apply_similarity(shapes, A, t)


def from_crop(crop_shapes, A, t):
    """Map ``(n, L, 2)`` shapes from crop pixels back to image pixels."""
    inverse = np.linalg.inv(A)
    return apply_similarity(crop_shapes, inverse, -np.einsum("nij,nj->ni", inverse, t))


class FaceCrops(NamedTuple):
    """What the network reads for a batch of faces, and how to go back to the image.

    ``crops`` ``(n, 1, S, S)`` float32 grey levels 0-255; ``offsets`` ``(n, L, 2)``
    float32, the shapes in the crop minus the template, in crop pixels / ``S`` (the
    shape's own deformation, which the crop alone does not show); ``points`` the
    shapes in crop pixels (float64); ``A``, ``t`` the similarities image -> crop.
    """

    crops: np.ndarray
    offsets: np.ndarray
    points: np.ndarray
    A: np.ndarray
    t: np.ndarray

    def corrected(self, corrections):
        """Image-pixel shapes once the points move by ``corrections`` (crop pixels / ``S``)."""
        crop_size = self.crops.shape[-1]
        return from_crop(self.points + np.asarray(corrections, dtype=np.float64) * crop_size, self.A, self.t)


def network_inputs(images, shapes, template, crop_size):
    """The :class:`FaceCrops` of faces at ``(n, L, 2)`` shapes."""
    A, t = crop_transforms(shapes, template)
    crops = warp_crops(images, A, t, crop_size)[:, None]
    points = to_crop(shapes, A, t)
    offsets = ((points - template) / crop_size).astype(np.float32)
    return FaceCrops(crops, offsets, points, A, t)
