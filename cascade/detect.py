"""Face detectors, and the calibration from a detector's boxes to a landmark model's boxes.

A detector is a callable ``detector(image) -> (boxes, scores)``: ``(k, 4)``
boxes ``(left, top, right, bottom)`` in pixels and ``(k,)`` scores, larger
meaning surer (their scale is the detector's own), surest first. Two ship here:

- :class:`HaarDetector`, OpenCV's Viola-Jones frontal-face cascade, whose model
  file comes inside the opencv-python wheel (no download);
- :class:`DlibHOGDetector`, dlib's HOG + linear SVM frontal detector, when dlib
  is installed;
- :class:`YuNetDetector`, OpenCV's CNN face detector, given its model file.

Landmark models are trained on the tight boxes of the landmarks, and every
detector draws its own kind of box (Haar's is a square from the brows to the
mouth, say). :class:`BoxCalibration` learns, from training faces, the mapping
from a detector's boxes to tight boxes: a centre shift and a scale per axis,
relative to the detector box's size.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .validation import check_boxes, check_image, check_integer, check_real


class HaarDetector:
    """OpenCV's Haar cascade frontal face detector (``haarcascade_frontalface_default.xml``).

    ``scale_factor``, ``min_neighbors`` and ``min_size`` (pixels) are those of
    ``cv2.CascadeClassifier.detectMultiScale``; scores are its level weights.
    Each thread gets its own classifier (OpenCV's is not safe to share).
    """

    def __init__(self, scale_factor=1.1, min_neighbors=5, min_size=30, cascade_file=None):
        if not scale_factor > 1:
            raise ValueError(f"scale_factor must be above 1, got {scale_factor!r}")
        check_integer(min_neighbors, "min_neighbors", low=0)
        check_integer(min_size, "min_size")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.cascade_file = cascade_file or os.path.join(
            cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self._local = threading.local()

    def _classifier(self):
        if not hasattr(self._local, "classifier"):
            classifier = cv2.CascadeClassifier(self.cascade_file)
            if classifier.empty():
                raise ValueError(f"cannot read a Haar cascade from {self.cascade_file}")
            self._local.classifier = classifier
        return self._local.classifier

    def __call__(self, image):
        grey = _grey(image)
        found, _, weights = self._classifier().detectMultiScale3(
            grey, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        if len(found) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        found = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        return _surest_first(np.concatenate([found[:, :2], found[:, :2] + found[:, 2:]], axis=1),
                             np.asarray(weights, dtype=np.float64).ravel())


class DlibHOGDetector:
    """dlib's HOG frontal face detector (needs dlib); ``upsample`` doubles the image that many times.

    Each thread gets its own detector (dlib's crashes when shared).
    """

    def __init__(self, upsample=1):
        check_integer(upsample, "upsample", low=0)
        import dlib
        self.upsample = upsample
        self._dlib = dlib
        self._local = threading.local()

    def __call__(self, image):
        grey = _grey(image)
        if not hasattr(self._local, "detector"):        # one per thread: dlib's is not safe to share
            self._local.detector = self._dlib.get_frontal_face_detector()
        rectangles, scores, _ = self._local.detector.run(grey, self.upsample, 0.0)
        # As everywhere in cascade (see the dlib XML reader), dlib's rectangle is the box itself.
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rectangles],
                         dtype=np.float64).reshape(-1, 4)
        return _surest_first(boxes, np.asarray(scores, dtype=np.float64))


class YuNetDetector:
    """OpenCV's ``FaceDetectorYN`` (the YuNet CNN) from a model file the user supplies
    (``face_detection_yunet_*.onnx``; none ships here, and nothing is downloaded).

    ``score_threshold`` and ``nms_threshold`` are FaceDetectorYN's; scores are its
    confidences. Each thread gets its own detector.
    """

    def __init__(self, model_path, score_threshold=0.6, nms_threshold=0.3):
        self.model_path = str(model_path)
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"no YuNet model file at {self.model_path}")
        self.score_threshold = check_real(score_threshold, "score_threshold", high=1, include_low=True)
        self.nms_threshold = check_real(nms_threshold, "nms_threshold", high=1, include_low=True)
        self._local = threading.local()

    def __call__(self, image):
        image = check_image(image)
        colour = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        if not hasattr(self._local, "detector"):
            try:
                self._local.detector = cv2.FaceDetectorYN.create(self.model_path, "", (320, 320),
                                                                 self.score_threshold, self.nms_threshold)
            except cv2.error as error:
                raise ValueError(f"cannot read a YuNet model from {self.model_path}: {error}") from None
        detector = self._local.detector
        detector.setInputSize((colour.shape[1], colour.shape[0]))
        _, faces = detector.detect(colour)
        if faces is None or len(faces) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        faces = np.asarray(faces, dtype=np.float64)
        boxes = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4]], axis=1)
        return _surest_first(boxes, faces[:, -1])


DETECTORS = {"haar": HaarDetector, "dlib-hog": DlibHOGDetector, "yunet": YuNetDetector}


def make_detector(name="haar", **options):
    """A detector by name: "haar" (the default, always there), "dlib-hog" (needs dlib) or
    "yunet" (needs ``model_path=``)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    return DETECTORS[name](**options)


def box_iou(boxes, box):
    """Intersection over union of each of ``boxes`` ``(k, 4)`` with one ``box`` ``(4,)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    box = np.asarray(box, dtype=np.float64)
    width = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    height = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = width * height
    return inter / (_area(boxes) + _area(box) - inter)


def match_detection(boxes, truth_box, min_iou=0.2):
    """Index of the detection overlapping ``truth_box`` most, or -1 if none reaches ``min_iou``.

    A tight landmark box and a detector's box of the same face overlap only
    partly (different extents), hence the low default.
    """
    if len(boxes) == 0:
        return -1
    overlap = box_iou(boxes, truth_box)
    best = int(np.argmax(overlap))
    return best if overlap[best] >= min_iou else -1


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


def calibrate(detector, images, truth_boxes, n_threads=1):
    """The :class:`BoxCalibration` from ``detector``'s boxes to ``truth_boxes`` ``(n, 4)`` on ``images``.

    Each face's detection is the one overlapping its truth box most
    (:func:`match_detection`); faces the detector misses are left out. Returns
    ``(calibration, number of faces matched)``.
    """
    truth_boxes = check_boxes(truth_boxes, len(images))

    def match(index):
        boxes, _ = detector(images[index])
        best = match_detection(boxes, truth_boxes[index])
        return boxes[best] if best >= 0 else None

    with ThreadPoolExecutor(n_threads) as pool:
        matched = list(pool.map(match, range(len(images))))
    found = [i for i, box in enumerate(matched) if box is not None]
    if not found:
        raise ValueError("the detector found none of the faces: nothing to calibrate on")
    return BoxCalibration.fit(np.array([matched[i] for i in found]), truth_boxes[found]), len(found)


def _surest_first(boxes, scores):
    """Detections by falling score (then position): OpenCV's own order varies with its threads."""
    order = np.lexsort((boxes[:, 1], boxes[:, 0], -scores))
    return boxes[order], scores[order]


def _area(boxes):
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _centre_size(boxes):
    return (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]


def _grey(image):
    image = check_image(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else np.ascontiguousarray(image)
