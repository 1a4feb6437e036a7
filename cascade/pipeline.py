"""``Pipeline``: from a photo to the landmarks of every face in it.

A face detector finds the faces, each detector box is mapped to the kind of
box the landmark model was trained on (the box calibration stored with the
model for that detector), the landmarker places the points, and an optional
CNN refiner (:class:`cnn_refine.Refiner`) corrects them.
"""
from dataclasses import dataclass

import numpy as np

from .bundled import load_model
from .detect import BoxCalibration, make_detector
from .validation import check_image, check_integer


@dataclass
class Face:
    """One face found in an image: the detector's ``box`` ``(4,)``, its ``score``, and
    the ``landmarks`` ``(L, 2)`` in pixels."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray


class Pipeline:
    """Detector + landmarker (+ refiner): ``pipeline(image) -> [Face, ...]``, surest face first.

    Parameters
    ----------
    landmarker : a fitted estimator, or a model name or path for :func:`cascade.load_model`
        ("default": the bundled model that is most accurate at real-time speed)
    detector : "haar" (OpenCV's, always there), "dlib-hog" (needs dlib), "yunet" (OpenCV's CNN,
        ``detector_options={"model_path": ...}``), or any callable ``image -> (boxes (k, 4), scores (k,))``
    detector_options : keyword arguments for the named detector (see :mod:`cascade.detect`)
    refiner : None, True for the bundled :class:`cnn_refine.Refiner`, or a Refiner
    calibration : the :class:`~cascade.detect.BoxCalibration` from detector boxes to the
        landmarker's boxes; by default the one stored with the model for a named detector,
        else none (the identity)
    max_faces : keep at most this many faces, the surest ones (None: all)
    """

    def __init__(self, landmarker="default", detector="haar", refiner=None, calibration=None, max_faces=None,
                 detector_options=None):
        self.landmarker = load_model(landmarker) if isinstance(landmarker, str) else landmarker
        if not hasattr(self.landmarker, "predict"):
            raise TypeError(f"landmarker must be a fitted estimator or a model name, got {landmarker!r}")
        self.detector = make_detector(detector, **(detector_options or {})) if isinstance(detector, str) else detector
        if not callable(self.detector):
            raise TypeError(f"detector must be a name or a callable, got {detector!r}")
        if refiner is True:
            from cnn_refine import Refiner
            refiner = Refiner()
        if refiner is not None and getattr(refiner, "n_landmarks", None) != self.n_landmarks:
            raise ValueError(f"the refiner works on {getattr(refiner, 'n_landmarks', '?')} landmarks, "
                             f"the landmarker gives {self.n_landmarks}")
        self.refiner = refiner
        if calibration is None:
            stored = getattr(self.landmarker, "box_calibrations_", {})
            calibration = stored.get(detector, BoxCalibration()) if isinstance(detector, str) else BoxCalibration()
        if not isinstance(calibration, BoxCalibration):
            raise TypeError(f"calibration must be a BoxCalibration, got {calibration!r}")
        self.calibration = calibration
        self.max_faces = None if max_faces is None else check_integer(max_faces, "max_faces", low=0)

    def __call__(self, image):
        image = check_image(image)
        boxes, scores = self.detector(image)
        boxes, scores = boxes[:self.max_faces], scores[:self.max_faces]
        landmarks = self.landmarks(image, boxes)
        return [Face(box, float(score), points) for box, score, points in zip(boxes, scores, landmarks)]

    @property
    def n_landmarks(self):
        return len(self.landmarker.mean_shape_)

    def landmarks(self, image, detector_boxes):
        """``(k, L, 2)`` landmarks of the faces in ``detector_boxes`` ``(k, 4)`` of one image."""
        return self.landmarks_in(image, self.calibration.apply(detector_boxes))

    def landmarks_in(self, image, model_boxes):
        """``(k, L, 2)`` landmarks from boxes of the landmarker's own kind (tight landmark
        boxes, e.g. those of a tracker's previous shapes): no calibration is applied."""
        images = [check_image(image)] * len(model_boxes)
        shapes = self.landmarker.predict(images, model_boxes)
        if self.refiner is not None:
            shapes = self.refiner.predict(images, shapes)
        return shapes
