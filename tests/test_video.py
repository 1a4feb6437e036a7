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
