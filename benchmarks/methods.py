"""The methods the benchmark compares, each behind one small adapter.

An adapter has a ``name`` (its row), a ``key`` (the training run it needs: rows
sharing a key share one training), and

- ``train(train_set, model_dir, quick, n_threads)``: fit and write model files
  (run in a child process, so the peak memory measured is the training's own);
- ``load(model_dir, train_set)``: read them back, returns the adapter;
- ``predict(images, boxes, n_threads)``: ``(n, L, 2)`` shapes in pixels;
- ``model_path(model_dir)``: the file whose size is reported, or None.

Ours live here; the peers (dlib) in ``peers.py``.
"""
import numpy as np

import cascade
from cascade.shapes import from_unit, mean_shape

#: ERT configurations: the paper's defaults, and a small one for --quick.
ERT_PARAMS = {False: dict(random_state=0, verbose=1),
              True: dict(n_stages=3, n_trees=20, n_init=3, feature_pool_size=100, random_state=0)}


class MeanShape:
    """The mean training shape placed in the box: the start every cascade improves on."""

    name, key = "mean shape", None

    def load(self, model_dir, train_set):
        self.mean = mean_shape(train_set.shapes, train_set.face_boxes())
        return self

    def predict(self, images, boxes, n_threads):
        return from_unit(np.broadcast_to(self.mean, (len(boxes), *self.mean.shape)), boxes)

    def model_path(self, model_dir):
        return None


class CascadeERT:
    """cascade.ERT with the paper's defaults; ``quantized`` reads its int16-leaf copy."""

    key = "ert"

    def __init__(self, quantized=False):
        self.quantized = quantized
        self.name = "cascade ERT, int16 leaves" if quantized else "cascade ERT"

    def train(self, train_set, model_dir, quick, n_threads):
        model = cascade.ERT(**ERT_PARAMS[quick], n_jobs=n_threads)
        model.fit(train_set.images, train_set.shapes, train_set.face_boxes())
        model.save(model_dir / "ert.npz")
        model.quantize().save(model_dir / "ert-q16.npz")

    def model_path(self, model_dir):
        return model_dir / ("ert-q16.npz" if self.quantized else "ert.npz")

    def load(self, model_dir, train_set):
        self.model = cascade.ERT.load(self.model_path(model_dir))
        return self

    def predict(self, images, boxes, n_threads):
        self.model.n_jobs = n_threads
        return self.model.predict(images, boxes)


def our_methods():
    return {"mean-shape": MeanShape(), "ert": CascadeERT(), "ert-q16": CascadeERT(quantized=True)}
