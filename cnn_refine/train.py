"""Train a refiner stage on the 300-W training folders and export it to ONNX.

    python -m cnn_refine.train --data ../shared/data/300w --epochs 100 --out cnn_refine/models/refiner-68.onnx
    python -m cnn_refine.train --data ../shared/data/300w --stage local --epochs 70 --batch 32 --lr 2e-3 \
        --out cnn_refine/models/refiner-68-local.onnx

Needs the ``cnn-train`` extra (PyTorch CPU, onnx, onnxscript); inference does not.

What a stage sees
-----------------
At test time the refiner starts from a cascade's output, so its training
inputs must carry a cascade's errors, not ground truth:

1. **Out-of-fold cascade shapes.** An LBF cascade ("fast" preset) is trained
   on all but one of ``k`` folds of the training faces and run on the held-out
   fold, from the tight box and from a jittered box. Each face thus gets real
   cascade errors from a model that never saw it.
2. **Those errors moved onto other faces.** An error is expressed in the
   template frame of the face it came from, scaled by a random factor and
   added to another face's ground truth, so every epoch sees new starts with
   the structure of real errors (a whole eye shifted, a jaw pulled in).
3. **Mean-shape starts** (global stage, a fifth of the samples): the mean
   shape in a jittered box, so that the same network also works standalone as
   a direct landmarker (run it a few times, each from the previous answer).
4. **The earlier stages' answers** (local stage): every start above is first
   refined by the stages before it (``--after``, by default the bundled global
   one), so the local stage learns from the errors it will be given.

On top: a random similarity on the start (crop position, scale, angle),
mirrored faces, and photometric changes (contrast, gamma, blur, noise); and
``--hard-share`` of the faces made hard in place (:data:`cnn_refine.hard.IN_PLACE`:
low resolution, blur, a hidden quarter, JPEG), their starts' errors scaled up.

The networks (:mod:`cnn_refine.networks`)
-----------------------------------------
The global stage reads a grey 112 px crop (the outer eye corners about 51 px
apart, so one pixel is about 2 % inter-ocular NME and the target is
sub-pixel; 80 px did 0.1 point worse on the held-out faces): about 23 M
multiply-adds a face. The local stage reads a 24 px patch around each point
on the grid of a 224 px crop (one pixel about 1 %, a patch reaching 12 % of
the inter-ocular distance each way, about twice the mean error the global
stage leaves), sampled straight from the image. Both predict the correction
of every point, in crop pixels / crop_size. The loss is each point's
|dx| + |dy| (less pulled by the few wild starts than a squared loss), each
face's loss divided by its inter-ocular distance in the crop, as the NME is.

Validation: 200 training faces are held out of the networks' training (not
of the out-of-fold cascades, which never see the networks' targets), each as it
is and made hard; the best epoch on them (the mean of both) is kept.
``lfpw/testset`` is never read.
"""
import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import cascade
from cascade.crops import CELL, crop_transforms, make_template, network_inputs, to_crop
from cascade.data import SHARED_300W_TRAIN
from cascade.evaluate import nme, normalizing_distance
from cascade.refiner import FORMAT, FORMAT_VERSION, OUTPUT_NAME, Refiner, input_names, network_feed, pixels_shape
from cascade.schemes import IBUG68
from cascade.shapes import flip_image, flip_shapes, from_unit, jitter_boxes, jitter_shapes, mean_shape, tight_boxes
from cnn_refine import GLOBAL_MODEL, LOCAL_MODEL
from cnn_refine.hard import IN_PLACE, made_hard

#: Low-resolution training faces: 144 px faces shrunk to 22-86 px (inter-ocular distance about 11-43 px).
TRAINING_SHRINK = (0.15, 0.6)


def log(message):
    logging.getLogger(__name__).info(message)


# -- data ----------------------------------------------------------------------------------------

def load_training_faces(data_root):
    faces = cascade.load_faces(*(Path(data_root) / folder for folder in SHARED_300W_TRAIN), grayscale=True)
    log(f"{len(faces)} training faces from {', '.join(SHARED_300W_TRAIN)}")
    return faces


def out_of_fold_shapes(faces, n_folds, seed, box_jitter=0.05):
    """``(2, n, L, 2)`` LBF-fast predictions on held-out folds: from the tight box, and a jittered box."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(faces)) % n_folds
    boxes = tight_boxes(faces.shapes)
    start_boxes = np.stack([boxes, jitter_boxes(boxes, rng, scale=box_jitter, shift=box_jitter)])
    predicted = np.empty((2, *faces.shapes.shape))
    for k in range(n_folds):
        train, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        log(f"fold {k + 1}/{n_folds}: LBF (fast) on {len(train)} faces, predicting {len(held)}")
        model = cascade.LBF(preset="fast", random_state=seed + k, n_jobs=2)
        model.fit([faces.images[i] for i in train], faces.shapes[train])
        held_images = [faces.images[i] for i in held]
        for b in range(2):
            predicted[b, held] = model.predict(held_images, start_boxes[b, held])
    return predicted


class Augmenter:
    """Draws training batches: start shapes with cascade-like errors, their pixels and targets.

    For a later stage, ``earlier`` (a :class:`~cascade.refiner.Refiner` of the stages before it)
    first refines every start, so the stage learns from what it will be given.
    """

    def __init__(self, images, shapes, cascade_shapes, template, crop_size, rng, mean_start_share=0.2,
                 patch_size=None, earlier=None, hard_share=0.0):
        self.template, self.crop_size, self.rng = template, crop_size, rng
        self.mean_start_share, self.patch_size, self.earlier = mean_start_share, patch_size, earlier
        self.hard_share = hard_share
        width = np.array([im.shape[1] for im in images], dtype=np.float64)
        self.images = list(images) + [flip_image(im) for im in images]
        self.shapes = np.concatenate([shapes, flip_shapes(shapes, width)])
        mirrored = [flip_shapes(s, width) for s in cascade_shapes]
        cascade_shapes = np.concatenate([np.asarray(cascade_shapes), np.stack(mirrored)], axis=1)
        self.mean_unit = mean_shape(self.shapes)
        # Cascade errors in each face's template frame (rotation and scale of the truth removed).
        A, _ = crop_transforms(self.shapes, template)
        errors = cascade_shapes - self.shapes[None]
        self.errors = np.einsum("bnlj,nij->bnli", errors, A).reshape(-1, *shapes.shape[1:])

    def starts(self, index, hard):
        """Start shapes for the faces ``index``: moved cascade errors or the mean shape in a box.
        A cascade errs more on a face made hard: its errors are scaled by 0.8-2 there (0.6-1.4 else)."""
        n, rng = len(index), self.rng
        truth = self.shapes[index]
        A, _ = crop_transforms(truth, self.template)
        scale = np.where(hard, rng.uniform(0.8, 2.0, n), rng.uniform(0.6, 1.4, n))
        error = self.errors[rng.integers(len(self.errors), size=n)] * scale[:, None, None]
        starts = truth + np.einsum("nli,nij->nlj", error, np.linalg.inv(A).transpose(0, 2, 1))
        from_mean = rng.random(n) < self.mean_start_share
        if from_mean.any():
            boxes = jitter_boxes(tight_boxes(truth[from_mean]), rng, scale=0.08, shift=0.06)
            starts[from_mean] = from_unit(np.broadcast_to(self.mean_unit, truth[from_mean].shape), boxes)
        return jitter_shapes(starts, rng, scale=0.03, shift=0.02, rotation=4.0)

    def batch(self, index):
        """Network inputs and targets for the faces ``index``: see :func:`network_inputs`;
        ``targets`` ``(n, L, 2)`` float32 is the truth minus the start in crop pixels / crop size,
        ``iod`` ``(n,)`` the truth's inter-ocular distance in crop pixels."""
        hard = self.rng.random(len(index)) < self.hard_share
        images = [self.hard_image(i) if made else self.images[i] for i, made in zip(index, hard)]
        starts = self.starts(index, hard)
        if self.earlier is not None:
            starts = self.earlier.predict(images, starts)
        inputs = network_inputs(images, starts, self.template, self.crop_size, self.patch_size)
        pixels = self.photometric(inputs.pixels)
        truth = to_crop(self.shapes[index], inputs.A, inputs.t)
        targets = (truth - inputs.points) / self.crop_size
        iod = normalizing_distance(truth)
        return pixels, inputs.offsets, targets.astype(np.float32), iod.astype(np.float32)

    def hard_image(self, i):
        """Face ``i``'s image made hard in place, one of :data:`cnn_refine.hard.IN_PLACE` drawn."""
        kind = self.rng.choice(IN_PLACE)
        return made_hard(self.images[i], self.shapes[i], kind, self.rng, shrink=TRAINING_SHRINK)[0]

    def photometric(self, pixels):
        """Contrast, gamma, blur and noise, drawn per face; ``pixels`` in cells, ``(n, 16 k, h, w)``
        (the blur is done on the ``k`` pictures the cells make up)."""
        rng = self.rng
        n, _, height, width = pixels.shape
        pictures = pixels.reshape(n, -1, CELL, CELL, height, width).transpose(0, 1, 4, 2, 5, 3)
        pictures = pictures.reshape(n, -1, height * CELL, width * CELL)
        out = np.empty_like(pictures)
        for i, face in enumerate(pictures / 255.0):
            face = face ** np.exp(rng.normal(0.0, 0.25))
            face = face * rng.uniform(0.7, 1.3) + rng.uniform(-0.1, 0.1)
            if rng.random() < 0.3:      # each of the k images blurred on its own: (H, W, k) to OpenCV
                blurred = cv2.GaussianBlur(np.ascontiguousarray(face.transpose(1, 2, 0)), (0, 0), rng.uniform(0.3, 1.2))
                face = blurred.reshape(face.shape[1:] + (-1,)).transpose(2, 0, 1)
            if rng.random() < 0.3:
                face = face + rng.normal(0.0, rng.uniform(0.0, 0.04), face.shape).astype(np.float32)
            out[i] = np.clip(face, 0.0, 1.0) * 255.0
        cells = out.reshape(n, -1, height, CELL, width, CELL).transpose(0, 1, 3, 5, 2, 4)
        return np.ascontiguousarray(cells.reshape(pixels.shape))


# -- training ------------------------------------------------------------------------------------

def held_out_faces(rng, n_faces, n_held):
    """The indices of the training faces that the networks never train on: the first ``n_held``
    of a permutation drawn from ``rng`` (``numpy.random.default_rng(seed)``, its first draw)."""
    return rng.permutation(n_faces)[:n_held]


def validation_faces(faces, held, starts, seed):
    """``(images, starts, truth)`` of the held-out faces as they are, then each made hard in place
    (:data:`cnn_refine.hard.IN_PLACE` in turn, :func:`made_hard`'s default strengths) from the same start."""
    rng = np.random.default_rng(seed + 1)
    hard = [made_hard(faces.images[i], faces.shapes[i], IN_PLACE[k % len(IN_PLACE)], rng)[0]
            for k, i in enumerate(held)]
    return ([faces.images[i] for i in held] + hard, np.concatenate([starts, starts]),
            np.concatenate([faces.shapes[held], faces.shapes[held]]))


def nme_loss(predicted, targets, iod, crop_size):
    return ((predicted - targets).abs().sum(dim=2).mean(dim=1) * crop_size / iod).mean()


def build_network(stage, crop_size, n_landmarks, patch_size=None):
    from .networks import GlobalNet, LocalNet
    return GlobalNet(crop_size, n_landmarks) if stage == "global" else LocalNet(n_landmarks, patch_size)


def train(args):
    import torch
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    faces = load_training_faces(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    oof_path = work / f"out-of-fold-{args.folds}-{args.seed}.npz"
    if oof_path.is_file():
        cascade_shapes = np.load(oof_path, allow_pickle=False)["shapes"]
    else:
        cascade_shapes = out_of_fold_shapes(faces, args.folds, args.seed)
        np.savez(oof_path, shapes=cascade_shapes)
    oof_nme = [nme(shapes, faces.shapes).mean() for shapes in cascade_shapes]
    log(f"out-of-fold LBF NME: tight boxes {oof_nme[0]:.2%}, jittered boxes {oof_nme[1]:.2%}")

    held = held_out_faces(rng, len(faces), args.n_validation)
    keep = np.setdiff1d(np.arange(len(faces)), held)
    local = args.stage == "local"
    crop_size = args.crop_size or (224 if local else 112)
    patch_size = args.patch_size if local else None
    after = args.after or [GLOBAL_MODEL]        # read only by a local stage
    earlier = Refiner(after) if local else None
    template = make_template(faces.shapes[keep], crop_size, args.face_fraction)
    augmenter = Augmenter([faces.images[i] for i in keep], faces.shapes[keep], cascade_shapes[:, keep],
                          template, crop_size, rng, mean_start_share=0.0 if local else 0.2,
                          patch_size=patch_size, earlier=earlier, hard_share=args.hard_share)
    val_images, val_starts, val_truth = validation_faces(faces, held, cascade_shapes[0, held], args.seed)
    if earlier is not None:
        val_starts = earlier.predict(val_images, val_starts)
    val_start_nme = nme(val_starts, val_truth).mean()
    clean = np.arange(len(val_truth)) < len(held)

    net = build_network(args.stage, crop_size, faces.n_landmarks, patch_size)
    n_params = sum(p.numel() for p in net.parameters())
    log(f"{args.stage} network: {n_params / 1e6:.2f} M parameters, crop {crop_size} px"
        + (f", patches {patch_size} px, after {', '.join(map(str, after))}" if local else ""))
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(augmenter.shapes) // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.epochs * steps_per_epoch,
                                                   pct_start=0.1)
    best, best_state, started = np.inf, None, time.time()
    for epoch in range(args.epochs):
        net.train()
        order, losses = rng.permutation(len(augmenter.shapes)), []
        for step in range(steps_per_epoch):
            pixels, offsets, targets, iod = augmenter.batch(order[step * args.batch:(step + 1) * args.batch])
            loss = nme_loss(net(torch.from_numpy(pixels), torch.from_numpy(offsets)),
                            torch.from_numpy(targets), torch.from_numpy(iod), crop_size)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        refined, _ = refine_with_torch(net, val_images, val_starts, template, crop_size)
        errors = nme(refined, val_truth)
        val = errors.mean()
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in net.state_dict().items()}
        elapsed = time.time() - started
        log(f"epoch {epoch + 1}/{args.epochs}: train loss {np.mean(losses):.4f}, validation NME "
            f"{val:.3%} (as they are {errors[clean].mean():.3%}, made hard {errors[~clean].mean():.3%}; "
            f"its starts {val_start_nme:.3%}), {elapsed / 60:.1f} min, "
            f"about {elapsed / (epoch + 1) * (args.epochs - epoch - 1) / 60:.0f} min left")
    net.load_state_dict(best_state)
    net.eval()
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "crop_size": crop_size,
                "n_landmarks": faces.n_landmarks, "template": template.round(6).tolist(),
                "mean_shape": augmenter.mean_unit.round(6).tolist(),
                "flip_permutation": list(IBUG68.flip), "validation_nme": round(float(best), 6),
                "training": {"data": list(SHARED_300W_TRAIN), "seed": args.seed, "epochs": args.epochs,
                             "folds": args.folds, "hard_share": args.hard_share, "command": " ".join(sys.argv)}}
    if local:
        metadata["patch_size"] = patch_size
    out = Path(args.out or (LOCAL_MODEL if local else GLOBAL_MODEL))
    export(net, out, metadata)
    check_export(net, out, val_images[:32], val_starts[:32], template, crop_size)
    log(f"wrote {out} (best validation NME {best:.3%})")


def refine_with_torch(net, images, starts, template, crop_size):
    """The net's refined shapes and its raw corrections, through PyTorch."""
    inputs = network_inputs(images, starts, template, crop_size, net.patch_size)
    corrections = torch_corrections(net, inputs)
    return inputs.corrected(corrections), corrections


def torch_corrections(net, inputs):
    import torch
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(inputs.pixels), torch.from_numpy(inputs.offsets)).numpy()


def export(net, path, metadata):
    """Write the network as ONNX (a dynamic batch axis) with ``metadata`` as JSON values;
    written beside ``path`` and renamed into place, so an interrupted export leaves the
    previous model whole."""
    import onnx
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    names = input_names(net.patch_size)
    example = (torch.zeros(2, *pixels_shape(metadata["crop_size"], net.n_landmarks, net.patch_size)),
               torch.zeros(2, net.n_landmarks, 2))
    temporary = path.with_name(path.name + ".tmp")
    try:
        torch.onnx.export(net, example, str(temporary), input_names=list(names),
                          output_names=[OUTPUT_NAME], dynamo=False, opset_version=17,
                          dynamic_axes={name: {0: "faces"} for name in (*names, OUTPUT_NAME)})
        model = onnx.load(str(temporary))
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.save(model, str(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_export(net, path, images, starts, template, crop_size):
    """onnxruntime's corrections must equal PyTorch's to 1e-4 on real faces."""
    import onnxruntime
    inputs = network_inputs(images, starts, template, crop_size, net.patch_size)
    expected = torch_corrections(net, inputs)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, network_feed(net.patch_size, inputs.pixels, inputs.offsets))[0]
    difference = float(np.abs(got - expected).max())
    if difference > 1e-4:
        raise RuntimeError(f"onnxruntime differs from PyTorch by {difference:.2e}")
    log(f"onnxruntime matches PyTorch to {difference:.1e}")
    return difference


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnn_refine.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/300w", help="the 300-W folder (train folders only are read)")
    parser.add_argument("--out", default=None, help="default: the bundled stage's file, "
                        "cnn_refine/models/refiner-68.onnx or refiner-68-local.onnx")
    parser.add_argument("--work", default="cnn_refine_work", help="cache for the out-of-fold cascade shapes")
    parser.add_argument("--stage", choices=("global", "local"), default="global",
                        help="global: the whole face, a cascade's shape in; local: patches around each point, "
                             "after the --after stages")
    parser.add_argument("--after", nargs="+", default=None,
                        help="a local stage's earlier stages (.onnx files, in order); default: the bundled global one")
    parser.add_argument("--crop-size", type=int, default=None, help="default 112 for global, 224 for local")
    parser.add_argument("--patch-size", type=int, default=24)
    parser.add_argument("--face-fraction", type=float, default=0.75)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-validation", type=int, default=200,
                        help="training faces held out to choose the best epoch (each also made hard)")
    parser.add_argument("--hard-share", type=float, default=0.25,
                        help="share of training draws made hard (low resolution, blur, occlusion, JPEG)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.after and args.stage != "local":
        parser.error("--after names the stages before a local one: use it with --stage local")
    train(args)


if __name__ == "__main__":
    main()
