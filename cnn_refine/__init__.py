"""cnn_refine: the optional CNN refinement stage, run with ONNX Runtime.

:class:`Refiner` takes the shapes a cascade found, warps each face into the
frame of a template shape, and lets a small network predict a correction for
every landmark (see :mod:`cnn_refine.refiner`); from boxes alone it is a
direct CNN landmarker. ``python -m cnn_refine.train`` trains the network
(PyTorch, the ``cnn-train`` extra) and exports the ONNX file that ships in
``cnn_refine/models/``.
"""
from .refiner import Refiner

__all__ = ["Refiner"]
