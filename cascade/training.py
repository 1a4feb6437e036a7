"""The recipe that trains a landmarker for the starts it will get behind a face detector.

A model trained from tight boxes is accurate from tight boxes and much less so
from a detector (docs/notes/2026-12-06-benchmark-passes.md, "Detector boxes"): its starts must look like a
detector's. :func:`train_landmarker` therefore

1. runs each detector to calibrate on the training faces and fits its box
   calibration and, for detectors with five points, its point calibration
   (:mod:`cascade.calibration`);
2. starts a share of the faces (``point_share``) from their true five points
   moved by the errors the points detector made on the training faces: each
   face gets the calibrated-point error of a random face the detector found,
   carried into its own frame (:func:`point_starts`), so the starts err as much,
   and in the same ways, as the detector's points;
3. starts the other faces from their tight boxes randomly rescaled and shifted
   (``box_jitter``), as a calibrated detector's boxes err;
4. fits the estimator (with mirrors, as it is set to), optionally stores its
   leaves as int16 or in a per-stage basis, and stores the calibrations with it.

``cascade fit`` calls it; the bundled models were trained by it (README.md).
"""
import logging

import numpy as np

from .calibration import calibrate
from .detect import detect_faces, make_detector
from .schemes import scheme_of
from .shapes import jitter_boxes, tight_boxes, to_mean_frame
from .validation import check_real, check_shapes

log = logging.getLogger(__name__)


def point_starts(true_shapes, detected_points, calibration, rng, scheme=None):
    """Five start points per face ``(n, 5, 2)``: its true five points (of ``scheme``, by default
    that of the shapes' point count) plus the calibrated-point error the detector made on a random
    face it found (``detected_points`` NaN where it missed), carried over in the frame of the mean
    shape (rotation and scale of each face undone)."""
    truth = scheme_of(scheme, np.shape(true_shapes)[1]).five_points(true_shapes)
    found = ~np.isnan(detected_points).any(axis=(1, 2))
    if not found.any():
        raise ValueError("the points detector found none of the faces: no point errors to learn from")
    to_mean, _ = to_mean_frame(true_shapes)
    errors = calibration.apply(detected_points[found]) - truth[found]
    errors = np.einsum("nij,nlj->nli", to_mean[found], errors)            # in the mean shape's frame
    drawn = errors[rng.integers(len(errors), size=len(true_shapes))]
    return truth + np.einsum("nij,nlj->nli", np.linalg.inv(to_mean), drawn)


def train_landmarker(estimator, images, true_shapes, box_jitter=(0.0, 0.0), point_share=0.0,
                     points_detector="yunet", detectors=("yunet",), int16=False, compress=False, seed=0,
                     n_jobs=1):
    """Fit ``estimator`` for a detector's starts and store the detectors' calibrations; returns it
    (or its int16 copy with ``int16``, or its copy with leaves in a basis of the default rank with
    ``compress``: :meth:`cascade.forest.ForestCascade.compress`).

    ``box_jitter`` is ``(scale, shift)``: the log-scale and shift (fraction of the box) spreads of
    the box starts; ``point_share`` the share of faces started from five points perturbed as
    ``points_detector`` errs; ``detectors`` the detectors whose calibrations to store (those the
    installed OpenCV lacks, such as Haar on OpenCV 5, are skipped with a warning). Same ``seed``,
    same starts.
    """
    true_shapes = check_shapes(true_shapes, n_faces=len(images))
    point_share = check_real(point_share, "point_share", high=1, include_low=True)
    scale, shift = box_jitter
    rng = np.random.default_rng(seed)
    wanted = list(dict.fromkeys([*detectors, *([points_detector] if point_share else [])]))
    found = {}
    for name in wanted:
        try:
            detector = make_detector(name)
        except ImportError as error:
            log.warning("not calibrating %s: %s", name, error)
            continue
        found[name] = detect_faces(detector, images, true_shapes, n_jobs)
        log.info("%s found %d of %d training faces", name, (~np.isnan(found[name][0][:, 0])).sum(), len(images))
    scheme = scheme_of(getattr(estimator, "scheme", None), true_shapes.shape[1])
    calibrated = {name: calibrate(*found[name], true_shapes, scheme) for name in found}
    boxes = tight_boxes(true_shapes)
    if scale or shift:
        boxes = jitter_boxes(boxes, rng, scale, shift)
    points = None
    if point_share:
        detected = found[points_detector][1]
        if detected is None:
            raise ValueError(f"the {points_detector} detector gives no five points to start from")
        points = point_starts(true_shapes, detected, calibrated[points_detector][1], rng, scheme)
        points[rng.random(len(points)) >= point_share] = np.nan          # these start from their box
    log.info("fitting %r on %d faces (%d from five points)", estimator, len(images),
             0 if points is None else (~np.isnan(points[:, 0, 0])).sum())
    estimator.fit(images, true_shapes, boxes, points=points)
    model = estimator.compress() if compress else estimator.quantize() if int16 else estimator
    model.box_calibrations_ = {name: box for name, (box, _) in calibrated.items() if name in detectors}
    model.point_calibrations_ = {name: point for name, (_, point) in calibrated.items()
                                 if name in detectors and point is not None}
    return model
