"""ASM: the active shape model (Cootes, Taylor, Cooper & Graham 1995), multi-resolution search.

Not a regressor but a fitter. A point distribution model (:mod:`cascade.pdm`)
says which shapes are faces; a grey-level profile model per landmark and
resolution says what the image looks like across the face's outline there. The
search starts from the mean shape in the face box and, from the coarsest level of
an image pyramid to the finest, repeats: read each landmark's profile along the
normal to the shape's curve at ``2 * search_range + 1`` positions, move the
landmark to the one of least Mahalanobis distance to the model, then replace the
points by the closest shape of the PDM (shape parameters clamped to ``clamp``
standard deviations), until the shape stops moving.

Frames. Each face is searched in its own crop: the box's centre at the crop's
centre, the box scaled uniformly so that the square root of its area is
``face_size`` pixels at level 0, a margin of half that size around it; level
``l`` halves level ``l - 1`` (``cv2.pyrDown``). A profile is ``2 * profile_length
+ 1`` grey values one pixel apart at its level, read by the compiled sampler
(:func:`cascade.features.pixels_at`), differentiated and divided by the sum of
the absolute differences (Cootes & Taylor's normalisation, which discounts
lighting).
"""
import cv2
import numpy as np

from .base import BaseCascade
from .features import pixels_at
from .pdm import fit_to_points, principal_components, procrustes_align
from .shapes import contour_neighbours, from_unit, rotate_about_centre
from .validation import check_integer, check_real

#: Profile covariances are regularised by this fraction of their mean variance.
PROFILE_REGULARISATION = 0.01
#: A face has converged when this fraction of its points moved at most a pixel.
CONVERGED_FRACTION = 0.9
#: The crop's margin around the face box, as a fraction of ``face_size`` per side.
CROP_MARGIN = 0.5


class ASM(BaseCascade):
    """Active shape model with multi-resolution profile search.

    Parameters
    ----------
    n_levels : pyramid levels searched, coarsest first (3)
    profile_length : grey values each side of a landmark in a profile (6)
    search_range : positions tried each side of a landmark per iteration, in
        pixels of the level (2)
    max_iterations : search iterations per level at most (10)
    variance_kept : fraction of the shape variance the PDM keeps (0.98)
    clamp : shape parameters are limited to this many standard deviations (3.0)
    face_size : square root of the box area, in pixels, at the finest level (128)
    mirror : also train on the mirror image of every face (True)
    scheme : the landmark scheme (:class:`cascade.schemes.Scheme` or a registered name): the
        mirror map for ``mirror``, its curves for the profiles' normals
        (a scheme without curves: each point's two nearest neighbours in the mean shape); None: the built-in
        scheme of the training shapes' point count (68: iBUG)
    n_jobs : threads for training and prediction (1; -1 for all cores)
    """

    _ARRAYS = {
        "mean_shape_": (["float64"], 2),
        "pdm_mean_": (["float64"], 2),
        "components_": (["float64"], 2),
        "variances_": (["float64"], 1),
        "neighbours_": (["int32"], 2),
        "profile_means_": (["float32"], 3),
        "profile_precisions_": (["float32"], 4),
    }
    _SHAPE_ARRAYS = ("mean_shape_", "pdm_mean_")

    def __init__(self, n_levels=3, profile_length=6, search_range=2, max_iterations=10,
                 variance_kept=0.98, clamp=3.0, face_size=128, mirror=True, scheme=None,
                 n_jobs=1):
        self.n_levels = n_levels
        self.profile_length = profile_length
        self.search_range = search_range
        self.max_iterations = max_iterations
        self.variance_kept = variance_kept
        self.clamp = clamp
        self.face_size = face_size
        self.mirror = mirror
        self.scheme = scheme
        self.n_jobs = n_jobs

    # -- training ---------------------------------------------------------------------

    def _fit(self, images, shapes, boxes, rolls, mean):
        self._check_params()
        self.mean_shape_ = mean
        aligned, self.pdm_mean_ = procrustes_align(shapes)
        self.components_, self.variances_ = principal_components(aligned, self.pdm_mean_,
                                                                 self.variance_kept)
        self.neighbours_ = contour_neighbours(shapes.shape[1], self.scheme_.curves, self.mean_shape_)
        n_levels, length = self.n_levels, 2 * self.profile_length
        profiles = np.zeros((len(images), n_levels, shapes.shape[1], length), np.float32)

        def fill(chunk):
            profiles[chunk] = self._training_profiles(images[chunk], shapes[chunk], boxes[chunk])

        self._map_faces(fill, len(images))
        known = ~np.isnan(shapes).any(axis=2)                                    # (n, L)
        self.profile_means_ = np.empty((n_levels, shapes.shape[1], length), np.float32)
        self.profile_precisions_ = np.empty((n_levels, shapes.shape[1], length, length), np.float32)
        for landmark in range(shapes.shape[1]):
            samples = profiles[known[:, landmark], :, landmark].astype(np.float64)  # (m, levels, 2k)
            if len(samples) < 2:
                raise ValueError(f"landmark {landmark} is known in fewer than 2 faces")
            for level in range(n_levels):
                self.profile_means_[level, landmark] = samples[:, level].mean(axis=0)
                covariance = np.cov(samples[:, level], rowvar=False)
                covariance += (PROFILE_REGULARISATION * np.trace(covariance) / length + 1e-9) * np.eye(length)
                self.profile_precisions_[level, landmark] = np.linalg.inv(covariance)

    def _training_profiles(self, images, shapes, boxes):
        """``(n, n_levels, L, 2k)`` normalised profiles at the true points (NaN points: zeros)."""
        pyramids, to_crop = self._crops(images, boxes)
        points = _to_frame(np.nan_to_num(shapes, nan=0.0), to_crop)
        out = np.empty((len(images), self.n_levels, shapes.shape[1], 2 * self.profile_length), np.float32)
        for level in range(self.n_levels):
            at_level = _to_level(points, level)
            out[:, level] = self._profiles(pyramids[level], at_level, self.profile_length)
        return out

    # -- search -----------------------------------------------------------------------

    def _predict(self, images, boxes, rolls=None):
        out = np.empty((len(images), len(self.mean_shape_), 2))
        starts = (np.broadcast_to(self.mean_shape_, (len(images), *self.mean_shape_.shape)) if rolls is None
                  else rotate_about_centre(self.mean_shape_, rolls))

        def fill(chunk):
            out[chunk] = self._search(images[chunk], boxes[chunk], starts[chunk])

        self._map_faces(fill, len(images))
        return out

    def _search(self, images, boxes, unit_starts):
        pyramids, to_crop = self._crops(images, boxes)
        start = from_unit(unit_starts, boxes)
        points = _to_frame(start, to_crop)
        for level in reversed(range(self.n_levels)):
            shape = _to_level(points, level)
            searching = np.arange(len(images))          # each face stops on its own
            for _ in range(self.max_iterations):
                moved = self._search_step(pyramids[level], shape, searching, level)
                searching = searching[(moved <= 1.0).mean(axis=1) < CONVERGED_FRACTION]
                if not len(searching):
                    break
            points = _from_level(shape, level)
        return _to_frame(points, np.linalg.inv(to_crop))

    def _search_step(self, crops, shape, faces, level):
        """One iteration at ``level`` (``crops``: every face's crop there) for ``faces``: moves
        ``shape[faces]`` in place; returns how far each point moved, ``(len(faces), L)`` pixels."""
        reach, m = self.profile_length, self.search_range
        current = shape[faces]
        # Every window of 2k differences along the normal, centred -m .. m pixels away.
        differences = self._profiles([crops[face] for face in faces], current, reach + m, normalise=False)
        windows = np.lib.stride_tricks.sliding_window_view(differences, 2 * reach, axis=2)
        windows = windows / (np.abs(windows).sum(axis=3, keepdims=True) + 1e-6)
        deviation = windows - self.profile_means_[level][None, :, None]
        distance = np.einsum("nlcd,lde,nlce->nlc", deviation, self.profile_precisions_[level], deviation)
        step = np.argmin(distance, axis=2) - m                                  # (n, L) pixels
        targets = current + step[..., None] * self._normals(current)
        shape[faces] = fit_to_points(targets, self.pdm_mean_, self.components_, self.variances_, self.clamp)
        return np.linalg.norm(shape[faces] - current, axis=2)

    # -- shared by training and search --------------------------------------------------

    def _crops(self, images, boxes):
        """Each face's pyramid (a list per level of uint8 grey crops) and ``(n, 3, 3)`` maps from
        image pixels to level-0 crop pixels."""
        side = int(round(self.face_size * (1 + 2 * CROP_MARGIN)))
        pyramids = [[] for _ in range(self.n_levels)]
        to_crop = np.empty((len(images), 3, 3))
        for face, (image, box) in enumerate(zip(images, boxes)):
            crop, to_crop[face] = _face_crop(image, box, self.face_size, side)
            for level in range(self.n_levels):
                pyramids[level].append(crop)
                crop = cv2.pyrDown(crop)
        return pyramids, to_crop

    def _normals(self, shape):
        """``(n, L, 2)`` unit normals to the shape's curves at every point."""
        tangent = shape[:, self.neighbours_[:, 1]] - shape[:, self.neighbours_[:, 0]]
        length = np.linalg.norm(tangent, axis=2, keepdims=True)
        tangent = np.where(length > 1e-9, tangent / np.maximum(length, 1e-9), [1.0, 0.0])
        return np.stack([-tangent[..., 1], tangent[..., 0]], axis=2)

    def _profiles(self, crops, shape, reach, normalise=True):
        """Differences of the grey values at ``-reach .. reach`` pixels along each normal,
        ``(n, L, 2 * reach)``, divided by their absolute sum when ``normalise``."""
        steps = np.arange(-reach, reach + 1, dtype=np.float64)
        positions = shape[:, :, None] + steps[:, None] * self._normals(shape)[:, :, None]
        n, n_landmarks, n_steps = positions.shape[:3]
        grey = pixels_at(crops, positions.reshape(n, -1, 2))
        differences = np.diff(grey.reshape(n, n_landmarks, n_steps).astype(np.float32), axis=2)
        if normalise:
            differences /= np.abs(differences).sum(axis=2, keepdims=True) + 1e-6
        return differences

    def _check_params(self):
        for name in ("n_levels", "profile_length", "search_range", "max_iterations", "face_size"):
            check_integer(getattr(self, name), name)
        if self.face_size >> (self.n_levels - 1) < 4 * self.profile_length:
            raise ValueError(f"face_size {self.face_size} is too small for {self.n_levels} levels: the "
                             f"coarsest face would be smaller than four profile lengths")
        check_real(self.variance_kept, "variance_kept", high=1)
        check_real(self.clamp, "clamp")

    def _check_arrays(self):
        self._check_params()
        n_landmarks = len(self.mean_shape_)
        n_components = len(self.variances_)
        length = 2 * self.profile_length
        expected = {
            "mean_shape_": (n_landmarks, 2), "pdm_mean_": (n_landmarks, 2),
            "components_": (n_components, 2 * n_landmarks), "variances_": (n_components,),
            "neighbours_": (n_landmarks, 2), "profile_means_": (self.n_levels, n_landmarks, length),
            "profile_precisions_": (self.n_levels, n_landmarks, length, length),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape} "
                                 f"(from the parameters and the landmark count)")
        if n_landmarks < 1:
            raise ValueError("the model has no landmarks")
        if (self.neighbours_ < 0).any() or (self.neighbours_ >= n_landmarks).any():
            raise ValueError(f"neighbours_ holds indices outside [0, {n_landmarks})")
        if (self.variances_ < 0).any():
            raise ValueError("variances_ must not be negative")


def _face_crop(image, box, face_size, side):
    """The ``side`` x ``side`` grey crop around ``box``, scaled so that the box's area is
    ``face_size**2``, and the ``(3, 3)`` map from image pixels to crop pixels."""
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    scale = face_size / np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    to_crop = np.array([[scale, 0, side / 2 - 0.5 - scale * centre[0]],
                        [0, scale, side / 2 - 0.5 - scale * centre[1]], [0, 0, 1]])
    # Only the region the crop covers is read, converted and resampled: a large photo is
    # never converted or copied whole.
    half = (side / 2 + 2) / scale
    left, top = (max(0, int(np.floor(centre[k] - half))) for k in (0, 1))
    right = min(image.shape[1], int(np.ceil(centre[0] + half)) + 1)
    bottom = min(image.shape[0], int(np.ceil(centre[1] + half)) + 1)
    # A long thin box may touch the image only outside the crop: keep the nearest pixel
    # row or column, which the border replication then extends, as a clamped read would.
    left, top = min(left, image.shape[1] - 1), min(top, image.shape[0] - 1)
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    region = np.ascontiguousarray(image[top:bottom, left:right])
    grey = region if region.ndim == 2 else cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    region_to_crop = to_crop @ np.array([[1, 0, left], [0, 1, top], [0, 0, 1]])
    if scale < 0.5:
        # Shrink by averaging down to twice the crop's scale first, so the crop does not alias.
        height, width = grey.shape
        size = (max(1, round(width * 2 * scale)), max(1, round(height * 2 * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / width, size[1] / height
        # A shrunk pixel q covers region pixels around p = (q + 0.5) / f - 0.5.
        region_to_crop = region_to_crop @ np.array([[1 / fx, 0, 0.5 / fx - 0.5],
                                                    [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
    crop = cv2.warpAffine(grey, region_to_crop[:2], (side, side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop, to_crop


def _to_frame(points, transforms):
    """Apply ``(n, 3, 3)`` affine maps to ``(n, L, 2)`` points."""
    return np.einsum("nij,nlj->nli", transforms[:, :2, :2], points) + transforms[:, None, :2, 2]


def _to_level(points, level):
    """Level-0 crop pixels to pixels of pyramid level ``level`` (pyrDown halves about pixel edges)."""
    return (points + 0.5) / 2 ** level - 0.5


def _from_level(points, level):
    return (points + 0.5) * 2 ** level - 0.5
