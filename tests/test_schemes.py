"""Landmark schemes: the built-in ones, subsets, checks, and other schemes end to end."""
import numpy as np
import pytest
from sklearn.base import clone

from cascade import FIVE, IBUG68, LBF, Scheme, load_faces, report
from cascade.schemes import SCHEMES, register, scheme_of
from cascade.shapes import flip_shapes, tight_boxes

#: A 29-point scheme of the kind LFPW and COFW use, taken from the 68 points: jaw ends and chin,
#: brow corners and tops, four points of each eye, the nose, and the mouth.
POINTS_29 = [2, 14, 8, 17, 19, 21, 22, 24, 26, 36, 38, 39, 41, 42, 43, 45, 46, 30, 31, 33, 35,
             48, 51, 54, 57, 62, 66, 0, 16]


def test_ibug68_mirror_map_and_five_points():
    flip = np.array(IBUG68.flip)
    assert np.array_equal(flip[flip], np.arange(68))
    assert {flip[30], flip[8], flip[27], flip[51], flip[57], flip[62], flip[66]} == {30, 8, 27, 51, 57, 62, 66}
    assert flip[48] == 54 and flip[39] == 42 and flip[17] == 26
    shape = np.random.default_rng(0).uniform(0, 100, (68, 2))
    five = IBUG68.five_points(shape)
    np.testing.assert_allclose(five, [shape[36:42].mean(0), shape[42:48].mean(0), shape[30], shape[48], shape[54]])
    assert IBUG68.default_normalization() == "inter-ocular" and FIVE.default_normalization() == "inter-pupil"
    np.testing.assert_array_equal(FIVE.five_points(five), five)
    # The five points of a mirrored face are the mirrored five points.
    np.testing.assert_allclose(IBUG68.five_points(flip_shapes(shape[None], 300, IBUG68)),
                               flip_shapes(five[None], 300, FIVE))


def test_a_subset_is_a_scheme():
    jaw = IBUG68.subset(range(17), "jaw")
    assert jaw.n_points == 17 and jaw.flip == tuple(range(16, -1, -1)) and jaw.groups == {"jaw": tuple(range(17))}
    assert jaw.curves == ((tuple(range(17)), False),) and jaw.five is None and jaw.eye_corners is None
    scheme = IBUG68.subset(POINTS_29)
    assert scheme.n_points == 29 and scheme.eye_corners == (POINTS_29.index(36), POINTS_29.index(45))
    shapes = np.random.default_rng(1).uniform(0, 100, (3, 68, 2))
    # Its five points are the 68-point ones, the eyes now the means of the four eye points kept.
    expected = IBUG68.five_points(shapes)
    expected[:, 0] = shapes[:, [36, 38, 39, 41]].mean(axis=1)
    expected[:, 1] = shapes[:, [42, 43, 45, 46]].mean(axis=1)
    np.testing.assert_allclose(scheme.five_points(shapes[:, POINTS_29]), expected)
    np.testing.assert_allclose(flip_shapes(shapes[:, POINTS_29], 200, scheme),
                               flip_shapes(shapes, 200, IBUG68)[:, POINTS_29])
    with pytest.raises(ValueError, match=r"mirror images \[45\]"):
        IBUG68.subset([36, 30])
    with pytest.raises(ValueError, match="repeat"):
        IBUG68.subset([30, 30])


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="", n_points=3), "non-empty string"),
    (dict(name="x", n_points=0), "positive integer"),
    (dict(name="x", n_points=3, flip=[1, 0]), "exactly once"),
    (dict(name="x", n_points=3, flip=[1, 2, 0]), "own inverse"),
    (dict(name="x", n_points=3, groups={"a": [3]}), "out of range"),
    (dict(name="x", n_points=3, groups={"a": [0.5]}), "point indices"),
    (dict(name="x", n_points=3, curves=[([0, 1], 1)]), "indices, closed"),
    (dict(name="x", n_points=3, curves=[([0], False)]), "two or more"),
    (dict(name="x", n_points=3, eye_corners=[0, 1, 2]), "two indices"),
    (dict(name="x", n_points=3, eyes=[[0]]), "2 index lists"),
    (dict(name="x", n_points=3, five=[[0], [1], [2]]), "5 index lists"),
])
def test_bad_schemes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Scheme(**kwargs)


def test_schemes_by_name_and_to_and_from_dict():
    assert scheme_of(None, 68) is IBUG68 and scheme_of("five") is FIVE and scheme_of(None, 7).flip is None
    mine = IBUG68.subset(POINTS_29, "test-29")
    assert Scheme.from_dict(mine.to_dict()) == mine
    with pytest.raises(ValueError, match="unknown scheme 'test-29'"):
        scheme_of("test-29")
    try:
        assert register(mine) is mine and scheme_of("test-29", 29) is mine
        with pytest.raises(ValueError, match="another scheme"):
            register(IBUG68.subset(POINTS_29[:-2], "test-29"))
    finally:
        SCHEMES.pop("test-29", None)
    with pytest.raises(ValueError, match="has 68 points; these shapes have 5"):
        scheme_of(IBUG68, 5)
    with pytest.raises(ValueError, match="a scheme needs exactly"):
        Scheme.from_dict({"name": "x"})


@pytest.fixture(scope="module")
def helen(data_root):
    faces = load_faces(data_root / "helen" / "trainset", lazy=True).subset(slice(0, 30))
    return list(faces.images), faces.shapes


@pytest.mark.parametrize("points, scheme", [
    ([36, 45, 30, 48, 54], None),                 # five points: the built-in five-point scheme
    (POINTS_29, IBUG68.subset(POINTS_29, "lfpw-29-like")),
], ids=["five", "29"])
def test_other_schemes_train_predict_mirror_evaluate_and_load(points, scheme, train_faces, helen, tmp_path):
    images, shapes = train_faces
    test_images, test_shapes = helen
    whole_face = tight_boxes(test_shapes)                        # boxes of the whole face, not the points
    params = dict(preset="fast", n_stages=3, n_trees=3, alpha=0.05, random_state=0, scheme=scheme)
    model = LBF(**params).fit(images, shapes[:, points], tight_boxes(shapes))
    expected = scheme or FIVE
    assert model.scheme_ == expected
    mirrored = clone(model).set_params(mirror=False).fit(images, shapes[:, points], tight_boxes(shapes))
    predicted = model.predict(test_images, whole_face)
    result = report({"mirrored": predicted, "not mirrored": mirrored.predict(test_images, whole_face)},
                    test_shapes[:, points], scheme=expected)
    assert result.normalizations[0] == expected.default_normalization()
    rows = {row["method"]: row for row in result.rows}
    key = f"nme_{expected.default_normalization()}"
    assert rows["mirrored"][key] < 0.2 and rows["mirrored"][key] < 1.1 * rows["not mirrored"][key]
    # From five points too: the scheme says where its five points are.
    from_points = model.predict(test_images, points=IBUG68.five_points(test_shapes))
    assert np.isfinite(from_points).all()
    model.save(tmp_path / "model.npz")
    loaded = LBF.load(tmp_path / "model.npz")           # the scheme comes with it, registered or not
    assert loaded.scheme_ == expected and loaded.scheme == (None if scheme is None else scheme.name)
    np.testing.assert_array_equal(loaded.predict(test_images, whole_face), predicted)


def test_a_scheme_without_a_mirror_map_cannot_mirror(train_faces):
    images, shapes = train_faces
    plain = Scheme("seven", 7)
    with pytest.raises(ValueError, match="no mirror map"):
        LBF(preset="fast", n_stages=1, n_trees=1, scheme=plain).fit(images[:10], shapes[:10, :7])
    model = LBF(preset="fast", n_stages=1, n_trees=1, scheme=plain, mirror=False).fit(images[:10], shapes[:10, :7])
    with pytest.raises(ValueError, match="'seven' scheme does not give five alignment points"):
        model.predict(images[:2], points=IBUG68.five_points(shapes[:2]))


def test_model_files_of_version_1_read_as_their_scheme(train_faces, tmp_path):
    """Files written before schemes (format version 1) have no scheme; a mirror map they kept as a
    parameter becomes their scheme's. The bundled files store theirs."""
    import json

    from cascade import load_model
    from cascade.bundled import MODELS_DIR
    with np.load(MODELS_DIR / "ert-68.npz") as archive:
        assert json.loads(archive["__metadata__"].tobytes())["attributes"]["scheme"]["name"] == "ibug68"
    assert load_model("ert-68").scheme_ == IBUG68
    images, shapes = train_faces
    five = LBF(preset="fast", n_stages=1, n_trees=1).fit(images[:20], shapes[:20][:, [36, 45, 30, 48, 54]])
    five.save(tmp_path / "v2.npz")
    with np.load(tmp_path / "v2.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(arrays.pop("__metadata__").tobytes())
    assert metadata["format_version"] == 2 and metadata["attributes"]["scheme"]["name"] == "five"
    del metadata["attributes"]["scheme"], metadata["params"]["scheme"]
    metadata.update(format_version=1)
    metadata["params"]["flip_permutation"] = [1, 0, 2, 4, 3]
    np.savez(tmp_path / "v1.npz", __metadata__=np.frombuffer(json.dumps(metadata).encode(), np.uint8), **arrays)
    old = LBF.load(tmp_path / "v1.npz")
    assert old.scheme_.flip == (1, 0, 2, 4, 3) and old.scheme_.n_points == 5
    np.testing.assert_array_equal(old.predict(images[:3], tight_boxes(shapes[:3])),
                                  five.predict(images[:3], tight_boxes(shapes[:3])))
