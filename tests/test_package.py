import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import cascade


def test_public_names_and_compiled_core():
    for name in cascade.__all__:
        assert hasattr(cascade, name), name
    sampling = importlib.import_module("cascade._ext.sampling")
    assert sampling.__file__.endswith((".so", ".pyd")), "the sampler must be the compiled extension"
    assert "Conventions" in cascade.__doc__


def test_a_source_tree_without_its_extensions_says_what_to_do(tmp_path):
    # What `import cascade` meets at the root of a fresh checkout: the bare sources come first.
    source = Path(cascade.__file__).parent
    shutil.copytree(source, tmp_path / "cascade",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "models"))
    result = subprocess.run([sys.executable, "-c", "import cascade"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "compiled extensions" in result.stderr and "pip install -e ." in result.stderr


def test_the_terms_ship_beside_the_files_and_in_the_metadata():
    import importlib.metadata

    import cnn_refine
    metadata = importlib.metadata.metadata("cascade-landmarks")
    assert metadata["License-Expression"] == "BSD-3-Clause AND MIT AND LicenseRef-300W-Research-Only"
    assert metadata["Version"] == cascade.__version__
    for folder in (Path(cascade.__file__).parent / "models", Path(cnn_refine.__file__).parent / "models"):
        terms = " ".join((folder / "MODELS-LICENSE.md").read_text().replace("**", "").split())
        assert "research (non-commercial) use only" in terms
    assert "MIT" in (Path(cascade.__file__).parent / "models" / "yunet" / "LICENSE").read_text()


def test_cnn_refine_is_importable():
    assert importlib.import_module("cnn_refine").__doc__
