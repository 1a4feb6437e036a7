"""Video: tracking, One-Euro smoothing and the jitter it removes, on a real face."""
import json

import cv2
import numpy as np
import pytest

from cascade import Pipeline
from cascade.video import FaceTracker, OneEuroFilter, jitter, process_video


def still_face_frames(image, n_frames, rng, noise=6.0):
    """A still face filmed by a noisy camera: the same picture plus fresh sensor noise per frame."""
    return [np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8) for _ in range(n_frames)]


@pytest.fixture(scope="module")
def face_image(test_faces):
    return test_faces.images[1]


def test_one_euro_keeps_a_constant_and_follows_a_step():
    smoother = OneEuroFilter(rate=30, min_cutoff=1.0, beta=0.0)
    assert np.allclose([smoother(np.array([5.0])) for _ in range(5)], 5.0)
    outputs = [smoother(np.array([15.0]))[0] for _ in range(60)]
    assert 5.0 < outputs[0] < 15.0 and outputs[-1] == pytest.approx(15.0, abs=0.05)
    with pytest.raises(ValueError):
        OneEuroFilter(rate=0)


def test_smoothing_cuts_the_jitter_of_a_still_face(face_image, rng):
    frames = still_face_frames(face_image, 30, rng)
    figures = {}
    for smooth in (False, True):
        tracker = FaceTracker(Pipeline(), smooth=smooth)
        shapes = [tracker(frame)[1] for frame in frames]
        assert all(len(s) == 1 for s in shapes)
        figures[smooth] = jitter(np.array([s[0] for s in shapes]))
    assert figures[True] < 0.5 * figures[False]


def test_tracking_follows_a_moving_face_and_redetects_when_it_is_gone(face_image):
    tracker = FaceTracker(Pipeline(), smooth=False, redetect_every=5)
    frames = [np.roll(face_image, 4 * k, axis=1) for k in range(8)]
    centres = [tracker(frame)[1][0][:, 0].mean() for frame in frames]
    assert centres[-1] - centres[0] == pytest.approx(28, abs=4)
    assert np.allclose(np.diff(centres), 4, atol=3.5)
    gone = [tracker(np.full_like(face_image, 90))[1] for _ in range(5)]    # the face is gone:
    assert len(gone[-1]) == 0                                                # dropped at the next check
    _, shapes = tracker(face_image)                         # and back: detected again
    assert len(shapes) == 1


def test_process_video_writes_frames_and_landmarks(face_image, tmp_path, rng):
    source = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 25, face_image.shape[1::-1])
    for frame in still_face_frames(face_image, 12, rng):
        writer.write(frame)
    writer.release()
    out, landmarks = tmp_path / "out.avi", tmp_path / "landmarks.json"
    summary = process_video(source, out, Pipeline(), landmarks_path=landmarks, progress=False)
    assert summary["frames"] == 12 and summary["faces_per_frame"] == 1
    document = json.loads(landmarks.read_text())
    assert len(document["frames"]) == 12 and np.shape(document["frames"][5]["faces"][0]["landmarks"]) == (68, 2)
    check = cv2.VideoCapture(str(out))
    assert int(check.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    check.release()


def test_process_video_refuses_what_it_cannot_read(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"no video here")
    with pytest.raises(ValueError):
        process_video(bad, tmp_path / "out.avi", Pipeline(), progress=False)
    with pytest.raises(ValueError):
        process_video(tmp_path / "missing.avi", tmp_path / "out.avi", Pipeline(), progress=False)


def test_a_new_track_starts_where_the_pipeline_puts_the_face(face_image):
    """Detections are calibrated once: the first tracked shape is the pipeline's own answer."""
    pipeline = Pipeline()
    _, shapes = FaceTracker(pipeline, smooth=False)(face_image)
    np.testing.assert_allclose(shapes[0], pipeline(face_image)[0].landmarks)


def test_tracker_refuses_bad_settings():
    with pytest.raises(ValueError, match="rate"):
        FaceTracker(Pipeline(), rate=float("nan"))
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(rate=30, min_cutoff=-1)


def moving_face_frames(image, shape, path, size=(720, 1280), background=100):
    """``image`` (a face crop) pasted on a grey frame at each ``(x, y)`` of ``path``; with the face's true
    shape in each frame."""
    frames, truths = [], []
    for x, y in np.round(path).astype(int):
        frame = np.full((*size, 3), background, np.uint8)
        frame[y:y + image.shape[0], x:x + image.shape[1]] = image
        frames.append(frame)
        truths.append(shape + [x, y])
    return frames, np.array(truths)


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline()


def test_a_fast_face_stays_tracked_and_a_face_that_leaves_is_dropped_at_once(test_faces, pipeline):
    """A 93 px face moving 40 px a frame: before, the track stayed where the face had been (IoU 0) until
    the next whole-frame detection, and a face that left was reported until then."""
    from cascade.detect import box_iou
    from cascade.shapes import tight_boxes
    scale = 93 / 144
    image = cv2.resize(test_faces.images[2], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    shape = (test_faces.shapes[2] + 0.5) * scale - 0.5
    frames, truths = moving_face_frames(image, shape, [(40 + 40 * k, 250) for k in range(24)])
    tracker = FaceTracker(pipeline, redetect_every=100)      # no whole-frame search after the first
    for frame, truth in zip(frames, truths):
        faces = tracker.track(frame)
        assert len(faces) == 1 and box_iou(faces[0].box[None], tight_boxes(truth))[0] > 0.5
    assert tracker.track(np.zeros_like(frames[0])) == []      # gone in the first frame without it
    assert tracker.track(frames[0])[0].track_id == 1          # back: a new track


def test_smoothed_landmarks_do_not_lag_a_moving_face(test_faces, pipeline):
    """A face easing 600 px across a 720p frame in 120 frames (up to 8 px a frame): the smoothed points
    stay within 1 % of the inter-ocular distance of the unsmoothed ones (6.9 % before)."""
    from cascade.evaluate import normalizing_distance
    eased = (1 - np.cos(np.pi * np.linspace(0, 1, 120))) / 2
    frames, _ = moving_face_frames(test_faces.images[3], test_faces.shapes[3],
                                   np.stack([100 + 600 * eased, np.full(120, 200)], axis=1))
    raw, smoothed = FaceTracker(pipeline, smooth=False), FaceTracker(pipeline)
    raw_shapes = np.array([raw(frame)[1][0] for frame in frames])
    smoothed_shapes = np.array([smoothed(frame)[1][0] for frame in frames])
    behind = np.linalg.norm(smoothed_shapes - raw_shapes, axis=2).mean(axis=1) / normalizing_distance(raw_shapes)
    assert behind[20:100].mean() < 0.01, behind[20:100].mean()


@pytest.mark.parametrize("kind", ["grey", "bgra", "uint16"])
def test_the_tracker_takes_every_image_kind_the_pipeline_takes(face_image, pipeline, kind):
    frame = {"grey": cv2.cvtColor(face_image, cv2.COLOR_BGR2GRAY),
             "bgra": cv2.cvtColor(face_image, cv2.COLOR_BGR2BGRA),
             "uint16": face_image.astype(np.uint16) * 257}[kind]
    tracker = FaceTracker(pipeline, smooth=False)
    first, second = tracker.track(frame), tracker.track(frame)
    assert len(first) == len(second) == 1
    expected = pipeline(frame)[0].landmarks
    assert np.abs(first[0].landmarks - expected).max() < 1e-6


@pytest.mark.parametrize("options", [{"start": "box"}, {"detector": "dlib-hog"}])
def test_a_fast_face_is_followed_from_box_starts_and_detectors_without_points(test_faces, options):
    """The other two ways a tracked face restarts after a move: from the detector's calibrated box
    (a pipeline that starts from boxes), and from the old five points moved along (a detector that
    gives no points)."""
    from cascade.detect import box_iou
    from cascade.shapes import tight_boxes
    if options.get("detector") == "dlib-hog":
        pytest.importorskip("dlib")
    frames, truths = moving_face_frames(test_faces.images[2], test_faces.shapes[2],
                                        [(40 + 30 * k, 200) for k in range(10)])
    tracker = FaceTracker(Pipeline(**options), redetect_every=100)
    for frame, truth in zip(frames, truths):
        faces = tracker.track(frame)
        assert len(faces) == 1 and box_iou(faces[0].box[None], tight_boxes(truth))[0] > 0.5
