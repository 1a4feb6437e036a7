"""cnn_refine: training the CNN refinement stage (PyTorch, the ``cnn-train`` extra).

The refiner itself, which needs only ONNX Runtime, is :class:`cascade.refiner.Refiner`:
it takes the shapes a cascade found, warps each face into the frame of a template
shape, and lets two small networks correct every landmark. This package trains
those networks (``python -m cnn_refine.train``: :mod:`cnn_refine.networks`, the
out-of-fold cascade starts, ONNX export) and makes their int8 copies
(``python -m cnn_refine.quantize``); the int8 files ship in ``cascade/models/``, the
float32 ones, which only training and quantising read, stay here in ``cnn_refine/models/``.
``cascade`` never imports it, and the wheel leaves it out.
"""
from pathlib import Path

#: The float32 stages ``python -m cnn_refine.train`` writes, in order: the global one, then the local one.
GLOBAL_MODEL = Path(__file__).parent / "models" / "refiner-68.onnx"
LOCAL_MODEL = Path(__file__).parent / "models" / "refiner-68-local.onnx"
FLOAT_MODELS = (GLOBAL_MODEL, LOCAL_MODEL)
