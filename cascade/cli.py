"""The ``cascade`` command (also ``python -m cascade``): ``cascade COMMAND --help`` for each.

    cascade predict IMAGES_OR_DIRS... [-o OUT]   landmarks of every face as JSON (.pts, CSV, pictures)
    cascade predict INPUTS... --parquet OUT      ... of a corpus, as Parquet shards (--engine dask: on a cluster)
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
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from . import __version__, apps, outputs
from .bundled import BUNDLED, ESTIMATORS, resolved_name
from .corpus import DEFAULT_PARTITION_SIZE, ENGINES, landmark_corpus
from .data import IMAGE_SUFFIXES, load_faces, read_image, write_pts
from .detect import DEFAULT_DETECTOR, DEFAULT_MAX_SIDE, DETECTORS
from .outputs import face_records, predictions_document, write_predictions_csv
from .pipeline import Pipeline
from .refiner import Refiner
from .threads import effective_jobs
from .training import train_landmarker


def main(argv=None):
    """Run one command; returns the exit status: 0, 1 after an error (one line on stderr), 2 for usage."""
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
        with logging_redirect_tqdm():       # log lines above a progress bar, not glued to it
            return args.run(args) or 0
    except BrokenPipeError:
        # The reader left (`cascade predict photo.jpg | head`): nothing more to say, and Python must
        # not fail again flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (FileNotFoundError, ValueError, TypeError, ImportError) as error:
        message = " ".join(str(error).split())
        print(f"cascade {args.command}: error: {message}", file=sys.stderr)
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
    options = {"max_side": args.max_side}
    if args.detector_model:
        if args.detector != "yunet":
            raise ValueError(f"--detector-model is a YuNet model file; --detector {args.detector} takes none")
        options["model_path"] = args.detector_model
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
            if not files:
                raise ValueError(f"no images in {path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
                                 "in its subfolders too)")
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


def _write_image(path, image):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise ValueError(f"cannot write an image to {path}")


def _image_output(output, default, option="-o"):
    """The image file an option names, checked before any work: a suffix OpenCV writes."""
    output = Path(output or default)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{option} {output}: give an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return output


def _folder_output(output):
    """The folder an -o names: an existing folder, or a name without a suffix (so that a mistyped
    file name, ``-o faces.txt``, is not taken for a folder)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"-o {output} is a file, not a folder")
    if not output.exists() and output.suffix:
        raise ValueError(f"-o {output}: a new output folder's name has no suffix (create the folder "
                         "first to use this name)")
    return output


# -- predict --------------------------------------------------------------------------------------

def command_predict(args):
    if args.parquet:
        return _predict_corpus(args)
    if args.engine != "local" or args.scheduler or args.workers:
        raise ValueError("--engine, --scheduler and --workers run a corpus: pass --parquet OUT")
    items = _input_images(args)
    output = Path(args.output) if args.output else None
    annotate_one = output is not None and output.suffix.lower() in IMAGE_SUFFIXES
    to_json = output is not None and output.suffix.lower() == ".json"
    folder = _folder_output(output) if output is not None and not annotate_one and not to_json else None
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
    with ThreadPoolExecutor(effective_jobs(args.jobs)) as pool, \
            tqdm(total=len(items), desc="predict", unit="image",         # on a terminal only (None)
                 disable=True if args.quiet or len(items) <= 1 else None) as bar:
        for name, faces, error in pool.map(work, items):
            if error is None:
                results[name] = face_records(faces)
            else:
                errors[name] = error
                bar.write(f"cascade predict: {name}: {' '.join(error.split())}", file=sys.stderr)
            bar.update()
    document = predictions_document(resolved_name(args.model), args.detector, args.refine, results, errors)
    if output is None:
        print(document)
    elif annotate_one:
        if not errors:
            print(f"wrote {output} ({len(results[items[0][0]])} faces)", file=sys.stderr)
    else:
        json_path = folder / "landmarks.json" if folder is not None else output
        json_path.write_text(document)
        if args.csv:
            write_predictions_csv(folder / "landmarks.csv", results)
        n_faces = sum(len(faces) for faces in results.values())
        print(f"wrote {json_path} ({n_faces} faces in {len(results)} images"
              f"{f', {len(errors)} unreadable' if errors else ''})", file=sys.stderr)
    return 1 if errors else 0


def _predict_corpus(args):
    """``predict --parquet``: :func:`cascade.corpus.landmark_corpus` with the command's options."""
    if args.output or args.annotate or args.pts or args.csv or args.sample:
        raise ValueError("--parquet writes the corpus's only output: -o, --annotate, --pts, --csv and --sample "
                         "go without it")
    if not args.inputs:
        raise ValueError("no images given: name image files, folders, globs or lists of images")
    client = None
    if args.engine == "dask" or args.scheduler:
        from distributed import Client
        # Dask logs its cluster's life line by line at INFO, each of its loggers set on import.
        for name in [name for name in logging.root.manager.loggerDict if name.startswith("distributed")]:
            logging.getLogger(name).setLevel(logging.WARNING)
        if args.scheduler:
            try:
                client = Client(args.scheduler, timeout="20s")
            except OSError as error:        # distributed's connection timeouts are OSErrors
                raise ValueError(f"cannot reach a Dask scheduler at {args.scheduler}: {error}") from None
    inputs = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    options = {"max_side": args.max_side, **({"model_path": args.detector_model} if args.detector_model else {})}
    try:
        manifest = landmark_corpus(inputs, args.parquet, model=args.model, detector=args.detector,
                                   detector_options=options, refiner=args.refine,
                                   engine="dask" if client else args.engine, client=client, workers=args.workers,
                                   partition_size=args.partition_size, progress=False if args.quiet else None)
    finally:
        if client is not None:
            client.close()
    counts, run = manifest["counts"], manifest["run"]
    print(f"wrote {args.parquet} ({counts['faces']} faces in {counts['images']} images, {counts['no_face']} "
          f"without a face, {counts['errors']} unreadable; {run['computed']} shards computed, "
          f"{run['skipped']} already written)", file=sys.stderr)
    return 1 if counts["errors"] else 0


def _check_folder_outputs(folder, items, args):
    """Refuse, before any work, outputs that would overwrite each other or (without --overwrite)
    files already there."""
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
                            progress=False if args.quiet else None)
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
                             detectors=args.calibrate, int16=args.int16, compress=args.compress, seed=args.seed,
                             n_jobs=args.jobs)
    for name, calibration in model.box_calibrations_.items():
        print(f"{name}: {calibration}", file=sys.stderr)
    model.save(args.output)
    print(f"wrote {args.output} in {(time.time() - started) / 60:.1f} min", file=sys.stderr)


# -- evaluate -------------------------------------------------------------------------------------

def command_evaluate(args):
    from .evaluate import plot_ced, report
    if args.ced:
        _image_output(args.ced, "ced.png", "--ced")
        try:
            import matplotlib  # noqa: F401 - checked before the work, not after it
        except ImportError:
            raise ImportError("--ced needs matplotlib: pip install 'cascade-landmarks[plot]'") from None
    faces = load_faces(args.folder, lazy=True)
    if len(faces) == 0:
        raise ValueError(f"no image + .pts pairs in {args.folder}")
    images = list(faces.images)
    refiner = None
    if args.refine:
        refiner = Refiner()
    predictions, speeds = {}, {}
    for name in args.model:
        pipeline = Pipeline(name, detector=args.detector or DEFAULT_DETECTOR, refiner=refiner or False,
                            detector_options={"max_side": args.max_side})
        started = time.perf_counter()
        predictions[name] = (pipeline.landmarks_of(images, faces.face_boxes()) if args.detector is None
                             else pipeline.annotated_faces(images, faces.shapes, n_jobs=args.jobs))
        speeds[name] = len(images) / (time.perf_counter() - started)
    result = report(predictions, faces.shapes)
    start = (f"{args.detector} detector (max side {args.max_side}), its start calibrated for each model"
             if args.detector else "tight boxes of the true points")
    print(f"{args.folder}: {start}; CNN refiner {'on' if args.refine else 'off'}")
    print(result.table())
    speeds = ", ".join(f"{name} {speed:.0f}" for name, speed in speeds.items())
    print(f"\nfaces/s (all faces in one call{', detection included' if args.detector else ''}): {speeds}")
    if args.ced:
        plot_ced(result.errors(), args.ced)
        print(f"wrote {args.ced}", file=sys.stderr)


# -- bench ----------------------------------------------------------------------------------------

def command_bench(args):
    if not (Path.cwd() / "benchmarks" / "run.py").is_file():
        raise ValueError("the benchmark suite lives in the benchmarks/ folder of a source checkout: "
                         "run `cascade bench` from the repository root")
    return subprocess.run([sys.executable, "-m", "benchmarks.run", *args.bench_args]).returncode


# -- applications ---------------------------------------------------------------------------------

def _one_image_faces(args):
    """The one input image and its faces (the output, checked by the caller, comes after)."""
    items = _input_images(args)
    if len(items) != 1:
        raise ValueError("give one image (or --sample)")
    (name, path, _), = items
    image = _read(path)
    faces = _pipeline(args)(image)
    print(f"{name}: {len(faces)} faces", file=sys.stderr)
    return image, faces


def _write_result(output, result):
    _write_image(output, result)
    print(f"wrote {output}", file=sys.stderr)


def command_blur(args):
    output = _image_output(args.output, "blur.png")
    image, faces = _one_image_faces(args)
    _write_result(output, apps.blur_faces(image, [f.landmarks for f in faces], args.method))


def command_align(args):
    output = _folder_output(args.output or "align")
    image, faces = _one_image_faces(args)
    crops = apps.align_faces(image, [f.landmarks for f in faces], size=args.size)
    for k, crop in enumerate(crops):
        _write_image(output / f"face_{k}.png", crop)
    print(f"wrote {len(crops)} aligned faces to {output}", file=sys.stderr)


def command_overlay(args):
    output = _image_output(args.output, "overlay.png")
    overlay = _overlay_picture(args.png) if args.png else apps.sunglasses()
    image, faces = _one_image_faces(args)
    _write_result(output, apps.overlay_on_faces(image, [f.landmarks for f in faces], overlay))


def _overlay_picture(path):
    if not Path(path).is_file():
        raise FileNotFoundError(f"no picture at {path}")
    overlay = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if overlay is None:
        raise ValueError(f"{path} is not an image OpenCV can read")
    if overlay.ndim != 3 or overlay.shape[2] != 4:
        raise ValueError(f"{path} has no alpha channel: the overlay must be a transparent PNG (4 channels)")
    return overlay


def command_pose(args):
    output = _image_output(args.output, None) if args.output else None
    image, faces = _one_image_faces(args)
    poses = [apps.head_pose(face.landmarks, image.shape) for face in faces]
    print(json.dumps([{"face": k, "box": face.box.round(2).tolist(), **pose.as_dict()}
                      for k, (face, pose) in enumerate(zip(faces, poses))], indent=1))
    if output is not None:
        _write_result(output, apps.draw_pose(image, [f.landmarks for f in faces], poses))


# -- the parser -----------------------------------------------------------------------------------

#: What each application writes, for its --help.
APP_OUTPUTS = {
    "blur": " Writes one image (-o, default blur.png).",
    "align": " Writes FOLDER/face_K.png (-o FOLDER, default align), K the face's index as in predict's JSON.",
    "overlay": " Writes one image (-o, default overlay.png).",
    "pose": " Prints JSON, one entry per face: {\"face\": index, \"box\": the detector's box in pixels, "
            "\"yaw\", \"pitch\", \"roll\": degrees, yaw > 0 turning the face towards the image's right, "
            "pitch > 0 tilting it up, roll > 0 turning it clockwise in the image; \"rotation\": the 3 x 3 "
            "rotation and \"translation\": the position in millimetres of a generic head model in the "
            "camera's frame (x right, y down, z forward from the camera, a pinhole at the image centre whose "
            "focal length is the image width)}; -o also draws the axes on the image.",
}

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
    parser.add_argument("--version", action="version", version=f"cascade {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    predict = commands.add_parser("predict", help="landmarks of every face in images, as JSON",
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog=outputs.__doc__.split("\n", 2)[2].replace("``", "").replace(":mod:", ""),
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
    predict.add_argument("--jobs", type=int, default=-1, help="threads, as n_jobs: -1 all cores (the default), "
                         "-2 all but one")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    corpus = predict.add_argument_group(
        "a corpus as Parquet shards (cascade.landmark_corpus; needs pip install \"cascade-landmarks[dask]\")",
        "IMAGE_OR_DIR may then also be a glob, a text file of image paths, or an fsspec URL. The run "
        "resumes where an interrupted one stopped.")
    corpus.add_argument("--parquet", metavar="OUT", help="write the shards and manifest.json into this folder or URL")
    corpus.add_argument("--engine", choices=ENGINES, default="local", help="local: this process; dask: a cluster")
    corpus.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler to use (default: a local "
                        "cluster of --workers processes)")
    corpus.add_argument("--workers", type=int, help="worker processes of the local Dask cluster (default: cores)")
    corpus.add_argument("--partition-size", type=int, default=DEFAULT_PARTITION_SIZE,
                        help=f"images a shard (default {DEFAULT_PARTITION_SIZE})")
    predict.set_defaults(run=command_predict)

    video = commands.add_parser("video", help="track, smooth and draw landmarks on a video",
                                description="Track, smooth and draw the landmarks of every face in a video. "
                                "--landmarks writes {\"fps\", \"smoothed\", \"frames\": [{\"frame\": index, "
                                "\"faces\": [{\"track\": id, \"score\", \"box\", \"landmarks\"}]}]}: a face keeps "
                                "its track id (0, 1, ... in order of appearance) while it is followed; the score "
                                "is that of the detection that last confirmed it (the detector's scale, as in "
                                "predict's JSON); the box is the tight box of the (smoothed) landmarks, in pixels.")
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
    fit.add_argument("--compress", action="store_true",
                     help="store tree leaves in a per-stage basis, int16 (ERT, LBF: a quarter of --int16's size, "
                     "faster; as the bundled models)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--jobs", type=int, default=1, help="training threads")
    fit.set_defaults(run=command_fit)

    evaluate = commands.add_parser(
        "evaluate", help="NME table and CED plot of models on image + .pts pairs",
        description="Score models on the annotated faces of a folder (image + .pts pairs): inter-ocular and "
        "inter-pupil NME, AUC at 0.08 and failure rates at 0.08 and 0.10, all in percent. Each face starts "
        "from the tight box of its true points, or with --detector from what that detector finds there (the "
        "detection overlapping the face most, IoU 0.2 at least; a face missed counts as a failure), as "
        "the pipeline starts it.")
    evaluate.add_argument("folder", metavar="FOLDER")
    evaluate.add_argument("--model", nargs="+", default=["default"], help="model names or files")
    evaluate.add_argument("--detector", choices=sorted(DETECTORS),
                          help="start from this detector's answers (default: tight boxes of the true points)")
    evaluate.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                          help=f"the detector runs on a copy this many pixels on its longer side "
                          f"(default {DEFAULT_MAX_SIDE})")
    evaluate.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                          help="refine with the bundled CNN (default: on)")
    evaluate.add_argument("--jobs", type=int, default=1, help="detector threads")
    evaluate.add_argument("--ced", help="write the CED curves to this image file (needs the plot extra)")
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
        app = commands.add_parser(name, help=help_text, description=help_text + "." + APP_OUTPUTS[name])
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
