import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cascade


def test_public_names_and_compiled_core():
    for name in cascade.__all__:
        assert hasattr(cascade, name), name
    sampling = importlib.import_module("cascade._ext.sampling")
    assert sampling.__file__.endswith((".so", ".pyd")), "the sampler must be the compiled extension"
    assert "Conventions" in cascade.__doc__


def test_a_source_tree_without_its_extensions_says_what_to_do(tmp_path):
    # What `import cascade` meets at the root of a fresh checkout: the bare sources come first.
    # Copied under another name, so that no installed package (an editable one maps its submodules
    # too) can supply the missing extensions: only this tree's own files are found.
    source = Path(cascade.__file__).parent
    shutil.copytree(source, tmp_path / "cascade_source",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "models"))
    result = subprocess.run([sys.executable, "-c", "import cascade_source"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "compiled extensions" in result.stderr and "pip install -e ." in result.stderr


def test_the_terms_ship_beside_the_files_and_in_the_metadata():
    import importlib.metadata

    metadata = importlib.metadata.metadata("cascade-landmarks")
    assert metadata["License-Expression"] == "BSD-3-Clause AND MIT AND LicenseRef-300W-Research-Only"
    assert metadata["Version"] == cascade.__version__
    terms = " ".join((Path(cascade.__file__).parent / "models" / "MODELS-LICENSE.md").read_text().split())
    assert "research (non-commercial) use only" in terms.replace("**", "")
    assert "cascade/models/refiner-68*.onnx" in terms and "ert-68.npz" in terms
    assert "MIT" in (Path(cascade.__file__).parent / "models" / "yunet" / "LICENSE").read_text()


def test_cnn_refine_is_importable():
    assert importlib.import_module("cnn_refine").__doc__


def _package_imports():
    """``{module: modules of cascade it imports}`` read from the sources (relative imports)."""
    graph = {}
    for path in Path(cascade.__file__).parent.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                imported |= {"cnn_refine" for name in names if name and name.split(".")[0] == "cnn_refine"}
        graph[path.stem] = imported
    return graph


def test_the_package_has_no_import_cycle_and_never_imports_the_trainer(tmp_path):
    graph = _package_imports()

    def reachable(module):
        seen, stack = set(), [module]
        while stack:
            for other in graph.get(stack.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return seen

    assert not [module for module in graph if module != "__init__" and module in reachable(module)]
    assert not [module for module, imported in graph.items() if "cnn_refine" in imported]
    assert "detect" not in reachable("base") and "pipeline" not in reachable("base")
    result = subprocess.run([sys.executable, "-c", "import sys, cascade, cascade.cli; "
                             "print(sorted(m for m in sys.modules if m.startswith(('cnn_refine', 'torch'))))"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.stdout.strip() == "[]", result.stderr


def test_predicting_imports_no_training_stack(tmp_path):
    """Loading a model, the pipeline with its refiner, the apps and `cascade predict` need numpy,
    OpenCV, ONNX Runtime and the compiled core only."""
    photo = tmp_path / "photo.png"
    import cv2
    cv2.imwrite(str(photo), cascade.sample_photo())
    script = f"""
import sys, cv2, cascade
from cascade.cli import main
image = cv2.imread({str(photo)!r})
faces = cascade.Pipeline()(image)
cascade.blur_faces(image, [f.landmarks for f in faces])
cascade.load_model("lbf-68").predict(image, faces[0].box, detector="yunet")
assert main(["predict", {str(photo)!r}, "-o", {str(tmp_path / "out")!r}, "--csv", "--quiet"]) == 0
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"sklearn", "scipy", "skimage", "torch", "numba"}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_estimators_speak_scikit_learns_protocol_without_it():
    from sklearn.base import clone

    from cascade import ERT
    model = ERT(n_stages=3, scheme="ibug68")
    assert repr(model) == "ERT(n_stages=3, scheme='ibug68')"
    assert clone(model).get_params() == model.get_params() and model.set_params(n_trees=7) is model
    with pytest.raises(ValueError, match=r"invalid parameters \['trees'\]"):
        model.set_params(trees=7)


def test_every_public_name_is_documented_and_in_the_api_reference():
    import inspect
    listed = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text()
    for name in cascade.__all__:
        obj = getattr(cascade, name)
        assert inspect.getdoc(obj), name
        assert f":: {name}\n" in listed, f"docs/api.rst lacks {name}"
        for attribute, member in vars(obj).items() if isinstance(obj, type) else ():
            if not attribute.startswith("_") and (callable(member) or isinstance(member, property)):
                assert (member.fget if isinstance(member, property) else member).__doc__, f"{name}.{attribute}"
