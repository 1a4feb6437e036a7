"""The cascade command (also python -m cascade): cascade COMMAND --help for each.

    cascade predict IMAGES_OR_DIRS... [-o OUT]   landmarks of every face as JSON (.pts, CSV, pictures)
    cascade predict INPUTS... --parquet OUT      ... of a corpus, as Parquet shards (--engine dask: on a cluster)
    cascade video IN -o OUT                      tracked, smoothed landmarks drawn on a video
    cascade fit FOLDERS... -o MODEL.npz          train a model on image + .pts pairs
    cascade evaluate FOLDER --model NAME...      NME table and CED plot on image + .pts pairs
    cascade bench [ARGS...]                      the benchmark suite (from a source checkout)
    cascade blur | align | overlay | pose IMAGES_OR_DIRS... [-o OUT]   applications of the landmarks

Images and folders are read as they are given; a folder is searched for images
(recursively). --sample stands for the astronaut photo that ships with the
package, so every command can be tried with no file at hand.

Exit status: 0 done; 1 an error (one line on stderr; in a batch, after the
other images are done); 2 a usage error (the command line itself is wrong).
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
from .data import IMAGE_SUFFIXES, SAMPLE_PHOTO, display_name, image_files, load_faces, read_image, write_pts
from .detect import DEFAULT_DETECTOR, DEFAULT_MAX_SIDE, DETECTORS, YUNET_MAX_SIDE
from .extras import require
from .files import check_outputs, check_writable_folder, write_atomically, write_image
from .image_header import DEFAULT_MAX_PIXELS
from .outputs import face_records, predictions_document, write_predictions_csv
from .pipeline import Pipeline
from .refiner import Refiner
from .threads import effective_jobs
from .training import train_landmarker


class UsageError(ValueError):
    """A command line that asks for something impossible (no input, options that conflict): exit
    status 2 and the command's usage, as argparse does for what it checks itself."""


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
            status = args.run(args) or 0
        if sys.stdout is not None:
            sys.stdout.flush()              # a full disk is an error here, not a lost result at exit
        return status
    except BrokenPipeError:
        # The reader left (`cascade predict photo.jpg | head`): nothing more to say, and Python must
        # not fail again flushing stdout at exit.
        _drop_stdout()
        return 1
    except UsageError as error:
        print(f"{args.usage}cascade {args.command}: error: {_error_message(error)}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"cascade {args.command}: error: {_error_message(error)}", file=sys.stderr)
        if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
            _drop_stdout()          # what could not be written must not be tried again, failing, at exit
        return 1


def _drop_stdout():
    """Point standard output at the null device (where it has a file descriptor to point)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):       # closed, or a stream without a descriptor
        pass


def _error_message(error):
    """One line: the error's message, an OSError's with the file it concerns."""
    if isinstance(error, OSError) and error.strerror and not isinstance(error, FileNotFoundError):
        where = f": {display_name(error.filename)}" if error.filename else ""
        return f"{error.strerror}{where}"
    return " ".join(str(error).split())


def _print_result(text):
    """Write a command's result to standard output, which must be open (``cascade ... >&-`` would
    otherwise lose it with exit status 0)."""
    if sys.stdout is None:
        raise OSError("standard output is closed: nowhere to write the result (redirect it, or give -o)")
    print(text)


# -- shared options and helpers -------------------------------------------------------------------

def _pipeline_options(parser):
    parser.add_argument("--model", default="default",
                        help=f"landmark model: {', '.join(['default', *BUNDLED])} or a .npz file (default: default)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS),
                        help=f"face detector (default: {DEFAULT_DETECTOR}, bundled)")
    parser.add_argument("--detector-model", help="another model file for --detector yunet")
    parser.add_argument("--max-side", type=int, help=MAX_SIDE_HELP)
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                        help="refine the landmarks with the bundled CNN (default: on; --no-refine: the cascade alone)")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist already "
                        "(an input is never written over)")
    parser.add_argument("--min-quality", type=float, default=0.0, metavar="Q",
                        help="drop faces whose quality (the probability that their landmarks are right, 0 to 1; "
                        "needs the refiner) is below Q (default 0: keep all)")


MAX_SIDE_HELP = (f"detect on a copy this many pixels on its longer side (default {YUNET_MAX_SIDE} for yunet, "
                 f"{DEFAULT_MAX_SIDE} for the others; larger finds smaller faces: yunet at 480 finds faces "
                 "down to 35 px in a 1080p photo, at about twice the cost)")


def _detector_options(args):
    """The detector's options the command line gives (those left out keep the detector's defaults)."""
    options = {} if args.max_side is None else {"max_side": args.max_side}
    if getattr(args, "detector_model", None):
        options["model_path"] = args.detector_model
    return options


def _pipeline(args):
    if args.detector_model and args.detector != "yunet":
        raise UsageError(f"--detector-model is a YuNet model file; --detector {args.detector} takes none")
    if not 0 <= args.min_quality <= 1:
        raise UsageError(f"--min-quality must be between 0 and 1, got {args.min_quality}")
    if args.min_quality and not args.refine:
        raise UsageError("--min-quality reads the refiner's work: it goes without --no-refine")
    options = _detector_options(args)
    return Pipeline(args.model, detector=args.detector, refiner=args.refine, detector_options=options)


def _good_faces(faces, args):
    """The faces whose quality reaches ``--min-quality`` (all of them at 0)."""
    return [face for face in faces if not args.min_quality or face.quality >= args.min_quality]


def _image_options(parser):
    parser.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="images, or folders of images")
    parser.add_argument("--sample", action="store_true", help="use the astronaut photo that ships with the package")
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                        help="refuse an image whose file declares more pixels than this, before decoding it "
                        f"(default {DEFAULT_MAX_PIXELS / 1e6:g}: a decompression bomb costs nothing)")


def _input_images(args):
    """``[(name, path or None, relative path)]`` of the images to process, folders expanded, in order.

    The name is the path as given (a folder's images: the folder joined with the path inside it),
    printable (:func:`cascade.data.display_name`). The relative path names an image's outputs in
    an output folder: its path inside the folder given (so the input tree is mirrored), or its
    file name for an image given by itself. An image named twice is refused.
    """
    inputs, found = args.inputs, [("astronaut", None, Path("astronaut.png"))] if args.sample else []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [(display_name(os.path.join(item, p.relative_to(path))), p, p.relative_to(path))
                      for p in image_files(path)]
        elif path.is_file():
            found.append((display_name(item), path, Path(path.name)))
        else:
            raise FileNotFoundError(f"no image or folder at {display_name(path)}")
    if not found:
        raise UsageError("no images given: name image files or folders, or pass --sample")
    names = set()
    for name, _, _ in found:
        if name in names:
            raise ValueError(f"{name} is given twice: each image once, so that each has one entry")
        names.add(name)
    return found


def _read(path, max_pixels):
    return read_image(SAMPLE_PHOTO if path is None else path, max_pixels=max_pixels)


def _max_pixels(args):
    if not args.max_megapixels > 0:
        raise UsageError(f"--max-megapixels must be positive, got {args.max_megapixels}")
    return round(args.max_megapixels * 1e6)


def _input_paths(items):
    return [path for _, path, _ in items if path is not None]


def _image_output(output, default, option="-o"):
    """The image file an option names: a suffix OpenCV writes (the overwrite rule is the caller's)."""
    output = Path(output or default)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{option} {display_name(output)}: give an image file "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return output


def _folder_output(output):
    """The folder an -o names: an existing folder, or a name without a suffix (so that a mistyped
    file name, ``-o faces.txt``, is not taken for a folder)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"-o {display_name(output)} is a file, not a folder")
    if not output.exists() and output.suffix:
        raise ValueError(f"-o {display_name(output)}: a new output folder's name has no suffix (create the "
                         "folder first to use this name)")
    check_writable_folder(output)
    return output


# -- predict --------------------------------------------------------------------------------------

def command_predict(args):
    if args.parquet:
        return _predict_corpus(args)
    if args.engine != "local" or args.scheduler or args.workers:
        raise UsageError("--engine, --scheduler and --workers run a corpus: pass --parquet OUT")
    items = _input_images(args)
    output = Path(args.output) if args.output else None
    annotate_one = output is not None and output.suffix.lower() in IMAGE_SUFFIXES
    to_json = output is not None and output.suffix.lower() == ".json"
    folder = _folder_output(output) if output is not None and not annotate_one and not to_json else None
    if annotate_one and len(items) != 1:
        raise ValueError(f"-o {display_name(output)} is an image file, but {len(items)} images were given: "
                         "pass a folder")
    if (args.annotate or args.pts or args.csv) and folder is None:
        raise UsageError("--annotate, --pts and --csv need -o FOLDER")
    max_pixels = _max_pixels(args)
    if folder is not None:
        _check_folder_outputs(folder, items, args)
    elif output is not None:
        check_outputs([output], _input_paths(items), args.overwrite)
    pipeline = _pipeline(args)

    def work(item):
        name, path, relative = item
        try:
            image = _read(path, max_pixels)
            faces = _good_faces(pipeline(image), args)
            if annotate_one or args.annotate:
                drawn = apps.draw_landmarks(image, [f.landmarks for f in faces], [f.box for f in faces])
                write_image(output if annotate_one else folder / relative.with_suffix(".png"), drawn)
            if args.pts and faces:
                (folder / relative.parent).mkdir(parents=True, exist_ok=True)     # the input's folders, mirrored
                for k, face in enumerate(faces):
                    write_pts(folder / relative.parent / f"{relative.stem}_{k}.pts", face.landmarks)
        except (ValueError, OSError, cv2.error) as error:   # unreadable, corrupt or unwritable: recorded,
            return name, None, _error_message(error)         # the batch goes on
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
        _print_result(document)
    elif annotate_one:
        if not errors:
            print(f"wrote {display_name(output)} ({len(results[items[0][0]])} faces)", file=sys.stderr)
    else:
        json_path = folder / "landmarks.json" if folder is not None else output
        write_atomically(json_path, document.encode())
        if args.csv:
            write_predictions_csv(folder / "landmarks.csv", results)
        n_faces = sum(len(faces) for faces in results.values())
        print(f"wrote {display_name(json_path)} ({n_faces} faces in {len(results)} images"
              f"{f', {len(errors)} unreadable' if errors else ''})", file=sys.stderr)
    return 1 if errors else 0


def _predict_corpus(args):
    """``predict --parquet``: :func:`cascade.corpus.landmark_corpus` with the command's options."""
    if args.output or args.annotate or args.pts or args.csv or args.sample:
        raise UsageError("--parquet writes the corpus's only output: -o, --annotate, --pts, --csv and --sample "
                         "go without it")
    if not args.inputs:
        raise ValueError("no images given: name image files, folders, globs or lists of images")
    if args.min_quality:
        raise ValueError("--min-quality drops faces from predict's JSON; a corpus keeps every face with its "
                         "quality column (filter it when reading)")
    max_pixels = _max_pixels(args)
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
    options = _detector_options(args)
    try:
        manifest = landmark_corpus(inputs, args.parquet, model=args.model, detector=args.detector,
                                   detector_options=options, refiner=args.refine,
                                   engine="dask" if client else args.engine, client=client, workers=args.workers,
                                   partition_size=args.partition_size, max_pixels=max_pixels,
                                   progress=False if args.quiet else None)
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
    planned = [folder / "landmarks.json"] + [folder / "landmarks.csv"] * args.csv
    planned += [folder / relative.with_suffix(".png") for _, _, relative in items] * args.annotate
    inputs = {os.path.realpath(path) for path in _input_paths(items)}
    written_over = [path for path in planned if os.path.realpath(path) in inputs]
    if written_over:
        raise ValueError(f"{display_name(written_over[0])} is an input: an input is never written over "
                         "(give another output folder)")
    if args.overwrite:
        return
    existing = [path for path in planned if path.exists()]
    if args.pts:
        existing += [path for _, _, relative in items
                     for path in (folder / relative.parent).glob(f"{relative.stem}_[0-9]*.pts")]
    if existing:
        raise ValueError(f"{display_name(existing[0])} exists ({len(existing)} outputs in all): pass "
                         "--overwrite to replace them")


# -- video ----------------------------------------------------------------------------------------

def command_video(args):
    from .video import process_video
    if not Path(args.input).is_file():
        raise FileNotFoundError(f"no video file at {display_name(args.input)}")
    if Path(args.output).suffix.lower() not in (".mp4", ".avi"):
        raise ValueError(f"-o {display_name(args.output)}: give an .mp4 or .avi file")
    if args.landmarks is not None and Path(args.landmarks).suffix.lower() != ".json":
        raise ValueError(f"--landmarks {display_name(args.landmarks)}: give a .json file")
    check_outputs([args.output, args.landmarks], [args.input], args.overwrite)
    if args.min_quality:
        raise ValueError("--min-quality scores photos' faces: the tracker does not score them")
    summary = process_video(args.input, args.output, _pipeline(args), smooth=not args.no_smooth,
                            landmarks_path=args.landmarks, redetect_every=args.redetect_every,
                            progress=False if args.quiet else None)
    _print_result(json.dumps(summary))


# -- fit ------------------------------------------------------------------------------------------

def command_fit(args):
    if Path(args.output).suffix.lower() != ".npz":
        raise ValueError(f"-o {display_name(args.output)}: a model file is a .npz")
    check_outputs([args.output], overwrite=args.overwrite)
    estimator = _estimator(args)
    faces = load_faces(*args.folders)
    if len(faces) < 2:
        raise ValueError(f"found {len(faces)} faces in {args.folders}: fit needs image + .pts pairs")
    started = time.time()
    model = train_landmarker(estimator, list(faces.images), faces.shapes, box_jitter=args.box_jitter,
                             point_share=args.point_share, points_detector=args.point_detector,
                             detectors=args.calibrate, int16=args.int16, compress=args.compress, seed=args.seed,
                             n_jobs=args.jobs)
    for name, calibration in model.box_calibrations_.items():
        print(f"{name}: {calibration}", file=sys.stderr)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.output)
    print(f"wrote {display_name(args.output)} in {(time.time() - started) / 60:.1f} min", file=sys.stderr)


def _estimator(args):
    """The estimator ``fit`` trains, its parameters checked before any work."""
    estimator = ESTIMATORS[args.method.upper()]
    known = estimator().get_params()
    params = {"random_state": args.seed, "n_jobs": args.jobs, "verbose": 1}
    params = {k: v for k, v in params.items() if k in known}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"--param {unknown[0]}: {estimator.__name__} has no such parameter "
                         f"(it has {', '.join(sorted(known))})")
    model = estimator(**params)
    model._check_params()           # a bad value is refused now, not after the detector's pass
    return model


# -- evaluate -------------------------------------------------------------------------------------

def command_evaluate(args):
    from .evaluate import plot_ced, report
    if args.ced:
        check_outputs([_image_output(args.ced, "ced.png", "--ced")], overwrite=args.overwrite)
        require("matplotlib", "--ced", "plot")      # checked before the work, not after it
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
                            detector_options=_detector_options(args))
        started = time.perf_counter()
        predictions[name] = (pipeline.landmarks_of(images, faces.face_boxes()) if args.detector is None
                             else pipeline.annotated_faces(images, faces.shapes, n_jobs=args.jobs))
        speeds[name] = len(images) / (time.perf_counter() - started)
    result = report(predictions, faces.shapes)
    start = (f"{args.detector} detector (max side {args.max_side or 'its default'}), its start calibrated for "
             "each model"
             if args.detector else "tight boxes of the true points")
    print(f"{args.folder}: {start}; CNN refiner {'on' if args.refine else 'off'}")
    print(result.table())
    speeds = ", ".join(f"{name} {speed:.0f}" for name, speed in speeds.items())
    print(f"\nfaces/s (all faces in one call{', detection included' if args.detector else ''}): {speeds}")
    if args.ced:
        Path(args.ced).parent.mkdir(parents=True, exist_ok=True)
        plot_ced(result.errors(), args.ced)
        print(f"wrote {display_name(args.ced)}", file=sys.stderr)


# -- bench ----------------------------------------------------------------------------------------

def command_bench(args):
    if not (Path.cwd() / "benchmarks" / "run.py").is_file():
        raise ValueError("the benchmark suite lives in the benchmarks/ folder of a source checkout: "
                         "run `cascade bench` from the repository root")
    return subprocess.run([sys.executable, "-m", "benchmarks.run", *args.bench_args]).returncode


# -- applications ---------------------------------------------------------------------------------

def _app_outputs(args, name_of, image_file=True):
    """``(items, outputs)``: the images to process and, for each, where its result goes (None without
    ``-o``). One image given as a file writes to the image file ``-o`` names (``image_file``), else to
    the folder it names; several, or a folder, to ``-o FOLDER`` joined with ``name_of(relative
    path)``, mirroring the inputs' folders."""
    items = _input_images(args)
    if args.output is None:
        return items, [None] * len(items)
    if _one_image_file(args, items):
        return items, [_image_output(args.output, None) if image_file else _folder_output(args.output)]
    folder = _folder_output(args.output)
    return items, [folder / name_of(relative) for _, _, relative in items]


def _one_image_file(args, items):
    """Whether one image was given as a file (or --sample), not as a folder: its results are named
    as one image's, not mirrored into a folder."""
    return len(items) == 1 and all(Path(item).is_file() for item in args.inputs)


def _each_image(args, items, work):
    """``work(name, image, faces, k)`` for each of ``items`` (the ``k``-th), the pipeline made once;
    an image that cannot be read or written is one line on stderr and the others go on. The exit
    status: 0, or 1 if any failed."""
    max_pixels, pipeline, failed = _max_pixels(args), _pipeline(args), 0
    for k, (name, path, _) in enumerate(items):
        try:
            image = _read(path, max_pixels)
            work(name, image, _good_faces(pipeline(image), args), k)
        except (ValueError, OSError, cv2.error) as error:
            print(f"cascade {args.command}: {name}: error: {_error_message(error)}", file=sys.stderr)
            failed = 1
    return failed


def _write_result(output, result):
    output.parent.mkdir(parents=True, exist_ok=True)         # the input's folders, mirrored
    write_image(output, result)
    print(f"wrote {display_name(output)}", file=sys.stderr)


def _drawing_command(args, draw, other_inputs=()):
    """blur and overlay: ``draw(image, faces)`` written for each image."""
    if args.output is None:
        raise UsageError("give -o: an image file for one image, a folder for several")
    items, outputs = _app_outputs(args, lambda relative: relative.with_suffix(".png"))
    check_outputs(outputs, [*_input_paths(items), *other_inputs], args.overwrite)
    return _each_image(args, items, lambda name, image, faces, k: _write_result(outputs[k], draw(image, faces)))


def command_blur(args):
    return _drawing_command(args, lambda image, faces: apps.blur_faces(image, [f.landmarks for f in faces],
                                                                       args.method))


def command_overlay(args):
    overlay = _overlay_picture(args.png, _max_pixels(args)) if args.png else apps.sunglasses()
    return _drawing_command(args, lambda image, faces: apps.overlay_on_faces(image, [f.landmarks for f in faces],
                                                                             overlay),
                            [args.png] if args.png else [])


def command_align(args):
    if args.output is None:
        raise UsageError("give -o FOLDER: the crops are written there")
    items, folders = _app_outputs(args, lambda relative: relative.parent / relative.stem, image_file=False)
    check_outputs([crop for folder in folders for crop in sorted(folder.glob("face_*.png"))],   # those already there
                  _input_paths(items), args.overwrite)

    def work(name, image, faces, k):
        folders[k].mkdir(parents=True, exist_ok=True)
        crops = apps.align_faces(image, [f.landmarks for f in faces], size=args.size) if faces else []
        for index, crop in enumerate(crops):
            write_image(folders[k] / f"face_{index}.png", crop)
        print(f"{name}: wrote {len(crops)} aligned face{'s' * (len(crops) != 1)} to {display_name(folders[k])}"
              if len(crops) else f"{name}: no face found, no crop written", file=sys.stderr)
    return _each_image(args, items, work)


def _overlay_picture(path, max_pixels):
    if not Path(path).is_file():
        raise FileNotFoundError(f"no picture at {display_name(path)}")
    try:
        overlay = read_image(path, max_pixels=max_pixels, unchanged=True)
    except ValueError as error:         # corrupt, or a decompression bomb
        raise ValueError(f"{display_name(path)} is not an image OpenCV can read as an overlay ({error})") from None
    if overlay.ndim != 3 or overlay.shape[2] != 4:
        raise ValueError(f"{display_name(path)} has no alpha channel: the overlay must be a transparent PNG "
                         "(4 channels)")
    return overlay


def command_pose(args):
    items, outputs = _app_outputs(args, lambda relative: relative.with_suffix(".png"))
    check_outputs([o for o in outputs if o is not None], _input_paths(items), args.overwrite)
    found = {}

    def work(name, image, faces, k):
        poses = [apps.head_pose(face.landmarks, image.shape) for face in faces]
        found[name] = [{"face": index, "box": face.box.round(2).tolist(), **pose.as_dict()}
                       for index, (face, pose) in enumerate(zip(faces, poses))]
        if outputs[k] is not None:
            _write_result(outputs[k], apps.draw_pose(image, [f.landmarks for f in faces], poses))
    status = _each_image(args, items, work)
    _print_result(json.dumps(next(iter(found.values()), []) if _one_image_file(args, items) else found, indent=1))
    return status


# -- the parser -----------------------------------------------------------------------------------

#: What each application writes, for its --help.
APP_OUTPUTS = {
    "blur": " One image: -o FILE. Several, or folders: -o FOLDER, one PNG an image, the input folders mirrored.",
    "align": " One image: FOLDER/face_K.png, K the face's index as in predict's JSON. Several, or folders: "
             "FOLDER/PATH/face_K.png, PATH the image's path inside its folder without its suffix.",
    "overlay": " One image: -o FILE. Several, or folders: -o FOLDER, one PNG an image, the input folders mirrored.",
    "pose": " Prints JSON (for several images or folders, an object of these lists keyed by image name), one "
            "entry per face: {\"face\": index, \"box\": the detector's box in pixels, "
            "\"yaw\", \"pitch\", \"roll\": degrees, yaw > 0 turning the face towards the image's right, "
            "pitch > 0 tilting it up, roll > 0 turning it clockwise in the image; \"rotation\": the 3 x 3 "
            "rotation and \"translation\": the position in millimetres of a generic head model in the "
            "camera's frame (x right, y down, z forward from the camera, a pinhole at the image centre whose "
            "focal length is the image width)}; -o also draws the axes on the image (on each image, into -o "
            "FOLDER, for several).",
}
APP_OUTPUT_HELP = {"blur": "the blurred image file, or a folder (several images)",
                   "align": "the folder of crops",
                   "overlay": "the image file, or a folder (several images)",
                   "pose": "also draw the axes into this image file, or folder (several images)"}

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
    _image_options(predict)
    _pipeline_options(predict)
    predict.add_argument("-o", "--output", help="an image file, a .json file or a folder")
    predict.add_argument("--annotate", action="store_true", help="also draw the landmarks (-o FOLDER)")
    predict.add_argument("--pts", action="store_true", help="also write IMAGE_k.pts per face (-o FOLDER)")
    predict.add_argument("--csv", action="store_true", help="also write landmarks.csv (-o FOLDER)")
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
                                "predict's JSON); the box is the tight box of the (smoothed) landmarks, in pixels. "
                                "Prints a summary "
                                "as JSON: {\"frames\", \"fps\", \"faces_per_frame\" (their mean), \"output\"}.")
    video.add_argument("input", metavar="IN", help="a video file OpenCV can read")
    video.add_argument("-o", "--output", required=True, help="the annotated video (.mp4 or .avi)")
    video.add_argument("--landmarks", help="also write per-frame landmarks to this JSON file")
    video.add_argument("--no-smooth", action="store_true", help="turn the One-Euro smoothing off")
    video.add_argument("--redetect-every", type=int, default=15, help="check tracks with the detector every N frames")
    video.add_argument("--quiet", action="store_true", help="no progress bar")
    _pipeline_options(video)
    video.set_defaults(run=command_video)

    fit = commands.add_parser("fit", help="train a landmark model on image + .pts pairs",
                              description="Train a landmark model on the annotated faces of folders (each image "
                              "with its .pts file beside it) and write it as a .npz model file, with the "
                              "calibrations of --calibrate's detectors, so that the pipeline can use it "
                              "(--model FILE). Needs the train extra for --method lbf: pip install "
                              "'cascade-landmarks[train]'.")
    fit.add_argument("folders", nargs="+", metavar="FOLDER", help="folders of images with .pts files beside them")
    fit.add_argument("-o", "--output", required=True, help="the model file to write (.npz)")
    fit.add_argument("--method", default="lbf", choices=[name.lower() for name in ESTIMATORS],
                     help="the estimator: lbf (local binary features, the default), ert (dlib's ensemble of "
                     "regression trees), esr (explicit shape regression, ferns) or asm (active shape model)")
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
    fit.add_argument("--seed", type=int, default=0, help="random_state: the same seed gives the same model "
                     "(default 0)")
    fit.add_argument("--jobs", type=int, default=1, help="training threads")
    fit.add_argument("--overwrite", action="store_true", help="replace the model file if it exists")
    fit.set_defaults(run=command_fit)

    evaluate = commands.add_parser(
        "evaluate", help="NME table and CED plot of models on image + .pts pairs",
        description="Score models on the annotated faces of a folder (image + .pts pairs): inter-ocular and "
        "inter-pupil NME, AUC at 0.08 and failure rates at 0.08 and 0.10, all in percent. Each face starts "
        "from the tight box of its true points, or with --detector from what that detector finds there (the "
        "detection overlapping the face most, IoU 0.2 at least; a face missed counts as a failure), as "
        "the pipeline starts it.")
    evaluate.add_argument("folder", metavar="FOLDER", help="a folder of images with .pts files beside them")
    evaluate.add_argument("--model", nargs="+", default=["default"], help="model names or files")
    evaluate.add_argument("--detector", choices=sorted(DETECTORS),
                          help="start from this detector's answers (default: tight boxes of the true points)")
    evaluate.add_argument("--max-side", type=int, help=MAX_SIDE_HELP)
    evaluate.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                          help="refine with the bundled CNN (default: on)")
    evaluate.add_argument("--jobs", type=int, default=1, help="detector threads")
    evaluate.add_argument("--ced", help="write the CED curves to this image file (needs the plot extra)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace the --ced file if it exists")
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
        app.add_argument("-o", "--output", help=APP_OUTPUT_HELP[name])
        app.set_defaults(run=function)
        if name == "blur":
            app.add_argument("--method", choices=["gaussian", "pixelate"], default="gaussian",
                             help="gaussian: a blur that grows with the face (the default); pixelate: coarse "
                             "blocks")
        elif name == "align":
            app.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
        elif name == "overlay":
            app.add_argument("--png", help="a transparent PNG to place over the eyes (default: drawn sunglasses)")
    for command in commands.choices.values():
        command.set_defaults(usage=command.format_usage())
    return parser


if __name__ == "__main__":
    sys.exit(main())
