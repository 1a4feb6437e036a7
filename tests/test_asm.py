"""ASM's own parts (the point distribution model, crops, descriptors, model checks); the contract
it shares with the other estimators is in test_estimators.py."""
import numpy as np
import pytest

from cascade import ASM
from cascade.asm import N_CELLS, N_ORIENTATIONS, _crop, _orientation_cells
from cascade.pdm import fit_to_points, principal_components, procrustes_align
from cascade.schemes import IBUG68
from cascade.shapes import apply_similarity

SMALL = dict(n_levels=2, face_size=64, max_iterations=2)


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


def test_crop_reads_only_the_face_region():
    # 8000 x 8000 with no memory behind it: a copy or conversion of the whole would fail or crawl.
    image = np.broadcast_to(np.uint8(40), (8000, 8000, 3))
    A, t = similarity(0.16, 0.3, (-640.0, -500.0))
    crop = _crop(image, A[0], t[0], 128)
    assert crop.shape == (128, 128) and crop.dtype == np.uint8 and (crop == 40).all()


@pytest.mark.parametrize("scale, angle", [(1.0, 0.0), (0.4, 0.5), (2.5, -0.3), (0.12, 1.2)])
def test_crop_maps_points_to_where_they_are_seen(scale, angle):
    image = np.zeros((600, 800), np.uint8)
    image[238:243, 498:503] = 255                                     # a bright dot at (500, 240)
    A, t = similarity(scale, angle, (0.0, 0.0))
    t = np.array([[64.0, 64.0]]) - np.array([500.0, 240.0]) @ A[0].T          # the dot at the crop's centre
    crop = _crop(image, A[0], t[0], 128)
    rows, cols = np.indices(crop.shape)
    weight = crop.astype(float) / crop.sum()
    seen = (weight * cols).sum(), (weight * rows).sum()                        # the dot's centroid
    np.testing.assert_allclose(seen, [64.0, 64.0], atol=1.0)


def test_orientation_cells_see_an_edge_by_its_direction():
    crop = np.zeros((40, 40), np.uint8)
    crop[:, 20:] = 200                                                # a vertical edge: horizontal gradient
    maps = _orientation_cells(crop, 4)
    assert maps.shape == (40, 40, N_ORIENTATIONS) and maps.dtype == np.float32
    at_edge = maps[20, 20]
    assert at_edge.argmax() == 0 and at_edge[0] > 10 * at_edge[N_ORIENTATIONS // 2]
    assert maps[20, 5].max() == 0                                     # a cell away from it: nothing


def test_descriptors_are_normalised_and_read_inside_the_crop(model):
    maps = np.random.default_rng(0).random((30, 30, N_ORIENTATIONS)).astype(np.float32)
    positions = np.array([[[15.0, 15.0], [-50.0, 900.0]]])                     # one far outside: clamped
    descriptors = model._descriptors(maps, positions)
    assert descriptors.shape == (1, 2, N_ORIENTATIONS * N_CELLS ** 2)
    np.testing.assert_allclose(np.linalg.norm(descriptors, axis=-1), 1.0, atol=1e-4)


def test_missing_points_are_left_out(train_faces):
    images, shapes = train_faces[0][:40], train_faces[1][:40].copy()
    hidden = shapes.copy()
    hidden[::2, :17] = np.nan                                         # half the faces without a jaw
    boxes = np.array([[s[:, 0].min(), s[:, 1].min(), s[:, 0].max(), s[:, 1].max()] for s in shapes])
    model = ASM(**SMALL).fit(images, hidden, boxes)
    assert np.isfinite(model.appearance_).all() and np.isfinite(model.components_).all()
    assert np.isfinite(model.predict(images[:3], boxes[:3])).all()


def test_bad_parameters(train_faces):
    images, shapes = train_faces[0][:10], train_faces[1][:10]
    with pytest.raises(ValueError, match="too small for 3 levels"):
        ASM(face_size=48).fit(images, shapes)
    with pytest.raises(ValueError, match="variance_kept"):
        ASM(variance_kept=1.5).fit(images, shapes)
    with pytest.raises(ValueError, match="clamp"):
        ASM(clamp=0).fit(images, shapes)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(variances_=-a["variances_"]), "must not be negative"),
    (lambda a: a.update(appearance_=a["appearance_"][:1]), "appearance_ has shape"),
    (lambda a: a.update(appearance_=np.full_like(a["appearance_"], np.nan)), "non-finite"),
    (lambda a: a.update(components_=a["components_"][:, :10]), "components_ has shape"),
])
def test_tampered_models_are_refused(model, tmp_path, change, message):
    model.save(tmp_path / "asm.npz")
    assert np.array_equal(ASM.load(tmp_path / "asm.npz").appearance_, model.appearance_)
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
