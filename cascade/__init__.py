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
    68 points in the iBUG / 300-W order unless said otherwise; other schemes
    (5, 29, 194 points...) work everywhere a flip permutation or eye indices
    are given for them.
"""
__version__ = "0.1.0"

from .data import FaceSet, load_faces, read_csv, read_dlib_xml, read_pts, write_dlib_xml, write_pts
from .asm import ASM
from .ert import ERT
from .esr import ESR
from .lbf import LBF
from .evaluate import auc, ced, failure_rate, nme, per_landmark_error, plot_ced, report
from .features import frame_transforms, sample_pixels
from .schemes import FIVE, IBUG68, Scheme
from .shapes import mean_shape, similarity_fit, tight_boxes
from .bundled import load_model
from .pipeline import Face, Pipeline

__all__ = [
    "ASM",
    "ERT",
    "ESR",
    "LBF",
    "Pipeline", "Face", "load_model",
    "FaceSet", "load_faces", "read_pts", "write_pts", "read_dlib_xml", "write_dlib_xml", "read_csv",
    "nme", "ced", "auc", "failure_rate", "per_landmark_error", "report", "plot_ced",
    "sample_pixels", "frame_transforms",
    "Scheme", "IBUG68", "FIVE", "mean_shape", "similarity_fit", "tight_boxes",
]
