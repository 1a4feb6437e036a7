"""Peers behind the same adapter as ours (see ``methods.py``): dlib's shape_predictor.

Needs the ``peers`` extra (``dlib-bin``); each adapter says why it is skipped
when its package is missing. dlib reads RGB or grey images and returns points
rounded to whole pixels, as its users get them.
"""
import importlib.util
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from cascade import write_dlib_xml
from cascade.shapes import IBUG68_FLIP, flip_boxes, flip_image, flip_shapes

#: dlib's defaults, and a small configuration for --quick.
DLIB_QUICK = dict(cascade_depth=3, num_trees_per_cascade_level=20, oversampling_amount=3,
                  feature_pool_size=100)


def missing(package):
    return None if importlib.util.find_spec(package) else f"{package} is not installed (pip install '.[peers]')"


class DlibTrained:
    """dlib's shape_predictor trained on our training faces, mirrors and boxes, default options."""

    name, key = "dlib shape_predictor", "dlib"

    @staticmethod
    def unavailable():
        return missing("dlib")

    def train(self, train_set, model_dir, quick, n_threads):
        import dlib
        folder = model_dir / "dlib-train"
        folder.mkdir(exist_ok=True)
        paths, widths = list(train_set.images.paths), []
        for i, path in enumerate(train_set.images.paths):
            image = train_set.images[i]
            mirrored = folder / f"{i:05d}-mirror.png"           # lossless: the same pixels we train on
            cv2.imwrite(str(mirrored), np.ascontiguousarray(flip_image(image)))
            paths.append(mirrored)
            widths.append(image.shape[1])
        boxes = train_set.face_boxes()
        write_dlib_xml(folder / "train.xml", paths,
                       np.concatenate([train_set.shapes, flip_shapes(train_set.shapes, widths, IBUG68_FLIP)]),
                       np.concatenate([boxes, flip_boxes(boxes, widths)]))
        options = dlib.shape_predictor_training_options()
        for name, value in (DLIB_QUICK if quick else {}).items():
            setattr(options, name, value)
        options.num_threads = n_threads
        options.be_verbose = True
        dlib.train_shape_predictor(str(folder / "train.xml"), str(model_dir / "dlib.dat"), options)

    def model_path(self, model_dir):
        return model_dir / "dlib.dat"

    def load(self, model_dir, train_set):
        import dlib
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(self.model_path(model_dir)))
        return self

    def prepare(self, images):
        """dlib wants RGB; converted once, outside the timing."""
        return [cv2.cvtColor(im, cv2.COLOR_BGR2RGB) if im.ndim == 3 else im for im in images]

    def predict(self, images, boxes, n_threads):
        out = np.empty((len(images), 68, 2))
        boxes = np.round(boxes).astype(int)

        def run(chunk):
            for i in range(chunk.start, chunk.stop):
                parts = self.predictor(images[i], self.dlib.rectangle(*map(int, boxes[i]))).parts()
                out[i] = [(p.x, p.y) for p in parts]

        bounds = np.linspace(0, len(images), n_threads + 1).astype(int)
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]))
        return out


def peer_methods():
    return {"dlib": DlibTrained()}
