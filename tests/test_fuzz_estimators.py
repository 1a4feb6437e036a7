"""Property-based checks of every estimator's ``predict`` and ``fit``: any images, boxes and
shapes give a correct result or a clear ValueError/TypeError, never a crash or a silent
wrong answer."""
import numpy as np
import pytest
from fuzzing import FUZZ, boxes, fine_or_clear, images, is_usable_box, is_usable_image, shapes
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import ASM, ERT, ESR, LBF
from cascade.shapes import tight_boxes

TINY = {ERT: dict(n_stages=2, n_trees=5, n_init=2, feature_pool_size=20, random_state=0),
        LBF: dict(n_stages=2, n_trees=2, tree_depth=3, n_init=2, points_per_landmark=8,
                  n_candidate_splits=10, random_state=0),
        ESR: dict(n_stages=2, n_ferns=5, n_init=2, feature_pool_size=20, random_state=0),
        ASM: dict(n_levels=1, face_size=32, max_iterations=2)}


@pytest.fixture(scope="module", params=list(TINY), ids=lambda cls: cls.__name__)
def fitted(request, train_faces):
    images, shapes = train_faces
    return request.param(**TINY[request.param]).fit(images[:30], shapes[:30])


def near_the_box(shape, box):
    """A silent wrong answer would land anywhere: every point must be within a box size of it."""
    left, top, right, bottom = box
    reach = max(right - left, bottom - top)
    return ((shape[:, 0] > left - reach) & (shape[:, 0] < right + reach) &
            (shape[:, 1] > top - reach) & (shape[:, 1] < bottom + reach)).all()


@FUZZ
@given(image=images(heights=(0, 1, 2, 33, 150, 1500), widths=(0, 1, 3, 151, 2000)), box=boxes())
def test_predict_on_any_image_and_box(fitted, image, box):
    predicted = fine_or_clear(fitted.predict, [image], [box])
    assert (predicted is not None) == (is_usable_image(image) and is_usable_box(box, image.shape))
    if predicted is not None:
        assert predicted.shape == (1, 68, 2) and np.isfinite(predicted).all()
        assert near_the_box(predicted[0], box)


@FUZZ
@given(n_images=st.integers(0, 3), n_boxes=st.integers(0, 3), box=boxes(),
       form=st.sampled_from(["list", "array", "tuple of lists", "one image", "strings", "nested"]))
def test_predict_on_any_batch_form(fitted, train_faces, n_images, n_boxes, box, form):
    image = train_faces[0][0]
    image_batch = {"list": [image] * n_images, "array": np.stack([image] * n_images) if n_images else
                   np.empty((0, *image.shape), np.uint8), "tuple of lists": tuple([image] * n_images),
                   "one image": image, "strings": ["face.png"] * n_images, "nested": [[image]] * n_images}[form]
    box_batch = [box] * n_boxes
    predicted = fine_or_clear(fitted.predict, image_batch, box_batch)
    sequence = form in ("list", "array", "tuple of lists") or (n_images == 0 and form != "one image")
    valid = sequence and n_images == n_boxes or form == "one image"        # one image: its n_boxes faces
    assert (predicted is not None) == (valid and (n_boxes == 0 or is_usable_box(box, image.shape)))
    if predicted is not None:
        n_faces = n_boxes if form == "one image" else n_images
        assert predicted.shape == (n_faces, 68, 2) and np.isfinite(predicted).all()


FIT_FAULTS = ["none", "one face", "bad image", "bad shapes", "fewer shapes", "bad box", "fewer boxes"]


@settings(FUZZ, max_examples=15)
@given(n_faces=st.integers(2, 4), fault=st.sampled_from(FIT_FAULTS), data=st.data())
def test_fit_on_any_faces(fitted, train_faces, n_faces, fault, data):
    """Fitting with one fault at a time: refused clearly; with none, a model that predicts."""
    face_images, points = list(train_faces[0][:n_faces]), train_faces[1][:n_faces].copy()
    face_boxes = tight_boxes(points)
    if fault == "one face":
        face_images, points, face_boxes = face_images[:1], points[:1], face_boxes[:1]
    elif fault == "bad image":
        face_images[data.draw(st.integers(0, n_faces - 1))] = data.draw(images().filter(
            lambda image: not is_usable_image(image)))
    elif fault == "bad shapes":
        points = data.draw(shapes(n=n_faces).filter(lambda drawn: not np.isfinite(drawn).all()
                                                    or drawn.shape[1] != 68))
    elif fault == "fewer shapes":
        points = points[:-1]
    elif fault == "bad box":
        face_boxes[data.draw(st.integers(0, n_faces - 1))] = data.draw(boxes().filter(
            lambda box: not is_usable_box(box, (150, 151))))
    elif fault == "fewer boxes":
        face_boxes = face_boxes[:-1]
    model = type(fitted)(**TINY[type(fitted)])
    result = fine_or_clear(model.fit, face_images, points, face_boxes)
    partly_missing = (fault == "bad shapes" and not np.isinf(points).any()
                      and not np.isnan(points).all(axis=(1, 2)).any())
    assert (result is not None) == (fault == "none" or (partly_missing and points.shape[1] == 68))
    if result is not None:
        assert np.isfinite(model.predict(face_images, face_boxes)).all()
