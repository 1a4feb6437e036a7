"""Drawn faces with known 68 landmarks: test data that needs no download and no shared folder.

A face is a 68-point shape in the iBUG order, built from curves (jaw, brows, nose, eyes, lips),
varied per face (jaw width, eye size, brow height, mouth opening, a little noise on every point)
and placed by a random similarity (scale, roll, shift) in a grey image, then drawn: a lit face
on a textured background, dark brows, eyes with irises, nostrils, lips and an open mouth, blurred
and noisy as a camera would give it. Every landmark sits on an edge or corner of what is drawn,
so a cascade can learn to find it; the estimators' contract tests (fit, predict, clone, save,
load, mirror, threads, bad input) run on these faces wherever the suite runs.
"""
import cv2
import numpy as np


def _arc(centre, radii, start, stop, count):
    """``count`` points on an ellipse from angle ``start`` to ``stop`` (degrees, y down)."""
    angles = np.radians(np.linspace(start, stop, count))
    return np.stack([centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)], axis=1)


def face_shape(rng, variation=1.0):
    """One 68-point shape in a unit face frame (about [0, 1] x [0, 1]), varied by ``rng``."""
    v = variation
    jaw_width = 0.5 + v * rng.uniform(-0.04, 0.04)
    eye_size = 0.06 + v * rng.uniform(-0.01, 0.01)
    brow_lift = v * rng.uniform(-0.02, 0.02)
    mouth_open = 0.01 + v * rng.uniform(0.0, 0.04)
    jaw = _arc((0.5, 0.35), (jaw_width, 0.62), 180, 0, 17)          # 0: the image's left temple, 8: chin
    brows = [_arc((cx, 0.27 - brow_lift), (0.12, 0.05), 200, 340, 5) for cx in (0.3, 0.7)]
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.38, 0.58, 4)], axis=1)
    nostrils = np.stack([np.linspace(0.42, 0.58, 5), [0.62, 0.64, 0.65, 0.64, 0.62]], axis=1)
    eyes = []
    for cx in (0.32, 0.68):
        # Outer corner, two upper points, inner corner, two lower points (iBUG order per eye).
        corners = [cx - 0.09, cx + 0.09] if cx < 0.5 else [cx + 0.09, cx - 0.09]
        top, bottom = 0.4 - eye_size / 2, 0.4 + eye_size / 2
        x0, x1 = corners
        eye = [[x0, 0.4], [x0 + (x1 - x0) / 3, top], [x0 + 2 * (x1 - x0) / 3, top], [x1, 0.4],
               [x0 + 2 * (x1 - x0) / 3, bottom], [x0 + (x1 - x0) / 3, bottom]]
        eyes.append(np.array(eye))
    eyes[1] = eyes[1][[3, 2, 1, 0, 5, 4]]                             # left eye: inner corner first
    outer = _arc((0.5, 0.77), (0.16, 0.07 + mouth_open / 2), 180, 540, 13)[:12]
    inner = _arc((0.5, 0.77), (0.1, mouth_open), 180, 540, 9)[:8]
    shape = np.concatenate([jaw, *brows, bridge, nostrils, *eyes, outer, inner])
    return shape + v * rng.normal(0, 0.004, shape.shape)


def draw_face(shape, size, rng):
    """A ``(size, size)`` uint8 grey image of the face whose landmarks are ``shape`` (pixels)."""
    background = rng.normal(110, 25, (size // 8 + 1, size // 8 + 1))
    image = cv2.resize(background, (size, size), interpolation=cv2.INTER_CUBIC)
    points = np.round(shape * 16).astype(np.int32)                    # 4 bits of sub-pixel precision

    def fill(indices, grey):
        cv2.fillPoly(image, [points[list(indices)]], grey, cv2.LINE_AA, 4)

    def line(indices, grey, width, closed=False):
        cv2.polylines(image, [points[list(indices)]], closed, grey, max(1, int(width)), cv2.LINE_AA, 4)

    scale = np.ptp(shape[:, 0])
    # The face: the jaw, closed over the brows.
    fill(list(range(17)) + list(range(26, 16, -1)), 185)
    line(range(17), 150, scale / 40)
    for brow in (range(17, 22), range(22, 27)):
        line(brow, 50, scale / 25)
    line(range(27, 31), 140, scale / 60)
    line(range(31, 36), 70, scale / 40)
    for eye in (range(36, 42), range(42, 48)):
        fill(eye, 235)
        centre = shape[list(eye)].mean(axis=0)
        radius = 0.35 * np.ptp(shape[list(eye)][:, 1]) + 1
        cv2.circle(image, tuple(np.round(centre * 16).astype(int)), int(radius * 16), 35, -1, cv2.LINE_AA, 4)
        line(eye, 40, scale / 60, closed=True)
    fill(range(48, 60), 95)
    fill(range(60, 68), 25)
    image = cv2.GaussianBlur(image, (0, 0), max(0.6, scale / 150))
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def synthetic_faces(n_faces, seed=0, size=160, colour=False):
    """``(images, shapes)``: ``n_faces`` drawn faces, ``size`` pixels square, grey (or BGR with
    ``colour``), and their ``(n, 68, 2)`` landmarks in pixels. Same seed, same faces."""
    rng = np.random.default_rng(seed)
    images, shapes = [], []
    for _ in range(n_faces):
        unit = face_shape(rng)
        scale = size * rng.uniform(0.45, 0.6)
        roll = np.radians(rng.normal(0, 6))
        rotation = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
        centre = size / 2 + rng.uniform(-0.06, 0.06, 2) * size
        shape = (unit - [0.5, 0.45]) @ (scale * rotation).T + centre
        image = draw_face(shape, size, rng)
        images.append(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if colour else image)
        shapes.append(shape)
    return images, np.array(shapes)
