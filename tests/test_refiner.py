"""The CNN refiner: the bundled network on real faces, the standalone mode, bad models and inputs."""
import json
import shutil

import numpy as np
import pytest

from cascade import load_model, nme
from cascade.crops import (
    CELL,
    MAX_GREY_PIXELS,
    cell_grid,
    crop_transforms,
    from_crop,
    grey_faces,
    sample_grids,
    to_crop,
)
from cascade.refiner import Refiner
from cnn_refine import GLOBAL_MODEL, LOCAL_MODEL
from cascade.shapes import flip_image, flip_shapes, jitter_shapes, tight_boxes


@pytest.fixture(scope="module")
def refiner():
    return Refiner()


@pytest.mark.parametrize("model, gain", [("lbf-68", 0.85), ("ert-68", 0.9)])
def test_bundled_model_refines_a_cascade_to_a_lower_error(refiner, test_images_and_shapes, model, gain):
    """On these 24 faces: LBF 3.84 % -> 3.39 % (global stage) -> 3.08 % (+ local stage), ERT
    3.44 % -> 3.24 % -> 2.94 % (measured): each stage must help."""
    images, truth = test_images_and_shapes
    start = load_model(model).predict(images, tight_boxes(truth))
    refined = refiner.predict(images, start)
    global_only = Refiner(GLOBAL_MODEL).predict(images, start)
    before, after = nme(start, truth).mean(), nme(refined, truth).mean()
    assert after < gain * before, (before, after)
    assert after < 0.95 * nme(global_only, truth).mean() < 0.95 * before


def test_a_perturbed_truth_is_pulled_back(refiner, test_images_and_shapes, rng):
    images, truth = test_images_and_shapes
    start = jitter_shapes(truth, rng, scale=0.04, shift=0.03, rotation=4.0)
    start += rng.normal(0.0, 1.5, start.shape)
    refined = refiner.predict(images, start)
    before, after = nme(start, truth), nme(refined, truth)
    assert after.mean() < 0.5 * before.mean()
    assert (after < before).mean() > 0.9


def test_standalone_from_boxes_is_a_landmarker(refiner, test_images_and_shapes):
    images, truth = test_images_and_shapes
    predicted = refiner.predict_from_boxes(images, tight_boxes(truth))
    assert predicted.shape == truth.shape
    assert nme(predicted, truth).mean() < 0.035          # 3.15 % measured
    with pytest.raises(ValueError, match="boxes: face 0 has collapsed points"):
        refiner.predict_from_boxes(images[:1], [[10.0, 10.0, 11.0, 11.0]])


def test_one_face_in_one_face_out_and_batches_agree(test_images_and_shapes):
    images, truth = test_images_and_shapes
    small_batches = Refiner(batch_size=5)
    one = small_batches.predict(images[0], truth[0])
    many = small_batches.predict(images, truth)
    assert one.shape == (68, 2)
    np.testing.assert_allclose(Refiner().predict(images, truth), many, atol=1e-4)
    np.testing.assert_allclose(one, many[0], atol=1e-4)
    assert small_batches.predict([], np.zeros((0, 68, 2))).shape == (0, 68, 2)


def test_colour_and_grey_images_give_the_same_answer(refiner, test_images_and_shapes):
    import cv2
    images, truth = test_images_and_shapes
    colour = [cv2.cvtColor(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for im in images[:3]]
    grey = [cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) for im in images[:3]]
    np.testing.assert_allclose(refiner.predict(colour, truth[:3]), refiner.predict(grey, truth[:3]), atol=1e-3)


def pictures(cells, side):
    """Cell-ordered samples ``(n, k, side * side)`` back as ``(n, k, side, side)`` pictures."""
    n, k = cells.shape[:2]
    grid = cells.reshape(n, k, CELL, CELL, side // CELL, side // CELL)
    return grid.transpose(0, 1, 4, 2, 5, 3).reshape(n, k, side, side)


def test_cell_grid_visits_each_pixel_once_cell_by_cell():
    grid = cell_grid(8) + 3.5                        # whole pixels 0..7
    assert sorted(map(tuple, grid.T.astype(int))) == [(x, y) for x in range(8) for y in range(8)]
    np.testing.assert_array_equal(grid[:, :4], [[0, 4, 0, 4], [0, 0, 4, 4]])    # pixel (0, 0) of each cell
    assert not cell_grid(8).flags.writeable


def test_crop_round_trip_is_exact():
    template = np.array([[10.0, 10.0], [50.0, 12.0], [30.0, 40.0]])
    shapes = np.array([[[100.0, 80.0], [180.0, 60.0], [150.0, 140.0]]])
    A, t = crop_transforms(shapes, template)
    np.testing.assert_allclose(from_crop(np.einsum("nlj,nij->nli", shapes, A) + t[:, None], A, t), shapes)
    crops = sample_grids([np.zeros((5, 7), np.uint8)], from_crop(np.full((1, 1, 2), 31.5), A, t), A, 64)
    assert crops.shape == (1, 1, 64 * 64) and crops.dtype == np.float32


def test_crops_and_patches_are_the_warped_image(test_images_and_shapes):
    """A crop is OpenCV's warp of the image by the crop similarity; a patch is that crop read
    around the point (where the point sits on the crop's half-pixel grid; to a grey level or
    two, as OpenCV interpolates on a 1/32 px grid); colour reads as grey; points off the image
    repeat its border."""
    import cv2
    images, truth = test_images_and_shapes
    stage = Refiner(LOCAL_MODEL).stages[0]
    grey = cv2.cvtColor(images[0], cv2.COLOR_BGR2GRAY)
    A, t = crop_transforms(truth[:1], stage.template)
    side = stage.crop_size
    crop = pictures(sample_grids([grey], from_crop(np.full((1, 1, 2), (side - 1) / 2), A, t), A, side), side)[0, 0]
    warped = cv2.warpAffine(grey, np.concatenate([A[0], t[0][:, None]], axis=1), (side, side),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(crop - warped).max() <= 4 and np.abs(crop - warped).mean() < 0.1
    points = np.round(to_crop(truth[:1], A, t) - 0.5) + 0.5        # P even: the grid is then whole pixels
    centres = from_crop(points, A, t)
    patches = pictures(sample_grids([grey], centres, A, 24), 24)[0]
    corners = (points[0] - 11.5).astype(int)
    cut = np.stack([crop[top:top + 24, left:left + 24] for left, top in corners])
    assert np.abs(patches - cut).max() <= 2 and np.abs(patches - cut).mean() < 0.1
    colour = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    np.testing.assert_allclose(pictures(sample_grids([colour], centres, A, 24), 24)[0], patches, atol=1.01)
    far = sample_grids([np.full((20, 30), 7, np.uint8)], centres + 1e4, A, 24)
    assert (far == 7).all()


def test_grey_neighbourhoods_change_nothing_but_the_cost(refiner, test_images_and_shapes):
    """The refiner reads each colour face from its grey neighbourhood: the same answer as from the
    whole image turned grey; a big face in a big photo is read in colour, also the same."""
    import cv2
    images, truth = test_images_and_shapes
    faces, offsets = grey_faces(images[:4], truth[:4])
    assert all(face.ndim == 2 and face.size <= image.size / 3 for face, image in zip(faces, images))
    assert (offsets >= 0).all()
    grey = [cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) for im in images[:4]]
    np.testing.assert_allclose(refiner.predict(images[:4], truth[:4]), refiner.predict(grey, truth[:4]), atol=0.02)
    scale = np.sqrt(2 * MAX_GREY_PIXELS / images[0].shape[0] / images[0].shape[1]) * 2
    big = cv2.resize(images[0], None, fx=scale, fy=scale)
    (kept,), offset = grey_faces([big], truth[:1] * scale)
    assert kept.ndim == 3 and np.shares_memory(kept, big) and (offset >= 0).all()
    from_colour = refiner.predict(big, truth[0] * scale)
    from_grey = refiner.predict(cv2.cvtColor(big, cv2.COLOR_BGR2GRAY), truth[0] * scale)
    assert nme(from_colour[None], from_grey[None])[0] < 0.005         # grey levels rounded elsewhere


def test_stages_must_agree_and_exist(tmp_path):
    with pytest.raises(ValueError, match="no model"):
        Refiner([])
    with pytest.raises(TypeError, match="model_path"):
        Refiner(5)
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from cascade.refiner import FORMAT, FORMAT_VERSION
    from cnn_refine.train import build_network, export
    five = tmp_path / "five.onnx"
    points = np.array([[10.0, 12], [22, 12], [16, 18], [11, 24], [21, 24]])
    export(build_network("global", 32, 5).eval(), five,
           {"format": FORMAT, "format_version": FORMAT_VERSION, "crop_size": 32, "n_landmarks": 5,
            "template": points.tolist(), "mean_shape": (points / 32).tolist()})
    assert Refiner(five).n_landmarks == 5
    with pytest.raises(ValueError, match="different numbers of landmarks"):
        Refiner([GLOBAL_MODEL, five])


@pytest.mark.parametrize("changes, message", [
    ({"patch_size": 16}, "patch_size 16"),
    ({"patch_size": None}, "inputs \\['crop_cells', 'offsets'\\]"),
    ({"patch_size": 22}, "multiple of 4"),
    ({"patch_size": -1}, "patch_size"),
])
def test_a_local_stage_must_match_its_patches(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        Refiner(_with_metadata(tmp_path, model_path=LOCAL_MODEL, **changes))


@pytest.mark.parametrize("bad, message", [
    ("wrong landmarks", "68"),
    ("nan", "NaN"),
    ("mismatch", "faces"),
    ("collapsed", "face 1 has collapsed points"),
])
def test_mismatched_inputs_are_refused(refiner, test_images_and_shapes, bad, message):
    images, truth = test_images_and_shapes
    collapsed = truth.copy()
    collapsed[1] = collapsed[1].mean(axis=0) + 0.1 * (collapsed[1] - collapsed[1].mean(axis=0)) / collapsed[1].std()
    shapes = {"wrong landmarks": truth[:, :5], "nan": np.where(np.arange(68)[None, :, None] == 3, np.nan, truth),
              "mismatch": truth[:2], "collapsed": collapsed}[bad]
    with pytest.raises(ValueError, match=message):
        refiner.predict(images[:3] if bad == "mismatch" else images, shapes)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="n_iterations"):
        Refiner(n_iterations=0)
    with pytest.raises(ValueError, match="intra_op_threads"):
        Refiner(intra_op_threads=-1)


def test_missing_and_corrupt_model_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no refiner model"):
        Refiner(tmp_path / "none.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x80\x04not an onnx model at all")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        Refiner(garbage)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(GLOBAL_MODEL.read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        Refiner(truncated)


def _with_metadata(tmp_path, model_path=GLOBAL_MODEL, **changes):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(model_path))
    for entry in list(model.metadata_props):
        if entry.key in changes:
            if changes[entry.key] is None:
                model.metadata_props.remove(entry)
            else:
                entry.value = json.dumps(changes[entry.key])
    path = tmp_path / "changed.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"format_version": 99}, "newer"),
    ({"format_version": 2}, "retrain the stage"),
    ({"format": "something-else"}, "format"),
    ({"crop_size": 64}, "crop_size 64"),
    ({"n_landmarks": 5}, "template must be 5"),
    ({"template": [[0, 0]] * 67}, "template must be 68"),
    ({"mean_shape": None}, "lacks"),
])
def test_inconsistent_metadata_is_refused(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        Refiner(_with_metadata(tmp_path, **changes))


def test_a_model_without_metadata_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(GLOBAL_MODEL))
    del model.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="not a refiner model"):
        Refiner(path)


@pytest.mark.parametrize("model_path", [GLOBAL_MODEL, LOCAL_MODEL])
def test_onnx_matches_pytorch_on_real_faces(test_images_and_shapes, tmp_path, model_path):
    """The exporter's own check: a freshly built network (weights drawn at random, so that
    it answers more than the zero its last layer starts at) exported and run by both runtimes."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from cnn_refine.train import build_network, check_export, export, refine_with_torch
    images, truth = test_images_and_shapes
    stage = Refiner(model_path).stages[0]
    net = build_network("global" if stage.patch_size is None else "local", stage.crop_size, 68, stage.patch_size)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    net.eval()
    path = tmp_path / "fresh.onnx"
    export(net, path, {"crop_size": stage.crop_size})
    assert [p.name for p in tmp_path.iterdir()] == ["fresh.onnx"]       # no temporary left behind
    _, corrections = refine_with_torch(net, images[:8], truth[:8], stage.template, stage.crop_size)
    assert np.abs(corrections).max() > 1e-3
    assert check_export(net, path, images[:8], truth[:8], stage.template, stage.crop_size) <= 1e-4


def test_user_model_path_is_used(tmp_path):
    copy = tmp_path / "mine.onnx"
    shutil.copy(GLOBAL_MODEL, copy)
    assert Refiner(copy).model_path == copy
    assert [stage.path for stage in Refiner([copy, LOCAL_MODEL]).stages] == [copy, LOCAL_MODEL]


def test_threads_sharing_one_refiner_get_the_serial_answers(refiner, test_images_and_shapes):
    from concurrent.futures import ThreadPoolExecutor
    images, truth = test_images_and_shapes
    serial = [refiner.predict(images[i:i + 1], truth[i:i + 1]) for i in range(len(images))]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda i: refiner.predict(images[i:i + 1], truth[i:i + 1]), range(len(images))))
    for one, other in zip(serial, threaded):
        np.testing.assert_array_equal(one, other)


def test_mirrored_refining_is_symmetric_and_no_worse(refiner, test_images_and_shapes):
    """mirror=True averages each stage's answers on the face and on its mirror image, so the mirror
    image gets the mirrored answer (to interpolation at the grey regions' edges); on these faces it
    is no worse than one pass (lfpw/testset from tight boxes, ert-68: see benchmarks/results)."""
    images, truth = test_images_and_shapes
    start = load_model("ert-68").predict(images, tight_boxes(truth))
    both = Refiner(mirror=True)
    answer = both.predict(images, start)
    widths = np.array([image.shape[1] for image in images])
    mirrored = both.predict([flip_image(image).copy() for image in images], flip_shapes(start, widths))
    assert np.abs(flip_shapes(mirrored, widths) - answer).max() < 0.05
    assert nme(answer, truth).mean() < nme(refiner.predict(images, start), truth).mean() + 0.001
    assert "mirror=True" in repr(both)
    with pytest.raises(TypeError, match="mirror must be True or False"):
        Refiner(mirror="yes")


def test_mirroring_needs_a_mirror_map(tmp_path):
    """Stages of a point count with no known mirror map cannot be mirrored: averaging a face with
    its mirror image would then pair left points with right ones."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from cascade.refiner import FORMAT, FORMAT_VERSION
    from cnn_refine.train import build_network, export
    seven = tmp_path / "seven.onnx"
    points = np.array([[10.0, 12], [22, 12], [16, 18], [11, 24], [21, 24], [16, 8], [16, 28]])
    export(build_network("global", 32, 7).eval(), seven,
           {"format": FORMAT, "format_version": FORMAT_VERSION, "crop_size": 32, "n_landmarks": 7,
            "template": points.tolist(), "mean_shape": (points / 32).tolist()})
    assert not Refiner(seven).mirror
    with pytest.raises(ValueError, match="mirror map of 7 points"):
        Refiner(seven, mirror=True)
