"""``Pipeline``: from a photo to the landmarks of every face in it.

A face detector finds the faces (YuNet by default: boxes and five points), the
landmarker starts each face from the detector's five points placed by the
model's point calibration for that detector (from its box, mapped by the box
calibration, for detectors without points), places the points, and the CNN
refiner (:class:`cascade.refiner.Refiner`) corrects them.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from .bundled import load_model
from .calibration import BoxCalibration, PointCalibration
from .data import as_photo, check_color, display_name, image_files, read_image
from .detect import (DEFAULT_DETECTOR, DETECTORS, SAME_FACE_IOU, box_iou, detect_faces, detections_of,
                     make_detector, window_around)
from .quality import QualityModel, refiner_moves
from .refiner import Refiner
from .validation import check_boxes, check_image, check_images, check_integer, check_shapes

#: How the landmarker may start: from the detector's points where it gives them, or always from its box.
STARTS = ("auto", "box")
#: The pixels of the copy on which a face is looked for around a box (:meth:`Pipeline.look_near`):
#: a tracker's search, every frame.
DEFAULT_WINDOW_SIDE = 160
#: The same for the five points of a face given by its box (:meth:`Pipeline.points_near`), where
#: their precision pays for the time: held-out training faces turned 15-60 degrees, ert-68 from
#: tight boxes 21.6 % NME at 160 px, 10.1 % at 320 (upright faces 4.35 -> 4.25 %).
POINTS_NEAR_SIDE = 320


@dataclass
class Face:
    """One face found in an image: the detector's ``box`` ``(4,)``, its ``score``, the
    ``landmarks`` ``(L, 2)`` in pixels, and their ``quality`` in [0, 1], the probability that
    they are right (NME at most 8 %; :mod:`cascade.quality`), or None where the pipeline has
    no quality model (it needs the refiner)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    quality: Optional[float] = None


class Pipeline:
    """Detector + landmarker + refiner: ``pipeline(image) -> [Face, ...]``, surest face first.

    Parameters
    ----------
    landmarker : a fitted estimator, or a model name or path for :func:`cascade.load_model`
        ("default": the bundled model that is most accurate at real-time speed)
    detector : "yunet" (the default, bundled), "haar" (OpenCV 4.x), "dlib-hog" (needs dlib), or any
        callable ``image -> (boxes (k, 4), scores (k,)[, points (k, 5, 2)])`` (see :mod:`cascade.detect`)
    detector_options : keyword arguments for the named detector (e.g. ``{"max_side": 1280}``)
    refiner : True (the default) for the bundled :class:`cascade.refiner.Refiner`, a Refiner, or
        False / None for the cascade alone
    start : "auto" (from the detector's five points where it gives them, else from its box) or "box"
    calibration, point_calibration : the :class:`~cascade.calibration.BoxCalibration` and
        :class:`~cascade.calibration.PointCalibration` from the detector's boxes and points to
        the landmarker's; by default those stored with the model for the detector, else none
    max_faces : keep at most this many faces, the surest ones (None: all)
    quality : True (the default) for the bundled :class:`cascade.quality.QualityModel` where the
        pipeline refines 68 points, a QualityModel, or False / None for no ``Face.quality``
    color : the channel order of the colour arrays it is given: "bgr" (OpenCV's, the default) or
        "rgb" (PIL's, matplotlib's, scikit-image's)

    A pipeline is called on an image: an array (grey, colour or with alpha, 8 or 16 bits), a
    path or a PIL image (:func:`cascade.data.as_photo`), or a list of them, which gives a list of
    face lists. Calling a pipeline is thread-safe: threads may share one.
    """

    def __init__(self, landmarker="default", detector=DEFAULT_DETECTOR, refiner=True, start="auto",
                 calibration=None, point_calibration=None, max_faces=None, detector_options=None, quality=True,
                 color="bgr"):
        self.landmarker = load_model(landmarker) if isinstance(landmarker, str) else landmarker
        if not hasattr(self.landmarker, "predict"):
            raise TypeError(f"landmarker must be a fitted estimator or a model name, got {landmarker!r}")
        self.detector = make_detector(detector, **(detector_options or {})) if isinstance(detector, str) else detector
        if not callable(self.detector):
            raise TypeError(f"detector must be a name or a callable, got {detector!r}")
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        self.start = start
        if refiner is True:
            refiner = Refiner()
        refiner = refiner or None
        if refiner is not None and getattr(refiner, "n_landmarks", None) != self.n_landmarks:
            raise ValueError(f"the refiner works on {getattr(refiner, 'n_landmarks', '?')} landmarks, "
                             f"the landmarker gives {self.n_landmarks}")
        self.refiner = refiner
        name = detector if isinstance(detector, str) else next(
            (key for key, kind in DETECTORS.items() if type(detector) is kind), None)
        self.calibration = _stored(calibration, self.landmarker, "box_calibrations_", name, BoxCalibration)
        self.point_calibration = _stored(point_calibration, self.landmarker, "point_calibrations_", name,
                                         PointCalibration)
        self.max_faces = None if max_faces is None else check_integer(max_faces, "max_faces", low=0)
        self.detector_name = name
        self.five_point_source = self._five_point_source()
        if quality is True:
            quality = QualityModel() if self.refiner is not None and self.n_landmarks == 68 else None
        if quality and (self.refiner is None or quality.n_landmarks != self.n_landmarks):
            raise ValueError("a quality model reads the refiner's moves: it needs a refiner of its point count")
        self.quality = quality or None
        self.color = check_color(color)

    def __call__(self, image):
        if isinstance(image, (list, tuple)):
            return [self(one) for one in image]
        image = as_photo(image, self.color)
        found = detections_of(self.detector(image))
        keep = slice(self.max_faces)
        points = None if found.points is None else found.points[keep]
        boxes, scores = found.boxes[keep], found.scores[keep]
        landmarks, moves = self._landmarks_and_moves([image] * len(boxes), **self.starts(boxes, points))
        qualities = [None] * len(boxes) if self.quality is None else self.quality(moves, scores, self.detector_name)
        return [Face(box, float(score), shape, None if quality is None else float(quality))
                for box, score, shape, quality in zip(boxes, scores, landmarks, qualities)]

    @property
    def scheme(self):
        """The landmarker's :class:`cascade.schemes.Scheme`."""
        return self.landmarker.scheme_

    @property
    def n_landmarks(self):
        """How many landmarks each face gets (the landmarker's scheme's point count)."""
        return self.scheme.n_points

    def landmarks(self, image, detector_boxes, detector_points=None):
        """``(k, L, 2)`` landmarks of the faces a detector found in one image: its ``(k, 4)`` boxes
        and, if it gives them, its ``(k, 5, 2)`` points (used when ``start`` is "auto")."""
        return self.landmarks_in(image, **self.starts(detector_boxes, detector_points))

    def starts(self, detector_boxes, detector_points=None):
        """Where the landmarker starts the faces a detector found: ``{"points": (k, 5, 2)}``, its
        points calibrated (when ``start`` is "auto" and it gives some), else ``{"boxes": (k, 4)}``,
        its calibrated boxes; the keywords of the landmarker's ``predict``."""
        if detector_points is not None and self.uses_points:
            return {"points": self.point_calibration.apply(detector_points)}
        return {"boxes": self.calibration.apply(detector_boxes)}

    @property
    def uses_points(self):
        """Whether faces start from five points when there are some (start "auto", and a landmarker
        whose scheme gives five points)."""
        return self.start == "auto" and self.scheme.has_five_points

    def landmarks_in(self, image, boxes=None, points=None):
        """``(k, L, 2)`` landmarks from starts of the landmarker's own kind, no calibration applied:
        ``(k, 4)`` tight landmark boxes or ``(k, 5, 2)`` five points of the landmarks (e.g. those of
        a tracker's previous shapes)."""
        return self.landmarks_of([check_image(image)] * len(boxes if points is None else points), boxes, points)

    def landmarks_of(self, images, boxes=None, points=None):
        """``(n, L, 2)`` landmarks of one face in each of ``images`` from starts of the landmarker's
        own kind (as :meth:`landmarks_in`), refined if the pipeline refines.

        A face given by its tight box, where the landmarker starts from five points, starts from the
        five points a detector finds near the box (:meth:`points_near`: the pipeline's own, or YuNet
        for a detector without points), or from the box where it finds none: a box then lands as the
        detector's own faces do (AFW from tight boxes: 3.12 % against 4.56 % from the boxes
        themselves, the pipeline 3.10 %; docs/notes/), at the cost of a detection a face. So do the
        faces of a detector without points (Haar, dlib's HOG): they start from YuNet's five points
        near their boxes.
        """
        return self._landmarks_and_moves(images, boxes, points)[0]

    def _five_point_source(self):
        """``(detector, box calibration, point calibration)`` that gives the five points near a box
        (:meth:`points_near`): the pipeline's own detector where it gives points; for one that gives
        none (Haar, dlib's HOG), YuNet with the calibrations the landmarker stores for it, so that its
        faces start from five points as YuNet's do; None where the landmarker does not start from
        five points or stores no YuNet calibrations."""
        if not self.uses_points:
            return None
        if getattr(self.detector, "gives_points", 0):
            return self.detector, self.calibration, self.point_calibration
        stored = getattr(self.landmarker, "point_calibrations_", {})
        if DEFAULT_DETECTOR not in stored:
            return None
        return (make_detector(DEFAULT_DETECTOR), _stored(None, self.landmarker, "box_calibrations_", DEFAULT_DETECTOR,
                                                         BoxCalibration), stored[DEFAULT_DETECTOR])

    def look_near(self, image, box, window_side=DEFAULT_WINDOW_SIDE, source=None, upright=False):
        """``(box, points or None, score)`` of the detection overlapping the tight ``box`` most in a
        window three times its size around it, searched on a copy of ``window_side`` pixels, its box
        calibrated to the landmarker's kind and its points as the detector gives them; None when the
        window holds no face. ``image`` is a checked image; ``source``, a ``(detector, box
        calibration, point calibration)`` to search with (:meth:`_five_point_source`), by default the
        pipeline's own; ``upright``: the chosen face's points and score looked at again turned upright
        where the detector can (:meth:`cascade.detect.YuNetDetector.upright_points`)."""
        detector, calibration, _ = source or (self.detector, self.calibration, self.point_calibration)
        window = window_around(box, image.shape, 1.5)
        if window is None:
            return None
        left, top, right, bottom = window
        search = getattr(detector, "detect_in", None)
        if search is None:                   # any callable detector: on the window itself
            found = detections_of(detector(image[top:bottom, left:right]))
            found = found._replace(boxes=found.boxes + [left, top, left, top],
                                   points=None if found.points is None else found.points + [left, top])
        else:
            found = search(image, window, window_side)
        if len(found.boxes) == 0:
            return None
        calibrated = calibration.apply(found.boxes)
        best = int(np.argmax(box_iou(calibrated, box)))
        scores, points = found.scores[best:best + 1], None if found.points is None else found.points[best:best + 1]
        if upright and points is not None and hasattr(detector, "upright_points"):
            scores, points = detector.upright_points(image, found.boxes[best:best + 1], scores, points)
        return calibrated[best], None if points is None else points[0], float(scores[0])

    def points_near(self, images, boxes):
        """``(found (n,), points (n, 5, 2))``: for each tight box ``(n, 4)``, the five points (calibrated
        to the landmarker's) of the detection near it (:meth:`look_near`, with
        :meth:`_five_point_source`'s detector) whose calibrated box overlaps it by more than
        :data:`cascade.detect.SAME_FACE_IOU`; ``found`` False (and NaN points) where there is none."""
        images = check_images(images)
        boxes = check_boxes(boxes, len(images), [image.shape[:2] for image in images])
        found, points = np.zeros(len(boxes), bool), np.full((len(boxes), 5, 2), np.nan)
        if self.five_point_source is None:
            return found, points
        point_calibration = self.five_point_source[2]
        for index, (image, box) in enumerate(zip(images, boxes)):
            near = self.look_near(image, box, POINTS_NEAR_SIDE, source=self.five_point_source, upright=True)
            if near is not None and near[1] is not None and box_iou(near[0][None], box)[0] > SAME_FACE_IOU:
                found[index] = True
                points[index] = point_calibration.apply(near[1][None])[0]
        return found, points

    def _landmarks_and_moves(self, images, boxes=None, points=None):
        """:meth:`landmarks_of`, and how far the refiner moved each face (None without a refiner)."""
        if points is None and boxes is not None and self.five_point_source is not None:
            found, near = self.points_near(images, boxes)
            shapes = np.empty((len(found), self.n_landmarks, 2))
            images = check_images(images)
            for chosen, start in ((found, {"points": near[found]}),
                                  (~found, {"boxes": np.asarray(boxes, dtype=np.float64)[~found]})):
                if chosen.any():
                    shapes[chosen] = self.landmarker.predict([images[i] for i in np.flatnonzero(chosen)], **start)
        else:
            shapes = self.landmarker.predict(images, boxes, points=points)
        if self.refiner is None:
            return shapes, None
        refined = self.refiner.predict(images, shapes)
        return refined, refiner_moves(shapes, refined, self.scheme)

    def faces_in_folder(self, folder, recursive=True, progress=None):
        """``{path: [Face, ...]}`` for every image file in ``folder`` (and its subfolders when
        ``recursive``), in name order, with a progress bar (``progress``: True, False, or None for
        a terminal only). An image that cannot be read or decoded is logged as a warning and left out."""
        folder = Path(folder)
        if not folder.is_dir():
            raise NotADirectoryError(f"no folder at {display_name(folder)}")
        found = {}
        for path in tqdm(image_files(folder, recursive), desc="landmarks", unit="image",
                         disable=None if progress is None else not progress):
            try:
                found[path] = self(read_image(path))
            except (ValueError, OSError) as error:          # corrupt, a bomb, unreadable or gone
                logging.getLogger(__name__).warning("%s", error)
        return found

    def annotated_faces(self, images, true_shapes, n_jobs=1):
        """``(n, L, 2)`` landmarks of the one annotated face in each image as this pipeline finds it,
        NaN rows where its detector missed the face: the protocol of ``cascade evaluate --detector``.

        The face is the detection overlapping the tight box of its true shape most (IoU 0.2 at
        least, :func:`cascade.detect.match_detection`); other detections are ignored (they may be
        other people). ``n_jobs`` threads run the detector.
        """
        images = check_images(images)
        true_shapes = check_shapes(true_shapes, n_faces=len(images))
        boxes, points = detect_faces(self.detector, images, true_shapes, n_jobs)
        found = np.flatnonzero(~np.isnan(boxes).any(axis=1))
        shapes = np.full((len(images), self.n_landmarks, 2), np.nan)
        if found.size:
            starts = self.starts(boxes[found], None if points is None else points[found])
            shapes[found] = self.landmarks_of([images[i] for i in found], **starts)
        return shapes


def _stored(given, landmarker, attribute, detector_name, kind):
    """The calibration given, else the one ``landmarker`` stores for the detector, else the identity."""
    if given is None:
        given = getattr(landmarker, attribute, {}).get(detector_name, kind())
    if not isinstance(given, kind):
        raise TypeError(f"a {kind.__name__} is needed, got {given!r}")
    return given
