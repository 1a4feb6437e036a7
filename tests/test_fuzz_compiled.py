"""The byte-driven fuzz targets (``fuzz_targets.py``) over the corpus atheris built, which
holds its past findings, and over fresh bytes from hypothesis. ``.ci/asan`` runs this file
on extensions built with AddressSanitizer, so a read out of bounds anywhere fails it."""
import zipfile
from pathlib import Path

import pytest
from fuzz_targets import TARGETS
from fuzzing import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from cascade import ERT

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_replays_cleanly(target):
    inputs = sorted((CORPUS / target).iterdir())
    assert len(inputs) >= 10, f"the {target} corpus is missing"
    for path in inputs:
        TARGETS[target](path.read_bytes())


@FUZZ
@given(data=st.binary(max_size=600))
def test_sampler_on_any_bytes(data):
    TARGETS["sampler"](data)


def test_an_archive_member_that_is_not_an_array_is_refused(tmp_path, train_faces):
    """atheris' first finding: NumPy hands a member without the .npy magic over as bytes,
    which the schema check then met as an AttributeError."""
    images, shapes = train_faces
    ERT(n_stages=1, n_trees=2, n_init=1, feature_pool_size=8).fit(images[:10], shapes[:10]).save(
        tmp_path / "model.npz")
    with zipfile.ZipFile(tmp_path / "model.npz") as source, \
            zipfile.ZipFile(tmp_path / "damaged.npz", "w") as target:
        for item in source.infolist():
            damaged = item.filename == "split_u_.npy"
            target.writestr(item.filename, b"not an array" if damaged else source.read(item.filename))
    with pytest.raises(ValueError, match=r"entry 'split_u_' is not an array"):
        ERT.load(tmp_path / "damaged.npz")
