"""ONNX Runtime sessions as the package opens them: on the CPU, with the thread counts asked for.

Both networks the package runs go through here: YuNet (:mod:`cascade.yunet`) and the refiner's
stages (:mod:`cascade.refiner`). A session runs concurrent calls, so threads may share one.
"""
import os
from pathlib import Path


def open_session(path, intra_op_threads=1, inter_op_threads=1, what="model"):
    """An ``onnxruntime.InferenceSession`` of the file ``path``; ``FileNotFoundError`` for a missing
    file ("no {what} at ..."), ``ValueError`` for one ONNX Runtime cannot read ("not a readable ONNX
    model"). Thread counts of 0 leave the choice to ONNX Runtime."""
    import onnxruntime
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    try:
        return onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:      # onnxruntime raises its own exception types for a bad file
        raise ValueError(f"{path} is not a readable ONNX model: {' '.join(str(error).split())}") from None
