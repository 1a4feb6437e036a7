"""Derive the bundled YuNet file from OpenCV's: the same network, its input size left open.

OpenCV's model zoo ships YuNet (``face_detection_yunet_2023mar.onnx``) with a fixed
640 x 640 input, which ``cv2.FaceDetectorYN`` rewrites at run time; ONNX Runtime, which
runs it here, takes the sizes the file declares. The network itself has no fixed size
(its reshapes take -1, its upsamplings scales), so this script only renames the input's
height and width, and the outputs' anchor counts, to free dimensions and drops the
intermediate shapes inferred for 640 x 640. Weights and operators are unchanged.

    python tools/yunet_dynamic.py ../shared/models/yunet/face_detection_yunet_2023mar.onnx \\
        cascade/models/yunet/face_detection_yunet_2023mar_dynamic.onnx

Needs the ``onnx`` package (the ``cnn-train`` extra); the package itself only reads the result.
"""
import argparse

import onnx


def dynamic_yunet(model):
    """``model`` (an ``onnx.ModelProto`` of YuNet) with free input and anchor dimensions."""
    graph = model.graph
    (image,) = graph.input
    for axis, name in ((2, "height"), (3, "width")):
        image.type.tensor_type.shape.dim[axis].dim_param = name
    for output in graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="OpenCV's face_detection_yunet_2023mar.onnx")
    parser.add_argument("target", help="the file to write")
    args = parser.parse_args(argv)
    onnx.save(dynamic_yunet(onnx.load(args.source)), args.target)


if __name__ == "__main__":
    main()
