"""What ``cascade predict`` writes, for programs to read: the JSON document and the CSV.

Coordinates follow the package's conventions (:mod:`cascade`): pixels, 0-based,
``(x, y)``, the centre of the top-left pixel at ``(0, 0)``.

JSON (stdout, ``-o FILE.json`` or ``FOLDER/landmarks.json``)::

    {"cascade": "0.1.0",                 the package version that wrote it
     "model": "ert-68",                  the landmark model: a bundled name ("default" resolved) or the file given
     "detector": "yunet",                the face detector, whose score scale "score" follows
     "refined": true,                    whether the CNN refiner corrected the landmarks
     "images": {IMAGE: [FACE, ...]},     every image read, surest face first ([] if none)
     "errors": {IMAGE: "why"}}           every image that could not be read or landmarked

    FACE = {"face": 0,                   its index in the image's list (as in .pts and CSV names)
            "box": [left, top, right, bottom],   the detector's box, not the landmarks' tight box
            "score": 0.93,               the detector's score: YuNet's confidence in [0, 1]; Haar's
                                         level weight and dlib's SVM margin are unbounded
            "quality": 0.99,             the probability that the landmarks are right (NME <= 8 %,
                                         cascade.quality); null without the refiner
            "landmarks": [[x, y], ...]}  68 points in the iBUG / 300-W order (the model's scheme)

``IMAGE`` is the image's path as it was given on the command line (a folder's
images: the folder given joined with the path inside it), or ``"astronaut"``.

CSV (``FOLDER/landmarks.csv``): a header, then one row per face:
``image, face, score, quality, left, top, right, bottom, x0, y0, x1, y1, ...`` with
the JSON's image key, face index, score, quality (empty when null) and box.
"""
import csv
import json

import numpy as np

from . import __version__

#: The CSV's columns before the landmarks.
CSV_FACE_COLUMNS = ("image", "face", "score", "quality", "left", "top", "right", "bottom")


def face_records(faces):
    """The JSON records of one image's :class:`cascade.Face` list (see the module's docstring)."""
    return [{"face": k, "box": face.box.round(2).tolist(), "score": round(float(face.score), 4),
             "quality": None if face.quality is None else round(float(face.quality), 4),
             "landmarks": face.landmarks.round(2).tolist()} for k, face in enumerate(faces)]


def predictions_document(model, detector, refined, images, errors):
    """The JSON text of a run: ``images`` maps each image key to its face records, ``errors``
    each failed image's key to its error message."""
    return json.dumps({"cascade": __version__, "model": model, "detector": detector, "refined": refined,
                       "images": images, "errors": errors}, indent=1)


def write_predictions_csv(path, images):
    """Write ``{image key: face records}`` as the CSV of the module's docstring; no face, no row."""
    records = [(key, face) for key, faces in images.items() for face in faces]
    n_points = len(records[0][1]["landmarks"]) if records else 0
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*CSV_FACE_COLUMNS] + [f"{axis}{i}" for i in range(n_points) for axis in "xy"])
        for key, face in records:
            values = [face["score"], *face["box"], *np.ravel(face["landmarks"])]
            quality = "" if face["quality"] is None else f"{face['quality']:.10g}"
            writer.writerow([key, face["face"], f"{values[0]:.10g}", quality] + [f"{v:.10g}" for v in values[1:]])
