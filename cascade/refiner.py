"""``Refiner``: small CNNs, run by ONNX Runtime, that correct the landmarks a cascade found.

A refiner is one or more stages, each an ONNX network applied in turn. For
each, a face is warped by the similarity taking its current shape onto the
network's template (:mod:`cascade.crops`), the network predicts a
correction of every point in that frame, and the corrected points go back to
the image by the inverse similarity. All faces of a call go through a network
in one batch. The bundled refiner has two stages: a global one that reads the
whole face at 112 px, then a point-local one that reads a small patch around
each point at twice that resolution.

Given no shapes but face boxes (:meth:`Refiner.predict_from_boxes`), the
refiner starts from the mean shape placed in each box and refines it a few
times: the same networks as a direct CNN landmarker.

A model file is an ONNX network whose metadata (JSON values) say what it
expects: ``format``, ``format_version``, ``crop_size``, ``n_landmarks``,
``template`` (the ``(L, 2)`` template in crop pixels), ``mean_shape`` (the
unit-frame mean shape used for box starts), for a point-local stage
``patch_size``, and optionally ``precision`` ("float32" or "int8"). They are
checked on load against the network's own input and output shapes: inputs
``crop_cells`` ``(faces, 16, S / 4, S / 4)`` (or ``patch_cells``
``(faces, 16 L, P / 4, P / 4)``: the pixels in 4 x 4 cells,
"Pixels in cells" in :mod:`cascade.crops`) and ``offsets`` ``(faces, L, 2)``, output
``corrections`` ``(faces, L, 2)``.
"""
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .crops import CELL, grey_faces, network_inputs
from .onnx_session import open_session
from .schemes import scheme_of
from .shapes import flip_image, flip_shapes, from_unit
from .validation import check_boxes, check_images, check_integer, check_shapes

FORMAT = "cascade-refiner"
FORMAT_VERSION = 3      # 2: point-local stages (``patch_size``); 3: pixels in 4 x 4 cells
OUTPUT_NAME = "corrections"
_MODELS = Path(__file__).parent / "models"
#: The int8 copies (``python -m cnn_refine.quantize``) of the stages ``python -m cnn_refine.train`` trains,
#: in order, about three times faster than the float32 ones (:data:`cnn_refine.FLOAT_MODELS`, kept with the
#: training code, not in the package): the default.
INT8_MODELS = (_MODELS / "refiner-68-int8.onnx", _MODELS / "refiner-68-local-int8.onnx")
DEFAULT_MODELS = INT8_MODELS
_REQUIRED = ("format", "format_version", "crop_size", "n_landmarks", "template", "mean_shape")
_OPTIONAL = ("patch_size", "precision")
#: A start shape whose points lie closer than this to their centre (RMS, pixels) has no scale
#: or orientation to put it on the template: the crop would magnify a few pixels without meaning.
MIN_SHAPE_SPREAD = 1.0


def input_names(patch_size):
    """A network's input names: the cells of its crop (``patch_size`` None) or patches, then offsets."""
    return ("crop_cells" if patch_size is None else "patch_cells", "offsets")


def pixels_shape(crop_size, n_landmarks, patch_size):
    """One face's pixel input, in cells (:mod:`cascade.crops`): ``(16, S / 4, S / 4)``, or
    ``(16 L, P / 4, P / 4)`` for a point-local stage."""
    k, side = (1, crop_size) if patch_size is None else (n_landmarks, patch_size)
    return (k * CELL * CELL, side // CELL, side // CELL)


def network_feed(patch_size, pixels, offsets):
    """A network's inputs by name, from :class:`~cascade.crops.NetworkInputs` pixels and offsets."""
    return dict(zip(input_names(patch_size), (pixels, offsets)))


class Refiner:
    """Refine landmarks with the bundled (or given) ONNX networks.

    Parameters
    ----------
    model_path : an ``.onnx`` file written by ``python -m cnn_refine.train``, or a sequence of them run in
        turn; None for the bundled stages (:data:`DEFAULT_MODELS`)
    n_iterations : times the stages are applied to a cascade's shape (1)
    n_box_iterations : times the first stage is applied from the mean shape in a box, before the
        others (2)
    intra_op_threads, inter_op_threads : ONNX Runtime thread counts per call (1 and 1, for
        embedded use and for callers that parallelise over images themselves)
    batch_size : faces per network call (16: small enough that a batch's pixels stay in the
        CPU's caches)
    mirror : also refine each face's mirror image at every stage and average the two answers
        (test-time flipping: twice the networks' time); the stages must predict a point count
        whose mirror map :func:`cascade.schemes.scheme_of` knows (68 does)

    ``predict`` is thread-safe: threads may share one Refiner (ONNX Runtime sessions run
    concurrent calls).
    """

    def __init__(self, model_path=None, n_iterations=1, n_box_iterations=2, intra_op_threads=1,
                 inter_op_threads=1, batch_size=16, mirror=False):
        self.model_path = model_path
        self.n_iterations = check_integer(n_iterations, "n_iterations")
        self.n_box_iterations = check_integer(n_box_iterations, "n_box_iterations")
        # 0 threads: ONNX Runtime's own choice
        self.intra_op_threads = check_integer(intra_op_threads, "intra_op_threads", low=0)
        self.inter_op_threads = check_integer(inter_op_threads, "inter_op_threads", low=0)
        self.batch_size = check_integer(batch_size, "batch_size")
        if model_path is None:
            paths = DEFAULT_MODELS
        elif isinstance(model_path, (str, os.PathLike)):
            paths = [model_path]
        elif isinstance(model_path, (list, tuple)):
            paths = model_path
        else:
            raise TypeError(f"model_path must be a path or a list of paths, not {type(model_path).__name__}")
        if not paths:
            raise ValueError("model_path names no model")
        for path in paths:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"model_path: {path!r} is not a path")
        self.stages = [Stage.open(Path(path), self.intra_op_threads, self.inter_op_threads) for path in paths]
        counts = {stage.n_landmarks for stage in self.stages}
        if len(counts) > 1:
            raise ValueError(f"the stages predict different numbers of landmarks: {sorted(counts)}")
        self.n_landmarks = self.stages[0].n_landmarks
        self.mean_shape = self.stages[0].mean_shape
        if not isinstance(mirror, (bool, np.bool_)):
            raise TypeError(f"mirror must be True or False, got {mirror!r}")
        self.mirror = bool(mirror)
        if self.mirror and scheme_of(None, self.n_landmarks).flip is None:
            raise ValueError(f"mirror=True needs a mirror map of {self.n_landmarks} points, and none is known "
                             "(68 points have one)")

    def predict(self, images, shapes):
        """Refined ``(n, L, 2)`` shapes (pixels) from ``n`` images and their current shapes.

        A single image with a single ``(L, 2)`` shape gives a single ``(L, 2)`` shape. A start
        whose points have collapsed (RMS spread under ``MIN_SHAPE_SPREAD`` px) is refused.
        """
        single = np.ndim(shapes) == 2
        if single:
            images, shapes = [images], [shapes]
        images = check_images(images)
        shapes = check_shapes(shapes, n_faces=len(images), n_landmarks=self.n_landmarks, allow_nan=False,
                              min_spread=MIN_SHAPE_SPREAD)
        refined = self._refine(images, shapes, self.stages * self.n_iterations)
        return refined[0] if single else refined

    def predict_from_boxes(self, images, boxes):
        """Standalone CNN landmarker: ``(n, L, 2)`` shapes from the mean shape placed in ``(n, 4)`` boxes."""
        single = np.ndim(boxes) == 1 and np.size(boxes) > 0         # [] is no faces, as in predict
        if single:
            images, boxes = [images], [boxes]
        images = check_images(images)
        boxes = check_boxes(boxes, len(images), [im.shape[:2] for im in images])
        starts = from_unit(np.broadcast_to(self.mean_shape, (len(boxes), *self.mean_shape.shape)), boxes)
        check_shapes(starts, min_spread=MIN_SHAPE_SPREAD, name="boxes")       # a box of a pixel or two
        stages = self.stages[:1] * self.n_box_iterations + self.stages[1:]
        refined = self._refine(images, starts, stages)
        return refined[0] if single else refined

    def _refine(self, images, shapes, stages):
        faces, offsets = grey_faces(images, shapes)      # once for all stages
        shapes = np.array(shapes, dtype=np.float64) - offsets[:, None]     # a copy, in the grey regions
        if self.mirror:
            mirrored = [np.ascontiguousarray(flip_image(face)) for face in faces]
            widths = np.array([face.shape[1] for face in faces])
        # stage by stage over all faces: one network's weights stay in the CPU's caches
        for stage in stages:
            for start in range(0, len(images), self.batch_size):
                batch = slice(start, start + self.batch_size)
                refined = stage.refine(faces[batch], shapes[batch])
                if self.mirror:
                    flipped = stage.refine(mirrored[batch], flip_shapes(shapes[batch], widths[batch]))
                    refined = (refined + flip_shapes(flipped, widths[batch])) / 2
                shapes[batch] = refined
        return shapes + offsets[:, None]

    def __repr__(self):
        mirror = ", mirror=True" if self.mirror else ""
        return f"Refiner(model_path={self.model_path!r}, n_iterations={self.n_iterations}{mirror})"


class Stage(NamedTuple):
    """One network and its frame, as read and checked from its file."""

    path: Path
    session: object
    crop_size: int
    patch_size: object      # None: the whole crop
    n_landmarks: int
    template: np.ndarray
    mean_shape: np.ndarray

    @classmethod
    def open(cls, path, intra_op_threads, inter_op_threads):
        session = open_session(path, intra_op_threads, inter_op_threads, "refiner model")
        meta = _read_metadata(session, path)
        return cls(path, session, meta["crop_size"], meta.get("patch_size"), meta["n_landmarks"], meta["template"],
                   meta["mean_shape"])

    def refine(self, images, shapes):
        inputs = network_inputs(images, shapes, self.template, self.crop_size, self.patch_size)
        corrections = self.session.run(None, network_feed(self.patch_size, inputs.pixels, inputs.offsets))[0]
        if not np.isfinite(corrections).all():
            raise ValueError(f"{self.path}: the network gave NaN or infinite corrections (a damaged model)")
        return inputs.corrected(corrections)


def _read_metadata(session, path):
    """The model's metadata, every value checked against the network and each other."""
    raw = session.get_modelmeta().custom_metadata_map
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ValueError(f"{path} is not a refiner model: its metadata lacks {missing}")
    try:
        meta = {key: json.loads(raw[key]) for key in (*_REQUIRED, *_OPTIONAL) if key in raw}
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: metadata is not JSON ({error})") from None
    if meta["format"] != FORMAT:
        raise ValueError(f"{path}: format is {meta['format']!r}, expected {FORMAT!r}")
    if not isinstance(meta["format_version"], int) or meta["format_version"] > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']!r} is newer than this "
                         f"package reads ({FORMAT_VERSION}); upgrade the package")
    if meta["format_version"] < FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']} reads whole pixel grids; this "
                         f"package's networks read 4 x 4 cells (version {FORMAT_VERSION}): retrain the stage "
                         "with python -m cnn_refine.train")
    for key in ("crop_size", "n_landmarks", "patch_size"):
        try:
            if key in meta:
                check_integer(meta[key], key)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if key != "n_landmarks" and meta.get(key, CELL) % CELL:
            raise ValueError(f"{path}: {key} must be a multiple of {CELL}, got {meta[key]}")
    if meta.get("precision", "float32") not in ("float32", "int8"):
        raise ValueError(f"{path}: precision must be 'float32' or 'int8', got {meta['precision']!r}")
    size, n_landmarks, patch_size = meta["crop_size"], meta["n_landmarks"], meta.get("patch_size")
    for key in ("template", "mean_shape"):
        try:
            value = np.asarray(meta[key], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            value = None
        if value is None or value.shape != (n_landmarks, 2) or not np.isfinite(value).all():
            raise ValueError(f"{path}: {key} must be {n_landmarks} finite (x, y) points")
        meta[key] = value
    inputs, outputs = session.get_inputs(), session.get_outputs()
    names = input_names(patch_size)
    if tuple(i.name for i in inputs) != names or [o.name for o in outputs] != [OUTPUT_NAME]:
        raise ValueError(f"{path}: the network must take inputs {list(names)} and give one output "
                         f"{OUTPUT_NAME!r}; it has inputs {[i.name for i in inputs]} and outputs "
                         f"{[o.name for o in outputs]}")
    expected = {names[0]: list(pixels_shape(size, n_landmarks, patch_size)), names[1]: [n_landmarks, 2],
                OUTPUT_NAME: [n_landmarks, 2]}
    for tensor in (*inputs, *outputs):
        if tensor.type != "tensor(float)" or list(tensor.shape[1:]) != expected[tensor.name]:
            raise ValueError(f"{path}: {tensor.name!r} is {tensor.type} {tensor.shape}, but the metadata "
                             f"(crop_size {size}, patch_size {patch_size}, {n_landmarks} landmarks) needs float "
                             f"(faces, {', '.join(map(str, expected[tensor.name]))})")
    # Where each shape must lie: the template inside the crop, the mean shape in the unit frame of
    # its box (with room for points outside it); and spread out, or no similarity maps a face onto it.
    for key, (low, high) in (("template", (0, size)), ("mean_shape", (-1, 2))):
        value = meta[key]
        if value.min() < low or value.max() > high:
            raise ValueError(f"{path}: {key} must lie within [{low}, {high}], it spans [{value.min():g}, "
                             f"{value.max():g}]")
        if np.sqrt(((value - value.mean(axis=0)) ** 2).sum(axis=1).mean()) < (high - low) / 100:
            raise ValueError(f"{path}: {key}'s points (nearly) coincide: no face can be placed on them")
    return meta
