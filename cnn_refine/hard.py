"""Faces made hard: the degradations that the refiner trains on and the quality score is fitted on.

Each takes a face image (grey or BGR, 8-bit) and its ``(L, 2)`` shape in pixels and gives both
back, the shape moved with the image where the image moves (only ``"rotate"`` moves it).
"""
import cv2

from cascade.shapes import tight_boxes

#: Every degradation, "rotate" twice (a turned face is the failure users meet with nothing telling them).
KINDS = ("none", "rotate", "rotate", "small", "blur", "occlude", "jpeg")
#: Those that leave the face where it is, for training a stage whose crop follows the face anyway.
IN_PLACE = ("small", "blur", "occlude", "jpeg")


def made_hard(image, shape, kind, rng, shrink=(0.15, 0.3), turn=(20, 180)):
    """``(image, shape)`` after one of :data:`KINDS`, its strength drawn from ``rng``.

    rotate: turned about the image centre by ``turn`` degrees either way (borders reflected);
    small: shrunk by a factor drawn from ``shrink`` and blown up again (low resolution);
    blur: Gaussian, sigma 2-5 px; occlude: a flat block of a random grey over a quarter of the
    face's box; jpeg: compressed at quality 5.
    """
    height, width = image.shape[:2]
    if kind == "rotate":
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(*turn) * rng.choice([-1, 1]), 1)
        return (cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT),
                shape @ matrix[:, :2].T + matrix[:, 2])
    if kind == "small":
        factor = rng.uniform(*shrink)
        small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), shape
    if kind == "blur":
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(2, 5)), shape
    if kind == "occlude":
        left, top, right, bottom = tight_boxes(shape)
        x, y = int(left + rng.uniform(0, 0.5) * (right - left)), int(top + rng.uniform(0, 0.5) * (bottom - top))
        # clipped at 0: a negative slice bound would count from the far edge
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = max(x + int(0.5 * (right - left)), 0), max(y + int(0.5 * (bottom - top)), 0)
        hidden = image.copy()
        hidden[y0:y1, x0:x1] = rng.integers(0, 256)
        return hidden, shape
    if kind == "jpeg":
        encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 5])[1]
        return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED), shape
    if kind == "none":
        return image, shape
    raise ValueError(f"unknown kind {kind!r}: one of {sorted(set(KINDS))}")
