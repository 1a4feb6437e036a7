"""ASM's own parts (the point distribution model, crops, normals, model checks); the contract
it shares with the other estimators is in test_estimators.py."""
import numpy as np
import pytest

from cascade import ASM
from cascade.asm import _face_crop
from cascade.pdm import fit_to_points, principal_components, procrustes_align
from cascade.schemes import IBUG68
from cascade.shapes import apply_similarity, contour_neighbours

SMALL = dict(profile_length=4)


@pytest.fixture(scope="module")
def model(train_faces):
    return ASM(**SMALL).fit(*train_faces)


def similarity(scale, angle, shift):
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[[a, -b], [b, a]]]), np.array([shift], dtype=float)


def test_procrustes_removes_pose(train_faces):
    shapes = train_faces[1][:30]
    aligned, mean = procrustes_align(shapes)
    assert np.allclose(mean.mean(axis=0), 0) and np.isclose(np.linalg.norm(mean), 1)
    moved = apply_similarity(shapes, *[np.repeat(x, 30, axis=0) for x in similarity(2.5, 0.4, (300, -40))])
    aligned_moved, _ = procrustes_align(moved)
    # The same shapes up to one rotation of the whole set: the same distances between them.
    def distances(x):
        return np.linalg.norm(x[:, None] - x[None], axis=(2, 3))
    np.testing.assert_allclose(distances(aligned_moved), distances(aligned), atol=1e-6)
    np.testing.assert_allclose(np.einsum("nld,ld->n", aligned, mean), 1.0)     # tangent space


def test_components_keep_the_asked_variance(train_faces):
    aligned, mean = procrustes_align(train_faces[1])
    components, variances = principal_components(aligned, mean, 0.9)
    everything = principal_components(aligned, mean, 1.0)[1].sum()
    assert variances.sum() >= 0.9 * everything > variances[:-1].sum()
    np.testing.assert_allclose(components @ components.T, np.eye(len(variances)), atol=1e-9)


def test_fit_recovers_a_model_shape_and_clamps_the_rest(model):
    mean, components, variances = model.pdm_mean_, model.components_, model.variances_
    params = np.zeros(len(variances))
    params[:3] = np.sqrt(variances[:3]) * np.array([1.5, -2.0, 1.0])
    shape = mean + (params @ components).reshape(mean.shape)
    placed = apply_similarity(shape[None], *similarity(180.0, -0.3, (320, 240)))
    np.testing.assert_allclose(fit_to_points(placed, mean, components, variances, 3.0, 10), placed, atol=1e-6)
    params[0] = 10 * np.sqrt(variances[0])                           # far outside the model
    extreme = apply_similarity((mean + (params @ components).reshape(mean.shape))[None], *similarity(1, 0, (0, 0)))
    fitted = fit_to_points(extreme, mean, components, variances, 3.0, 10)
    assert np.abs(fitted - extreme).max() > 1e-3


def test_neighbours_follow_the_curves():
    neighbours = contour_neighbours(68, IBUG68.curves)
    assert tuple(neighbours[0]) == (0, 1) and tuple(neighbours[16]) == (15, 16)     # open jaw
    assert tuple(neighbours[36]) == (41, 37) and tuple(neighbours[41]) == (40, 36)  # closed eye
    line = np.stack([np.arange(6.0), np.zeros(6)], axis=1)
    nearest = contour_neighbours(6, mean=line)
    assert set(nearest[2]) == {1, 3}


def test_crop_reads_only_the_face_region():
    # 8000 x 8000 with no memory behind it: a copy or conversion of the whole would fail or crawl.
    image = np.broadcast_to(np.uint8(40), (8000, 8000, 3))
    box = np.array([4000.0, 3000.0, 4400.0, 3400.0])
    crop, to_crop = _face_crop(image, box, 64, 128)
    assert crop.shape == (128, 128) and crop.dtype == np.uint8 and (crop == 40).all()
    centre = to_crop @ [4200.0, 3200.0, 1.0]
    np.testing.assert_allclose(centre[:2], [63.5, 63.5])


def test_crop_maps_points_to_where_they_are_seen():
    image = np.zeros((300, 400), np.uint8)
    image[118:123, 248:253] = 255                                     # a bright dot at (250, 120)
    for box in ([200.0, 80.0, 300.0, 180.0], [150.0, 20.0, 380.0, 250.0], [240, 110, 260, 130]):
        crop, to_crop = _face_crop(image, np.array(box), 64, 128)
        x, y = (to_crop @ [250.0, 120.0, 1.0])[:2]
        rows, cols = np.indices(crop.shape)
        weight = crop.astype(float) / crop.sum()
        seen = (weight * cols).sum(), (weight * rows).sum()                  # the dot's centroid
        assert abs(seen[0] - x) <= 1 and abs(seen[1] - y) <= 1, (box, seen, x, y)


def test_bad_parameters(train_faces):
    images, shapes = train_faces[0][:10], train_faces[1][:10]
    with pytest.raises(ValueError, match="too small for 3 levels"):
        ASM(face_size=32).fit(images, shapes)
    with pytest.raises(ValueError, match="variance_kept"):
        ASM(variance_kept=1.5).fit(images, shapes)
    with pytest.raises(ValueError, match="clamp"):
        ASM(clamp=0).fit(images, shapes)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(neighbours_=np.full_like(a["neighbours_"], 68)), "neighbours_ holds indices"),
    (lambda a: a.update(variances_=-a["variances_"]), "must not be negative"),
    (lambda a: a.update(profile_means_=a["profile_means_"][:2]), "profile_means_ has shape"),
    (lambda a: a.update(components_=a["components_"][:, :10]), "components_ has shape"),
])
def test_tampered_models_are_refused(model, tmp_path, change, message):
    model.save(tmp_path / "asm.npz")
    assert np.array_equal(ASM.load(tmp_path / "asm.npz").profile_means_, model.profile_means_)
    arrays = {name: getattr(model, name).copy() for name in ASM._ARRAYS}
    change(arrays)
    with pytest.raises(ValueError, match=message):
        ASM._from_arrays(model.get_params(), arrays, "test")


def test_a_box_touching_the_image_only_far_from_its_centre(model):
    # The crop around this long thin box's centre lies wholly right of the image.
    image = np.full((100, 100), 90, np.uint8)
    shape = model.predict(image, np.array([90.0, 40.0, 1090.0, 50.0]))
    assert shape.shape == (68, 2) and np.isfinite(shape).all()


def test_a_scheme_of_other_points_is_refused(train_faces):
    images, shapes = train_faces[0][:10], train_faces[1][:10]
    with pytest.raises(ValueError, match="has 51 points; these shapes have 68"):
        ASM(scheme=IBUG68.subset(range(17, 68))).fit(images, shapes)
