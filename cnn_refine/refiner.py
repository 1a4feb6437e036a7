"""``Refiner``: a small CNN, run by ONNX Runtime, that corrects the landmarks a cascade found.

Each face is warped by the similarity taking its current shape onto the
network's template (:mod:`cnn_refine.crop`), the network predicts a
correction of every point in that crop, and the corrected points go back to
the image by the inverse similarity. All faces of a call go through the
network in one batch.

Given no shapes but face boxes (:meth:`Refiner.predict_from_boxes`), the
refiner starts from the mean shape placed in each box and refines it a few
times: the same network as a direct CNN landmarker.

The model file is an ONNX network whose metadata (JSON values) say what it
expects: ``format``, ``format_version``, ``crop_size``, ``n_landmarks``,
``template`` (the ``(L, 2)`` template in crop pixels), ``mean_shape`` (the
unit-frame mean shape used for box starts). They are checked on load against
the network's own input and output shapes.
"""
import json
import os
from pathlib import Path

import numpy as np

from cascade.shapes import from_unit
from cascade.validation import check_boxes, check_images, check_integer, check_shapes

from .crop import network_inputs

FORMAT = "cascade-refiner"
FORMAT_VERSION = 1
INPUT_NAMES = ("crops", "offsets")
OUTPUT_NAME = "corrections"
#: The network trained by ``python -m cnn_refine.train`` that ships with the package.
DEFAULT_MODEL = Path(__file__).parent / "models" / "refiner-68.onnx"
_REQUIRED = ("format", "format_version", "crop_size", "n_landmarks", "template", "mean_shape")


class Refiner:
    """Refine landmarks with the bundled (or a given) ONNX network.

    Parameters
    ----------
    model_path : an ``.onnx`` file written by ``cnn_refine.train``; None for the bundled one
    n_iterations : times the network is applied to a cascade's shape (1)
    n_box_iterations : times it is applied from the mean shape in a box (2)
    intra_op_threads, inter_op_threads : ONNX Runtime thread counts per call (1 and 1, for
        embedded use and for callers that parallelise over images themselves)
    batch_size : faces per network call; larger batches are split (256)
    """

    def __init__(self, model_path=None, n_iterations=1, n_box_iterations=2, intra_op_threads=1,
                 inter_op_threads=1, batch_size=256):
        self.model_path = Path(DEFAULT_MODEL if model_path is None else model_path)
        self.n_iterations = check_integer(n_iterations, "n_iterations")
        self.n_box_iterations = check_integer(n_box_iterations, "n_box_iterations")
        # 0 threads: ONNX Runtime's own choice
        self.intra_op_threads = check_integer(intra_op_threads, "intra_op_threads", low=0)
        self.inter_op_threads = check_integer(inter_op_threads, "inter_op_threads", low=0)
        self.batch_size = check_integer(batch_size, "batch_size")
        self._session = _open_session(self.model_path, self.intra_op_threads, self.inter_op_threads)
        meta = _read_metadata(self._session, self.model_path)
        self.crop_size = meta["crop_size"]
        self.n_landmarks = meta["n_landmarks"]
        self.template = meta["template"]
        self.mean_shape = meta["mean_shape"]

    def predict(self, images, shapes):
        """Refined ``(n, L, 2)`` shapes (pixels) from ``n`` images and their current shapes.

        A single image with a single ``(L, 2)`` shape gives a single ``(L, 2)`` shape.
        """
        single = np.ndim(shapes) == 2
        if single:
            images, shapes = [images], [shapes]
        images = check_images(images)
        shapes = check_shapes(shapes, n_faces=len(images), n_landmarks=self.n_landmarks, allow_nan=False)
        refined = self._refine(images, shapes, self.n_iterations)
        return refined[0] if single else refined

    def predict_from_boxes(self, images, boxes):
        """Standalone CNN landmarker: ``(n, L, 2)`` shapes from the mean shape placed in ``(n, 4)`` boxes."""
        single = np.ndim(boxes) == 1 and np.size(boxes) > 0         # [] is no faces, as in predict
        if single:
            images, boxes = [images], [boxes]
        images = check_images(images)
        boxes = check_boxes(boxes, len(images), [im.shape[:2] for im in images])
        starts = from_unit(np.broadcast_to(self.mean_shape, (len(boxes), *self.mean_shape.shape)), boxes)
        refined = self._refine(images, starts, self.n_box_iterations)
        return refined[0] if single else refined

    def _refine(self, images, shapes, n_iterations):
        shapes = np.array(shapes, dtype=np.float64)         # a copy: the caller's array is not changed
        for _ in range(n_iterations):
            for start in range(0, len(images), self.batch_size):
                batch = slice(start, start + self.batch_size)
                shapes[batch] = self._refine_once(images[batch], shapes[batch])
        return shapes

    def _refine_once(self, images, shapes):
        inputs = network_inputs(images, shapes, self.template, self.crop_size)
        return inputs.corrected(self._session.run(None, dict(zip(INPUT_NAMES, inputs[:2])))[0])

    def __repr__(self):
        return f"Refiner(model_path={str(self.model_path)!r}, n_iterations={self.n_iterations})"


def _open_session(path, intra_op_threads, inter_op_threads):
    import onnxruntime
    if not path.is_file():
        raise FileNotFoundError(f"no refiner model at {path}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    try:
        return onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:      # onnxruntime raises its own exception types for a bad file
        raise ValueError(f"{path} is not a readable ONNX model: {error}") from None


def _read_metadata(session, path):
    """The model's metadata, every value checked against the network and each other."""
    raw = session.get_modelmeta().custom_metadata_map
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ValueError(f"{path} is not a refiner model: its metadata lacks {missing}")
    try:
        meta = {key: json.loads(raw[key]) for key in _REQUIRED}
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: metadata is not JSON ({error})") from None
    if meta["format"] != FORMAT:
        raise ValueError(f"{path}: format is {meta['format']!r}, expected {FORMAT!r}")
    if not isinstance(meta["format_version"], int) or meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']!r} is newer than this "
                         f"package reads ({FORMAT_VERSION}); upgrade the package")
    for key in ("crop_size", "n_landmarks"):
        try:
            check_integer(meta[key], key)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    size, n_landmarks = meta["crop_size"], meta["n_landmarks"]
    for key in ("template", "mean_shape"):
        try:
            value = np.asarray(meta[key], dtype=np.float64)
        except (TypeError, ValueError):
            value = None
        if value is None or value.shape != (n_landmarks, 2) or not np.isfinite(value).all():
            raise ValueError(f"{path}: {key} must be {n_landmarks} finite (x, y) points")
        meta[key] = value
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if tuple(i.name for i in inputs) != INPUT_NAMES or [o.name for o in outputs] != [OUTPUT_NAME]:
        raise ValueError(f"{path}: the network must take inputs {list(INPUT_NAMES)} and give one output "
                         f"{OUTPUT_NAME!r}; it has inputs {[i.name for i in inputs]} and outputs "
                         f"{[o.name for o in outputs]}")
    expected = {INPUT_NAMES[0]: [1, size, size], INPUT_NAMES[1]: [n_landmarks, 2], OUTPUT_NAME: [n_landmarks, 2]}
    for tensor in (*inputs, *outputs):
        if tensor.type != "tensor(float)" or list(tensor.shape[1:]) != expected[tensor.name]:
            raise ValueError(f"{path}: {tensor.name!r} is {tensor.type} {tensor.shape}, but the metadata "
                             f"(crop_size {size}, {n_landmarks} landmarks) needs float "
                             f"(faces, {', '.join(map(str, expected[tensor.name]))})")
    return meta
