import numpy as np
import pytest

from cascade.calibration import BoxCalibration, PointCalibration, calibrate
from cascade.schemes import IBUG68
from cascade.shapes import apply_similarity, similarity_fit


def test_box_calibration_recovers_a_known_mapping(rng):
    known = BoxCalibration(shift_x=0.02, shift_y=0.15, scale_x=1.1, scale_y=0.95)
    corner = rng.uniform(0, 200, (50, 2))
    detected = np.concatenate([corner, corner + rng.uniform(40, 120, (50, 1))], axis=1)
    fitted = BoxCalibration.fit(detected, known.apply(detected))
    for name, value in known.to_dict().items():
        assert getattr(fitted, name) == pytest.approx(value)
    np.testing.assert_allclose(BoxCalibration().apply(detected), detected, atol=1e-12)
    with pytest.raises(ValueError, match="expected 50"):
        BoxCalibration.fit(detected, detected[:3])


def _rolled(shapes, rng):
    """Each shape moved by a random similarity (roll up to 40 degrees)."""
    angle = rng.uniform(-0.7, 0.7, len(shapes))
    scale = rng.uniform(0.5, 2.0, len(shapes))
    A = scale[:, None, None] * np.stack([np.stack([np.cos(angle), -np.sin(angle)], 1),
                                         np.stack([np.sin(angle), np.cos(angle)], 1)], 1)
    return apply_similarity(shapes, A, rng.uniform(0, 300, (len(shapes), 2)))


def test_point_calibration_learns_where_a_detector_puts_its_points(train_faces, rng):
    _, shapes = train_faces
    shapes = _rolled(shapes, rng)
    truth = IBUG68.five_points(shapes)
    # A detector whose eye points sit 8 % of the eye distance higher, and whose nose is lower.
    eyes = np.linalg.norm(truth[:, 1] - truth[:, 0], axis=1)
    up = (truth[:, 0] - truth[:, 1])[:, ::-1] * [1, -1] / eyes[:, None]        # perpendicular to the eyes
    detected = truth.copy()
    detected[:, :2] -= 0.08 * eyes[:, None, None] * up[:, None]
    detected[:, 2] += 0.05 * eyes[:, None] * up
    calibration = PointCalibration.fit(detected, shapes)
    before = np.linalg.norm(detected - truth, axis=2).mean() / eyes.mean()
    after = np.linalg.norm(calibration.apply(detected) - truth, axis=2).mean() / eyes.mean()
    assert before > 0.04 and after < 0.005, (before, after)
    assert PointCalibration.from_dict(calibration.to_dict()) == calibration
    np.testing.assert_allclose(PointCalibration().apply(detected), detected, atol=1e-9)


@pytest.mark.parametrize("values", [None, {}, {"detector": [[0, 0]] * 5},
                                    {"detector": [[0, 0]] * 5, "model": [[0, 0]] * 5},
                                    {"detector": [[float("nan"), 0]] * 5, "model": [[1, 2]] * 5},
                                    {"detector": "x", "model": [[1, 2]] * 5}])
def test_point_calibration_refuses_damaged_values(values):
    with pytest.raises(ValueError, match="point calibration"):
        PointCalibration.from_dict(values)


def test_calibrate_from_detections_with_misses(train_faces):
    _, shapes = train_faces
    truth = IBUG68.five_points(shapes)
    boxes = np.concatenate([shapes.min(axis=1) - 5, shapes.max(axis=1) + 5], axis=1)
    boxes[::3] = np.nan                                    # missed faces
    points = np.where(np.isnan(boxes[:, :1, None]), np.nan, truth)
    box_calibration, point_calibration = calibrate(boxes, points, shapes)
    assert box_calibration.scale_x < 1 and box_calibration.scale_y < 1
    A, t = similarity_fit(point_calibration.detector, point_calibration.model[None])
    np.testing.assert_allclose(A[0], np.eye(2), atol=1e-9)            # the points were the truth
    assert calibrate(boxes, None, shapes)[1] is None
    with pytest.raises(ValueError, match="found none"):
        calibrate(np.full_like(boxes, np.nan), None, shapes)
