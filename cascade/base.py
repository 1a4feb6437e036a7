"""What every landmark estimator shares: input checks, starts, mirrors, scoring, threads, save/load.

An estimator subclasses :class:`BaseCascade` and provides

- ``_fit(images, shapes, boxes, rolls, mean)``: learn from checked, mirror-augmented inputs
  (``mean``: the mean shape in the unit frames of the given boxes, to keep as ``mean_shape_``);
- ``_predict(images, boxes, rolls)``: ``(n, L, 2)`` pixel shapes for checked inputs;
- ``_ARRAYS``: the schema of its fitted arrays, ``name -> (dtypes, ndim)``, and
  ``_check_arrays()`` that validates their shapes and indices after a load.

Where a face starts
-------------------
A cascade starts from its mean shape (``mean_shape_``, in the unit frame of a
box) placed on the face. From a box, the mean shape fills the box. From five
points (:func:`cascade.shapes.five_points`: eye centres, nose tip, mouth corners,
as YuNet gives them), the mean shape is placed by the similarity that best maps
its own five points onto them, which also knows the face's roll; that start is
handed on as a square box and a roll angle (:func:`cascade.shapes.frames_from_points`),
so ``_fit`` and ``_predict`` see ``boxes`` and ``rolls`` (radians, None when no
face is rolled) whatever the start.

Fitted arrays are attributes ending in ``_``; ``save``/``load`` write and read
exactly those (see :mod:`cascade.io`), plus the detector calibrations when set:
``box_calibrations_`` and ``point_calibrations_``, dicts from a detector's name to
its :class:`cascade.calibration.BoxCalibration` / ``PointCalibration``.
"""
import logging
from collections.abc import Sequence

import numpy as np

from . import io
from .calibration import BoxCalibration, PointCalibration
from .evaluate import nme
from .params import Parameters
from .schemes import FIVE, Scheme, scheme_of
from .shapes import flip_boxes, flip_image, flip_shapes, frames_from_points, mean_shape, tight_boxes
from .threads import effective_jobs, map_chunks
from .validation import boxes_on_images, check_boxes, check_images, check_integer, check_shapes, check_start_points


#: How ``fit`` treats missing (NaN) points.
MISSING = ("ignore", "pseudo-label")
#: The calibrations a model file may hold, by attribute name (without the trailing ``_``).
CALIBRATIONS = {"box_calibrations": BoxCalibration, "point_calibrations": PointCalibration}


class BaseCascade(Parameters):
    _ARRAYS = {}
    #: Fitted arrays a model may hold or not, as ``_ARRAYS``.
    _OPTIONAL_ARRAYS = {}
    #: The fitted arrays that are shapes, ``(L, 2)``: a loaded one must not be collapsed.
    _SHAPE_ARRAYS = ("mean_shape_",)

    def fit(self, images, shapes, boxes=None, points=None, missing="ignore", pseudo_label_rounds=1):
        """Learn from ``images``, their ``(n, L, 2)`` shapes, and where each face starts.

        ``boxes`` ``(n, 4)`` default to the tight boxes of the shapes. ``points``
        ``(n, 5, 2)`` (68-point models only) start a face from five points instead
        (see "Where a face starts"), as a detector's points would place it; a face
        whose five points are NaN starts from its box.

        NaN landmarks are missing (occluded, or never labelled). ``missing="ignore"``
        leaves them out of what is learnt (each estimator says how). ``"pseudo-label"``
        fits the model first with them left out, predicts the missing points (from
        their boxes or five points), and fits it again on every face with those
        predictions filling the gaps; each further round of
        ``pseudo_label_rounds`` predicts them again with the model of the round before.
        ``pseudo_labels_`` ``(n, L, 2)`` then holds the shapes it was fitted on last and
        ``pseudo_labelled_`` ``(n, L)`` marks the points that were filled (neither is saved).
        A face with missing points has no tight box of its own: give its ``boxes`` (a
        detector's, the dataset's) or five ``points``. Returns ``self``.
        """
        images = check_images(images)
        shapes = check_shapes(shapes, n_faces=len(images))
        if boxes is None and np.isnan(shapes).any():
            logging.getLogger(__name__).warning(
                "fit: faces with missing points start from the tight box of the points they have, "
                "which is not their face box: pass boxes or points")
        boxes = check_boxes(tight_boxes(shapes) if boxes is None else boxes, len(images),
                            [im.shape[:2] for im in images])
        if len(images) < 2:
            raise ValueError("fit needs at least 2 faces")
        points = None if points is None else check_start_points(points, len(images))
        if missing not in MISSING:
            raise ValueError(f"missing must be one of {MISSING}, got {missing!r}")
        if missing == "pseudo-label":
            check_integer(pseudo_label_rounds, "pseudo_label_rounds")
            return self._fit_pseudo_labelled(images, shapes, boxes, points, pseudo_label_rounds)
        return self._fit_checked(images, shapes, boxes, points)

    def _fit_pseudo_labelled(self, images, shapes, boxes, points, rounds):
        """``fit(..., missing="pseudo-label")`` on checked inputs."""
        gaps = np.isnan(shapes).any(axis=2)
        incomplete = np.flatnonzero(gaps.any(axis=1))
        # The first model learns from every known point (as missing="ignore"): more to go on than
        # the complete faces alone, so its pseudo-labels err less.
        self._fit_checked(images, shapes, boxes, points)
        filled = shapes.copy()
        for _ in range(rounds if len(incomplete) else 0):
            predicted = self._predict_starts([images[i] for i in incomplete], boxes[incomplete],
                                             None if points is None else points[incomplete])
            filled[incomplete] = np.where(gaps[incomplete, :, None], predicted, shapes[incomplete])
            self._fit_checked(images, filled, boxes, points)
        self.pseudo_labels_, self.pseudo_labelled_ = filled, gaps
        return self

    def _predict_starts(self, images, boxes, points):
        """Predictions of faces started from their five points where they have them, else their boxes."""
        placed = np.zeros(len(images), bool) if points is None else ~np.isnan(points).any(axis=(1, 2))
        shapes = np.empty((len(images), self.scheme_.n_points, 2))
        for rows, starts in ((np.flatnonzero(placed), "points"), (np.flatnonzero(~placed), "boxes")):
            if rows.size:
                given = (points if starts == "points" else boxes)[rows]
                shapes[rows] = self.predict([images[i] for i in rows], **{starts: given})
        return shapes

    def _fit_checked(self, images, shapes, boxes, points):
        """Fit on checked inputs: the scheme, mirrors and starts, then the estimator's ``_fit``."""
        self.scheme_ = scheme_of(getattr(self, "scheme", None), shapes.shape[1])
        self.point_starts_ = points is not None and not np.isnan(points).any()
        if getattr(self, "mirror", False):
            images, shapes, boxes, points = self._with_mirrors(images, shapes, boxes, points)
        mean, rolls = mean_shape(shapes, boxes), None
        if points is not None:
            boxes, rolls = self._point_frames(self.scheme_.five_points(mean), points, boxes, images)
        self._fit(images, shapes, boxes, rolls, mean)
        return self

    def predict(self, images, boxes=None, points=None, detector=None):
        """Landmarks in pixels, ``(n, L, 2)``, of the faces in ``n`` images, each started from a
        box or from five points (give one of the two).

        Without ``detector``, ``boxes`` ``(n, 4)`` are of the kind the model was trained on:
        the tight box of the landmarks, unless the model says otherwise, and ``points``
        ``(n, 5, 2)`` the faces' eye centres, nose tips and mouth corners (68-point models).
        A face detector's raw boxes and points are another kind (given YuNet's raw boxes, the
        bundled ert-68 fails: 42 % NME on lfpw/testset, against 4.7 % once mapped): name the
        detector (``detector="yunet"``, a key of ``box_calibrations_`` or ``point_calibrations_``)
        and they are first mapped by the calibration the model stores for it, as
        :class:`cascade.Pipeline` does.
        A model trained from five points only (``point_starts_``, as the bundled ones) runs
        a face given by a box twice: from the box, then from the five points of that first
        answer, the start it was trained for. A single image with a single ``(4,)`` box or
        ``(5, 2)`` points gives a single ``(L, 2)`` shape. Thread-safe: threads may share one
        fitted model.
        """
        self._check_fitted()
        if (boxes is None) == (points is None):
            raise ValueError("give the faces' boxes or their five points (one of the two)")
        given, name = (boxes, "boxes") if points is None else (points, "points")
        single_shape = (4,) if points is None else (5, 2)
        single = np.ndim(given) == len(single_shape) and np.size(given) > 0
        one_image = _is_one_image(images)
        if single and not one_image and isinstance(images, Sequence) and len(images) == 1:
            images, one_image = images[0], True                 # [image] and one face: the same
        if single:
            if np.shape(given) != single_shape or not one_image:
                raise ValueError(f"for one face pass one image and {name} of shape {single_shape}; "
                                 f"for several, a sequence of images and (n, {', '.join(map(str, single_shape))}) "
                                 f"{name}, or one image and the (k, {', '.join(map(str, single_shape))}) {name} "
                                 f"of its k faces (got {name} of shape {np.shape(given)})")
            images, given = [images], [given]
        elif one_image:                                         # one image, the k faces in it
            images = [images] * (len(given) if np.ndim(given) else 0)
        images = check_images(images)
        if points is not None and detector is None and len(images) == 1 and (single or np.shape(given) == (1, 5, 2)):
            # One face a call (the pipeline's, a tracker's): the compiled path of few checks.
            one = self._predict_one_on_points(images[0], given[0])
            if one is not None:
                return one if single else one[None]
        calibration = None if detector is None else self._calibration(detector, name)
        rolls = None
        if points is None:
            if calibration is not None:
                given = calibration.apply(check_boxes(given, len(images)))
            boxes = check_boxes(given, len(images), [im.shape[:2] for im in images])
        else:
            points = check_shapes(np.reshape(given, (-1, 5, 2)) if np.size(given) == 0 else given,
                                  len(images), 5, allow_nan=False, name="points")
            if calibration is not None:
                points = calibration.apply(points)
            boxes, rolls = self._point_frames(self._mean_points(), points, None, images)
        shapes = self._predict(images, boxes, rolls)
        if points is None and getattr(self, "point_starts_", False) and np.isfinite(shapes).all():
            shapes = self._second_run(images, shapes)
        shapes = self._finite(shapes)
        return shapes[0] if single else shapes

    def _finite(self, shapes):
        """``shapes`` if every coordinate is finite: from checked inputs only a damaged model
        gives others."""
        if not np.isfinite(shapes).all():
            raise ValueError(f"this {type(self).__name__} model gave non-finite landmarks; "
                             "its file may be damaged")
        return shapes

    def _predict_one_on_points(self, image, points):
        """One face's ``(L, 2)`` shape from its (unchecked) image and ``(5, 2)`` points by a path of few
        checks that give :meth:`predict`'s answer and errors (a non-finite answer among them), or None
        where the model has no such path."""
        return None

    def _calibration(self, detector, kind):
        """The calibration this model stores for ``detector``'s ``kind`` ("boxes" or "points")."""
        stored = getattr(self, "box_calibrations_" if kind == "boxes" else "point_calibrations_", {})
        if detector not in stored:
            raise ValueError(f"this model stores no calibration of {detector!r}'s {kind} (it has "
                             f"{sorted(stored) or 'none'}): map them yourself, or fit one with "
                             "cascade.calibration.calibrate")
        return stored[detector]

    def _second_run(self, images, shapes):
        """A five-point model's faces started from a box, run again from the five points of their
        first answer (see :meth:`predict`); a face whose first answer places no frame on its image
        (a box mostly off the image) keeps that answer."""
        boxes, rolls = frames_from_points(self._mean_points(), self.scheme_.five_points(shapes))
        again = np.flatnonzero((boxes[:, 2] > boxes[:, 0]) & boxes_on_images(boxes, [im.shape[:2] for im in images]))
        if again.size:
            shapes[again] = self._predict([images[i] for i in again], boxes[again], rolls[again])
        return shapes

    def _mean_points(self):
        """The five points of ``mean_shape_``, which every five-point start needs (kept while the
        model holds the same mean shape)."""
        cached = self.__dict__.get("_mean_points_of")
        if cached is None or cached[0] is not self.mean_shape_:
            cached = self._mean_points_of = (self.mean_shape_, self.scheme_.five_points(self.mean_shape_))
        return cached[1]

    @staticmethod
    def _point_frames(mean_points, points, boxes, images):
        """Boxes and rolls of faces started from ``points`` (rows of NaN: from ``boxes``), placing
        the mean shape by its five points ``mean_points``."""
        placed = ~np.isnan(points).any(axis=(1, 2))
        if placed.all():                        # the usual case, spared the masking (a face a call)
            frame_boxes, rolls = frames_from_points(mean_points, points)
        else:
            frame_boxes, rolls = (np.zeros((len(points), 4)), np.zeros(len(points)))
            if placed.any():
                frame_boxes[placed], rolls[placed] = frames_from_points(mean_points, points[placed])
            if boxes is not None:
                frame_boxes[~placed] = boxes[~placed]
        frame_boxes = check_boxes(frame_boxes, len(images), [im.shape[:2] for im in images],
                                  name="the boxes of the points")
        return frame_boxes, rolls

    def score(self, images, shapes, boxes=None):
        """Minus the mean NME (larger is better, as scikit-learn's model selection expects).

        The scheme's normalisation (:meth:`cascade.schemes.Scheme.default_normalization`:
        inter-ocular for 68 points). ``boxes`` default to the tight boxes of ``shapes``.
        """
        self._check_fitted()
        shapes = check_shapes(shapes, n_landmarks=self.scheme_.n_points)
        boxes = tight_boxes(shapes) if boxes is None else boxes
        normalization = self.scheme_.default_normalization()
        return -float(np.mean(nme(self.predict(images, boxes), shapes, normalization, scheme=self.scheme_)))

    def save(self, path, format="npz", **options):
        """Write the fitted model to ``path``: a ``.npz`` (:mod:`cascade.io`), or with ``format="c"``
        the flat file the C runtime reads (tree cascades; :mod:`cascade.flat`). Either loads back
        with :meth:`load` or :func:`cascade.load_model`."""
        self._check_fitted()
        arrays = {name: getattr(self, name) for name in (*self._ARRAYS, *self._OPTIONAL_ARRAYS)
                  if hasattr(self, name)}
        attributes = {key: {name: calibration.to_dict() for name, calibration in getattr(self, f"{key}_", {}).items()}
                      for key in CALIBRATIONS}
        attributes["point_starts"] = bool(getattr(self, "point_starts_", False))
        attributes["scheme"] = self.scheme_.to_dict()
        params = self.get_params()
        if isinstance(params.get("scheme"), Scheme):        # the whole scheme is an attribute
            params["scheme"] = params["scheme"].name
        return io.save_model(path, type(self).__name__, params, arrays, attributes=attributes, format=format,
                             **options)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; every array and index is checked first."""
        params, attributes, arrays = io.load_model(path, cls.__name__, cls._ARRAYS, cls._OPTIONAL_ARRAYS)
        params.pop("verbose", None)             # how its fit talked is no part of a model: a loaded one is quiet
        model = cls._from_arrays(params, arrays, path, _stored_scheme(params, attributes, arrays, path))
        for key, kind in CALIBRATIONS.items():
            calibrations = attributes.get(key, {})
            if not isinstance(calibrations, dict):
                raise ValueError(f"{path}: {key} must be an object")
            try:
                setattr(model, f"{key}_", {str(name): kind.from_dict(value) for name, value in calibrations.items()})
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
        model.point_starts_ = attributes.get("point_starts", False)
        if not isinstance(model.point_starts_, bool):
            raise ValueError(f"{path}: point_starts must be true or false, got {model.point_starts_!r}")
        return model

    def _fitted_extras(self):
        """What a fitted model holds beside its arrays (calibrations, how it was trained to start),
        for a copy such as :meth:`cascade.forest.ForestCascade.quantize` to keep."""
        return {name: getattr(self, name) for name in (*(f"{key}_" for key in CALIBRATIONS), "point_starts_",
                                                       "scheme_") if hasattr(self, name)}

    @classmethod
    def _from_arrays(cls, params, arrays, source, scheme=None):
        """A fitted estimator made of ``params`` and ``arrays``, checked; errors name ``source``.
        Its ``scheme_`` is ``scheme``, or the built-in scheme of its point count (68: iBUG, as
        dlib's model files, which name none)."""
        try:
            model = cls(**params)
        except TypeError as error:
            raise ValueError(f"{source}: parameters do not fit {cls.__name__} ({error})") from None
        for name, array in arrays.items():
            setattr(model, name, io.cache_aligned(array))
        try:
            model._check_arrays()
            effective_jobs(getattr(model, "n_jobs", None))
            for name in cls._SHAPE_ARRAYS:
                extent = np.ptp(getattr(model, name), axis=0)
                if not (extent > 0).all():
                    raise ValueError(f"{name} is collapsed (extent {extent.tolist()}), not a face")
        except (ValueError, TypeError) as error:      # TypeError: a parameter of the wrong type
            raise ValueError(f"{source}: {error}") from None
        model.scheme_ = scheme_of(None, len(model.mean_shape_)) if scheme is None else scheme
        return model

    # -- helpers for subclasses -------------------------------------------------------

    def _check_arrays(self):
        """Validate the parameters and the fitted arrays' shapes and indices (after a load)."""
        raise NotImplementedError

    def _check_fitted(self):
        if not self.__dict__.keys() >= self._ARRAYS.keys():      # fitted arrays are the instance's own
            raise _not_fitted_error()(f"this {type(self).__name__} is not fitted yet: call fit or load")

    def _with_mirrors(self, images, shapes, boxes, points):
        """Every face and its mirror image (with its boxes and five points, if any)."""
        widths = np.array([im.shape[1] for im in images], dtype=np.float64)
        if points is not None:
            placed = ~np.isnan(points).any(axis=(1, 2))            # the others start from their box
            mirrored = np.full_like(points, np.nan)
            mirrored[placed] = flip_shapes(points[placed], widths[placed], FIVE)
            points = np.concatenate([points, mirrored])
        return (images + [flip_image(im) for im in images],
                np.concatenate([shapes, flip_shapes(shapes, widths, self.scheme_)]),
                np.concatenate([boxes, flip_boxes(boxes, widths)]), points)

    def _map_faces(self, function, n_faces):
        """Run ``function(slice)`` over the faces, split across ``n_jobs`` threads."""
        map_chunks(function, n_faces, getattr(self, "n_jobs", 1))

    def _log(self, message):
        """Progress of a fit, logged at INFO when ``verbose`` (the ``cascade`` command shows it; a script
        sees the stages' progress bar)."""
        if getattr(self, "verbose", 0):
            logging.getLogger(type(self).__module__).info("%s: %s", type(self).__name__, message)


def _is_one_image(images):
    """Whether ``images`` is one image (HxW or HxWx3), not a sequence or stack of them."""
    return isinstance(images, np.ndarray) and (images.ndim == 2 or images.ndim == 3 and images.shape[2] == 3)


class NotFittedError(ValueError, AttributeError):
    """Raised by an estimator used before ``fit`` or ``load`` where scikit-learn is not installed
    (where it is, scikit-learn's own ``NotFittedError``, so that its callers catch it)."""


def _not_fitted_error():
    try:
        from sklearn.exceptions import NotFittedError as sklearn_error     # imported late: 0.5 s
    except ImportError:
        return NotFittedError
    return sklearn_error


def _stored_scheme(params, attributes, arrays, source):
    """The scheme a model file stores: whole in its attributes; in files written before schemes,
    the scheme for its number of points, or the mirror map and curves it kept as parameters."""
    legacy = {key: params.pop(key, None) for key in ("flip_permutation", "contours")}
    n_points = len(arrays["mean_shape_"])
    try:
        if "scheme" in attributes:
            scheme = Scheme.from_dict(attributes["scheme"])
        elif legacy["flip_permutation"] is None and legacy["contours"] is None:
            scheme = scheme_of(None, n_points)
        else:
            base = scheme_of(None, n_points)
            curves = base.curves if legacy["contours"] is None else tuple(
                (tuple(range(first, last + 1)), closed) for first, last, closed in _contours(legacy["contours"],
                                                                                             n_points))
            scheme = Scheme(f"{n_points} points", n_points, legacy["flip_permutation"] or base.flip, curves=curves)
        if scheme.n_points != n_points:
            raise ValueError(f"its scheme has {scheme.n_points} points, its mean shape {n_points}")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{source}: {error}") from None
    return scheme


def _contours(contours, n_points):
    """A version 1 file's ``[first, last, closed]`` curves, checked against the point count before a
    range is made of them (a damaged file could otherwise ask for billions of indices)."""
    if not isinstance(contours, list):
        raise ValueError(f"contours must be a list of [first, last, closed], got {type(contours).__name__}")
    for contour in contours:
        if (not isinstance(contour, list) or len(contour) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in contour[:2])
                or not 0 <= contour[0] <= contour[1] < n_points):
            raise ValueError(f"a contour must be [first, last, closed] with 0 <= first <= last < {n_points}, "
                             f"got {contour!r}")
    return contours
