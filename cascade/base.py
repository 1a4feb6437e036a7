"""What every landmark estimator shares: input checks, mirrors, scoring, threads, save/load.

An estimator subclasses :class:`BaseCascade` and provides

- ``_fit(images, shapes, boxes)``: learn from checked, mirror-augmented inputs;
- ``_predict(images, boxes)``: ``(n, L, 2)`` pixel shapes for checked inputs;
- ``_ARRAYS``: the schema of its fitted arrays, ``name -> (dtypes, ndim)``, and
  ``_check_arrays()`` that validates their shapes and indices after a load.

Fitted arrays are attributes ending in ``_``; ``save``/``load`` write and read
exactly those (see :mod:`cascade.io`), plus ``box_calibrations_`` when set: a
dict from detector name to the :class:`cascade.detect.BoxCalibration` that maps
that detector's boxes to the boxes the model was trained on.
"""
import sys

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from . import io
from .detect import BoxCalibration
from .evaluate import nme
from .shapes import flip_boxes, flip_image, flip_permutation, flip_shapes, tight_boxes
from .threads import effective_jobs, map_chunks
from .validation import check_boxes, check_images, check_shapes


class BaseCascade(BaseEstimator):
    _ARRAYS = {}
    #: The fitted arrays that are shapes, ``(L, 2)``: a loaded one must not be collapsed.
    _SHAPE_ARRAYS = ("mean_shape_",)

    def fit(self, images, shapes, boxes=None):
        """Learn from ``images``, their ``(n, L, 2)`` shapes and optional ``(n, 4)`` boxes.

        ``boxes`` default to the tight boxes of the shapes. NaN points are
        missing and left out of the regression targets. Returns ``self``.
        """
        images = check_images(images)
        shapes = check_shapes(shapes, n_faces=len(images))
        boxes = check_boxes(tight_boxes(shapes) if boxes is None else boxes, len(images),
                            [im.shape[:2] for im in images])
        if len(images) < 2:
            raise ValueError("fit needs at least 2 faces")
        if getattr(self, "mirror", False):
            images, shapes, boxes = self._with_mirrors(images, shapes, boxes)
        self._fit(images, shapes, boxes)
        return self

    def predict(self, images, boxes):
        """Landmarks in pixels: ``(n, L, 2)`` for n images and ``(n, 4)`` boxes.

        A single image with a single ``(4,)`` box gives a single ``(L, 2)`` shape.
        """
        self._check_fitted()
        single = np.ndim(boxes) == 1 and np.size(boxes) > 0
        if single:
            if np.shape(boxes) != (4,) or not isinstance(images, np.ndarray):
                raise ValueError("for one face pass one image and a (4,) box; for several, a "
                                 f"sequence of images and (n, 4) boxes (got boxes of shape {np.shape(boxes)})")
            images, boxes = [images], [boxes]
        images = check_images(images)
        boxes = check_boxes(boxes, len(images), [im.shape[:2] for im in images])
        shapes = self._predict(images, boxes)
        if not np.isfinite(shapes).all():    # checked inputs: only a damaged model gets here
            raise ValueError(f"this {type(self).__name__} model gave non-finite landmarks; "
                             "its file may be damaged")
        return shapes[0] if single else shapes

    def score(self, images, shapes, boxes=None):
        """Minus the mean NME (larger is better, as scikit-learn's model selection expects).

        Inter-ocular for the 68-point scheme; the box-size normalisation otherwise.
        ``boxes`` default to the tight boxes of ``shapes``.
        """
        shapes = check_shapes(shapes)
        boxes = tight_boxes(shapes) if boxes is None else boxes
        normalization = "inter-ocular" if shapes.shape[1] == 68 else "box-size"
        return -float(np.mean(nme(self.predict(images, boxes), shapes, normalization)))

    def save(self, path, **options):
        """Write the fitted model to ``path`` (a ``.npz``; see :mod:`cascade.io`)."""
        self._check_fitted()
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        calibrations = {name: calibration.to_dict()
                        for name, calibration in getattr(self, "box_calibrations_", {}).items()}
        return io.save_model(path, type(self).__name__, self.get_params(), arrays,
                             attributes={"box_calibrations": calibrations}, **options)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; every array and index is checked first."""
        params, attributes, arrays = io.load_model(path, cls.__name__, cls._ARRAYS)
        model = cls._from_arrays(params, arrays, path)
        calibrations = attributes.get("box_calibrations", {})
        if not isinstance(calibrations, dict):
            raise ValueError(f"{path}: box_calibrations must be an object")
        try:
            model.box_calibrations_ = {str(name): BoxCalibration.from_dict(value)
                                       for name, value in calibrations.items()}
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        return model

    @classmethod
    def _from_arrays(cls, params, arrays, source):
        """A fitted estimator made of ``params`` and ``arrays``, checked; errors name ``source``."""
        try:
            model = cls(**params)
        except TypeError as error:
            raise ValueError(f"{source}: parameters do not fit {cls.__name__} ({error})") from None
        for name, array in arrays.items():
            setattr(model, name, np.ascontiguousarray(array))
        try:
            model._check_arrays()
            effective_jobs(getattr(model, "n_jobs", None))
            for name in cls._SHAPE_ARRAYS:
                extent = np.ptp(getattr(model, name), axis=0)
                if not (extent > 0).all():
                    raise ValueError(f"{name} is collapsed (extent {extent.tolist()}), not a face")
        except (ValueError, TypeError) as error:      # TypeError: a parameter of the wrong type
            raise ValueError(f"{source}: {error}") from None
        return model

    # -- helpers for subclasses -------------------------------------------------------

    def _check_arrays(self):
        """Validate the parameters and the fitted arrays' shapes and indices (after a load)."""
        raise NotImplementedError

    def _check_fitted(self):
        if not all(hasattr(self, name) for name in self._ARRAYS):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit or load")

    def _with_mirrors(self, images, shapes, boxes):
        permutation = flip_permutation(shapes.shape[1], getattr(self, "flip_permutation", None))
        widths = np.array([im.shape[1] for im in images], dtype=np.float64)
        return (images + [flip_image(im) for im in images],
                np.concatenate([shapes, flip_shapes(shapes, widths, permutation)]),
                np.concatenate([boxes, flip_boxes(boxes, widths)]))

    def _map_faces(self, function, n_faces):
        """Run ``function(slice)`` over the faces, split across ``n_jobs`` threads."""
        map_chunks(function, n_faces, getattr(self, "n_jobs", 1))

    def _log(self, message):
        if getattr(self, "verbose", 0):
            print(f"[{type(self).__name__}] {message}", file=sys.stderr, flush=True)
