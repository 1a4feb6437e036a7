"""Fit the per-face quality score (:mod:`cascade.quality`) of the default pipeline.

    python -m cnn_refine.quality --data ../shared/data/300w [--faces 1600] [--out cascade/models/quality-68.json]

Faces of the training folders only (``lfpw/trainset``, ``helen/trainset``, ``afw``), each made
hard in one way, in turn: left as it is, turned in the image plane by 20 to 180 degrees either
way (twice as often as the others: the failure users meet with nothing telling them), shrunk to
15-30 % and blown up again (low resolution), blurred (Gaussian, sigma 2-5 px), half hidden (a
flat block over a quarter of its box) or JPEG-compressed at quality 5. Each goes through the
default pipeline (YuNet, the bundled landmarker, the refiner); the face the detector finds over
the annotated one (IoU >= 0.2) gives its features, and whether its NME is at most 8 % is what
the score predicts (a missed face has no score). Faces with an even index fit the logistic
models (scikit-learn), the odd ones measure them: the AUROC of separating faces above 8 % from
the rest, written into the model file beside the coefficients. ``--report`` also measures the
fitted file on ``lfpw/testset`` made hard the same way (reported, never used to fit).
"""
import argparse
import json
from pathlib import Path

import numpy as np

import cascade
from cascade.detect import match_detection
from cascade.quality import DEFAULT_MODEL, FORMAT, FORMAT_VERSION, MOVE_FLOOR, QualityModel, refiner_moves
from cascade.shapes import tight_boxes
from cnn_refine.hard import KINDS, made_hard


def observations(faces, seed):
    """``(kinds, moves, scores, errors)`` of the found faces of a FaceSet, each made hard in turn."""
    rng = np.random.default_rng(seed)
    cascade_only, refiner = cascade.Pipeline(refiner=False), cascade.Refiner()
    rows = []
    for index in range(len(faces)):
        kind = KINDS[index % len(KINDS)]
        image, truth = made_hard(faces.images[index], faces.shapes[index], kind, rng)
        found = cascade_only.detector(image)
        best = match_detection(found.boxes, tight_boxes(truth))
        if best < 0:
            continue
        shape = cascade_only.landmarks(image, found.boxes[best:best + 1], found.points[best:best + 1])
        refined = refiner.predict([image], shape)
        rows.append((kind, refiner_moves(shape, refined)[0], found.scores[best], cascade.nme(refined, truth[None])[0]))
    kinds = np.array([row[0] for row in rows])
    moves, scores, errors = (np.array([row[k] for row in rows]) for k in (1, 2, 3))
    return kinds, moves, scores, errors


def auroc(failed, risk):
    """The area under the ROC curve of ``risk`` separating ``failed`` faces from the others."""
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(failed, risk))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/300w")
    parser.add_argument("--faces", type=int, default=1600, help="training faces drawn (of 2,012)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_MODEL))
    parser.add_argument("--report", action="store_true", help="also measure the model on lfpw/testset made hard")
    args = parser.parse_args(argv)
    from sklearn.linear_model import LogisticRegression
    root = Path(args.data)
    faces = cascade.load_faces(*(root / folder for folder in cascade.data.SHARED_300W_TRAIN), lazy=True)
    drawn = np.sort(np.random.default_rng(args.seed).permutation(len(faces))[:args.faces])
    kinds, moves, scores, errors = observations(faces.subset(drawn), args.seed)
    good = errors <= 0.08
    fit, held = np.arange(len(good)) % 2 == 0, np.arange(len(good)) % 2 == 1
    features = {"yunet": np.stack([np.log(moves + MOVE_FLOOR), scores], axis=1),
                "any": np.log(moves + MOVE_FLOOR)[:, None]}
    models, measured = {}, {}
    for name, values in features.items():
        fitted = LogisticRegression(C=1.0).fit(values[fit], good[fit])
        models[name] = {"features": ["log_move", "score"][:values.shape[1]],
                        "coefficients": [float(v) for v in fitted.coef_[0]], "intercept": float(fitted.intercept_[0])}
        measured[name] = auroc(~good[held], -fitted.decision_function(values[held]))
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "n_landmarks": faces.n_landmarks,
                "models": models,
                "fitted_on": f"python -m cnn_refine.quality --faces {args.faces} --seed {args.seed}: "
                             f"{int(fit.sum())} found faces of the training folders made hard ({', '.join(KINDS)})",
                "held_out": {"faces": int(held.sum()), "above_8_percent": int((~good[held]).sum()),
                             "auroc": measured}}
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n")
    print(f"{len(good)} faces found of {len(drawn)} ({', '.join(f'{k}: {(kinds == k).sum()}' for k in set(KINDS))}); "
          f"above 8 %: {int((~good).sum())}")
    print(f"held out ({int(held.sum())} faces): AUROC with YuNet's score {measured['yunet']:.3f}, move alone "
          f"{measured['any']:.3f}; wrote {args.out}")
    if args.report:
        test = cascade.load_faces(root / "lfpw" / "testset", lazy=True)
        kinds, moves, scores, errors = observations(test, args.seed + 1)
        model = QualityModel(args.out)
        for name in ("yunet", "any"):
            quality = model(moves, scores if name == "yunet" else None, name)
            print(f"lfpw/testset made hard ({len(errors)} found, {int((errors > 0.08).sum())} above 8 %): "
                  f"AUROC ({name}) {auroc(errors > 0.08, -quality):.3f}")


if __name__ == "__main__":
    main()
