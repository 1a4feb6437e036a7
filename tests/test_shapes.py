import numpy as np
import pytest

from cascade import shapes as sh
from cascade.schemes import IBUG68


def rotation(angle_deg, scale=1.0):
    a = np.deg2rad(angle_deg)
    return scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def test_flip_twice_is_identity(test_faces):
    image, shape = test_faces.images[0], test_faces.shapes[:1]
    width = image.shape[1]
    twice = sh.flip_image(sh.flip_image(image))
    assert np.array_equal(twice, image)
    np.testing.assert_allclose(sh.flip_shapes(sh.flip_shapes(shape, width), width), shape)


def test_flip_moves_right_eye_corner_to_the_left(test_faces):
    image, shape = test_faces.images[0], test_faces.shapes[:1]
    flipped_image = sh.flip_image(image)
    flipped = sh.flip_shapes(shape, image.shape[1])[0]
    # Point 36 (outer corner of the eye on the image left) is left of 45 before and after.
    assert shape[0, 36, 0] < shape[0, 45, 0] and flipped[36, 0] < flipped[45, 0]
    # The old point 36 is now point 45, mirrored; the pixel under it moves with it.
    x, y = shape[0, 36]
    np.testing.assert_allclose(flipped[45], [image.shape[1] - 1 - x, y])
    col, row = np.round(flipped[45]).astype(int)
    assert np.array_equal(flipped_image[row, col], image[row, int(round(x))])
    # The jaw runs the same way round after the flip: point 0 is again on the left.
    assert flipped[0, 0] < flipped[16, 0]


def test_flip_boxes_matches_flipped_shapes(test_faces):
    width = test_faces.images[0].shape[1]
    flipped = sh.flip_shapes(test_faces.shapes[:3], width)
    np.testing.assert_allclose(sh.flip_boxes(sh.tight_boxes(test_faces.shapes[:3]), width),
                               sh.tight_boxes(flipped))


def test_flip_other_schemes_need_a_mirror_map():
    five = np.arange(10.0).reshape(1, 5, 2)
    flipped = sh.flip_shapes(five, 100)                     # five points: the built-in five-point scheme
    np.testing.assert_allclose(flipped[0, 0], [99 - 2, 3])
    with pytest.raises(ValueError, match="no mirror map"):
        sh.flip_shapes(np.zeros((1, 7, 2)), 100)


def test_similarity_fit_recovers_known_transform(rng):
    source = rng.normal(0, 1, (5, 68, 2))
    A = np.stack([rotation(angle, scale) for angle, scale in [(0, 1), (30, 2), (-170, 0.5), (90, 3), (5, 1.1)]])
    t = rng.normal(0, 10, (5, 2))
    target = sh.apply_similarity(source, A, t)
    A_fit, t_fit = sh.similarity_fit(source, target)
    np.testing.assert_allclose(A_fit, A, atol=1e-10)
    np.testing.assert_allclose(t_fit, t, atol=1e-9)


def test_similarity_fit_ignores_missing_points_and_broadcasts(rng):
    source = rng.normal(0, 1, (68, 2))
    A, t = rotation(40, 1.7)[None], np.array([[3.0, -2.0]])
    target = sh.apply_similarity(source[None], A, t)
    target[0, :10] = np.nan
    target[0, 10:20] += 100                                   # noise the fit must now see
    clean = target.copy()
    clean[0, 10:20] = np.nan
    A_fit, t_fit = sh.similarity_fit(source, clean)           # (L, 2) source broadcasts
    np.testing.assert_allclose(A_fit, A, atol=1e-10)
    np.testing.assert_allclose(t_fit, t, atol=1e-9)
    A_noisy, _ = sh.similarity_fit(source, target)
    assert not np.allclose(A_noisy, A, atol=1e-3)


def test_similarity_fit_degenerate_and_empty():
    one_point = np.full((1, 3, 2), np.nan)
    one_point[0, 0] = [4, 5]
    A, t = sh.similarity_fit(np.zeros((3, 2)) + [1, 1], one_point)
    np.testing.assert_allclose(A[0], np.eye(2))
    np.testing.assert_allclose(t[0], [3, 4])
    with pytest.raises(ValueError, match="at least one point"):
        sh.similarity_fit(np.zeros((3, 2)), np.full((1, 3, 2), np.nan))


def test_unit_frame_round_trip_and_mean_shape(test_faces):
    boxes = sh.tight_boxes(test_faces.shapes)
    unit = sh.to_unit(test_faces.shapes, boxes)
    assert np.allclose(unit.min(axis=1), 0) and np.allclose(unit.max(axis=1), 1)
    np.testing.assert_allclose(sh.from_unit(unit, boxes), test_faces.shapes)
    mean = sh.mean_shape(test_faces.shapes)
    assert mean.shape == (68, 2) and 0 <= mean.min() and mean.max() <= 1
    np.testing.assert_allclose(mean, unit.mean(axis=0))
    assert mean[36, 0] < mean[45, 0] and mean[27, 1] < mean[57, 1]   # eyes left-right, nose above mouth


def test_mean_shape_with_missing_points():
    shapes = np.array([[[0, 0], [2, 2], [1, 1]], [[0, 0], [2, 2], [np.nan, np.nan]]], dtype=float)
    np.testing.assert_allclose(sh.mean_shape(shapes), [[0, 0], [1, 1], [0.5, 0.5]])
    shapes[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"landmarks \[2\] are missing in every face"):
        sh.mean_shape(shapes)


def test_tight_boxes_single_and_batch():
    shape = np.array([[1, 5], [3, 2], [np.nan, np.nan], [2, 9]], dtype=float)
    np.testing.assert_array_equal(sh.tight_boxes(shape), [1, 2, 3, 9])
    np.testing.assert_array_equal(sh.tight_boxes(shape[None]), [[1, 2, 3, 9]])


def test_jitter_is_a_similarity_and_seeded(test_faces):
    shapes = test_faces.shapes[:8]
    a = sh.jitter_shapes(shapes, np.random.default_rng(1), scale=0.1, shift=0.1, rotation=10)
    b = sh.jitter_shapes(shapes, np.random.default_rng(1), scale=0.1, shift=0.1, rotation=10)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, shapes)
    A, t = sh.similarity_fit(shapes, a)
    np.testing.assert_allclose(sh.apply_similarity(shapes, A, t), a, atol=1e-9)
    angles = np.degrees(np.arctan2(A[:, 1, 0], A[:, 0, 0]))
    assert 1 < np.abs(angles).mean() < 30
    same = sh.jitter_shapes(shapes, np.random.default_rng(1), scale=0, shift=0, rotation=0)
    np.testing.assert_allclose(same, shapes, atol=1e-9)


def test_jitter_boxes(rng):
    boxes = np.tile([100.0, 50.0, 200.0, 170.0], (2000, 1))
    jittered = sh.jitter_boxes(boxes, rng, scale=0.1, shift=0.05)
    width = jittered[:, 2] - jittered[:, 0]
    height = jittered[:, 3] - jittered[:, 1]
    np.testing.assert_allclose(width / height, 100 / 120)          # aspect kept
    assert abs(np.std(np.log(width / 100)) - 0.1) < 0.01
    centre_x = (jittered[:, 0] + jittered[:, 2]) / 2
    assert abs(np.std(centre_x - 150) / 100 - 0.05) < 0.005


def test_initial_indices_never_self(rng):
    indices = sh.sample_initial_indices(50, 20, rng)
    assert indices.shape == (50, 20)
    assert not (indices == np.arange(50)[:, None]).any()
    assert all(len(set(row)) == 20 for row in indices)
    small = sh.sample_initial_indices(3, 10, rng)       # more starts than other faces
    assert not (small == np.arange(3)[:, None]).any() and small.max() < 3
    with pytest.raises(ValueError, match="at least 2 faces"):
        sh.sample_initial_indices(1, 5, rng)
    pooled = sh.sample_initial_indices(50, 3, rng, pool=[4, 9, 20, 33])
    assert np.isin(pooled, [4, 9, 20, 33]).all() and not (pooled == np.arange(50)[:, None]).any()
    assert all(len(set(row)) == 3 for row in pooled)


def test_five_point_frames_place_the_mean_shape_on_a_rolled_face(rng):
    mean = sh.mean_shape(rng.uniform(0, 100, (5, 68, 2)))
    angle, scale, shift = 0.5, 140.0, np.array([60.0, 30.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    face = mean @ (scale * rotation).T + shift
    five = IBUG68.five_points
    boxes, rolls = sh.frames_from_points(five(mean), five(face[None]))
    assert rolls[0] == pytest.approx(angle)
    assert boxes[0, 2] - boxes[0, 0] == pytest.approx(scale) == boxes[0, 3] - boxes[0, 1]
    start = sh.from_unit(sh.rotate_about_centre(mean, rolls), boxes)
    np.testing.assert_allclose(start[0], face, atol=1e-9)
    # Not rolled: the mean shape in a box, as from a face box.
    boxes, rolls = sh.frames_from_points(five(mean), five(mean[None] * scale + shift))
    np.testing.assert_allclose(rolls, 0, atol=1e-12)
    np.testing.assert_allclose(sh.to_unit((mean * scale + shift)[None], boxes)[0], mean, atol=1e-9)
    with pytest.raises(ValueError, match="have 68 points"):
        five(np.zeros((3, 29, 2)))
