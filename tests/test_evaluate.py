import importlib.util

import numpy as np
import pytest

from cascade import evaluate as ev


def face_with_eyes(scale=1.0):
    """A 68-point shape whose outer eye corners are 10*scale apart and eye centres 8*scale."""
    shape = np.zeros((68, 2))
    shape[:, 0] = np.linspace(-20, 20, 68)
    shape[:, 1] = np.linspace(0, 30, 68)
    shape[36:42] = [[0, 0], [1, 0], [2, 0], [2, 1], [1, 1], [0, 1]]       # centre (1, 0.5)
    shape[42:48] = [[8, 1], [8, 0], [9, 0], [10, 0], [10, 1], [9, 1]]     # centre (9, 0.5)
    return shape * scale


def test_nme_by_hand():
    true = np.stack([face_with_eyes(), face_with_eyes(2.0)])
    predicted = true + [0.3, 0.4]                     # every point 0.5 px off
    np.testing.assert_allclose(ev.nme(predicted, true, "inter-ocular"), [0.05, 0.025])
    np.testing.assert_allclose(ev.nme(predicted, true, "inter-pupil"), [0.5 / 8, 0.5 / 16])
    boxes = np.array([[0, 0, 30, 40], [0, 0, 4, 9]])
    np.testing.assert_allclose(ev.nme(predicted, true, "box-diagonal", boxes=boxes), [0.5 / 50, 0.5 / np.hypot(4, 9)])
    np.testing.assert_allclose(ev.nme(predicted, true, "box-size", boxes=boxes), [0.5 / np.sqrt(1200), 0.5 / 6])
    # Default box: the tight box of the true shape, 40 x 30 for the first face.
    np.testing.assert_allclose(ev.nme(predicted, true, "box-size")[0], 0.5 / np.sqrt(40 * 30))


def test_nme_ignores_missing_true_points():
    true = face_with_eyes()[None].copy()
    predicted = true.copy()
    predicted[0, 0] += [3, 4]                         # 5 px off on point 0 only
    np.testing.assert_allclose(ev.nme(predicted, true), [0.5 / 68])
    true[0, 0] = np.nan
    np.testing.assert_allclose(ev.nme(predicted, true), [0.0])
    true[0, 1:10] = np.nan
    predicted[0, 20] += [0, 10]
    np.testing.assert_allclose(ev.nme(predicted, true), [1.0 / 58])


def test_other_schemes_give_their_eye_points():
    from cascade.schemes import Scheme
    five = np.array([[[0, 0], [4, 0], [10, 0], [6, 0], [5, 5]]], dtype=float)
    predicted = five + [0, 1]
    mine = Scheme("mine", 5, eye_corners=(0, 2), eyes=([0, 1], [2, 3]))
    np.testing.assert_allclose(ev.nme(predicted, five, scheme=mine), [0.1])          # inter-ocular first
    np.testing.assert_allclose(ev.nme(predicted, five, "inter-pupil", scheme=mine), [1 / 6])
    # The built-in five-point scheme: its eye points are the eye centres, so inter-pupil by default.
    np.testing.assert_allclose(ev.nme(predicted, five), [1 / 4])
    assert ev.report({"m": predicted}, five).normalizations == ("inter-pupil",)
    with pytest.raises(ValueError, match="no eye corners"):
        ev.nme(predicted, five, "inter-ocular")
    with pytest.raises(ValueError, match="has 68 points"):
        ev.nme(predicted, five, scheme="ibug68")


def test_auc_failure_ced_by_hand():
    errors = np.array([0.02, 0.05, 0.10])
    assert ev.auc(errors, 0.08) == pytest.approx((0.06 + 0.03) / 3 / 0.08)
    assert ev.failure_rate(errors, 0.08) == pytest.approx(1 / 3)
    assert ev.failure_rate(errors, 0.10) == 0.0
    np.testing.assert_allclose(ev.ced(errors, [0.0, 0.02, 0.05, 0.09, 0.1]), [0, 1 / 3, 2 / 3, 2 / 3, 1])
    assert ev.auc([0.0], 0.08) == 1.0 and ev.auc([0.5], 0.08) == 0.0


def test_auc_equals_integral_of_ced(rng):
    errors = rng.gamma(2.0, 0.02, 500)
    grid = np.linspace(0, 0.08, 200001)
    curve = ev.ced(errors, grid)
    integral = np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(grid)) / 0.08
    assert ev.auc(errors, 0.08) == pytest.approx(integral, abs=1e-4)


def test_per_landmark_error():
    true = np.stack([face_with_eyes(), face_with_eyes()])
    predicted = true.copy()
    predicted[0, 5] += [1, 0]
    predicted[1, 5] += [3, 0]
    true[1, 7] = np.nan
    per_point = ev.per_landmark_error(predicted, true)
    assert per_point[5] == pytest.approx(0.2)
    assert per_point[7] == 0.0
    assert np.count_nonzero(per_point) == 1


def test_report_table_and_dict():
    true = np.stack([face_with_eyes(), face_with_eyes()])
    methods = {"good": true + [0.3, 0.4], "bad": true + [0, 1.0]}
    result = ev.report(methods, true, thresholds=(0.08, 0.10))
    rows = {row["method"]: row for row in result.to_dict()["rows"]}
    assert rows["good"]["nme_inter-ocular"] == pytest.approx(0.05)
    assert rows["bad"]["nme_inter-ocular"] == pytest.approx(0.1)
    assert rows["bad"]["failure@0.08"] == 1.0 and rows["bad"]["failure@0.1"] == 0.0
    assert rows["good"]["auc@0.08"] == pytest.approx(0.375)
    table = result.table()
    assert "| good | 5.00 | 6.25 | 37.50 | 0.00 | 0.00 |" in table
    assert "inter-ocular" in table and "2 faces" in table
    np.testing.assert_allclose(result.errors()["bad"], [0.1, 0.1])


def test_a_missed_face_is_a_failure_not_an_error():
    true = np.stack([face_with_eyes(), face_with_eyes(), face_with_eyes()])
    predicted = true + [0.3, 0.4]
    predicted[2] = np.nan                                     # the detector missed the third face
    result = ev.report({"found two": predicted}, true)
    row = result.rows[0]
    assert row["nme_inter-ocular"] == pytest.approx(0.05) and row["missed"] == 1
    assert row["failure@0.08"] == pytest.approx(1 / 3) and row["auc@0.08"] == pytest.approx(0.375 * 2 / 3)
    assert np.isinf(result.errors()["found two"][2])
    assert "| found two | 5.00 | 6.25 | 25.00 | 33.33 | 33.33 | 1 |" in result.table()
    assert "missed" not in ev.report({"all": true + 0.1}, true).rows[0]
    predicted[:] = np.nan
    with pytest.raises(ValueError, match="every face was missed"):
        ev.report({"none": predicted}, true)
    partly = true.copy()
    partly[0, 3] = np.nan
    with pytest.raises(ValueError, match="predicted contains NaN"):
        ev.report({"partly": partly}, true)
    with pytest.raises(ValueError, match="predictions of shape"):
        ev.report({"short": true[:2]}, true)


def test_plot_ced(tmp_path):
    errors = {"a": np.array([0.01, 0.05]), "b": np.array([0.03, 0.2])}
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(ImportError, match=r"cascade-landmarks\[plot\]"):
            ev.plot_ced(errors, tmp_path / "ced.png")
    else:
        ev.plot_ced(errors, tmp_path / "ced.png")
        assert (tmp_path / "ced.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs():
    true = face_with_eyes()[None]
    with pytest.raises(ValueError, match="unknown normalization"):
        ev.nme(true, true, "inter-nose")
    with pytest.raises(ValueError, match="predicted contains NaN"):
        ev.nme(np.full_like(true, np.nan), true)
    with pytest.raises(ValueError, match="expected 1"):
        ev.nme(np.concatenate([true, true]), true)
    with pytest.raises(ValueError, match="expected 68"):
        ev.nme(true[:, :60], true)
    collapsed = true.copy()
    collapsed[0, 45] = collapsed[0, 36]
    with pytest.raises(ValueError, match="zero or undefined"):
        ev.nme(true, collapsed)
    missing_eye = true.copy()
    missing_eye[0, 36] = np.nan
    with pytest.raises(ValueError, match="zero or undefined"):
        ev.nme(true, missing_eye)
    with pytest.raises(ValueError, match="zero faces"):
        ev.auc([])
    with pytest.raises(ValueError, match="without NaN"):
        ev.failure_rate([0.1, np.nan])
    with pytest.raises(TypeError, match="mapping"):
        ev.report([true], true)
    with pytest.raises(TypeError, match="real numbers"):
        ev.nme(true.astype(complex), true)
