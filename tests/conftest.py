import os
from pathlib import Path

import numpy as np
import pytest

DATA_ROOT = Path(os.environ.get("CASCADE_300W",
                               Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "300w"))


def pytest_report_header():
    found = "found" if DATA_ROOT.is_dir() else "MISSING: the tests on real faces will be skipped"
    return f"shared 300-W data ({DATA_ROOT}): {found}"


@pytest.fixture(scope="session")
def data_root():
    """The shared 300-W crops; CI always has them, so there (CI set) a missing folder fails."""
    if not DATA_ROOT.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared 300-W data not found at {DATA_ROOT}")
        pytest.skip(f"shared 300-W data not found at {DATA_ROOT} (set CASCADE_300W)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def test_faces(data_root):
    """The first 24 faces of lfpw/testset, decoded."""
    from cascade import load_faces
    return load_faces(data_root / "lfpw" / "testset", lazy=True).subset(slice(0, 24))


@pytest.fixture(scope="session")
def test_images_and_shapes(test_faces):
    """``test_faces`` decoded once, as (a list of images, shapes)."""
    return list(test_faces.images), test_faces.shapes


@pytest.fixture(scope="session")
def train_faces(data_root):
    """The first 150 faces of lfpw/trainset as (images, shapes): what the estimator tests fit on."""
    from cascade import load_faces
    faces = load_faces(data_root / "lfpw" / "trainset", lazy=True).subset(slice(0, 150))
    return list(faces.images), faces.shapes


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
