"""What users build from landmarks: drawing, anonymising, aligning, AR overlays, head pose.

Every function takes an image (uint8, grey or BGR) and a sequence of ``(L, 2)``
shapes in that image's pixels, as :class:`cascade.Pipeline` gives them, and
returns new arrays; the input image is never changed. Blurring and head pose
need the 68-point iBUG scheme (:data:`cascade.schemes.IBUG68`: the jaw, brows
and the points of a generic 3-D face); aligning and overlays need five points,
so they also take the scheme of the shapes (by default that of their point
count: 68 or 5); drawing takes any.
"""
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .schemes import IBUG68, scheme_of
from .shapes import similarity_fit
from .validation import check_image, check_shapes

JAW = list(IBUG68.groups["jaw"])
BROWS = list(IBUG68.groups["right_brow"] + IBUG68.groups["left_brow"])
CHIN = 8

#: The 112x112 five-point template of face recognition crops (ArcFace and others): eye
#: centres, nose tip, mouth corners, in the crop's pixels.
FIVE_POINT_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                    [41.5493, 92.3655], [70.7299, 92.2041]])

#: A generic 3-D face (millimetres; x to the image right, y up, z towards the camera) at the
#: 68-point indices below: nose tip, chin, outer eye corners, mouth corners.
POSE_POINTS = (30, 8, 36, 45, 48, 54)
POSE_MODEL_3D = np.array([[0.0, 0.0, 0.0], [0.0, -63.6, -12.5], [-43.3, 32.7, -26.0],
                          [43.3, 32.7, -26.0], [-28.9, -28.9, -24.1], [28.9, -28.9, -24.1]])


def _faces(image, shapes, scheme=IBUG68, five=False):
    """The checked image and ``(n, L, 2)`` shapes of ``scheme`` (None: by their point count),
    which must give five points if ``five``; returns ``(image, shapes, scheme)``."""
    image = check_image(image)
    if len(shapes) == 0:
        scheme = scheme_of(scheme, 68 if scheme is None else None)
        return image, np.zeros((0, scheme.n_points, 2)), scheme
    shapes = check_shapes(np.asarray(shapes, dtype=np.float64), allow_nan=False)
    scheme = scheme_of(scheme, shapes.shape[1])
    if five and not scheme.has_five_points:
        raise ValueError(f"the {scheme.name!r} scheme gives no five points to align on")
    return image, shapes, scheme


def face_outline_mask(image_shape, shape, brow_lift=0.25):
    """A uint8 mask (255 inside) of the face: the hull of the jaw and the brows, the brows
    raised by ``brow_lift`` of the brow-to-chin height so that the forehead is covered."""
    mask = np.zeros(image_shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, _outline(shape, brow_lift).round().astype(np.int32), 255, lineType=cv2.LINE_AA)
    return mask


def _outline(shape, brow_lift=0.25):
    """The hull of :func:`face_outline_mask`, ``(k, 2)`` float pixels."""
    shape = np.asarray(shape, dtype=np.float64)
    up = shape[CHIN] - shape[BROWS].mean(axis=0)
    brows = shape[BROWS] - brow_lift * up
    return cv2.convexHull(np.concatenate([shape[JAW], brows]).astype(np.float32))[:, 0].astype(np.float64)


#: Faces are blurred and feathered on a copy at most this many pixels across, then scaled back:
#: a blur whose width follows the face's size would otherwise cost the cube of that size.
BLUR_WORK_SIDE = 256


def blur_faces(image, shapes, method="gaussian", strength=1.0):
    """Anonymise each face inside its outline: "gaussian" blur or "pixelate" (blocks about a
    tenth of the face wide), feathered at the edge. The cost is linear in the faces' pixels: a
    face larger than :data:`BLUR_WORK_SIDE` is blurred at that size and scaled back."""
    image, shapes, _ = _faces(image, shapes)
    if method not in ("gaussian", "pixelate"):
        raise ValueError(f"method must be 'gaussian' or 'pixelate', got {method!r}")
    if not (np.isfinite(strength) and strength > 0):
        raise ValueError(f"strength must be a positive number, got {strength!r}")
    result = image.copy()
    height, width = image.shape[:2]
    for shape in shapes:
        hull = _outline(shape)
        left, top = np.maximum(np.floor(hull.min(axis=0)).astype(int) - 1, 0)
        right, bottom = np.minimum(np.ceil(hull.max(axis=0)).astype(int) + 2, [width, height])
        w, h = right - left, bottom - top
        if w <= 0 or h <= 0:
            continue                    # the face lies outside the image
        inside = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(inside, (hull - [left, top]).round().astype(np.int32), 255, lineType=cv2.LINE_AA)
        region = image[top:bottom, left:right]
        face_size = max(w, h)
        scale = min(1.0, BLUR_WORK_SIDE / face_size)
        small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = region if scale == 1 else cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
        small_inside = inside if scale == 1 else cv2.resize(inside, small_size, interpolation=cv2.INTER_AREA)
        side = face_size * scale
        if method == "gaussian":
            hidden = cv2.GaussianBlur(small, (0, 0), max(1.0, strength * side / 8))
        else:
            block = max(1, int(round(strength * side / 10)))
            blocks = cv2.resize(small, (max(1, small_size[0] // block), max(1, small_size[1] // block)),
                                interpolation=cv2.INTER_AREA)
            hidden = cv2.resize(blocks, small_size, interpolation=cv2.INTER_NEAREST)
        # Feathered inwards, so that nothing outside the outline changes.
        sigma = max(1.0, side / 60)
        eroded = cv2.erode(small_inside, np.ones((2 * int(sigma) + 1,) * 2, np.uint8))
        alpha = cv2.GaussianBlur(eroded, (0, 0), sigma).astype(np.float32) / 255.0
        if scale != 1:
            hidden = cv2.resize(hidden, (w, h), interpolation=cv2.INTER_NEAREST if method == "pixelate"
                                else cv2.INTER_LINEAR)
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        alpha = alpha * (inside > 0)
        alpha = alpha[..., None] if image.ndim == 3 else alpha
        result[top:top + h, left:left + w] = (alpha * hidden + (1 - alpha) * region).round().astype(np.uint8)
    return result


def align_faces(image, shapes, size=112, template=None, scheme=None):
    """``(n, size, size[, 3])`` crops, each face warped by the similarity taking its five points
    (:meth:`cascade.schemes.Scheme.five_points`) onto ``template`` (default: the 112x112
    five-point template, scaled)."""
    image, shapes, scheme = _faces(image, shapes, scheme, five=True)
    if not isinstance(size, (int, np.integer)) or not 8 <= size <= 4096:
        raise ValueError(f"size must be an integer from 8 to 4096, got {size!r}")
    template = FIVE_POINT_TEMPLATE_112 * (size / 112.0) if template is None else np.asarray(template, float)
    if template.shape != (5, 2):
        raise ValueError(f"template must be 5 (x, y) points, got shape {template.shape}")
    A, t = similarity_fit(scheme.five_points(shapes), np.broadcast_to(template, (len(shapes), 5, 2))) \
        if len(shapes) else (np.zeros((0, 2, 2)), np.zeros((0, 2)))
    crops = [cv2.warpAffine(image, np.concatenate([A[i], t[i][:, None]], axis=1), (size, size),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for i in range(len(shapes))]
    return np.array(crops, dtype=np.uint8).reshape(len(shapes), size, size, *image.shape[2:])


def sunglasses(width=400):
    """A drawn pair of sunglasses as a BGRA image (so the overlay needs no file); its eye
    centres are at 28 % and 72 % of the width, 45 % of the height."""
    if not isinstance(width, (int, np.integer)) or not 20 <= width <= 4096:
        raise ValueError(f"width must be an integer from 20 to 4096, got {width!r}")
    height = width * 2 // 5
    glasses = np.zeros((height, width, 4), np.uint8)
    colour, frame = (20, 20, 20, 235), (10, 10, 10, 255)
    for cx in (0.28, 0.72):
        centre = (int(cx * width), int(0.45 * height))
        axes = (int(0.2 * width), int(0.32 * height))
        cv2.ellipse(glasses, centre, axes, 0, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.ellipse(glasses, centre, axes, 0, 0, 360, frame, max(2, width // 60), cv2.LINE_AA)
    cv2.line(glasses, (int(0.45 * width), int(0.38 * height)), (int(0.55 * width), int(0.38 * height)),
             frame, max(2, width // 50), cv2.LINE_AA)
    return glasses


def overlay_on_faces(image, shapes, overlay, overlay_eyes=None, scheme=None):
    """Alpha-blend a BGRA ``overlay`` on each face, its two eye points (``overlay_eyes``
    ``(2, 2)`` in overlay pixels; default :func:`sunglasses`'s) placed on the face's eye
    centres: it follows the face's position, scale and roll."""
    image, shapes, scheme = _faces(image, shapes, scheme, five=True)
    overlay = np.asarray(overlay)
    if overlay.dtype != np.uint8 or overlay.ndim != 3 or overlay.shape[2] != 4:
        raise ValueError(f"overlay must be a uint8 BGRA image (h, w, 4), got {overlay.dtype} {overlay.shape}")
    h, w = overlay.shape[:2]
    source = np.array([[0.28 * w, 0.45 * h], [0.72 * w, 0.45 * h]]) if overlay_eyes is None \
        else np.asarray(overlay_eyes, dtype=np.float64)
    result = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = result.shape[:2]
    for shape in shapes:
        eyes = scheme.five_points(shape)[:2]
        A, t = similarity_fit(source, eyes[None])
        # Warp the overlay only onto the part of the image it covers, not a whole-image canvas.
        # (Bilinear reads reach one pixel past the overlay's edge pixels, into its zero border.)
        corners = np.array([[-1, -1], [w, -1], [-1, h], [w, h]], dtype=np.float64) @ A[0].T + t[0]
        low = np.clip(np.floor(corners.min(axis=0)), 0, [width, height]).astype(int)
        high = np.clip(np.ceil(corners.max(axis=0)) + 1, 0, [width, height]).astype(int)
        if (high <= low).any():
            continue                    # the overlay falls outside the image
        matrix = np.concatenate([A[0], (t[0] - low)[:, None]], axis=1)
        warped = cv2.warpAffine(overlay, matrix, tuple(high - low), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        region = result[low[1]:high[1], low[0]:high[0]]
        alpha = warped[..., 3:4] / 255.0
        region[:] = (alpha * warped[..., :3] + (1 - alpha) * region).round().astype(np.uint8)
    return result


@dataclass
class HeadPose:
    """Head rotation in degrees: ``yaw`` > 0 turns the face towards the image's right,
    ``pitch`` > 0 tilts it up, ``roll`` > 0 turns it clockwise in the image; and the
    ``rotation`` (3, 3) and ``translation`` (3,) of the generic model in camera space (mm)."""

    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    translation: np.ndarray

    def as_dict(self):
        values = asdict(self)
        return {k: (np.round(v, 4).tolist() if isinstance(v, np.ndarray) else round(v, 2)) for k, v in values.items()}


def head_pose(shape, image_shape, focal_length=None):
    """Head pose of one ``(68, 2)`` shape by ``cv2.solvePnP`` on a generic 3-D face.

    The camera is a pinhole at the image centre with ``focal_length`` pixels
    (default: the image width, about a 53 degree field of view).
    """
    shape = check_shapes(np.asarray(shape, dtype=np.float64)[None], n_landmarks=68, allow_nan=False)[0]
    height, width = (tuple(image_shape[:2]) + (0, 0))[:2]
    if not (isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)) and height > 0
            and width > 0):
        raise ValueError(f"image_shape must start with a positive height and width, got {image_shape!r}")
    focal = float(width if focal_length is None else focal_length)
    if not (np.isfinite(focal) and focal > 0):
        raise ValueError(f"focal_length must be a positive number, got {focal_length!r}")
    camera = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    # OpenCV's camera looks down +z with y down: flip the model's y and z into it.
    model = POSE_MODEL_3D * [1, -1, -1]
    points = shape[list(POSE_POINTS)]
    ok, rvec, tvec = cv2.solvePnP(model, points, camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("solvePnP found no pose for these landmarks")
    rotation, _ = cv2.Rodrigues(rvec)
    # rotation = Rz(roll) @ Ry(yaw) @ Rx(pitch) in the camera frame (x right, y down, z forward);
    # there a positive yaw turns the face to the image's left and a positive pitch tilts it down.
    yaw = np.degrees(np.arcsin(np.clip(-rotation[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2]))
    roll = np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))
    return HeadPose(float(-yaw), float(-pitch), float(roll), rotation, tvec.ravel())


def draw_landmarks(image, shapes, boxes=None):
    """A BGR copy with each face's points (and its detector box) drawn; shapes of any scheme."""
    image, shapes, _ = _faces(image, shapes, None)
    result = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = max(1, int(round(max(result.shape[:2]) / 400)))
    for k, shape in enumerate(shapes):
        if boxes is not None:
            left, top, right, bottom = _drawable(np.reshape(boxes[k], (2, 2)), result.shape, scale).ravel()
            cv2.rectangle(result, (left, top), (right, bottom), (255, 160, 0), scale, cv2.LINE_AA)
        for x, y in _drawable(shape, result.shape, scale + 1):
            cv2.circle(result, (x, y), scale + 1, (0, 255, 0), -1, cv2.LINE_AA)
    return result


def _drawable(points, image_shape, reach):
    """``(n, 2)`` points as whole pixels, those far off the image pulled to just beyond its
    edge (where a mark of ``reach`` pixels stays unseen), so OpenCV's int32 never overflows."""
    height, width = image_shape[:2]
    low, high = -reach - 2, np.array([width, height]) + reach + 2
    return np.clip(np.round(points), low, high).astype(int)


def draw_pose(image, shapes, poses):
    """A BGR copy with each face's head axes drawn from the nose tip (x red, y green, z blue)."""
    result = draw_landmarks(image, shapes)
    height, width = result.shape[:2]
    camera = np.array([[width, 0, (width - 1) / 2], [0, width, (height - 1) / 2], [0, 0, 1]], float)
    axes = np.array([[0, 0, 0], [50, 0, 0], [0, -50, 0], [0, 0, -50]], float)
    for pose in poses:
        rvec, _ = cv2.Rodrigues(pose.rotation)
        ends, _ = cv2.projectPoints(axes, rvec, pose.translation, camera, None)
        ends = _drawable(np.nan_to_num(ends.reshape(-1, 2), posinf=1e9, neginf=-1e9), result.shape, 2)
        for end, colour in zip(ends[1:], ((0, 0, 255), (0, 255, 0), (255, 0, 0))):
            cv2.line(result, tuple(ends[0]), tuple(end), colour, 2, cv2.LINE_AA)
    return result
