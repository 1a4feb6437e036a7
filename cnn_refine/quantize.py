"""int8 copies of the refiner's stages, calibrated on training faces.

    python -m cnn_refine.quantize [--data ../shared/data/300w] [--faces 256]

writes ``refiner-68-int8.onnx`` and ``refiner-68-local-int8.onnx`` beside the
float stages (:data:`cnn_refine.FLOAT_MODELS`). Needs the ``cnn-train``
extra (onnx); running the result needs only onnxruntime.

ONNX Runtime's static quantisation in the operator format (``QLinearConv``,
``QGemm``): weights int8 per output channel, activations uint8 per tensor, their
ranges calibrated (min-max) on the network inputs of ``--faces`` training faces,
each started from its true shape moved by a random similarity (a cascade's
errors' size) and, for the local stage, refined by the int8 global stage first,
as at run time. On this project's CPU (AVX-512 VNNI) a plain convolution stack
runs about three times faster so (docs/notes/2026-12-06-benchmark-passes.md, "The refiner's speed").
``lfpw/testset`` is never read. The float file's metadata is copied, with
``precision: "int8"``.
"""
import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

import cascade
from cascade.crops import network_inputs
from cascade.data import SHARED_300W_TRAIN
from cascade.refiner import INT8_MODELS, Refiner, network_feed
from cascade.shapes import jitter_shapes
from cnn_refine import FLOAT_MODELS


def quantize_stage(float_path, int8_path, images, starts, batch=32):
    """Write the int8 copy of one stage, its activation ranges calibrated on ``images`` at ``starts``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    stage = Refiner(float_path).stages[0]
    inputs = network_inputs(images, starts, stage.template, stage.crop_size, stage.patch_size)

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([network_feed(stage.patch_size, inputs.pixels[k:k + batch], inputs.offsets[k:k + batch])
                                 for k in range(0, len(images), batch)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as work:
        prepared = os.path.join(work, "prepared.onnx")
        quant_pre_process(str(float_path), prepared)
        written = os.path.join(work, "int8.onnx")
        quantize_static(prepared, written, Batches(), quant_format=QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        model = onnx.load(written)
        del model.metadata_props[:]
        for entry in onnx.load(str(float_path)).metadata_props:
            model.metadata_props.add(key=entry.key, value=entry.value)
        model.metadata_props.add(key="precision", value=json.dumps("int8"))
        temporary = Path(str(int8_path) + ".tmp")
        onnx.save(model, str(temporary))
        os.replace(temporary, int8_path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnn_refine.quantize", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/300w", help="the 300-W folder (train folders only are read)")
    parser.add_argument("--faces", type=int, default=256, help="training faces to calibrate on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rng = np.random.default_rng(args.seed)
    faces = cascade.load_faces(*(Path(args.data) / folder for folder in SHARED_300W_TRAIN), lazy=True)
    chosen = rng.choice(len(faces), size=min(args.faces, len(faces)), replace=False)
    images = [faces.images[i] for i in chosen]
    starts = jitter_shapes(faces.shapes[chosen], rng, scale=0.05, shift=0.03, rotation=5.0)
    (global_float, local_float), (global_int8, local_int8) = FLOAT_MODELS, INT8_MODELS
    quantize_stage(global_float, global_int8, images, starts)
    quantize_stage(local_float, local_int8, images, Refiner(global_int8).predict(images, starts))
    logging.getLogger(__name__).info("wrote %s and %s", global_int8, local_int8)


if __name__ == "__main__":
    main()
