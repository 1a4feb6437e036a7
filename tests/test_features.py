import threading

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cascade import features, shapes as sh
from cascade._ext import sampling as compiled


def random_problem(rng, n_faces=6, n_landmarks=7, n_points=50, spread=400.0, colour=None):
    images = []
    for i in range(n_faces):
        h, w = rng.integers(1, 60, 2)
        shape = (h, w, 3) if (colour if colour is not None else i % 2) else (h, w)
        images.append(rng.integers(0, 256, shape, dtype=np.uint8))
    shapes = rng.uniform(-spread, spread, (n_faces, n_landmarks, 2))
    transforms = rng.normal(0, 50, (n_faces, 2, 2))
    anchors = rng.integers(0, n_landmarks, n_points)
    offsets = rng.normal(0, 1, (n_points, 2))
    return images, shapes, transforms, anchors, offsets


@pytest.mark.parametrize("outside", ["clamp", "zero"])
def test_compiled_equals_reference_far_outside(rng, outside):
    for _ in range(20):
        args = random_problem(rng)
        expected = features.sample_pixels_reference(*args, outside=outside)
        np.testing.assert_array_equal(features.sample_pixels(*args, outside=outside), expected)
        np.testing.assert_array_equal(features.sample_pixels(*args, n_jobs=3, outside=outside), expected)


def test_zero_outside_reads_zero_off_the_image():
    image = np.full((3, 4), 200, np.uint8)
    points = np.array([[[-0.51, 1], [-0.5, 1], [3.49, 2], [3.5, 2], [1, 2.5], [np.nan, np.nan]]])
    out = features.sample_pixels([image], points, np.zeros((1, 2, 2)), np.arange(6), np.zeros((6, 2)),
                                 outside="zero")
    np.testing.assert_array_equal(out, [[0, 200, 200, 0, 0, 0]])
    with pytest.raises(ValueError, match="outside must be one of"):
        features.sample_pixels([image], points, np.zeros((1, 2, 2)), np.arange(6), np.zeros((6, 2)),
                               outside="wrap")


def test_nan_and_huge_positions_clamp(rng):
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    shapes = np.array([[[np.nan, np.nan], [1e300, -1e300], [-5, 99], [2.49, 1.5]]])
    out = features.sample_pixels([image], shapes, np.zeros((1, 2, 2)), [0, 1, 2, 3], np.zeros((4, 2)))
    # NaN -> (0, 0); (+huge, -huge) -> (3, 0); (-5, 99) -> (0, 2); (2.49, 1.5) -> (2, 2)
    np.testing.assert_array_equal(out, [[0, 3, 8, 10]])
    np.testing.assert_array_equal(out, features.sample_pixels_reference(
        [image], shapes, np.zeros((1, 2, 2)), [0, 1, 2, 3], np.zeros((4, 2))))


def test_offsets_follow_the_transform():
    image = np.zeros((50, 50), np.uint8)
    image[30, 20] = 200                              # the pixel at x=20, y=30
    shapes = np.array([[[10.0, 10.0]]])
    turn = np.array([[[0.0, -1.0], [1.0, 0.0]]]) * 10
    # offset (2, -1) in the model frame, turned by 90 degrees and scaled by 10 -> (+10, +20)
    out = features.sample_pixels([image], shapes, turn, [0], [[2.0, -1.0]])
    assert out[0, 0] == 200


def test_colour_is_read_as_opencv_grey(rng):
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ys, xs = np.mgrid[0:40, 0:50]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)[None]
    anchors = np.arange(points.shape[1])
    got = features.sample_pixels([image], points, np.zeros((1, 2, 2)), anchors, np.zeros((len(anchors), 2)))
    assert np.abs(got[0].astype(int) - grey.ravel()).max() <= 1


def test_strided_views_need_no_copy(rng):
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    views = [image[:, ::-1], image[::2, 1::3], image[..., 1], np.asfortranarray(image)]
    for view in views:
        points = rng.uniform(-5, 45, (1, 30, 2))
        args = ([view], points, np.zeros((1, 2, 2)), np.arange(30), np.zeros((30, 2)))
        np.testing.assert_array_equal(features.sample_pixels(*args), features.sample_pixels_reference(*args))


def test_shared_images_via_image_index(rng):
    images, shapes, transforms, anchors, offsets = random_problem(rng, n_faces=3)
    index = np.array([2, 2, 0, 1, 0, 2])
    many = np.concatenate([shapes, shapes]), np.concatenate([transforms, transforms])
    got = features.sample_pixels(images, many[0], many[1], anchors, offsets, image_index=index)
    expected = features.sample_pixels([images[i] for i in index], many[0], many[1], anchors, offsets)
    np.testing.assert_array_equal(got, expected)


def test_frame_transforms_of_the_mean_shape_are_box_scalings(test_faces):
    boxes = test_faces.face_boxes()
    mean = sh.mean_shape(test_faces.shapes)
    placed = sh.from_unit(np.broadcast_to(mean, test_faces.shapes.shape), boxes)
    transforms = features.frame_transforms(placed, boxes, mean)
    sizes = boxes[:, 2:] - boxes[:, :2]
    np.testing.assert_allclose(transforms, sizes[:, :, None] * np.eye(2), atol=1e-9)


def test_real_faces_sample_the_face(test_faces):
    # Points on the mean face at zero offset read the face; compiled == reference.
    boxes = test_faces.face_boxes()
    mean = sh.mean_shape(test_faces.shapes)
    transforms = features.frame_transforms(test_faces.shapes, boxes, mean)
    anchors = np.arange(68)
    offsets = np.random.default_rng(0).normal(0, 0.05, (68, 2))
    images = list(test_faces.images)
    got = features.sample_pixels(images, test_faces.shapes, transforms, anchors, offsets, n_jobs=2)
    np.testing.assert_array_equal(
        got, features.sample_pixels_reference(images, test_faces.shapes, transforms, anchors, offsets))
    assert got.std() > 10


def test_gil_is_released_during_sampling(rng):
    # A thread that counts while the sampler runs keeps counting only if the GIL is free.
    image = rng.integers(0, 256, (500, 500), dtype=np.uint8)
    n = 4000
    args = ([image], rng.uniform(0, 500, (n, 68, 2)), rng.normal(0, 30, (n, 2, 2)),
            rng.integers(0, 68, 2000), rng.normal(0, 1, (2000, 2)))
    index = np.zeros(n, dtype=np.intp)
    out = np.empty((n, 2000), np.uint8)
    images, shapes, transforms, anchors, offsets = args
    ticks = []
    started = threading.Event()

    def sample():
        started.set()
        compiled.sample_pixels(images, index, shapes, transforms, anchors.astype(np.intp), offsets, out)

    worker = threading.Thread(target=sample)
    worker.start()
    started.wait()
    while worker.is_alive():
        ticks.append(1)
    worker.join()
    assert len(ticks) > 1000


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 9), width=st.integers(1, 9), colour=st.booleans(),
       coords=hnp.arrays(np.float64, (3, 4, 2), elements=st.floats(allow_nan=True, allow_infinity=False,
                                                                     width=64)),
       offsets=hnp.arrays(np.float64, (5, 2), elements=st.floats(-1e6, 1e6)),
       seed=st.integers(0, 2**32 - 1), outside=st.sampled_from(["clamp", "zero"]))
def test_property_compiled_equals_reference(height, width, colour, coords, offsets, seed, outside):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3) if colour else (height, width), dtype=np.uint8)
    coords[np.isnan(coords).any(axis=2)] = np.nan            # whole points missing
    coords[:, 0] = 1.0                                       # no face entirely missing
    transforms = rng.normal(0, 1e3, (3, 2, 2))
    anchors = rng.integers(0, 4, 5)
    args = ([image], coords, transforms, anchors, offsets, np.zeros(3, dtype=int))
    np.testing.assert_array_equal(features.sample_pixels(*args, outside=outside),
                                  features.sample_pixels_reference(*args, outside=outside))


def test_bad_inputs_raise_clear_errors(rng):
    images, shapes, transforms, anchors, offsets = random_problem(rng, n_faces=2)
    ok = (images, shapes, transforms, anchors, offsets)

    def call(**change):
        names = ["images", "shapes", "transforms", "anchors", "offsets"]
        kwargs = dict(zip(names, ok)) | change
        return features.sample_pixels(**kwargs)

    with pytest.raises(ValueError, match="anchors must lie"):
        call(anchors=np.array([0, 7]), offsets=np.zeros((2, 2)))
    with pytest.raises(TypeError, match="anchors must be a 1-D integer"):
        call(anchors=anchors.astype(float))
    with pytest.raises(ValueError, match="offsets must be"):
        call(offsets=offsets[:-1])
    with pytest.raises(ValueError, match="transforms must be"):
        call(transforms=transforms[:1])
    with pytest.raises(ValueError, match="finite"):
        call(transforms=np.full_like(transforms, np.nan))
    with pytest.raises(ValueError, match="2 images for 1 shapes"):
        call(shapes=shapes[:1], transforms=transforms[:1])
    with pytest.raises(ValueError, match="image_index must lie"):
        features.sample_pixels(*ok, image_index=[0, 2])
    with pytest.raises(TypeError, match="uint8"):
        call(images=[images[0].astype(np.float32), images[1]])
    with pytest.raises(ValueError, match="empty"):
        call(images=[np.zeros((0, 5), np.uint8), images[1]])
    with pytest.raises(ValueError, match="3 channels"):
        call(images=[np.zeros((5, 5, 4), np.uint8), images[1]])
    with pytest.raises(ValueError, match="infinite"):
        call(shapes=np.full_like(shapes, np.inf))


def test_compiled_core_checks_its_own_indices(rng):
    # Even called directly, past the Python checks, the extension refuses to read out of bounds.
    image = np.zeros((4, 4), np.uint8)
    shapes = np.zeros((1, 3, 2))
    out = np.empty((1, 2), np.uint8)
    t = np.zeros((1, 2, 2))
    with pytest.raises(ValueError, match="anchor 3 out of range"):
        compiled.sample_pixels([image], np.zeros(1, np.intp), shapes, t, np.array([0, 3], np.intp),
                               np.zeros((2, 2)), out)
    with pytest.raises(ValueError, match="image_index 1 out of range"):
        compiled.sample_pixels([image], np.ones(1, np.intp), shapes, t, np.array([0, 1], np.intp),
                               np.zeros((2, 2)), out)
    with pytest.raises(ValueError, match="disagree"):
        compiled.sample_pixels([image], np.zeros(1, np.intp), shapes, t, np.array([0, 1], np.intp),
                               np.zeros((2, 2)), np.empty((2, 2), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        compiled.sample_pixels([image.astype(np.int16)], np.zeros(1, np.intp), shapes, t,
                               np.array([0, 1], np.intp), np.zeros((2, 2)), out)
    with pytest.raises(ValueError, match="empty"):
        compiled.sample_pixels([np.zeros((4, 0), np.uint8)], np.zeros(1, np.intp), shapes, t,
                               np.array([0, 1], np.intp), np.zeros((2, 2)), out)
