"""cnn_refine: the optional CNN refinement stage, run with ONNX Runtime.

It will take a cascade's shape, warp the face into the mean-shape frame and let a
small network predict a correction for every landmark. The stage is not built
yet; this package exists so that the layout and the install are in place.
"""
