"""Landmarks on video: tracking from frame to frame, One-Euro smoothing, and a jitter measure.

A :class:`FaceTracker` runs a :class:`cascade.Pipeline` on each frame. Each
tracked face is looked for by the detector in a window around its last shape,
three times its size, on a small copy (``window_side`` pixels: a fraction of a
whole frame's cost): a face that is not found there has left, and its track ends
in that frame; one found where it was starts from the five points of its
previous shape (eye centres, nose tip, mouth corners: the start the bundled
models are trained for, steadier than the detector's), and one that moved
farther, from the detector's points there, so that fast motion is followed
rather than left behind. The whole frame is searched on the first frame,
whenever no face is tracked, and every ``redetect_every`` frames, to pick up new
faces. A tracked shape that shrinks, grows or jumps implausibly is dropped as lost.

Still faces should not tremble, and moving ones should not lag: each shape is
smoothed in two parts (:class:`ShapeSmoother`), where the face is (its centre,
size and roll) and its shape in its own frame, each by a One-Euro filter
(Casiez, Roussel & Vogel, CHI 2012), a low-pass filter whose cut-off rises with
speed. The face's own shape barely moves when the head moves, so it is smoothed
hard; the face's place follows motion at once (a large ``motion_beta``) and is
smoothed only when still. Cut-offs are in face sizes per second, so one
setting suits faces near and far.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .apps import draw_landmarks
from .data import as_photo, display_name
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


class ShapeSmoother:
    """One-Euro smoothing of a face's shape ``(L, 2)`` in two parts: its pose (centre, log size and
    roll, each speed in face sizes per second), filtered with ``motion_beta``, and its shape in its
    own frame (centred, unit size, unrolled), filtered with ``beta``; both with ``min_cutoff``."""

    def __init__(self, rate, min_cutoff=0.3, beta=2.0, motion_beta=40.0):
        self.pose = OneEuroFilter(rate, min_cutoff, motion_beta)
        self.local = OneEuroFilter(rate, min_cutoff, beta)
        self.reference = None

    def __call__(self, shape):
        shape = np.asarray(shape, dtype=np.float64)
        centre = shape.mean(axis=0)
        offsets = shape - centre
        size = max(float(np.sqrt((offsets ** 2).sum(axis=1).mean())), 1e-9)
        if self.reference is None:
            self.reference = offsets / size
        # The roll that best turns the first shape of the track onto this one (Procrustes).
        angle = np.arctan2((self.reference[:, 0] * offsets[:, 1] - self.reference[:, 1] * offsets[:, 0]).sum(),
                           (self.reference * offsets).sum())
        local = _rotated(offsets / size, -angle)
        pose = self.pose(np.array([*centre, np.log(size), angle]), scale=np.array([size, size, 1.0, 1.0]))
        local = self.local(local)
        return _rotated(local, pose[3]) * np.exp(pose[2]) + pose[:2]


def _rotated(points, angle):
    cos, sin = np.cos(angle), np.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


@dataclass
class Track:
    """A face followed from frame to frame: its ``track_id`` (0, 1, ... in order of appearance), the
    detector ``score`` of the detection that last confirmed it, its last unsmoothed ``shape`` and
    its ``smoother``."""

    track_id: int
    score: float
    shape: np.ndarray
    smoother: ShapeSmoother


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

    ``rate`` is the video's frame rate (Hz); ``smooth`` turns the smoothing on
    (:class:`ShapeSmoother`: ``min_cutoff`` in Hz, ``beta`` and ``motion_beta`` per face size per
    second); ``window_side``: the pixels of the copy on which each face is looked for around its
    last place. Frames are any image the pipeline takes (grey, BGR or BGRA, 8 or 16 bits). A
    tracker holds one video's state: it is not thread-safe (one tracker per video; they may share
    a pipeline).
    """

    def __init__(self, pipeline, rate=30.0, smooth=True, redetect_every=15, min_cutoff=0.3, beta=2.0,
                 motion_beta=40.0, window_side=128):
        check_integer(redetect_every, "redetect_every")
        check_integer(window_side, "window_side", low=16)
        ShapeSmoother(rate, min_cutoff, beta, motion_beta)      # checks the settings now, not at the first face
        self.pipeline, self.rate, self.smooth = pipeline, rate, smooth
        self.redetect_every, self.min_cutoff, self.beta = redetect_every, min_cutoff, beta
        self.motion_beta, self.window_side = motion_beta, window_side
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
        frame = as_photo(frame)
        if self.tracks:
            self._follow(frame)
        if not self.tracks or self.frame_index % self.redetect_every == 0:
            self._redetect(frame)
        self.frame_index += 1
        faces = []
        for track in self.tracks:
            shape = track.smoother(track.shape) if self.smooth else track.shape
            faces.append(TrackedFace(track.track_id, track.score, tight_boxes(shape), shape))
        return faces

    def _follow(self, frame):
        """Look for each track's face around its last shape, and place its landmarks in this frame."""
        kept, starts = [], []
        for track in self.tracks:
            box = tight_boxes(track.shape)
            found = self.pipeline.look_near(frame, box, self.window_side)
            if found is None:
                continue                        # not where it was, nor near: it left, or is hidden
            detected_box, detected_points, score = found
            track.score = score
            # From the mean shape placed on the previous shape's five points (or box): starting from the
            # shape itself makes a cascade drift from frame to frame (docs/notes/2026-12-06-benchmark-passes.md).
            # A face that moved starts where the detector saw it: its points, else its box (the
            # landmarker's kind already).
            if box_iou(detected_box[None], box)[0] >= MOVED_IOU:
                starts.append(self._own_start(track.shape))
            elif not self.pipeline.uses_points:
                starts.append(detected_box)
            elif detected_points is not None:
                starts.append(self.pipeline.point_calibration.apply(detected_points[None])[0])
            else:                               # five points wanted, none detected: the old ones, moved along
                shift = (detected_box[:2] + detected_box[2:] - box[:2] - box[2:]) / 2
                starts.append(self._own_start(track.shape) + shift)
            kept.append(track)
        self.tracks = []
        if not kept:
            return
        key = "points" if self.pipeline.uses_points else "boxes"
        moved = self.pipeline.landmarks_in(frame, **{key: np.array(starts)})
        self.tracks = [track for track, shape in zip(kept, moved) if _plausible(track.shape, shape, frame.shape)]
        for track, shape in zip(kept, moved):
            track.shape = shape

    def _own_start(self, shape):
        return (self.pipeline.scheme.five_points(shape[None])[0] if self.pipeline.uses_points
                else tight_boxes(shape))

    def _new_smoother(self):
        return ShapeSmoother(self.rate, self.min_cutoff, self.beta, self.motion_beta)

    def _redetect(self, frame):
        found = detections_of(self.pipeline.detector(frame))
        boxes = self.pipeline.calibration.apply(found.boxes)
        tracked = [tight_boxes(track.shape) for track in self.tracks]
        # Detections confirm tracks; unmatched detections start new ones (a track the whole frame's
        # search missed stays: it was found in its own window this frame).
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
        if new:
            points = None if found.points is None else found.points[new]
            shapes = self.pipeline.landmarks(frame, found.boxes[new], points)
            for index, shape in zip(new, shapes):
                self.tracks.append(Track(self.next_id, float(found.scores[index]), shape, self._new_smoother()))
                self.next_id += 1


#: A face whose detection overlaps its last box less than this has moved: it starts from the detection.
MOVED_IOU = 0.6


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
