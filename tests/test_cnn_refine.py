"""cnn_refine's training helpers that need no PyTorch: faces made hard, the held-out faces."""
import numpy as np
import pytest

from cascade.shapes import tight_boxes
from cnn_refine.hard import IN_PLACE, KINDS, made_hard
from cnn_refine.train import held_out_faces


@pytest.fixture
def face(rng):
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    shape = np.stack([rng.uniform(50, 110, 68), rng.uniform(30, 90, 68)], axis=1)
    return image, shape


@pytest.mark.parametrize("kind", sorted(set(KINDS)))
@pytest.mark.parametrize("grey", [False, True])
def test_each_kind_keeps_the_image_form(face, kind, grey, rng):
    image, shape = face
    image = image[..., 0].copy() if grey else image
    hard, moved = made_hard(image, shape, kind, rng)
    assert hard.shape == image.shape and hard.dtype == np.uint8
    assert moved.shape == shape.shape
    if kind in IN_PLACE or kind == "none":
        np.testing.assert_array_equal(moved, shape)
    if kind != "none":
        assert (hard != image).any()


def test_a_turned_face_takes_its_landmarks_along(rng):
    image = np.zeros((200, 200), np.uint8)
    shape = np.array([[60.0, 80.0]] * 68)
    shape[1:] += rng.normal(0, 20, (67, 2))
    image[79:82, 59:62] = 255
    hard, moved = made_hard(image, shape, "rotate", rng, turn=(30, 30))
    y, x = np.unravel_index(np.argmax(hard), hard.shape)
    assert np.hypot(x - moved[0, 0], y - moved[0, 1]) < 1.5
    assert np.hypot(*(moved[0] - shape[0])) > 20           # it did move


def test_a_hidden_quarter_lies_inside_the_face(face, rng):
    image, shape = face
    hard, _ = made_hard(image, shape, "occlude", rng)
    changed = np.argwhere((hard != image).any(axis=2))
    left, top, right, bottom = tight_boxes(shape)
    assert changed[:, 1].min() >= left - 1 and changed[:, 1].max() <= right
    assert changed[:, 0].min() >= top - 1 and changed[:, 0].max() <= bottom
    with pytest.raises(ValueError, match="unknown kind 'sideways'"):
        made_hard(image, shape, "sideways", rng)


def test_held_out_faces_are_the_seeds_first_draw():
    first = held_out_faces(np.random.default_rng(0), 2012, 200)
    np.testing.assert_array_equal(first, np.random.default_rng(0).permutation(2012)[:200])
    assert len(set(first.tolist())) == 200
