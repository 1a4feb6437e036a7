"""The methods the benchmark compares, each behind one small adapter.

An adapter has a ``name`` (its row), a ``key`` (the training run it needs: rows
sharing a key share one training), and

- ``train(train_set, model_dir, quick, n_threads)``: fit and write model files
  (run in a child process, so the peak memory measured is the training's own);
- ``load(model_dir, train_set)``: read them back, returns the adapter;
- ``predict(images, boxes, n_threads)``: ``(n, L, 2)`` shapes in pixels;
- ``model_path(model_dir)``: the file whose size is reported, or None.

Ours live here; the peers (dlib, OpenCV) in ``peers.py``.
"""
import functools

import numpy as np

import cascade
from cascade.forest import LEAF_RANKS
from cascade.shapes import from_unit, mean_shape

#: Our estimators by key: (estimator, parameters). ERT: the paper's defaults, and 40
#: candidate splits per node (chosen on helen/trainset held out from a model trained on
#: lfpw/trainset + afw, never on the test set). LBF: its two presets. ESR, ASM: defaults.
CONFIGS = {
    "ert": (cascade.ERT, {}),
    "ert-c40": (cascade.ERT, {"n_candidate_splits": 40}),
    "lbf-fast": (cascade.LBF, {"preset": "fast"}),
    "lbf": (cascade.LBF, {"preset": "accurate"}),
    "esr": (cascade.ESR, {}),
    "asm": (cascade.ASM, {}),
}
#: What ``--quick`` shrinks each estimator to.
QUICK = {
    cascade.ERT: dict(n_stages=3, n_trees=20, n_init=3, feature_pool_size=100),
    cascade.LBF: dict(n_stages=3, n_trees=2, tree_depth=4, n_init=3, points_per_landmark=12,
                      n_candidate_splits=30, alpha=0.3),
    cascade.ESR: dict(n_stages=3, n_ferns=30, n_init=3, feature_pool_size=100, shrinkage=50.0),
    cascade.ASM: dict(n_levels=2, face_size=64),
}


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


class Estimator:
    """One of ``CONFIGS``, trained with seed 0 where it draws anything."""

    def __init__(self, key, label):
        self.key, self.name = key, label
        self.estimator, self.params = CONFIGS[key]

    def train(self, train_set, model_dir, quick, n_threads):
        params = {**self.params, **(QUICK[self.estimator] if quick else {}), "n_jobs": n_threads}
        for name, value in (("random_state", 0), ("verbose", 0 if quick else 1)):
            if name in self.estimator().get_params():
                params[name] = value
        model = self.estimator(**params).fit(train_set.images, train_set.shapes, train_set.face_boxes())
        self.save(model, model_dir)

    def save(self, model, model_dir):
        model.save(model_dir / f"{self.key}.npz")

    def model_path(self, model_dir):
        return model_dir / f"{self.key}.npz"

    def load(self, model_dir, train_set):
        self.model = self.estimator.load(self.model_path(model_dir))
        return self

    def predict(self, images, boxes, n_threads):
        self.model.n_jobs = n_threads
        return self.model.predict(images, boxes)


class CascadeForest(Estimator):
    """A tree cascade: also written with int16 leaves (``variant`` "q16") and with its leaves in a
    per-stage basis ("compressed", :meth:`cascade.forest.ForestCascade.compress`, at the default
    rank and bits), made from the trained model when first needed; profiled."""

    def __init__(self, key, label, variant=None):
        labels = {None: label, "q16": f"{label}, int16 leaves", "compressed": f"{label}, leaves in a basis"}
        super().__init__(key, labels[variant])
        self.variant = variant

    def save(self, model, model_dir):
        model.save(model_dir / f"{self.key}.npz")
        model.quantize().save(model_dir / f"{self.key}-q16.npz")

    def model_path(self, model_dir):
        return model_dir / f"{self.key}{'-' + self.variant if self.variant else ''}.npz"

    def load(self, model_dir, train_set):
        path = self.model_path(model_dir)
        if self.variant == "compressed" and not path.exists():
            full = self.estimator.load(model_dir / f"{self.key}.npz")
            full.compress().save(path)
        return super().load(model_dir, train_set)

    def profile(self, images, boxes):
        """Seconds per prediction phase (pixel sampling, tree walks, leaf adds), one thread."""
        return self.model.profile(images, boxes)


class Bundled:
    """A model that ships with the package (``cascade.load_model``); not trained by the suite."""

    key = None

    def __init__(self, bundled_name):
        self.bundled_name, self.name = bundled_name, f"bundled {bundled_name}"

    def load(self, model_dir, train_set):
        self.model = cascade.load_model(self.bundled_name)
        return self

    def predict(self, images, boxes, n_threads):
        self.model.n_jobs = n_threads
        return self.model.predict(images, boxes)

    def model_path(self, model_dir):
        return cascade.bundled.MODELS_DIR / cascade.bundled.BUNDLED[self.bundled_name]


@functools.lru_cache(maxsize=None)
def bundled_refiner(n_threads):
    """The bundled CNN refiner with ``n_threads`` ONNX Runtime threads (fixed per session)."""
    from cascade.refiner import Refiner
    return Refiner(intra_op_threads=n_threads)


class Refined:
    """Another method's shapes corrected by the bundled CNN refiner (one ONNX Runtime
    thread per predicting thread). Its model size is the landmarker's plus the network's."""

    def __init__(self, inner):
        self.inner, self.key, self.name = inner, inner.key, f"{inner.name} + CNN refiner"

    def load(self, model_dir, train_set):
        self.inner.load(model_dir, train_set)
        return self

    def predict(self, images, boxes, n_threads):
        return bundled_refiner(n_threads).predict(images, self.inner.predict(images, boxes, n_threads))

    def model_path(self, model_dir):
        return self.inner.model_path(model_dir)

    def extra_bytes(self):
        return refiner_bytes()


def refiner_bytes():
    from cascade.refiner import DEFAULT_MODELS
    return sum(path.stat().st_size for path in DEFAULT_MODELS)


class CNNStandalone:
    """The refiner's networks alone, started from the mean shape in the box: the CNN family."""

    key = None
    name = "CNN (refiner networks alone, from the box)"

    def load(self, model_dir, train_set):
        return self

    def predict(self, images, boxes, n_threads):
        return bundled_refiner(n_threads).predict_from_boxes(images, boxes)

    def model_path(self, model_dir):
        return None

    def extra_bytes(self):
        return refiner_bytes()


def our_methods():
    labels = {"ert": "cascade ERT", "ert-c40": "cascade ERT, 40 splits/node",
              "lbf-fast": "cascade LBF fast", "lbf": "cascade LBF accurate",
              "esr": "cascade ESR"}
    methods = {"mean-shape": MeanShape()}
    for key, label in labels.items():
        methods[key] = CascadeForest(key, label)
        methods[f"{key}-q16"] = CascadeForest(key, label, "q16")
        if CONFIGS[key][0].__name__ in LEAF_RANKS:
            methods[f"{key}-compressed"] = CascadeForest(key, label, "compressed")
    methods["asm"] = Estimator("asm", "cascade ASM")
    for name in cascade.bundled.BUNDLED:
        methods[name] = Bundled(name)
    for key in ("ert", "lbf-fast", "lbf", "esr", "lbf-68", "ert-68"):
        methods[f"{key}+cnn"] = Refined(methods[key])
    methods["cnn"] = CNNStandalone()
    return methods
