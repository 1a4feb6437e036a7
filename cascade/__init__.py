"""cascade: facial landmark localisation by cascaded shape regression.

Conventions (stated once, here; every module follows them)
-----------------------------------------------------------
Images
    ``uint8`` numpy arrays, ``HxW`` (grey) or ``HxWx3`` (BGR, as ``cv2.imread``
    returns them). Any other dtype raises ``TypeError``; any other shape, or an
    empty image, raises ``ValueError``. Colour images are read as grey with
    OpenCV's BT.601 weights.
Coordinates
    ``(x, y)`` in pixels, 0-based: the centre of the top-left pixel is ``(0, 0)``.
Face box
    ``(left, top, right, bottom)`` in pixels, floats, ``right > left`` and
    ``bottom > top``; a batch of boxes is ``(n_faces, 4)``. Unless a method says
    otherwise a box is the tight box around the landmarks
    (:func:`cascade.shapes.tight_boxes`).
Shape
    ``(n_landmarks, 2)`` float array of ``(x, y)``; a batch is
    ``(n_faces, n_landmarks, 2)``. NaN marks a missing point.
Unit frame
    A box's own frame, its left/top edge at 0 and right/bottom edge at 1
    (:mod:`cascade.shapes`); mean shapes and regression targets live there.
Landmark scheme
    A :class:`~cascade.schemes.Scheme` says what each point is (mirror map, eyes,
    five alignment points...). 68 points are the iBUG / 300-W scheme
    (:data:`IBUG68`) unless said otherwise; 5 points, :data:`FIVE`; other
    schemes (29, 98, 194 points, subsets...) are declared once and passed as
    ``scheme=`` to the estimators and the evaluation.
Threads
    Fitted estimators, pipelines and refiners are safe to share between threads
    for prediction (``predict``, ``pipeline(image)``); fitting is not.
"""
__version__ = "0.1.0"

from .data import (FaceSet, load_faces, read_csv, read_dlib_xml, read_pts, sample_photo, write_csv, write_dlib_xml,
                   write_pts)
from .schemes import FIVE, IBUG68, Scheme
from .asm import ASM
from .ert import ERT
from .esr import ESR
from .lbf import LBF
from .bundled import load_model
from .evaluate import auc, ced, failure_rate, nme, per_landmark_error, plot_ced, report
from .refiner import Refiner
from .pipeline import Face, Pipeline
from .video import FaceTracker
from .corpus import landmark_corpus, read_corpus
from .apps import align_faces, blur_faces, draw_landmarks, head_pose, overlay_on_faces

#: What users call. The building blocks (shape geometry, shape-indexed features, trees,
#: calibrations, detectors...) are imported from their modules: ``cascade.shapes``,
#: ``cascade.features``, ``cascade.detect``, ``cascade.calibration``...
__all__ = [
    "ASM", "ERT", "ESR", "LBF", "load_model",
    "Pipeline", "Face", "Refiner", "FaceTracker", "landmark_corpus", "read_corpus",
    "blur_faces", "align_faces", "overlay_on_faces", "head_pose", "draw_landmarks",
    "FaceSet", "load_faces", "sample_photo", "read_pts", "write_pts", "read_dlib_xml", "write_dlib_xml", "read_csv",
    "write_csv",
    "nme", "ced", "auc", "failure_rate", "per_landmark_error", "report", "plot_ced",
    "Scheme", "IBUG68", "FIVE",
]
