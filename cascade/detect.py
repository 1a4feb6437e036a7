"""Face detectors: ``detector(image) -> Detections(boxes, scores, points)``.

``boxes`` are ``(k, 4)`` ``(left, top, right, bottom)`` in pixels, ``scores``
``(k,)`` larger meaning surer, surest first, and
``points`` ``(k, 5, 2)`` five points per face in the order of
:data:`cascade.schemes.FIVE` (eyes, nose tip, mouth corners), or None for
a detector that gives none. Three ship here, each with its own scale of score:

- :class:`YuNetDetector` (the default): the YuNet CNN (Shiqi Yu et al., MIT
  licence) run by ONNX Runtime (:mod:`cascade.yunet`), whose model file ships
  inside the package (``cascade/models/yunet/``); boxes, five points, and a
  confidence in [0, 1] (faces below ``score_threshold``, 0.6, are dropped);
- :class:`HaarDetector`: OpenCV's Viola-Jones frontal-face cascade, from the
  model file inside opencv-python 4.x wheels (OpenCV 5 dropped it); the score is
  the cascade's level weight, unbounded (about 1 to 12 on the 300-W test faces);
- :class:`DlibHOGDetector`: dlib's HOG + linear SVM frontal detector, when dlib
  is installed; the score is the SVM's margin, unbounded (above 0 is a face).

Each detects on a copy of the image whose longer side is at most ``max_side``
pixels (640 by default; None for the full image) and maps its answers back, so
that a 12 MP or 400 MP photo costs little more than a 1080p one; the copy is
made without reading the whole of a very large image (:func:`downscaled`).

A detector's boxes are its own kind of box: :mod:`cascade.calibration` maps them
(and its points) to what a landmark model expects. Any callable returning
``(boxes, scores)`` or ``(boxes, scores, points)`` can stand in for a detector
(:func:`detections_of`).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, Optional

import cv2
import numpy as np

from .extras import require
from .shapes import tight_boxes
from .threads import effective_jobs
from .validation import boxes_on_images, check_image, check_integer, check_real, check_shapes
from .yunet import YuNet

#: The bundled YuNet model (see the README and LICENSE beside it).
YUNET_MODEL = Path(__file__).parent / "models" / "yunet" / "face_detection_yunet_2023mar_dynamic.onnx"
#: The detector used when none is named.
DEFAULT_DETECTOR = "yunet"
#: The longer side, in pixels, of the copy a detector runs on by default.
DEFAULT_MAX_SIDE = 640
#: The largest ``max_side`` taken: the detectors' memory grows with the copy's pixels (YuNet needs
#: about 300 bytes a pixel), and faces large enough to need more are found at 640.
MAX_MAX_SIDE = 4096
#: YuNet's copy: faces from about 1/30 of the photo's longer side are found on it (65 px in 1080p),
#: and at 320 px it costs a quarter of 640's (docs/notes/2026-12-06-realtime.md); ``max_side=480`` finds faces down to
#: 35 px in a 1080p photo (YuNet's box), at about twice the cost.
YUNET_MAX_SIDE = 320
#: Faces smaller than this on YuNet's copy are detected again, closer (:class:`YuNetDetector`); the
#: copy is searched down to the proposal threshold, the closer look confirming the faces.
DEFAULT_FINER_BELOW = 48
DEFAULT_FINER_SIDE = 160
PROPOSAL_THRESHOLD = 0.3
#: The closer look's window reaches this many face sides from the face's centre each way.
FINER_REACH = 1.0
#: A face whose five points are turned less than this (degrees) is not looked at again upright.
UPRIGHT_MIN_ROLL = 10.0
#: How far around a turned face (times its box's longer side, each way) its upright window reaches,
#: and the side of that window's copy in pixels: the face about 150 px across, where YuNet's points
#: are most precise (held-out turned faces: a window three times the face at 160 px, 0.16 of the
#: inter-ocular distance off; 1.6 times at 240 px, 0.10).
UPRIGHT_REACH = 0.3
UPRIGHT_SIDE = 240
#: A face YuNet scores under this is also looked at a quarter, a half and three quarters turned
#: (:meth:`YuNetDetector._best_quarter_turn`): upright faces score above it 19 times in 20 (AFW).
SIDEWAYS_CHECK_BELOW = 0.9
#: How many times, at most, YuNet looks at a turned face again upright (:meth:`YuNetDetector.upright_points`).
DEFAULT_UPRIGHT_PASSES = 3
#: A detection in a window around a face is that face when their boxes overlap by more than this.
SAME_FACE_IOU = 0.3
#: A copy narrower than this many pixels holds no detectable face (YuNet's smallest is about 10 px).
MIN_DETECTED_SIDE = 8


class Detections(NamedTuple):
    """The faces a detector found in one image, surest first (see the module's docstring)."""

    boxes: np.ndarray
    scores: np.ndarray
    points: Optional[np.ndarray] = None


def detections_of(result):
    """A :class:`Detections` from what a detector returned: a ``Detections`` or a tuple
    ``(boxes, scores)`` or ``(boxes, scores, points)``; ValueError if it is none of these."""
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise ValueError("a detector must return (boxes, scores) or (boxes, scores, points), "
                         f"got {type(result).__name__}")
    boxes = np.asarray(result[0], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(result[1], dtype=np.float64).reshape(-1)
    points = None if len(result) == 2 or result[2] is None else np.asarray(result[2], dtype=np.float64)
    if len(scores) != len(boxes) or (points is not None and points.shape != (len(boxes), 5, 2)):
        raise ValueError(f"a detector gave {len(boxes)} boxes, {len(scores)} scores and points of shape "
                         f"{None if points is None else points.shape}: they must agree")
    return Detections(boxes, scores, points)


def downscaled(image, max_side):
    """``(small, scale, offset)``: ``image`` shrunk so that its longer side is at most ``max_side``
    (the image itself when it fits or ``max_side`` is None), and the per-axis map back to the
    image's pixels, ``x_image = x_small * scale + offset`` (pixel centres).

    In three steps, each at the speed OpenCV has for it: a very large image is first thinned to
    every k-th row and column (k up to half the shrink factor; a nearest-neighbour resize at a
    whole factor, five times faster than NumPy's strided copy, and no full-size copy), then
    averaged down by the whole part of what is left (``cv2.INTER_AREA`` at a whole factor, its
    fast case), then resized by the rest, less than two (``cv2.INTER_LINEAR``; ``INTER_AREA``
    at a fractional factor costs up to ten times more).
    """
    height, width = image.shape[:2]
    factor = 1.0 if max_side is None else max(height, width) / max_side
    if factor <= 1:
        return image, np.ones(2), np.zeros(2)
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    step = max(1, int(factor // 2))
    average = max(1, int(factor / step))
    # The part of the image that is whole blocks of step * average pixels (at least one block).
    block = step * average
    used = (max(1, width // block) * block, max(1, height // block) * block)
    whole = image[:used[1], :used[0]]
    if whole.shape[0] < used[1] or whole.shape[1] < used[0]:     # thinner than one block
        whole, block, step, average = image, 1, 1, 1
        used = (width, height)
    thinned = whole if step == 1 else cv2.resize(whole, (used[0] // step, used[1] // step),
                                                 interpolation=cv2.INTER_NEAREST)
    averaged = thinned if average == 1 else cv2.resize(thinned, (used[0] // block, used[1] // block),
                                                       interpolation=cv2.INTER_AREA)
    small = averaged if averaged.shape[1::-1] == size else cv2.resize(averaged, size, interpolation=cv2.INTER_LINEAR)
    # A small pixel x spans used pixels [x, x + 1) * ratio: each step's map of pixel centres, composed.
    ratio = np.array(used, dtype=np.float64) / size
    return small, ratio, ratio / 2 - 0.5 - (step - 1) / 2


class Detector:
    """What the detectors share: input checks, the downscaled copy, mapping back, order.

    A subclass sets ``colour`` (whether it reads BGR rather than grey) and ``gives_points``
    (whether it finds five points), and provides
    ``_detect(image) -> (boxes, scores, points or None)`` on a checked uint8 image.
    Calling a detector is thread-safe: each thread gets its own underlying detector
    (``_local``), as OpenCV's and dlib's are not safe to share.
    """

    colour = False
    gives_points = False

    def __init__(self, max_side=DEFAULT_MAX_SIDE):
        self.max_side = None if max_side is None else check_integer(max_side, "max_side", low=16)
        if self.max_side is not None and self.max_side > MAX_MAX_SIDE:
            raise ValueError(f"max_side must be at most {MAX_MAX_SIDE} (a detector's copy of more than "
                             f"{MAX_MAX_SIDE ** 2 / 1e6:.0f} MP costs gigabytes), got {self.max_side}")
        self._local = threading.local()

    def __call__(self, image):
        image = check_image(image)
        boxes, scores, points = self._finer(image, *self._detect_at(image, self.max_side))
        keep = _sound(boxes, scores, points, image.shape)
        boxes, scores = boxes[keep], scores[keep]
        points = None if points is None else points[keep]
        order = np.lexsort((boxes[:, 1], boxes[:, 0], -scores))     # OpenCV's own order varies with its threads
        return Detections(boxes[order], scores[order], None if points is None else points[order])

    def detect_in(self, image, window, max_side):
        """The faces in a ``window`` ``(left, top, right, bottom)`` of ``image``, detected on its copy of
        at most ``max_side`` pixels (a tracker's search around a face), in ``image``'s pixels, surest
        first. ``image`` is a checked uint8 image (:func:`cascade.validation.check_image`)."""
        left, top, right, bottom = (int(v) for v in window)
        boxes, scores, points = self._detect_at(image[top:bottom, left:right], max_side)
        boxes = boxes + [left, top, left, top]
        points = None if points is None else points + [left, top]
        keep = (scores >= getattr(self, "score_threshold", -np.inf)) & _sound(boxes, scores, points, image.shape)
        order = np.argsort(-scores[keep], kind="stable")
        return Detections(boxes[keep][order], scores[keep][order], None if points is None else points[keep][order])

    def _detect_at(self, image, max_side):
        """``(boxes, scores, points or None)`` in ``image``'s pixels, detected on its copy of at most
        ``max_side`` pixels."""
        small, scale, offset = downscaled(image, max_side)
        if min(small.shape[:2]) < MIN_DETECTED_SIDE:      # no face fits; detectors fail on slivers
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)) if self.gives_points else None
        if self.colour and small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        elif not self.colour and small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        boxes, scores, points = self._detect(small)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        boxes = boxes * np.tile(scale, 2) + np.tile(offset, 2)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if points is not None:
            points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) * scale + offset
        return boxes, scores, points

    def _finer(self, image, boxes, scores, points):
        """The faces found on the copy, made more precise where it pays (a subclass's choice)."""
        return boxes, scores, points

    def _detect(self, image):
        raise NotImplementedError


class YuNetDetector(Detector):
    """YuNet, run by ONNX Runtime (:mod:`cascade.yunet`): boxes, confidences and five points.

    ``model_path`` defaults to the bundled model; ``score_threshold`` and ``nms_threshold``
    are OpenCV's ``FaceDetectorYN``'s (0.6 finds every face of the 300-W test crops; OpenCV's
    sample uses 0.9, for fewer false faces in clutter); ``threads``: ONNX Runtime's threads a
    call (1: callers such as ``cascade predict`` run images in parallel themselves).
    ``finer_below`` and ``finer_side``: a face under ``finer_below`` pixels on the copy is
    detected again on a window around it at ``finer_side`` pixels (0: never). ``upright_passes``:
    how many times a face that its points show turned in the image plane is looked at again,
    turned upright (:meth:`upright_points`; 0: never, nor a quarter turned).
    """

    colour = True
    gives_points = True

    def __init__(self, model_path=None, score_threshold=0.6, nms_threshold=0.3, max_side=YUNET_MAX_SIDE,
                 threads=1, finer_below=DEFAULT_FINER_BELOW, finer_side=DEFAULT_FINER_SIDE,
                 upright_passes=DEFAULT_UPRIGHT_PASSES):
        super().__init__(max_side)
        self.finer_below = check_integer(finer_below, "finer_below", low=0)
        self.upright_passes = check_integer(upright_passes, "upright_passes", low=0)
        self.finer_side = check_integer(finer_side, "finer_side", low=16)
        self.model_path = str(YUNET_MODEL if model_path is None else model_path)
        self.score_threshold = check_real(score_threshold, "score_threshold", high=1, include_low=True)
        self.nms_threshold = check_real(nms_threshold, "nms_threshold", high=1, include_low=True)
        self.threads = check_integer(threads, "threads", low=0)
        # A file that is no YuNet network is refused here, once, not at every image.
        self.network = YuNet(self.model_path, self.score_threshold, self.nms_threshold, self.threads)
        self._detect(np.zeros((MIN_DETECTED_SIDE * 4,) * 2 + (3,), np.uint8))

    def _detect(self, image):
        faces = self.network(image, self._threshold)
        return faces.boxes, faces.scores, faces.points

    def _finer(self, image, boxes, scores, points):
        """A face that was small on the copy (under ``finer_below`` pixels across) is detected again on
        a window of the image around it, three times its size, at ``finer_side`` pixels: its box and
        five points then have the precision of a face that fills a detector's view, whatever the
        photo's size. The window's detection overlapping the face most replaces it, score included.
        The copy is searched down to :data:`PROPOSAL_THRESHOLD`, so that a small face scoring low on
        it is proposed and then confirmed (or not) by its window; every face must reach
        ``score_threshold`` in the end."""
        factor = max(image.shape[:2]) / self.max_side if self.max_side else 1.0
        if factor > 1 and self.finer_below:
            boxes, scores, points = self._closer(image, boxes, scores, points, factor)
        keep = scores >= self.score_threshold
        return boxes[keep], *self.upright_points(image, boxes[keep], scores[keep], points[keep])

    def upright_points(self, image, boxes, scores, points):
        """``(scores (n,), points (n, 5, 2))``: those of a face turned more than :data:`UPRIGHT_MIN_ROLL`
        degrees found again upright. YuNet, trained on mostly upright faces, places a turned face's points
        poorly and shows less of its turn than there is (held-out training faces turned 15-60
        degrees: the roll its eyes give errs by 12.8 degrees, median; their five points by 0.20 of
        the inter-ocular distance, against 0.075 upright). So a window around the face is turned by
        the roll the points show and detected on (:meth:`_turned_window`), and the detection nearest
        its centre gives the points, up to ``upright_passes`` times, until the roll left is under
        :data:`UPRIGHT_MIN_ROLL` (ert-68 from them 15.2 -> 8.6 % NME; docs/notes/2026-12-06-hard-faces.md).
        The score is the last upright look's: how sure YuNet is of the face seen the right way up (the
        quality score reads it). A face still scoring under :data:`SIDEWAYS_CHECK_BELOW` is then
        tried a quarter, a half and three quarters turned (:meth:`_best_quarter_turn`). A face found
        in no turned window keeps the points it had. Whole-image detection does this for every face;
        a window search (:meth:`detect_in`, a tracker's every frame) does not, and its caller asks for
        it where the points start a face (:meth:`cascade.Pipeline.points_near`)."""
        scores, points = scores.copy(), points.copy()
        for index in range(len(points) if self.upright_passes else 0):
            side = max(boxes[index, 2] - boxes[index, 0], boxes[index, 3] - boxes[index, 1])
            for _ in range(self.upright_passes):
                roll = five_point_roll(points[index])
                if abs(roll) < UPRIGHT_MIN_ROLL:
                    break
                found = self._turned_window(image, points[index].mean(axis=0), side, roll)
                if found is None:
                    break
                scores[index], points[index] = found
            if scores[index] < SIDEWAYS_CHECK_BELOW:
                scores[index], points[index] = self._best_quarter_turn(image, side, scores[index], points[index])
        return scores, points

    def _best_quarter_turn(self, image, side, score, points):
        """``(score, points)`` of the face seen a quarter, a half or three quarters turned, where YuNet
        scores it at least :data:`SIDEWAYS_CHECK_BELOW` and higher than as it was found: a face lying
        on its side or upside down, which YuNet finds (less surely) as if upright, with its points
        wrong. Only faces still scoring under :data:`SIDEWAYS_CHECK_BELOW` after the upright looks are
        tried (5 % of AFW's upright faces; 3 in 4 of them turned 90 degrees)."""
        best = max(score, SIDEWAYS_CHECK_BELOW), None
        roll = five_point_roll(points)
        for turn in (90, 180, 270):
            found = self._turned_window(image, points.mean(axis=0), side, roll + turn)
            if found is not None and found[0] > best[0]:
                best = found
        return (score, points) if best[1] is None else best

    def _turned_window(self, image, centre, side, roll):
        """``(score, five points (image pixels))`` of the detection nearest ``centre`` in a square window
        about ``side`` (:data:`UPRIGHT_REACH`), turned by ``roll`` degrees and sampled at
        :data:`UPRIGHT_SIDE` pixels; None
        where the window holds no face of about the size (a third to three times ``side``)."""
        size = UPRIGHT_SIDE
        scale = size / (2 * UPRIGHT_REACH + 1) / side
        to_window = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(roll), scale)
        to_window[:, 2] += (size - 1) / 2 - centre
        window = cv2.warpAffine(image, to_window, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        boxes, scores, points = self._detect_at(window, None)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / scale
        keep = (scores >= self.score_threshold) & (sides > side / 3) & (sides < 3 * side)
        if not keep.any():
            return None
        centres = (boxes[keep, :2] + boxes[keep, 2:]) / 2
        nearest = int(np.argmin(np.linalg.norm(centres - (size - 1) / 2, axis=1)))
        back = cv2.invertAffineTransform(to_window)
        return float(scores[keep][nearest]), points[keep][nearest] @ back[:, :2].T + back[:, 2]

    @property
    def _threshold(self):
        """The threshold of the copy's search: lower, for proposals, where small faces are looked at again."""
        return min(self.score_threshold, PROPOSAL_THRESHOLD) if self.finer_below else self.score_threshold

    def _closer(self, image, boxes, scores, points, factor):
        boxes, scores, points = boxes.copy(), scores.copy(), points.copy()
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        for index in np.flatnonzero(sides / factor < self.finer_below):
            window = window_around(boxes[index], image.shape, FINER_REACH)
            found = self.detect_in(image, window, self.finer_side) if window is not None else None
            if found is None or len(found.boxes) == 0:
                continue
            overlaps = box_iou(found.boxes, boxes[index])
            best = int(np.argmax(overlaps))
            if overlaps[best] > SAME_FACE_IOU:
                boxes[index], scores[index], points[index] = found.boxes[best], found.scores[best], found.points[best]
        return boxes, scores, points


class HaarDetector(Detector):
    """OpenCV's Haar cascade frontal face detector (``haarcascade_frontalface_default.xml``).

    ``scale_factor``, ``min_neighbors`` and ``min_size`` (pixels of the downscaled copy)
    are those of ``cv2.CascadeClassifier.detectMultiScale``; scores are its level
    weights. Needs an OpenCV that has it (4.x; OpenCV 5 dropped the Haar cascades):
    elsewhere an ImportError says so.
    """

    def __init__(self, scale_factor=1.1, min_neighbors=5, min_size=30, cascade_file=None,
                 max_side=DEFAULT_MAX_SIDE):
        super().__init__(max_side)
        if not scale_factor > 1:
            raise ValueError(f"scale_factor must be above 1, got {scale_factor!r}")
        check_integer(min_neighbors, "min_neighbors", low=0)
        check_integer(min_size, "min_size")
        if cascade_file is None:
            if not (hasattr(cv2, "CascadeClassifier") and hasattr(cv2.data, "haarcascades")):
                raise ImportError(f"OpenCV {cv2.__version__} has no Haar cascade detector (OpenCV 5 dropped it): "
                                  "use the yunet detector, or install opencv-python-headless<5")
            cascade_file = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.cascade_file = cascade_file

    def _detect(self, grey):
        if not hasattr(self._local, "classifier"):
            classifier = cv2.CascadeClassifier(self.cascade_file)
            if classifier.empty():
                raise ValueError(f"cannot read a Haar cascade from {self.cascade_file}")
            self._local.classifier = classifier
        found, _, weights = self._local.classifier.detectMultiScale3(
            grey, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        if len(found) == 0:
            return np.zeros((0, 4)), np.zeros(0), None
        found = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        return (np.concatenate([found[:, :2], found[:, :2] + found[:, 2:]], axis=1),
                np.asarray(weights, dtype=np.float64).ravel(), None)


class DlibHOGDetector(Detector):
    """dlib's HOG frontal face detector (needs dlib); ``upsample`` doubles the image that many times."""

    def __init__(self, upsample=1, max_side=DEFAULT_MAX_SIDE):
        super().__init__(max_side)
        check_integer(upsample, "upsample", low=0)
        self.upsample = upsample
        self._dlib = require("dlib", "the dlib-hog detector", "dlib")

    def _detect(self, grey):
        if not hasattr(self._local, "detector"):
            self._local.detector = self._dlib.get_frontal_face_detector()
        rectangles, scores, _ = self._local.detector.run(grey, self.upsample, 0.0)
        # As everywhere in cascade (see the dlib XML reader), dlib's rectangle is the box itself.
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rectangles],
                         dtype=np.float64).reshape(-1, 4)
        return boxes, np.asarray(scores, dtype=np.float64), None


DETECTORS = {"yunet": YuNetDetector, "haar": HaarDetector, "dlib-hog": DlibHOGDetector}


def make_detector(name=DEFAULT_DETECTOR, **options):
    """A detector by name: "yunet" (the default, bundled), "haar" (OpenCV 4.x) or "dlib-hog" (needs dlib)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    return DETECTORS[name](**options)


def five_point_roll(points):
    """How far a face is turned in the image plane, in degrees (positive: clockwise on screen, as
    OpenCV's rotations count), from its five points ``(5, 2)`` (eyes, nose, mouth corners, the
    face's right side first): the mean direction of its eye line and mouth line."""
    line = (points[1] - points[0]) + (points[4] - points[3])
    return float(np.degrees(np.arctan2(line[1], line[0])))


def window_around(box, image_shape, reach):
    """``(left, top, right, bottom)`` whole pixels: ``box``'s centre plus and minus ``reach`` times its
    longer side, clipped to an image of ``image_shape``; None where less than 2 pixels remain."""
    height, width = image_shape[:2]
    centre, side = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1])
    left, top = np.maximum(np.floor(centre - reach * side), 0).astype(int)
    right, bottom = np.minimum(np.ceil(centre + reach * side), [width, height]).astype(int)
    return None if right - left < 2 or bottom - top < 2 else (left, top, right, bottom)


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


def detect_faces(detector, images, true_shapes, n_jobs=1):
    """Each face's detection: ``(boxes (n, 4), points (n, 5, 2) or None)``, NaN where the detector
    missed the face (no detection overlapping its tight box by IoU 0.2, :func:`match_detection`)."""
    true_shapes = check_shapes(true_shapes, n_faces=len(images))
    tight = tight_boxes(true_shapes)

    def match(index):
        found = detections_of(detector(images[index]))
        best = match_detection(found.boxes, tight[index])
        if best < 0:
            return None, None
        return found.boxes[best], None if found.points is None else found.points[best]

    with ThreadPoolExecutor(effective_jobs(n_jobs)) as pool:
        matched = list(pool.map(match, range(len(images))))
    boxes = np.array([np.full(4, np.nan) if box is None else box for box, _ in matched]).reshape(-1, 4)
    with_points = [points for box, points in matched if box is not None]
    if with_points and all(points is not None for points in with_points):
        points = np.array([np.full((5, 2), np.nan) if p is None else p for _, p in matched])
    else:
        points = None
    return boxes, points


def _sound(boxes, scores, points, image_shape):
    """Which detections describe a face: finite, a box of a pixel or more that overlaps the image, and
    five points (if any) spread over a pixel or more around a centre inside the box grown by half
    its size. On tiny or odd images a network can answer with values far beyond the image, or NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        size = boxes[:, 2:] - boxes[:, :2]
        keep = (np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (size >= 1).all(axis=1)
                & boxes_on_images(boxes, image_shape[:2]))
        if points is not None:
            centre = points.mean(axis=1)
            spread = np.sqrt(((points - centre[:, None]) ** 2).sum(axis=2).mean(axis=1))
            near = ((centre > boxes[:, :2] - size / 2) & (centre < boxes[:, 2:] + size / 2)).all(axis=1)
            keep &= np.isfinite(points).all(axis=(1, 2)) & (spread >= 1) & near
    return keep


def _area(boxes):
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
