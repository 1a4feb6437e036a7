import importlib

import cascade


def test_public_names_and_compiled_core():
    for name in cascade.__all__:
        assert hasattr(cascade, name), name
    sampling = importlib.import_module("cascade._ext.sampling")
    assert sampling.__file__.endswith((".so", ".pyd")), "the sampler must be the compiled extension"
    assert "Conventions" in cascade.__doc__


def test_cnn_refine_is_importable():
    assert importlib.import_module("cnn_refine").__doc__
