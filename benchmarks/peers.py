"""Peers behind the same adapter as ours (see ``methods.py``): dlib's shape_predictor
and OpenCV contrib's FacemarkLBF.

dlib needs the ``peers`` extra (``dlib-bin``); it reads RGB or grey images and
returns points rounded to whole pixels, as its users get them. FacemarkLBF cannot
be trained from Python, so it runs as a small C++ program built against OpenCV
with the contrib face module (``benchmarks/opencv_lbf/build.sh``), found through
the ``CASCADE_OPENCV_LBF`` environment variable. Each adapter says why it is
skipped when its peer is missing.
"""
import importlib.util
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from cascade import write_dlib_xml
from cascade.schemes import IBUG68
from cascade.shapes import flip_boxes, flip_image, flip_shapes

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
                       np.concatenate([train_set.shapes, flip_shapes(train_set.shapes, widths, IBUG68)]),
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


class DlibPretrained(DlibTrained):
    """dlib's own 68-point model (``face_recognition_models``) on the boxes of dlib's HOG
    detector, the boxes it was trained on. Trained by dlib on iBUG 300-W, whose training
    images may include the test faces: an upper bound on what it shows here."""

    name, key, own_detector = "dlib 68-point model, pretrained (its HOG boxes)", None, "dlib-hog"

    @staticmethod
    def unavailable():
        return missing("dlib") or missing("face_recognition_models")

    def model_path(self, model_dir):
        import face_recognition_models
        return Path(face_recognition_models.pose_predictor_model_location())


class OpenCVLBF:
    """OpenCV's FacemarkLBF (4.10, contrib) trained on our training faces and boxes.

    Default options but for ``INIT_SHAPES`` starts per face instead of 10: its
    training is single-threaded and would take hours at 10 on this machine. It
    mirrors the training faces itself. Prediction and its timing run in the C++
    program (``FacemarkLBF::fit`` per face, one thread, images decoded beforehand).
    """

    INIT_SHAPES = 3
    name, key = f"OpenCV FacemarkLBF ({INIT_SHAPES} starts/face)", "opencv-lbf"

    @staticmethod
    def program():
        return os.environ.get("CASCADE_OPENCV_LBF", "")

    def unavailable(self):
        if not os.path.isfile(self.program()):
            return ("set CASCADE_OPENCV_LBF to the facemark_lbf program that "
                    "benchmarks/opencv_lbf/build.sh builds")
        return None

    def train(self, train_set, model_dir, quick, n_threads):
        if quick:
            raise SystemExit("OpenCV FacemarkLBF has no quick configuration")
        listing = model_dir / "opencv-lbf-train.txt"
        write_face_list(listing, train_set.images.paths, train_set.face_boxes(), train_set.shapes)
        with open(model_dir / "opencv-lbf.train.log", "w") as log:       # its progress, verbose
            subprocess.run([self.program(), "train", str(listing), str(self.model_path(model_dir)),
                            str(self.INIT_SHAPES)], check=True, stdout=log)

    def model_path(self, model_dir):
        return model_dir / "opencv-lbf.yaml"

    def load(self, model_dir, train_set):
        self.model = self.model_path(model_dir)
        return self

    def predict_external(self, faces, boxes, repeats, work_dir):
        """Predicted ``(n, 68, 2)`` shapes and faces per second on one thread, timed in C++."""
        listing, out = work_dir / "opencv-lbf-test.txt", work_dir / "opencv-lbf-predicted.txt"
        write_face_list(listing, faces.images.paths, boxes, np.zeros((len(boxes), 68, 2)))
        subprocess.run([self.program(), "predict", str(listing), str(self.model), str(out), str(repeats)],
                       check=True)
        lines = out.read_text().splitlines()
        shapes = np.array([[float(v) for v in line.split()] for line in lines[:-1]]).reshape(-1, 68, 2)
        return shapes, {"1": len(boxes) / float(lines[-1].split()[1])}


def write_face_list(path, image_paths, boxes, shapes):
    """The face list facemark_lbf reads: image, box as whole-pixel left top width height, points."""
    boxes = np.round(boxes).astype(int)
    with open(path, "w") as out:
        for image, (left, top, right, bottom), points in zip(image_paths, boxes, shapes):
            coordinates = " ".join(f"{v:.3f}" for v in points.ravel())
            out.write(f"{Path(image).resolve()} {left} {top} {right - left} {bottom - top} {coordinates}\n")


def peer_methods():
    return {"dlib": DlibTrained(), "dlib-68": DlibPretrained(), "opencv-lbf": OpenCVLBF()}
