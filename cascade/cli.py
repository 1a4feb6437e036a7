"""The ``cascade`` command (also ``python -m cascade``): ``cascade COMMAND --help`` for each.

    cascade predict IMAGES_OR_DIRS... [-o OUT]   landmarks of every face as JSON (.pts, CSV, pictures)
    cascade video IN -o OUT                      tracked, smoothed landmarks drawn on a video
    cascade fit FOLDERS... -o MODEL.npz          train a model on image + .pts pairs
    cascade evaluate FOLDER --model NAME...      NME table and CED plot on image + .pts pairs
    cascade bench [ARGS...]                      the benchmark suite (from a source checkout)
    cascade blur | align | overlay | pose IMAGE  applications of the landmarks

Images and folders are read as they are given; a folder is searched for images
(recursively). ``--sample`` stands for the astronaut photo that ships with
scikit-image, so every command can be tried with no file at hand.
"""
import argparse
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from . import apps
from .bundled import BUNDLED, ESTIMATORS, load_model
from .data import IMAGE_SUFFIXES, load_faces, read_image, write_csv, write_pts
from .detect import DEFAULT_DETECTOR, DEFAULT_MAX_SIDE, DETECTORS
from .pipeline import Pipeline
from .training import train_landmarker


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "command", None) == "bench":
        args.bench_args = rest              # everything after `bench` belongs to the suite
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (FileNotFoundError, ValueError, TypeError, ImportError) as error:
        print(f"cascade {args.command}: error: {error}", file=sys.stderr)
        return 1


# -- shared options and helpers -------------------------------------------------------------------

def _pipeline_options(parser):
    parser.add_argument("--model", default="default",
                        help=f"landmark model: {', '.join(['default', *BUNDLED])} or a .npz file (default: default)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS),
                        help=f"face detector (default: {DEFAULT_DETECTOR}, bundled)")
    parser.add_argument("--detector-model", help="another model file for --detector yunet")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"detect on a copy this many pixels on its longer side (default {DEFAULT_MAX_SIDE})")
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                        help="refine the landmarks with the bundled CNN (default: on; --no-refine: the cascade alone)")


def _pipeline(args):
    options = {"max_side": args.max_side, **({"model_path": args.detector_model} if args.detector_model else {})}
    return Pipeline(args.model, detector=args.detector, refiner=args.refine, detector_options=options)


def _image_options(parser, many=False):
    if many:
        parser.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="images, or folders of images")
    else:
        parser.add_argument("inputs", nargs="?", metavar="IMAGE", help="an image file")
    parser.add_argument("--sample", action="store_true", help="use the astronaut photo from scikit-image")


def _input_images(args):
    """``[(name, path or None, relative path)]`` of the images to process, folders expanded, in order.

    The relative path names an image's outputs in an output folder: its path inside the folder
    given (so the input tree is mirrored), or its file name for an image given by itself.
    """
    inputs = args.inputs if isinstance(args.inputs, list) else [args.inputs] if args.inputs else []
    found = [("astronaut", None, Path("astronaut.png"))] if args.sample else []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(str(p), p, p.relative_to(path)) for p in files]
        elif path.is_file():
            found.append((str(path), path, Path(path.name)))
        else:
            raise FileNotFoundError(f"no image or folder at {path}")
    if not found:
        raise ValueError("no images given: name image files or folders, or pass --sample")
    return found


def _read(path):
    if path is None:
        from skimage import data
        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return read_image(path)


def _faces_json(faces):
    return [{"box": face.box.round(2).tolist(), "score": round(face.score, 4),
             "landmarks": face.landmarks.round(2).tolist()} for face in faces]


def _write_image(path, image):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise ValueError(f"cannot write an image to {path} (unknown suffix?)")


def _single_output(args, result):
    output = Path(args.output) if args.output else Path(f"{args.command}.png")
    _write_image(output, result)
    print(f"wrote {output}", file=sys.stderr)


# -- predict --------------------------------------------------------------------------------------

def command_predict(args):
    items = _input_images(args)
    output = Path(args.output) if args.output else None
    annotate_one = output is not None and output.suffix.lower() in IMAGE_SUFFIXES
    folder = output if output is not None and not annotate_one and output.suffix.lower() != ".json" else None
    if annotate_one and len(items) != 1:
        raise ValueError(f"-o {output} is an image file, but {len(items)} images were given: pass a folder")
    if (args.annotate or args.pts or args.csv) and folder is None:
        raise ValueError("--annotate, --pts and --csv need -o FOLDER")
    if folder is not None:
        _check_folder_outputs(folder, items, args)
    elif output is not None and output.exists() and not args.overwrite:
        raise ValueError(f"{output} exists: pass --overwrite to replace it")
    pipeline = _pipeline(args)

    def work(item):
        name, path, relative = item
        try:
            image = _read(path)
            faces = pipeline(image)
        except (ValueError, OSError) as error:      # unreadable or corrupt: recorded, the batch goes on
            return name, None, str(error)
        if annotate_one or args.annotate:
            drawn = apps.draw_landmarks(image, [f.landmarks for f in faces], [f.box for f in faces])
            _write_image(output if annotate_one else folder / relative.with_suffix(".png"), drawn)
        if args.pts and faces:
            (folder / relative.parent).mkdir(parents=True, exist_ok=True)     # the input's folders, mirrored
            for k, face in enumerate(faces):
                write_pts(folder / relative.parent / f"{relative.stem}_{k}.pts", face.landmarks)
        return name, faces, None

    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    results, errors = {}, {}
    with ThreadPoolExecutor(args.jobs if args.jobs > 0 else os.cpu_count() or 1) as pool:
        for name, faces, error in tqdm(pool.map(work, items), total=len(items), desc="predict", unit="image",
                                       disable=args.quiet or len(items) <= 1):
            if error is None:
                results[name] = _faces_json(faces)
            else:
                errors[name] = error
                print(f"cascade predict: {error}", file=sys.stderr)
    document = json.dumps({"model": args.model, "detector": args.detector, "refined": args.refine,
                           "images": results, "errors": errors}, indent=1)
    if output is None:
        print(document)
    elif annotate_one:
        if not errors:
            print(f"wrote {output} ({len(results[items[0][0]])} faces)", file=sys.stderr)
    else:
        json_path = folder / "landmarks.json" if folder is not None else output
        json_path.write_text(document)
        rows = [(name, face["landmarks"]) for name, faces in results.items() for face in faces]
        if args.csv and rows:
            write_csv(folder / "landmarks.csv", [name for name, _ in rows], np.array([points for _, points in rows]))
        print(f"wrote {json_path} ({len(rows)} faces in {len(results)} images"
              f"{f', {len(errors)} unreadable' if errors else ''})", file=sys.stderr)
    return 1 if errors else 0


def _check_folder_outputs(folder, items, args):
    """Refuse, before any work, outputs that would overwrite each other or (without --overwrite)
    files already there; and a folder output that is a file."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"-o {folder} is a file, not a folder")
    stems = {}
    for name, _, relative in items:
        key = relative.with_suffix("")
        if key in stems:
            raise ValueError(f"{stems[key]} and {name} would write the same outputs ({key}.*) in {folder}")
        stems[key] = name
    if args.overwrite:
        return
    planned = [folder / "landmarks.json"] + [folder / "landmarks.csv"] * args.csv
    planned += [folder / relative.with_suffix(".png") for _, _, relative in items] * args.annotate
    existing = [path for path in planned if path.exists()]
    if args.pts:
        existing += [path for _, _, relative in items
                     for path in (folder / relative.parent).glob(f"{relative.stem}_[0-9]*.pts")]
    if existing:
        raise ValueError(f"{existing[0]} exists ({len(existing)} outputs in all): pass --overwrite to replace them")


# -- video ----------------------------------------------------------------------------------------

def command_video(args):
    from .video import process_video
    summary = process_video(args.input, args.output, _pipeline(args), smooth=not args.no_smooth,
                            landmarks_path=args.landmarks, redetect_every=args.redetect_every,
                            progress=not args.quiet)
    print(json.dumps(summary), file=sys.stderr)


# -- fit ------------------------------------------------------------------------------------------

def command_fit(args):
    faces = load_faces(*args.folders)
    if len(faces) < 2:
        raise ValueError(f"found {len(faces)} faces in {args.folders}: fit needs image + .pts pairs")
    estimator = ESTIMATORS[args.method.upper()]
    params = {"random_state": args.seed, "n_jobs": args.jobs, "verbose": 1}
    params = {k: v for k, v in params.items() if k in estimator().get_params()}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    started = time.time()
    model = train_landmarker(estimator(**params), list(faces.images), faces.shapes, box_jitter=args.box_jitter,
                             point_share=args.point_share, points_detector=args.point_detector,
                             detectors=args.calibrate, int16=args.int16, seed=args.seed, n_jobs=args.jobs)
    for name, calibration in model.box_calibrations_.items():
        print(f"{name}: {calibration}", file=sys.stderr)
    model.save(args.output)
    print(f"wrote {args.output} in {(time.time() - started) / 60:.1f} min", file=sys.stderr)


# -- evaluate -------------------------------------------------------------------------------------

def command_evaluate(args):
    from .evaluate import plot_ced, report
    faces = load_faces(args.folder, lazy=True)
    if len(faces) == 0:
        raise ValueError(f"no image + .pts pairs in {args.folder}")
    images, boxes = list(faces.images), faces.face_boxes()
    refiner = None
    if args.refine:
        from cnn_refine import Refiner
        refiner = Refiner()
    predictions, speeds = {}, {}
    for name in args.model:
        model = load_model(name)
        started = time.perf_counter()
        predicted = model.predict(images, boxes)
        predictions[name] = predicted if refiner is None else refiner.predict(images, predicted)
        speeds[name] = len(images) / (time.perf_counter() - started)
    result = report(predictions, faces.shapes)
    print(f"{args.folder}: tight boxes of the true points" + (", CNN refiner on" if args.refine else ""))
    print(result.table())
    print("\nfaces/s (one call, all faces): " + ", ".join(f"{name} {speed:.0f}" for name, speed in speeds.items()))
    if args.ced:
        plot_ced(result.errors(), args.ced)
        print(f"wrote {args.ced}", file=sys.stderr)


# -- bench ----------------------------------------------------------------------------------------

def command_bench(args):
    if (Path.cwd() / "benchmarks" / "run.py").is_file() and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))       # a console script does not see the working directory
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        raise ValueError("the benchmark suite lives in the benchmarks/ folder of a source checkout: "
                         "run `cascade bench` from the repository root") from None
    return bench_main(args.bench_args)


# -- applications ---------------------------------------------------------------------------------

def _one_image_faces(args):
    (name, path, _), = _single_input(args)
    image = _read(path)
    faces = _pipeline(args)(image)
    print(f"{name}: {len(faces)} faces", file=sys.stderr)
    return image, faces


def _single_input(args):
    items = _input_images(args)
    if len(items) != 1:
        raise ValueError("give one image (or --sample)")
    return items


def command_blur(args):
    image, faces = _one_image_faces(args)
    _single_output(args, apps.blur_faces(image, [f.landmarks for f in faces], args.method))


def command_align(args):
    image, faces = _one_image_faces(args)
    crops = apps.align_faces(image, [f.landmarks for f in faces], size=args.size)
    output = Path(args.output or "align")
    for k, crop in enumerate(crops):
        _write_image(output / f"face_{k}.png", crop)
    print(f"wrote {len(crops)} aligned faces to {output}", file=sys.stderr)


def command_overlay(args):
    image, faces = _one_image_faces(args)
    if args.png:
        overlay = cv2.imread(str(args.png), cv2.IMREAD_UNCHANGED)
        if overlay is None or overlay.ndim != 3 or overlay.shape[2] != 4:
            raise ValueError(f"{args.png} must be a PNG with an alpha channel (4 channels)")
    else:
        overlay = apps.sunglasses()
    _single_output(args, apps.overlay_on_faces(image, [f.landmarks for f in faces], overlay))


def command_pose(args):
    image, faces = _one_image_faces(args)
    poses = [apps.head_pose(face.landmarks, image.shape) for face in faces]
    print(json.dumps([{"box": face.box.round(1).tolist(), **pose.as_dict()} for face, pose in zip(faces, poses)],
                     indent=1))
    if args.output:
        _single_output(args, apps.draw_pose(image, [f.landmarks for f in faces], poses))


# -- the parser -----------------------------------------------------------------------------------

def _box_jitter(text):
    try:
        scale, shift = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SCALE,SHIFT (e.g. 0.09,0.07), got {text!r}") from None
    if scale < 0 or shift < 0:
        raise argparse.ArgumentTypeError("box jitter must not be negative")
    return scale, shift


def build_parser():
    parser = argparse.ArgumentParser(prog="cascade", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    predict = commands.add_parser("predict", help="landmarks of every face in images, as JSON",
                                  description="Detect faces and find their landmarks. Without -o, JSON goes to "
                                  "stdout; -o FILE.png draws them on the (one) image; -o FILE.json writes "
                                  "the JSON there; -o FOLDER writes FOLDER/landmarks.json and, on request, "
                                  "annotated images, .pts files and a CSV, mirroring the input folders. An "
                                  "unreadable image is recorded under \"errors\" and the others go on; the "
                                  "exit status is then 1.")
    _image_options(predict, many=True)
    _pipeline_options(predict)
    predict.add_argument("-o", "--output", help="an image file, a .json file or a folder")
    predict.add_argument("--annotate", action="store_true", help="also draw the landmarks (-o FOLDER)")
    predict.add_argument("--pts", action="store_true", help="also write IMAGE_k.pts per face (-o FOLDER)")
    predict.add_argument("--csv", action="store_true", help="also write landmarks.csv (-o FOLDER)")
    predict.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")
    predict.add_argument("--jobs", type=int, default=0, help="threads (default: all cores)")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(run=command_predict)

    video = commands.add_parser("video", help="track, smooth and draw landmarks on a video")
    video.add_argument("input", metavar="IN", help="a video file OpenCV can read")
    video.add_argument("-o", "--output", required=True, help="the annotated video (.mp4 or .avi)")
    video.add_argument("--landmarks", help="also write per-frame landmarks to this JSON file")
    video.add_argument("--no-smooth", action="store_true", help="turn the One-Euro smoothing off")
    video.add_argument("--redetect-every", type=int, default=15, help="check tracks with the detector every N frames")
    video.add_argument("--quiet", action="store_true", help="no progress bar")
    _pipeline_options(video)
    video.set_defaults(run=command_video)

    fit = commands.add_parser("fit", help="train a landmark model on image + .pts pairs")
    fit.add_argument("folders", nargs="+", metavar="FOLDER", help="folders of images with .pts files beside them")
    fit.add_argument("-o", "--output", required=True, help="the model file to write (.npz)")
    fit.add_argument("--method", default="lbf", choices=[name.lower() for name in ESTIMATORS])
    fit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="an estimator parameter (JSON value), e.g. preset=fast or n_stages=5; repeatable")
    fit.add_argument("--box-jitter", type=_box_jitter, default=(0.0, 0.0), metavar="SCALE,SHIFT",
                     help="train from tight boxes randomly rescaled (log std) and shifted (fraction of size), "
                     "as a detector's calibrated boxes err (default 0,0)")
    fit.add_argument("--point-share", type=float, default=0.0, metavar="SHARE",
                     help="share of the faces started from five points that err as --point-detector's do on "
                     "these faces (default 0: all from boxes)")
    fit.add_argument("--point-detector", default="yunet", choices=sorted(DETECTORS),
                     help="the detector whose five points --point-share imitates (default: yunet)")
    fit.add_argument("--calibrate", nargs="*", default=["yunet"], choices=sorted(DETECTORS),
                     help="detectors whose calibrations to learn and store (default: yunet)")
    fit.add_argument("--int16", action="store_true", help="store tree leaves as int16 (about half the size)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--jobs", type=int, default=1, help="training threads")
    fit.set_defaults(run=command_fit)

    evaluate = commands.add_parser("evaluate", help="NME table and CED plot of models on image + .pts pairs")
    evaluate.add_argument("folder", metavar="FOLDER")
    evaluate.add_argument("--model", nargs="+", default=["default"], help="model names or files")
    evaluate.add_argument("--refine", action="store_true", help="refine with the bundled CNN")
    evaluate.add_argument("--ced", help="write the CED curves to this image file")
    evaluate.set_defaults(run=command_evaluate)

    bench = commands.add_parser("bench", help="the benchmark suite (python -m benchmarks.run)", add_help=False,
                                description="Runs benchmarks/run.py of a source checkout; every argument "
                                "goes to it (`cascade bench --help` shows the suite's own).")
    bench.set_defaults(run=command_bench)

    for name, help_text, function in (
            ("blur", "blur every face inside its outline", command_blur),
            ("align", "warp each face to the 112x112 five-point crop", command_align),
            ("overlay", "put sunglasses (or your transparent PNG) on every face", command_overlay),
            ("pose", "head yaw, pitch and roll of every face", command_pose)):
        app = commands.add_parser(name, help=help_text, description=help_text)
        _image_options(app)
        _pipeline_options(app)
        app.add_argument("-o", "--output", help="where to write the result")
        app.set_defaults(run=function)
        if name == "blur":
            app.add_argument("--method", choices=["gaussian", "pixelate"], default="gaussian")
        elif name == "align":
            app.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
        elif name == "overlay":
            app.add_argument("--png", help="a transparent PNG to place over the eyes (default: drawn sunglasses)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
