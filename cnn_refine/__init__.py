"""cnn_refine: training the CNN refinement stage (PyTorch, the ``cnn-train`` extra).

The refiner itself, which needs only ONNX Runtime, is :class:`cascade.refiner.Refiner`:
it takes the shapes a cascade found, warps each face into the frame of a template
shape, and lets two small networks correct every landmark. This package trains
those networks (``python -m cnn_refine.train``: :mod:`cnn_refine.networks`, the
out-of-fold cascade starts, ONNX export) and makes their int8 copies
(``python -m cnn_refine.quantize``); the files ship in ``cascade/models/``.
``cascade`` never imports it.
"""
