"""Byte-driven fuzz targets for the model loaders and the pixel sampler.

Each target turns arbitrary bytes into one call of a public entry point and checks the
project's rule: a correct result or a clear ValueError/TypeError, nothing else. They are
driven by atheris (``python tests/atheris_fuzz.py``, coverage-guided, for a bounded time)
and replayed over the saved corpus by ``tests/test_fuzz_compiled.py``, which the ASan job
runs on instrumented extensions.
"""
import tempfile
from pathlib import Path

import numpy as np

from cascade import ASM, ERT, ESR, LBF
from cascade._ext import sampling as compiled_sampling
from cascade.features import sample_pixels, sample_pixels_reference

LOADERS = (ERT.load, LBF.load, ESR.load, ASM.load, ERT.from_dlib)


def load_model_target(data):
    """The first byte picks a loader; the rest is the file. A model that loads must predict
    finite points on a small image, or refuse with a ValueError that names the model."""
    if not data:
        return
    loader = LOADERS[data[0] % len(LOADERS)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        path.write_bytes(data[1:])
        try:
            model = loader(path)
        except ValueError:
            return
    image = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    try:
        predicted = model.predict([image], [[8.0, 6.0, 40.0, 44.0]])
    except ValueError as error:
        assert "model" in str(error), error
        return
    assert np.isfinite(predicted).all()


class Bytes:
    """Reads numbers off a byte string; past its end every read is zero."""

    def __init__(self, data):
        self.data, self.at = bytes(data), 0

    def take(self, n):
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk + bytes(n - len(chunk))

    def integer(self, low, high):
        return low + int.from_bytes(self.take(2), "little") % (high - low + 1)

    def floats(self, count):
        """``count`` float64s from raw bytes: any value, NaN and infinities included."""
        return np.frombuffer(self.take(8 * count), dtype=np.float64).copy()

    def ints(self, count, low, high):
        return np.array([self.integer(low, high) for _ in range(count)], dtype=np.intp)


def sampler_target(data):
    """Random images, shapes, transforms, anchors, offsets and image indices (in range or
    not) through the public sampler, which must refuse clearly or equal its NumPy twin bit
    for bit; then the same arrays straight into the compiled core, which must check its own
    indices."""
    read = Bytes(data)
    images = []
    for _ in range(read.integer(1, 3)):
        height, width, colour = read.integer(1, 9), read.integer(1, 9), read.integer(0, 1)
        shape = (height, width, 3) if colour else (height, width)
        images.append(np.frombuffer(read.take(int(np.prod(shape))), np.uint8).reshape(shape))
    n_faces, n_landmarks, n_points = read.integer(1, 3), read.integer(1, 4), read.integer(0, 5)
    shapes = read.floats(n_faces * n_landmarks * 2).reshape(n_faces, n_landmarks, 2)
    transforms = read.floats(n_faces * 4).reshape(n_faces, 2, 2)
    anchors = read.ints(n_points, -2, n_landmarks + 1)
    offsets = read.floats(n_points * 2).reshape(n_points, 2)
    image_index = read.ints(n_faces, -1, len(images))
    outside = ("clamp", "zero")[read.integer(0, 1)]
    arguments = (images, shapes, transforms, anchors, offsets, image_index)
    try:
        got = sample_pixels(*arguments, outside=outside)
    except (ValueError, TypeError):
        got = None
    if got is not None:
        np.testing.assert_array_equal(got, sample_pixels_reference(*arguments, outside=outside))
    out = np.empty((n_faces, n_points), np.uint8)
    try:
        compiled_sampling.sample_pixels(images, image_index, shapes, transforms, anchors, offsets, out,
                                        outside == "zero")
    except (ValueError, TypeError):
        pass


TARGETS = {"loader": load_model_target, "sampler": sampler_target}
