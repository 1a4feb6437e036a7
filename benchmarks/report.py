"""Write BENCHMARKS.md, and the README's results table, from ``benchmarks/results``.

    python -m benchmarks.report [--results benchmarks/results] [--check]

Every figure comes from a results file a benchmark script wrote (its tables, its command and
machine); this script adds headings and a sentence on what each measures, never a number. The
dated experiments behind the chosen settings live in ``docs/notes/``. ``--check`` writes nothing
and fails if either file differs from what it would write (a test runs it).
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_START = "<!-- results: written by python -m benchmarks.report from benchmarks/results; do not edit -->"
README_END = "<!-- end of results -->"

HEADER = """# Benchmarks

Today's results, written by `python -m benchmarks.report` from the files in
[`benchmarks/results/`](benchmarks/results/) (edit those by re-running their scripts with `--out
benchmarks/results`, never by hand). Each table gives the command and machine that made it. Data:
the shared 300-W crops; training on `lfpw/trainset`, `helen/trainset` and `afw`, reporting on
`lfpw/testset` (224 faces), which never chose anything. Speeds are ratios to a peer measured in
the same run where a peer is named: this machine is shared and noisy. The experiments behind the
chosen settings, and earlier passes, are dated in [docs/notes/](docs/notes/).
"""

#: (title, what the results measure, the results files shown under it, in order).
SECTIONS = [
    ("Real time against MediaPipe Face Mesh",
     "Whole photos and a 720p video on one core each, ours (`cascade.Pipeline()`, refined; the video "
     "through `FaceTracker`) against MediaPipe Face Mesh (static-image and video modes, in a virtual "
     "environment of its own) and dlib's HOG detector + 68-point shape_predictor, each in its own "
     "process pinned to one core, taking turns; then accuracy on `lfpw/testset` through a published "
     "468-to-68 point mapping.",
     ["realtime"]),
    ("Start-up, memory and the cost of one call",
     "A fresh process's import and model load, the peak resident memory of the default pipeline on "
     "a 1080p photo, the bundled models' time a face in batches and one at a time, and what their "
     "compressed leaves cost in accuracy and gain in speed.",
     ["runtime.md"]),
    ("Video: jitter on still faces, lag on moving ones",
     "`python -m benchmarks.video_jitter [--no-refine] --out benchmarks/results`: test faces held "
     "still with sensor noise added to every frame, and moving; jitter is the frame-to-frame "
     "movement of the points on a still face, lag the extra error the smoothing adds on a moving "
     "one, both in inter-ocular units.",
     ["video_jitter"]),
    ("The C runtime",
     "`runtime/`, the cascade as a C99 library, which Python's compiled core also calls: its example "
     "program against Python's `predict` on the same grey images from four starts (the largest "
     "difference in pixels), natively, cross-compiled for aarch64 under qemu and as WebAssembly under "
     "node; the time a face against Python's compiled call; the library's size; and Python's calls with "
     "the loop in C against the previous release's Cython loop.",
     ["c_runtime.md"]),
    ("Hard faces held out: the families side by side",
     "`python -m benchmarks.hard_faces`: the 200 training faces the refiner's networks never see, the "
     "cascades retrained without them, each face as it is and made hard (turned, low resolution, "
     "blurred, a quarter hidden, JPEG) plus the split's largest poses; from YuNet (the pipeline) and "
     "from tight boxes, each cascade alone and refined, and the CNN alone. `lfpw/testset` is not read. "
     "CED of the hard kinds pooled: [ced-hard-faces.png](benchmarks/results/ced-hard-faces.png).",
     ["hard_faces.md"]),
    ("A per-face quality score",
     "`python -m cnn_refine.quality`: how well `Face.quality` separates faces above 8 % NME from "
     "the rest (AUROC), on training-folder faces made hard (turned, shrunk, blurred, half hidden, "
     "JPEG) that the fit did not see.",
     ["quality"]),
    ("The bundled models from tight boxes",
     "The suite's protocol (`benchmarks.run`): each test face from the tight box of its true points, "
     "rounded to whole pixels as dlib takes them; the bundled files as they ship.",
     ["table-bundled-compressed-gt.md"]),
    ("Every method, from tight boxes",
     "Every estimator trained by `benchmarks.run` on the training folders (+ mirrors) with its "
     "settings, scored and timed on the same faces and boxes beside dlib and OpenCV's FacemarkLBF.",
     ["table.md"]),
    ("Every method, from a detector's boxes",
     "The same, each face started from dlib's HOG detector's box calibrated to the model; a face the "
     "detector misses counts as a failure.",
     ["table-detector-dlib-hog.md"]),
    ("A corpus on Dask",
     "`python -m benchmarks.corpus`: a corpus of photos landmarked into Parquet shards in this "
     "process and on one and two Dask worker processes.",
     ["corpus.md"]),
    ("How the costs grow",
     "Time a face against the batch size, and training memory against the number of faces.",
     ["scaling-batch.md", "scaling-memory.md"]),
]


def realtime(results):
    """The realtime benchmark's tables (its own Markdown) under its command and machine."""
    machine = json.loads((results / "realtime.json").read_text())["machine"]
    return [_command_line(machine), "", (results / "realtime.md").read_text().strip()]


def video_jitter(results):
    rows = ["| | jitter, raw | jitter, smoothed | lag on moving faces | faces still, moving | frames |",
            "|---|---|---|---|---|---|"]
    for name, label in (("video_jitter-refined.json", "refined (the default)"), ("video_jitter.json", "no refiner")):
        run = json.loads((results / name).read_text())
        rows.append(f"| {label} | {100 * run['jitter_raw']:.3f} % | {100 * run['jitter_smoothed']:.3f} % | "
                    f"{100 * run['lag_moving']:.2f} % | {run['faces']}, {run['moving_faces']} | {run['frames']} |")
    return rows


def quality(results):
    """The held-out figures the quality model's file keeps beside its coefficients."""
    from cascade.quality import DEFAULT_MODEL
    fitted = json.loads(DEFAULT_MODEL.read_text())
    held = fitted["held_out"]
    return [f"Fitted: `{fitted['fitted_on']}`; measured on the others.", "",
            "| held-out faces | above 8 % NME | AUROC, with YuNet's score (the default) | AUROC, the move alone "
            "(other detectors) |", "|---|---|---|---|",
            f"| {held['faces']} | {held['above_8_percent']} | {held['auroc']['yunet']:.3f} "
            f"| {held['auroc']['any']:.3f} |"]


def _command_line(machine):
    versions = ", ".join(f"{name} {machine[key]}" for key, name in (("python", "Python"), ("opencv", "OpenCV"),
                                                                      ("onnxruntime", "ONNX Runtime"))
                         if key in machine)
    return (f"{machine['date']}, {machine.get('processor', 'x86_64')}, {machine['cores']} cores, {versions}. "
            f"Command: `{machine['command']}`")


def section_body(source, results):
    if source.endswith(".md"):
        return [(results / source).read_text().strip()]
    return globals()[source](results)


def benchmarks_md(results):
    lines = [HEADER]
    for title, what, sources in SECTIONS:
        lines += [f"## {title}", "", what, ""]
        for source in sources:
            lines += [*section_body(source, results), ""]
    return "\n".join(lines).rstrip() + "\n"


def readme_results(results):
    """The README's table: the real-time run, ours against the peers, and accuracy."""
    run = json.loads((results / "realtime.json").read_text())
    ours, peer, dlib = run["ours"], run["mediapipe"], run["dlib"]
    lines = [f"One core each, same run ({_command_line(run['machine']).replace('. Command: ', '; ')}):", "",
             "| case | ours (ms) | MediaPipe Face Mesh (ms) | ours / MediaPipe | dlib HOG + shape_predictor (ms) "
             "| ours / dlib |", "|---|---|---|---|---|---|"]
    for case, mine in ours["photos"].items():
        theirs, dlibs = peer["photos"][case]["ms"], dlib["photos"][case]["ms"]
        lines.append(f"| {case} photo | {mine['ms']:.2f} | {theirs:.2f} | {theirs / mine['ms']:.2f}x | "
                     f"{dlibs:.1f} | {dlibs / mine['ms']:.1f}x |")
    mine, theirs = ours["video"]["ms_per_frame"], peer["video"]["ms_per_frame"]
    lines += [f"| 720p video, per frame | {mine:.2f} | {theirs:.2f} | {theirs / mine:.2f}x | - | - |", "",
              "| `lfpw/testset` (224 faces, never used to choose anything) | NME inter-ocular | faces above 8 % |",
              "|---|---|---|"]
    for key, label in (("ours_accuracy", "ours, default pipeline"),
                       ("mediapipe_accuracy", "MediaPipe, 468 points mapped to 68 (approximate)")):
        lines.append(f"| {label} | {run[key]['nme']:.2f} % | {run[key]['above_8']:.1f} % |")
    return lines


def with_readme_results(readme, results):
    start, end = readme.index(README_START), readme.index(README_END)
    return readme[:start] + "\n".join([README_START, *readme_results(results), ""]) + readme[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"),
                        help="the results folder (default: benchmarks/results)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    results = Path(args.results)
    outputs = {ROOT / "BENCHMARKS.md": benchmarks_md(results),
               ROOT / "README.md": with_readme_results((ROOT / "README.md").read_text(), results)}
    stale = [path.name for path, text in outputs.items() if path.read_text() != text]
    if args.check:
        if stale:
            print(f"out of date: {', '.join(stale)} (run python -m benchmarks.report)", file=sys.stderr)
        return int(bool(stale))
    for path, text in outputs.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
