"""From a face detector's output to where a landmark model starts.

Landmark models start from their mean shape placed on the face, and every
detector describes a face its own way: Haar's box is a square from the brows to
the mouth, YuNet's a taller one, and YuNet's eye points are not quite the means
of the eye contours. A calibration, learnt once per detector on training faces,
maps what a detector gives to what a model expects:

- :class:`BoxCalibration`: a detector's box -> the tight box of the landmarks
  (a centre shift and a scale per axis, relative to the box's size);
- :class:`PointCalibration`: a detector's five points -> the model's five points
  (:meth:`cascade.schemes.Scheme.five_points`: eye centres, nose tip, mouth corners), so
  that :meth:`cascade.base.BaseCascade.predict` can place the mean shape on them.

Both are stored with a model, per detector name (``box_calibrations_``,
``point_calibrations_``), and are the identity when built with no arguments.
They are fitted (:func:`calibrate`) on training faces of known landmarks, from
each face's detection (:func:`cascade.detect.detect_faces`).
"""
from dataclasses import asdict, dataclass, field

import numpy as np

from .schemes import scheme_of
from .shapes import apply_similarity, similarity_fit, tight_boxes, to_mean_frame
from .validation import check_boxes, check_shapes


@dataclass
class BoxCalibration:
    """Maps a detector's box to the tight landmark box it stands for.

    For a detector box of centre ``(cx, cy)`` and size ``(w, h)``, the tight box
    has centre ``(cx + shift_x * w, cy + shift_y * h)`` and size
    ``(scale_x * w, scale_y * h)``. The identity is ``BoxCalibration()``.
    """

    shift_x: float = 0.0
    shift_y: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0

    @classmethod
    def fit(cls, detector_boxes, tight_boxes):
        """The medians, over matched pairs of ``(n, 4)`` boxes, of each face's own mapping."""
        detector_boxes = check_boxes(detector_boxes)
        tight_boxes = check_boxes(tight_boxes, len(detector_boxes))
        if len(detector_boxes) == 0:
            raise ValueError("no matched boxes to calibrate on")
        centre_d, size_d = _centre_size(detector_boxes)
        centre_t, size_t = _centre_size(tight_boxes)
        shift = np.median((centre_t - centre_d) / size_d, axis=0)
        scale = np.median(size_t / size_d, axis=0)
        return cls(float(shift[0]), float(shift[1]), float(scale[0]), float(scale[1]))

    def apply(self, boxes):
        """The tight boxes ``(n, 4)`` that detector boxes ``(n, 4)`` stand for."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        centre, size = _centre_size(boxes)
        centre = centre + size * [self.shift_x, self.shift_y]
        half = size * [self.scale_x, self.scale_y] / 2
        return np.concatenate([centre - half, centre + half], axis=1)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The calibration of :meth:`to_dict`'s output; refuses missing, extra or absurd values."""
        names = set(cls.__dataclass_fields__)
        if not isinstance(values, dict) or set(values) != names:
            raise ValueError(f"a box calibration needs exactly {sorted(names)}, got {values!r}")
        numbers = {name: values[name] for name in names}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                   for v in numbers.values()) or not (numbers["scale_x"] > 0 and numbers["scale_y"] > 0):
            raise ValueError(f"a box calibration needs finite numbers and positive scales, got {values!r}")
        return cls(**{name: float(v) for name, v in numbers.items()})


def _identity_points():
    # Any five distinct points: detector and model points equal make the identity map.
    return np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])


@dataclass
class PointCalibration:
    """Maps a detector's five points to the model's five points of the same face.

    ``detector`` and ``model`` ``(5, 2)`` are where, on average, the detector's
    points and the landmarks' own five points (:meth:`cascade.schemes.Scheme.five_points`)
    lie in one face frame (each training face brought onto the mean shape by the
    similarity fitted to all its landmarks). A face's detected points are moved by
    ``model - detector``, turned and scaled into the face by the similarity taking
    ``detector`` onto them: the detector's average bias is removed and the face's
    own configuration kept. Equal arrays are the identity.
    """

    detector: np.ndarray = field(default_factory=_identity_points)
    model: np.ndarray = field(default_factory=_identity_points)

    def __post_init__(self):
        self.detector, self.model = (_five(value, name) for name, value in (("detector", self.detector),
                                                                            ("model", self.model)))

    def __eq__(self, other):
        return (isinstance(other, PointCalibration) and np.array_equal(self.detector, other.detector)
                and np.array_equal(self.model, other.model))

    @classmethod
    def fit(cls, detector_points, true_shapes, scheme=None):
        """The medians over matched faces: ``detector_points`` ``(n, 5, 2)`` and the ``(n, L, 2)``
        true shapes of the same faces, in pixels, of a ``scheme`` that gives five points
        (:func:`cascade.schemes.scheme_of`; by default that of L points, 68: iBUG)."""
        detector_points = check_shapes(detector_points, n_landmarks=5, allow_nan=False, name="detector_points")
        true_shapes = check_shapes(true_shapes, n_faces=len(detector_points), name="true_shapes")
        scheme = scheme_of(scheme, true_shapes.shape[1])
        if len(detector_points) == 0:
            raise ValueError("no matched faces to calibrate on")
        A, t = to_mean_frame(true_shapes)
        detected = np.nanmedian(apply_similarity(detector_points, A, t), axis=0)
        model = np.nanmedian(apply_similarity(scheme.five_points(true_shapes), A, t), axis=0)   # NaN: missing
        return cls(detected, model)

    def apply(self, points):
        """The model's five points ``(n, 5, 2)`` that detected points ``(n, 5, 2)`` stand for."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
        A, _ = similarity_fit(self.detector, points)
        return points + np.einsum("nij,lj->nli", A, self.model - self.detector)

    def to_dict(self):
        return {"detector": self.detector.tolist(), "model": self.model.tolist()}

    @classmethod
    def from_dict(cls, values):
        """The calibration of :meth:`to_dict`'s output; refuses missing, extra or absurd values."""
        if not isinstance(values, dict) or set(values) != {"detector", "model"}:
            raise ValueError(f"a point calibration needs exactly ['detector', 'model'], got {values!r}")
        return cls(values["detector"], values["model"])


def _five(value, name):
    """``value`` as five finite points that span a face (not collapsed), or a ValueError."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != (5, 2) or not np.isfinite(array).all() or not np.ptp(array, axis=0).all():
        raise ValueError(f"a point calibration's {name} must be five distinct finite (x, y) points, got {value!r}")
    return array


def calibrate(boxes, points, true_shapes, scheme=None):
    """The :class:`BoxCalibration` and :class:`PointCalibration` (None without points, or for a
    scheme without five points) of one detector's output from :func:`cascade.detect.detect_faces`."""
    scheme = scheme_of(scheme, true_shapes.shape[1])
    found = ~np.isnan(boxes).any(axis=1)
    if not found.any():
        raise ValueError("the detector found none of the faces: nothing to calibrate on")
    box_calibration = BoxCalibration.fit(boxes[found], tight_boxes(true_shapes[found]))
    point_calibration = None
    if points is not None and scheme.has_five_points:
        point_calibration = PointCalibration.fit(points[found], true_shapes[found], scheme)
    return box_calibration, point_calibration


def _centre_size(boxes):
    return (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
