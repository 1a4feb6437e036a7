"""Landmarks on video: tracking from frame to frame, One-Euro smoothing, and a jitter measure.

A :class:`FaceTracker` runs a :class:`cascade.Pipeline` on each frame: every
tracked face starts from the five points of its previous shape (eye centres,
nose tip, mouth corners: the start the bundled models are trained for, which
follows the head's roll), or from its tight box for a landmarker of another
scheme, with no detector call; the detector runs on the first frame, whenever
no face is tracked, and every ``redetect_every`` frames to drop faces that left
and pick up new ones.
A tracked shape that shrinks, grows or jumps implausibly in one frame is
dropped as lost.

Still faces should not tremble: each track's points pass through a One-Euro
filter (Casiez, Roussel & Vogel, CHI 2012), a low-pass filter whose cut-off
rises with the speed of the points, so slow drift is smoothed hard and fast
motion follows with little lag. Its cut-offs are in face sizes per second, so
one setting suits faces near and far.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .apps import draw_landmarks
from .data import display_name
from .detect import box_iou, detections_of
from .evaluate import normalizing_distance
from .files import opencv_input, opencv_output, write_atomically
from .schemes import scheme_of
from .shapes import tight_boxes
from .validation import check_integer


class OneEuroFilter:
    """One-Euro filter over an array of values sampled at ``rate`` Hz.

    ``min_cutoff`` (Hz) sets the smoothing of still values, ``beta`` how fast the
    cut-off rises with speed (in units per second), ``derivative_cutoff`` (Hz)
    the smoothing of the speed estimate.
    """

    def __init__(self, rate, min_cutoff=1.0, beta=0.5, derivative_cutoff=1.0):
        for name, value in (("rate", rate), ("min_cutoff", min_cutoff), ("derivative_cutoff", derivative_cutoff)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        self.rate, self.min_cutoff, self.beta, self.derivative_cutoff = rate, min_cutoff, beta, derivative_cutoff
        self.value = self.speed = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, value, scale=1.0):
        """Filter the next sample; ``scale`` divides the speed (e.g. the face size in pixels)."""
        value = np.asarray(value, dtype=np.float64)
        if self.value is None:
            self.value, self.speed = value, np.zeros_like(value)
            return value
        speed = (value - self.value) * self.rate
        a = self._alpha(self.derivative_cutoff)
        self.speed = a * speed + (1 - a) * self.speed
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed) / scale
        a = self._alpha(cutoff)
        self.value = a * value + (1 - a) * self.value
        return self.value


@dataclass
class Track:
    """A face followed from frame to frame: its ``track_id`` (0, 1, ... in order of appearance), the
    detector ``score`` of the detection that last confirmed it, its last unsmoothed ``shape`` and
    its One-Euro ``smoother``."""

    track_id: int
    score: float
    shape: np.ndarray
    smoother: OneEuroFilter


@dataclass
class TrackedFace:
    """One face in one frame: its track's id and score, the tight ``box`` of its ``landmarks``
    (smoothed when the tracker smooths)."""

    track_id: int
    score: float
    box: np.ndarray
    landmarks: np.ndarray


class FaceTracker:
    """Follows the faces of a video frame by frame: ``tracker.track(frame) -> [TrackedFace, ...]``,
    or ``tracker(frame) -> (boxes (k, 4), shapes (k, L, 2))``.

    ``rate`` is the video's frame rate (Hz); ``smooth`` turns the One-Euro filter on,
    with ``min_cutoff`` (Hz) and ``beta`` (per face size per second). A tracker holds one
    video's state: it is not thread-safe (one tracker per video; they may share a pipeline).
    """

    def __init__(self, pipeline, rate=30.0, smooth=True, redetect_every=15, min_cutoff=1.0, beta=2.0):
        check_integer(redetect_every, "redetect_every")
        OneEuroFilter(rate, min_cutoff, beta)           # checks the filter's settings now, not at the first face
        self.pipeline, self.rate, self.smooth = pipeline, rate, smooth
        self.redetect_every, self.min_cutoff, self.beta = redetect_every, min_cutoff, beta
        self.tracks = []
        self.frame_index = 0
        self.next_id = 0

    def __call__(self, frame):
        faces = self.track(frame)
        if not faces:
            return np.zeros((0, 4)), np.zeros((0, self.pipeline.n_landmarks, 2))
        return np.array([face.box for face in faces]), np.array([face.landmarks for face in faces])

    def track(self, frame):
        """The faces of the next frame, in order of their tracks' ids."""
        if self.tracks:
            # From the mean shape placed on the previous shape's five points (or box): starting from
            # the shape itself makes a cascade drift from frame to frame (BENCHMARKS.md, "Video").
            previous = np.array([track.shape for track in self.tracks])
            moved = (self.pipeline.landmarks_in(frame, points=self.pipeline.scheme.five_points(previous))
                     if self.pipeline.uses_points
                     else self.pipeline.landmarks_in(frame, tight_boxes(previous)))
            kept = []
            for track, shape in zip(self.tracks, moved):
                if _plausible(track.shape, shape, frame.shape):
                    track.shape = shape
                    kept.append(track)
            self.tracks = kept
        if not self.tracks or self.frame_index % self.redetect_every == 0:
            self._redetect(frame)
        self.frame_index += 1
        faces = []
        for track in self.tracks:
            shape = track.smoother(track.shape, scale=max(_face_size(track.shape), 1.0)) if self.smooth \
                else track.shape
            faces.append(TrackedFace(track.track_id, track.score, tight_boxes(shape), shape))
        return faces

    def _redetect(self, frame):
        found = detections_of(self.pipeline.detector(frame))
        boxes = self.pipeline.calibration.apply(found.boxes)
        tracked = [tight_boxes(track.shape) for track in self.tracks]
        # Detections confirm tracks; unmatched tracks are dropped, unmatched detections start new ones.
        confirmed, new = {}, []
        for index, box in enumerate(boxes):
            overlaps = [box_iou(box[None], t)[0] for t in tracked]
            best = int(np.argmax(overlaps)) if overlaps else -1
            if best >= 0 and overlaps[best] > 0.3 and best not in confirmed:
                confirmed[best] = index
            else:
                new.append(index)
        for best, index in confirmed.items():
            self.tracks[best].score = float(found.scores[index])
        self.tracks = [self.tracks[i] for i in sorted(confirmed)]
        if new:
            points = None if found.points is None else found.points[new]
            shapes = self.pipeline.landmarks(frame, found.boxes[new], points)
            for index, shape in zip(new, shapes):
                self.tracks.append(Track(self.next_id, float(found.scores[index]), shape,
                                         OneEuroFilter(self.rate, self.min_cutoff, self.beta)))
                self.next_id += 1


def _plausible(before, after, frame_shape):
    """A tracked face is lost when its box left the frame, or changed size or jumped too far."""
    old, new = tight_boxes(before), tight_boxes(after)
    old_size, new_size = _face_size(before), _face_size(after)
    height, width = frame_shape[:2]
    inside = new[0] < width and new[1] < height and new[2] > 0 and new[3] > 0
    jump = np.linalg.norm((new[:2] + new[2:]) / 2 - (old[:2] + old[2:]) / 2)
    return bool(inside and 0.7 < new_size / max(old_size, 1e-9) < 1.4 and jump < 0.5 * old_size
                and new_size > 8)


def _face_size(shape):
    """``sqrt(width * height)`` of a shape's tight box, in pixels (0 for a collapsed shape)."""
    box = tight_boxes(shape)
    return float(np.sqrt((box[2] - box[0]) * (box[3] - box[1])))


def jitter(shapes_per_frame, scheme=None):
    """Mean frame-to-frame movement of the points over the scheme's normalising distance
    (inter-ocular for 68 points; :meth:`cascade.schemes.Scheme.default_normalization`): on a
    still face, the trembling a viewer sees. ``(frames, L, 2)``."""
    shapes = np.asarray(shapes_per_frame, dtype=np.float64)
    if len(shapes) < 2:
        raise ValueError("jitter needs at least two frames")
    steps = np.linalg.norm(np.diff(shapes, axis=0), axis=2).mean(axis=1)
    scale = normalizing_distance(shapes, scheme=scheme_of(scheme, shapes.shape[1])).mean()
    return float(steps.mean() / scale)


def process_video(input_path, output_path, pipeline, smooth=True, landmarks_path=None, redetect_every=15,
                  progress=None):
    """Track, smooth and draw the landmarks of a video file; returns a summary dict.

    ``landmarks_path`` receives, as JSON, ``{"fps", "smoothed", "frames": [{"frame": index, "faces":
    [{"track": id, "score", "box", "landmarks"}]}]}`` (:class:`TrackedFace`; pixels). ``progress``:
    a progress bar on stderr (None: on a terminal only).
    """
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    with opencv_input(input_path) as readable, opencv_output(output_path) as writable:
        frames, rate = _track_and_draw(readable, writable, pipeline, smooth, redetect_every, progress,
                                       display_name(input_path))
    if landmarks_path:
        write_atomically(landmarks_path, json.dumps({"fps": rate, "smoothed": smooth, "frames": frames}).encode())
    return {"frames": len(frames), "fps": rate,
            "faces_per_frame": float(np.mean([len(f["faces"]) for f in frames])), "output": display_name(output_path)}


def _track_and_draw(input_path, output_path, pipeline, smooth, redetect_every, progress, name):
    """``(per-frame records, frame rate)`` of :func:`process_video`, on paths OpenCV can take."""
    capture = cv2.VideoCapture(input_path)
    if not capture.isOpened():
        raise ValueError(f"cannot open the video {name}")
    rate = capture.get(cv2.CAP_PROP_FPS)
    rate = rate if np.isfinite(rate) and rate > 0 else 30.0        # containers that do not say
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = FaceTracker(pipeline, rate=rate, smooth=smooth, redetect_every=redetect_every)
    writer, frames, index = None, [], 0
    from tqdm import tqdm           # here: tracking frames needs no progress bar, and tqdm takes 25 ms to import
    bar = tqdm(total=total, desc="video", unit="frame", disable=None if progress is None else not progress)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            faces = tracker.track(frame)
            if writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if str(output_path).lower().endswith(".avi") else "mp4v"))
                writer = cv2.VideoWriter(str(output_path), fourcc, rate, (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise ValueError("cannot write a video (OpenCV has no encoder for it)")
            writer.write(draw_landmarks(frame, [face.landmarks for face in faces], [face.box for face in faces]))
            frames.append({"frame": index, "faces": [{"track": face.track_id, "score": round(face.score, 4),
                                                      "box": face.box.round(2).tolist(),
                                                      "landmarks": face.landmarks.round(2).tolist()}
                                                     for face in faces]})
            index += 1
            bar.update()
    finally:
        bar.close()
        capture.release()
        if writer is not None:
            writer.release()
    if index == 0:
        raise ValueError(f"{name} has no frames OpenCV can decode")
    return frames, rate
