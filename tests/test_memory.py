"""Landmarking a face in a very large photo reads only the pixels it needs: no copy or grey
conversion of the whole image, detection included (the peak resident memory of the process
is watched)."""

import cv2
import numpy as np
import pytest

from benchmarks.timing import peak_growth_mib
import cascade
from cascade import ASM, ESR, Pipeline, load_model
from cascade.refiner import Refiner


@pytest.fixture(scope="module")
def landmarkers(train_faces):
    try:
        peak_growth_mib(lambda: None)
    except OSError:
        pytest.skip("peak memory cannot be reset here (needs Linux /proc/self/clear_refs)")
    images, shapes = train_faces
    refiner = Refiner()
    return {"ert-68": load_model("ert-68"), "lbf-68": load_model("lbf-68"),
            "ESR": ESR(n_stages=2, n_ferns=5, n_init=2, random_state=0).fit(images[:20], shapes[:20]),
            "ASM": ASM(n_levels=2, face_size=64).fit(images[:20], shapes[:20]),
            "pipeline + refiner": Pipeline(refiner=refiner).landmarks_in, "refiner": refiner,
            "pipeline": Pipeline(refiner=refiner)}


@pytest.mark.parametrize("channels", [1, 3])
def test_a_face_in_an_8000_pixel_photo_costs_no_whole_image_copy(landmarkers, channels):
    image = np.full((8000, 8000) if channels == 1 else (8000, 8000, 3), 90, np.uint8)   # resident
    face = cv2.resize(cascade.sample_photo(), (2000, 2000))
    image[4000:6000, 1000:3000] = face if channels == 3 else cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    one_copy = image.nbytes / 2 ** 20
    box = np.array([[3000.0, 3100.0, 3400.0, 3500.0]])
    shapes = landmarkers["ert-68"].predict([image], box)
    calls = {name: (lambda m=model: m.predict([image], box)) for name, model in landmarkers.items()
             if name not in ("refiner", "pipeline + refiner", "pipeline")}
    calls["refiner"] = lambda: landmarkers["refiner"].predict([image], shapes)
    calls["pipeline + refiner"] = lambda: landmarkers["pipeline + refiner"](image, box)
    calls["pipeline"] = lambda: landmarkers["pipeline"](image)        # detection too: one face found
    assert len(calls["pipeline"]()) == 1
    for name, call in calls.items():
        call()                                      # first call: lazy set-up is not per image
        growth = peak_growth_mib(call)
        assert growth < 16, f"{name} grew the peak memory by {growth:.0f} MiB (one copy: {one_copy:.0f})"
    assert peak_growth_mib(lambda: image.copy()) > 0.9 * one_copy      # the yardstick works
