"""YuNet run by ONNX Runtime: the image padded to a multiple of 32, its anchors decoded, NMS.

YuNet (Wu, Peng and Yu, 2023; MIT licence) is a small anchor-free detector. For each
stride s in (8, 16, 32) and each cell (row r, column c) of the padded image's grid at
that stride it gives a class and an objectness score, a box and five points, which
decode as OpenCV's ``cv2.FaceDetectorYN`` decodes them (``face_detect.cpp``, OpenCV
4.8+): score ``sqrt(clip(cls) * clip(obj))``, box centre ``((c, r) + d) * s`` and size
``exp(d') * s``, points ``(p + (c, r)) * s``. Overlapping faces are suppressed greedily,
surest first, on the boxes cut to whole pixels, as OpenCV's ``NMSBoxes`` does. Only the
decoding is this module's: the network runs in ONNX Runtime, so detection needs no
particular OpenCV (OpenCV 5's DNN engine ran YuNet 2.1 times slower, and warns on every
use; docs/notes/2026-12-06-realtime.md).

The network reads the BGR image as float pixels, unscaled, padded with black on the
right and bottom. The bundled file is OpenCV's with its input size left free
(``tools/yunet_dynamic.py``); a file with a fixed input size is fed images padded (or
shrunk, then padded) to that size.
"""
from typing import NamedTuple

import cv2
import numpy as np

from .onnx_session import open_session

STRIDES = (8, 16, 32)
#: The padded image's sides are multiples of this (the coarsest stride).
DIVISOR = 32
OUTPUTS = tuple(f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES)
#: At most this many candidates go into suppression, surest first (OpenCV's top_k).
TOP_K = 5000


class Faces(NamedTuple):
    """YuNet's faces in one image, surest first: boxes ``(k, 4)`` (left, top, right, bottom),
    points ``(k, 5, 2)``, scores ``(k,)``; pixels of the image given."""

    boxes: np.ndarray
    points: np.ndarray
    scores: np.ndarray


class YuNet:
    """One YuNet network: ``yunet(image) -> Faces``. Thread-safe (one ONNX Runtime session, which
    runs concurrent calls). ``ValueError`` on construction for a file that is no YuNet network."""

    def __init__(self, model_path, score_threshold=0.6, nms_threshold=0.3, threads=1):
        try:
            self.session = open_session(model_path, threads, 1, what="YuNet model file")
        except ValueError as error:
            raise ValueError(f"{model_path} is not a YuNet face detector ONNX Runtime can run ({error})") from None
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        inputs = self.session.get_inputs()
        outputs = [output.name for output in self.session.get_outputs()]
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or sorted(outputs) != sorted(OUTPUTS):
            raise ValueError(f"{model_path} is not a YuNet face detector: it must take one image and give "
                             f"{', '.join(OUTPUTS)}; it takes {[i.name for i in inputs]} and gives {outputs}")
        self.input_name = inputs[0].name
        height, width = inputs[0].shape[2:]
        # A fixed input size: images are fitted into it; free dimensions are named, not numbers.
        self.fixed_size = (width, height) if isinstance(width, int) and isinstance(height, int) else None

    def __call__(self, image, score_threshold=None):
        """The faces in a uint8 BGR image (HxWx3) scoring at least ``score_threshold`` (None: the
        network's own)."""
        height, width = image.shape[:2]
        scale = 1.0
        if self.fixed_size is None:
            padded_size = (-(-width // DIVISOR) * DIVISOR, -(-height // DIVISOR) * DIVISOR)
        else:
            padded_size = self.fixed_size
            scale = min(1.0, padded_size[0] / width, padded_size[1] / height)
            if scale < 1:
                image = cv2.resize(image, (max(1, int(width * scale)), max(1, int(height * scale))),
                                   interpolation=cv2.INTER_AREA)
                height, width = image.shape[:2]
        blob = np.zeros((1, 3, padded_size[1], padded_size[0]), np.float32)
        for channel, plane in enumerate(cv2.split(image)):      # half the time of one strided copy
            blob[0, channel, :height, :width] = plane
        results = dict(zip([o.name for o in self.session.get_outputs()],
                           self.session.run(None, {self.input_name: blob})))
        threshold = self.score_threshold if score_threshold is None else score_threshold
        faces = self._decode(results, padded_size, threshold)
        return faces if scale == 1 else Faces(faces.boxes / scale, faces.points / scale, faces.scores)

    def _decode(self, results, padded_size, score_threshold):
        boxes, points, scores = [], [], []
        for stride in STRIDES:
            columns, rows = padded_size[0] // stride, padded_size[1] // stride
            cls = np.clip(results[f"cls_{stride}"].reshape(-1), 0, 1)
            obj = np.clip(results[f"obj_{stride}"].reshape(-1), 0, 1)
            keep = np.flatnonzero(cls * obj >= score_threshold ** 2)
            if keep.size == 0:
                continue
            score = np.sqrt(cls[keep] * obj[keep])
            if len(cls) != rows * columns:
                raise ValueError(f"YuNet gave {len(cls)} cells at stride {stride} for a {padded_size} image")
            cells = np.stack([keep % columns, keep // columns], axis=1).astype(np.float32)
            box = results[f"bbox_{stride}"].reshape(-1, 4)[keep]
            centre = (cells + box[:, :2]) * stride
            size = np.exp(box[:, 2:]) * stride
            boxes.append(np.concatenate([centre - size / 2, size], axis=1))
            points.append((results[f"kps_{stride}"].reshape(-1, 5, 2)[keep] + cells[:, None]) * stride)
            scores.append(score)
        if not boxes:
            return Faces(np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0))
        boxes, points, scores = np.concatenate(boxes), np.concatenate(points), np.concatenate(scores)
        kept = suppressed(boxes, scores, self.nms_threshold)
        boxes = boxes[kept].astype(np.float64)
        boxes[:, 2:] += boxes[:, :2]
        return Faces(boxes, points[kept].astype(np.float64), scores[kept].astype(np.float64))


def suppressed(boxes, scores, threshold):
    """Indices of the boxes ``(n, 4)`` (left, top, width, height) kept by greedy non-maximum
    suppression, surest first: a box overlapping a kept one by more than ``threshold`` (IoU) goes.
    As OpenCV's ``NMSBoxes`` on integer rectangles: the boxes are cut to whole pixels first."""
    order = np.argsort(-scores, kind="stable")[:TOP_K]
    whole = np.trunc(boxes).astype(np.int64)
    left, top = whole[:, 0], whole[:, 1]
    right, bottom = left + whole[:, 2], top + whole[:, 3]
    area = whole[:, 2] * whole[:, 3]
    kept = []
    while order.size:
        index, rest = order[0], order[1:]
        kept.append(index)
        width = np.clip(np.minimum(right[index], right[rest]) - np.maximum(left[index], left[rest]), 0, None)
        height = np.clip(np.minimum(bottom[index], bottom[rest]) - np.maximum(top[index], top[rest]), 0, None)
        overlap = width * height
        order = rest[overlap <= threshold * np.maximum(area[index] + area[rest] - overlap, 1e-12)]
    return np.array(kept, dtype=np.int64)
