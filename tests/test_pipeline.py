"""The bundled models, load_model and the detector + landmarker (+ refiner) pipeline, on real faces."""
import cv2
import numpy as np
import pytest

import cascade
from cascade import Pipeline, load_model, nme
from cascade.calibration import BoxCalibration, PointCalibration


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline()


@pytest.fixture(scope="module")
def astronaut_photo():
    return cascade.sample_photo()


@pytest.mark.parametrize("name", ["default", "lbf-68", "ert-68"])
def test_bundled_models_load_with_their_calibrations(name):
    model = load_model(name)
    assert isinstance(model, (cascade.LBF, cascade.ERT))
    assert model.leaf_values_.dtype == np.int16
    assert set(model.box_calibrations_) >= {"yunet", "haar", "dlib-hog"} and set(model.point_calibrations_) == {"yunet"}
    assert 0.6 < model.box_calibrations_["haar"].scale_x < 1.1
    offset = model.point_calibrations_["yunet"].model - model.point_calibrations_["yunet"].detector
    assert np.abs(offset).max() < 0.05          # YuNet's points are near the landmarks' own


def test_load_model_refuses_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'lbf-5'"):
        load_model("lbf-5")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "none.npz")


def test_load_model_reads_a_saved_file_of_any_estimator(tmp_path, train_faces):
    images, shapes = train_faces
    path = cascade.ASM(n_levels=1).fit(images[:30], shapes[:30]).save(tmp_path / "asm.npz")
    assert isinstance(load_model(path), cascade.ASM)


def test_pipeline_finds_the_face_and_its_landmarks(pipeline, test_images_and_shapes):
    images, truth = test_images_and_shapes
    errors = []
    for image, shape in zip(images[:12], truth[:12]):
        found = pipeline(image)
        assert len(found) >= 1
        best = min(found, key=lambda face: np.abs(face.landmarks - shape).mean())
        assert best.landmarks.shape == (68, 2) and best.box.shape == (4,) and isinstance(best.score, float)
        errors.append(nme(best.landmarks[None], shape[None])[0])
    assert np.median(errors) < 0.06


def test_pipeline_on_no_face_two_faces_and_odd_sizes(pipeline, test_images_and_shapes):
    images, _ = test_images_and_shapes
    assert pipeline(np.full((200, 300, 3), 128, np.uint8)) == []
    assert pipeline(np.zeros((1, 1), np.uint8)) == []
    assert pipeline(np.zeros((5, 4000), np.uint8)) == []
    pair = np.concatenate([images[0], images[1]], axis=1)
    found = pipeline(pair)
    assert len(found) == 2
    centres = sorted(face.landmarks[:, 0].mean() for face in found)
    assert centres[0] < pair.shape[1] / 2 < centres[1]
    assert len(Pipeline(max_faces=1)(pair)) == 1


def test_pipeline_grey_and_colour_agree(pipeline, test_images_and_shapes):
    import cv2
    image = test_images_and_shapes[0][0]
    colour = pipeline(image)
    grey = pipeline(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert len(colour) == len(grey) == 1
    # YuNet reads colour: from the grey copy its points move a little, and the landmarks with them
    assert nme(colour[0].landmarks[None], grey[0].landmarks[None])[0] < 0.01


def test_pipeline_refines_by_default(test_images_and_shapes):
    images, truth = test_images_and_shapes
    plain, refined = Pipeline(refiner=False), Pipeline()
    assert plain.refiner is None and refined.refiner is not None
    before = [nme(plain(im)[0].landmarks[None], s[None])[0] for im, s in zip(images[:8], truth[:8])]
    after = [nme(refined(im)[0].landmarks[None], s[None])[0] for im, s in zip(images[:8], truth[:8])]
    assert np.mean(after) < np.mean(before)


def test_pipeline_refuses_a_refiner_for_another_scheme(train_faces):
    images, shapes = train_faces
    five = cascade.LBF(preset="fast", n_stages=1, n_trees=1)
    five.fit(images[:20], shapes[:20, [36, 45, 30, 48, 54]])
    with pytest.raises(ValueError, match="refiner works on 68 landmarks"):
        Pipeline(five, refiner=True)


def test_pipeline_uses_the_stored_calibrations_unless_given_others():
    model = load_model("default")
    assert Pipeline().calibration == model.box_calibrations_["yunet"]
    assert Pipeline().point_calibration == model.point_calibrations_["yunet"]
    custom = BoxCalibration(0.0, 0.1, 0.9, 0.9)
    assert Pipeline(calibration=custom).calibration is custom
    plain = Pipeline(detector=lambda image: (np.zeros((0, 4)), np.zeros(0)))
    assert plain.calibration == BoxCalibration() and plain.point_calibration == PointCalibration()


def test_predict_maps_a_detectors_boxes_and_points_in_one_call(test_images_and_shapes):
    from cascade.detect import YuNetDetector, detect_faces
    images, shapes = test_images_and_shapes
    images, shapes = images[:12], shapes[:12]
    boxes, points = detect_faces(YuNetDetector(), images, shapes)
    assert not np.isnan(boxes).any()
    model = load_model("default")
    from_boxes = model.predict(images, boxes, detector="yunet")
    np.testing.assert_array_equal(from_boxes, model.predict(images, model.box_calibrations_["yunet"].apply(boxes)))
    from_points = model.predict(images, points=points, detector="yunet")
    np.testing.assert_array_equal(
        from_points, model.predict(images, points=model.point_calibrations_["yunet"].apply(points)))
    # The docstring's warning: raw detector boxes are not the model's kind, and the answer shows it.
    assert nme(from_boxes, shapes).mean() < 0.07 < nme(model.predict(images, boxes), shapes).mean()
    one = model.predict(images[0], boxes[0], detector="yunet")
    np.testing.assert_array_equal(one, from_boxes[0])
    with pytest.raises(ValueError, match="no calibration of 'retina'"):
        model.predict(images, boxes, detector="retina")
    with pytest.raises(ValueError, match="no calibration of 'haar''s points"):
        model.predict(images, points=points, detector="haar")


def test_annotated_faces_missed_are_nan(test_images_and_shapes):
    images, shapes = test_images_and_shapes
    blank = np.full_like(images[0], 128)                     # no face: the detector misses it
    found = Pipeline(refiner=False).annotated_faces([images[0], blank], shapes[:2])
    assert np.isfinite(found[0]).all() and np.isnan(found[1]).all()
    assert nme(found[:1], shapes[:1])[0] < 0.08


def test_five_point_starts_follow_rolled_faces(test_images_and_shapes):
    """On faces rolled by 30 degrees, YuNet's five points give a far better start than its box:
    directly, or through the second run a five-point model makes from a box (within 10 % of each
    other on these 12 faces, either way round, as OpenCV 4 and 5 detect them)."""
    import cv2
    images, truth = test_images_and_shapes
    rolled_images, rolled_truth = [], []
    for image, shape in zip(images[:12], truth[:12]):
        matrix = cv2.getRotationMatrix2D(tuple(float(v) for v in shape.mean(axis=0)), 30, 1.0)
        rolled_images.append(cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT))
        rolled_truth.append(shape @ matrix[:, :2].T + matrix[:, 2])
    once_from_a_box = load_model("default")
    once_from_a_box.point_starts_ = False           # no second run from the first answer's five points
    errors = {}
    for label, pipeline in (("points", Pipeline(refiner=False)), ("box", Pipeline(start="box", refiner=False)),
                            ("box once", Pipeline(once_from_a_box, start="box", refiner=False))):
        found = [pipeline(image) for image in rolled_images]
        errors[label] = np.median([min(nme(face.landmarks[None], shape[None])[0] for face in faces)
                                   for faces, shape in zip(found, rolled_truth) if faces])
    assert errors["points"] < 0.05 and errors["points"] < 1.1 * errors["box"], errors
    assert max(errors["points"], errors["box"]) < 0.7 * errors["box once"], errors


def test_pipeline_converts_alpha_and_16_bit_photos(pipeline, test_images_and_shapes):
    import cv2
    image = test_images_and_shapes[0][0]
    expected = pipeline(image)[0].landmarks
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    deep = image.astype(np.uint16) * 257                     # 16 bits, the same picture
    for converted in (bgra, deep, cv2.cvtColor(deep, cv2.COLOR_BGR2BGRA)):
        np.testing.assert_array_equal(pipeline(converted)[0].landmarks, expected)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(pipeline(np.stack([grey, grey], axis=2))[0].landmarks, pipeline(grey)[0].landmarks)


@pytest.mark.parametrize("kwargs, error", [
    ({"landmarker": "nope"}, ValueError),
    ({"landmarker": 3}, TypeError),
    ({"detector": "nope"}, ValueError),
    ({"detector": 3}, TypeError),
    ({"calibration": {"shift_x": 0}}, TypeError),
    ({"max_faces": -1}, ValueError),
])
def test_pipeline_refuses_bad_settings(kwargs, error):
    with pytest.raises(error):
        Pipeline(**kwargs)


@pytest.mark.parametrize("image, error", [
    (None, TypeError),
    (np.zeros((10, 10), np.float32), TypeError),
    (np.zeros((0, 10), np.uint8), ValueError),
    (np.zeros((10, 10, 5), np.uint8), ValueError),
    (np.zeros((10, 10, 3), np.int32), TypeError),
])
def test_pipeline_refuses_bad_images(pipeline, image, error):
    with pytest.raises(error):
        pipeline(image)


def test_threads_sharing_one_pipeline_get_the_serial_answers(test_images_and_shapes):
    from concurrent.futures import ThreadPoolExecutor
    images, _ = test_images_and_shapes
    pipeline = Pipeline()
    serial = [[face.landmarks for face in pipeline(image)] for image in images[:12]]
    with ThreadPoolExecutor(6) as pool:
        threaded = list(pool.map(lambda image: [face.landmarks for face in pipeline(image)], images[:12]))
    for one, other in zip(serial, threaded):
        assert len(one) == len(other)
        for a, b in zip(one, other):
            np.testing.assert_array_equal(a, b)


def test_a_face_turned_upside_down_or_sideways_is_landmarked_or_scored_low(astronaut_photo):
    """Turned a quarter or a half, YuNet finds the astronaut as if upright (score 0.81 at 90 degrees)
    with her points wrong; scoring under 0.9, she is looked at turned and found the right way up:
    her landmarks are then right (3.3 % and 6.0 % NME from her upright ones, measured), or else the
    quality must say they are not."""
    pipeline = Pipeline()
    upright = pipeline(astronaut_photo)
    assert len(upright) == 1 and upright[0].quality > 0.9
    height, width = astronaut_photo.shape[:2]
    x, y = upright[0].landmarks.T
    for turn, expected in ((cv2.ROTATE_90_CLOCKWISE, np.stack([height - 1 - y, x], axis=1)),
                           (cv2.ROTATE_180, np.stack([width - 1 - x, height - 1 - y], axis=1)),
                           (cv2.ROTATE_90_COUNTERCLOCKWISE, np.stack([y, width - 1 - x], axis=1))):
        faces = pipeline(cv2.rotate(astronaut_photo, turn))
        assert len(faces) == 1
        right = nme(faces[0].landmarks[None], expected[None])[0] < 0.08
        assert right or faces[0].quality < 0.5, (turn, faces[0].quality)
    assert Pipeline(refiner=False)(astronaut_photo)[0].quality is None


def test_quality_separates_wrong_landmarks_on_held_out_faces(data_root):
    """The bundled quality model on 96 lfpw/testset faces it never saw, half of them turned 60-120
    degrees, often far enough to defeat the landmarker: the quality ranks the faces above 8 % NME
    below the others (AUROC 0.94 measured; 24 faces are too few to measure it: 0.89-0.91)."""
    from cascade.evaluate import nme
    from sklearn.metrics import roc_auc_score
    pipeline, errors, qualities = Pipeline(), [], []
    test_faces = cascade.load_faces(data_root / "lfpw" / "testset", lazy=True).subset(slice(0, 96))
    for k, (image, truth) in enumerate(zip(test_faces.images, test_faces.shapes)):
        if k % 2:
            centre = (image.shape[1] / 2, image.shape[0] / 2)
            turn = cv2.getRotationMatrix2D(centre, 60 + 10 * (k % 7), 1)
            image = cv2.warpAffine(image, turn, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            truth = truth @ turn[:, :2].T + turn[:, 2]
        faces = pipeline(image)
        if faces:
            errors.append(nme(faces[0].landmarks[None], truth[None])[0])
            qualities.append(faces[0].quality)
    errors, qualities = np.array(errors), np.array(qualities)
    assert 3 <= (errors > 0.08).sum() <= len(errors) - 3
    assert roc_auc_score(errors > 0.08, -qualities) >= 0.9


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["models"].pop("any"), "'yunet' and 'any'"),
    (lambda d: d["models"]["yunet"].update(coefficients=[float("nan"), 1.0]), "finite"),
    (lambda d: d["models"]["any"].update(features=["log_move", "score"], coefficients=[1.0, 1.0]), "must use"),
])
def test_a_damaged_quality_model_is_refused(tmp_path, change, message):
    import json
    from cascade.quality import DEFAULT_MODEL, QualityModel
    document = json.loads(DEFAULT_MODEL.read_text())
    change(document)
    (tmp_path / "q.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message):
        QualityModel(tmp_path / "q.json")


def test_a_box_lands_as_well_as_the_detectors_own_face(test_images_and_shapes):
    """From tight boxes the pipeline looks for YuNet's five points near each box: it lands as the
    detector's faces do (before: 3.44 % against 3.22 % on lfpw/testset), and a box where the detector
    finds nothing still starts from the box."""
    from cascade.shapes import tight_boxes
    images, truth = test_images_and_shapes
    pipeline = Pipeline()
    from_boxes = pipeline.landmarks_of(images, tight_boxes(truth))
    from_detector = pipeline.annotated_faces(images, truth)
    bare = Pipeline(start="box").landmarks_of(images, tight_boxes(truth))      # the boxes themselves
    errors = [nme(shapes, truth).mean() for shapes in (from_boxes, from_detector, bare)]
    assert errors[0] < errors[1] + 0.0015 and errors[0] < errors[2]
    found, _ = pipeline.points_near(images, tight_boxes(truth))
    assert found.all()
    blank = np.full((300, 300, 3), 90, np.uint8)
    found, points = pipeline.points_near([blank], [[100, 100, 200, 200]])
    assert not found[0] and np.isnan(points).all()
    assert np.isfinite(pipeline.landmarks_of([blank], [[100, 100, 200, 200]])).all()


def test_a_detector_without_points_starts_its_faces_from_yunets_points(astronaut_photo):
    """Haar's and dlib's boxes (here YuNet's boxes alone, through a plain callable, uncalibrated) start
    from the five points YuNet finds near them, as YuNet's own faces do."""
    from cascade.detect import YuNetDetector
    yunet = YuNetDetector()
    boxes_only = Pipeline(detector=lambda image: yunet(image)[:2])
    assert isinstance(boxes_only.five_point_source[0], YuNetDetector)
    expected = Pipeline()(astronaut_photo)[0].landmarks
    assert np.abs(boxes_only(astronaut_photo)[0].landmarks - expected).max() < 1.0
    assert Pipeline(start="box").five_point_source is None
    from_boxes = Pipeline(detector=lambda image: yunet(image)[:2], start="box")(astronaut_photo)[0].landmarks
    assert np.abs(from_boxes - expected).max() > 2.0          # the raw box, uncalibrated: far worse
