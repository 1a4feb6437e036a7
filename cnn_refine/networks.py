"""The refiner's two networks, in PyTorch (training only; inference runs their ONNX export).

Both read grey pixels of the face warped onto the template (:mod:`cascade.crops`;
raw grey levels in 4 x 4 cells, standardised inside the network) and the current shape's
``offsets`` from the template ``(n, L, 2)`` (crop pixels / ``S``), and both
give a correction of every point in crop pixels / ``S``.

Both are plain stacks of convolutions, batch norms and ReLUs, which ONNX Runtime
runs about three times faster in int8 (:mod:`cnn_refine.quantize`) than in
float32 on a CPU with VNNI; depthwise-separable blocks do about as well in
float32 for the same multiply-adds but gain nothing from int8 (docs/notes/2026-12-06-benchmark-passes.md).

- :class:`GlobalNet` reads the whole face at 112 px: a "patchify" layer (a 1x1
  convolution over each 4x4 cell's 16 pixels), then 3x3 convolutions down to 7x7, then two fully connected
  layers that keep where each feature was and also read the offsets (the
  deformation the crop cannot show); about 24 M multiply-adds.
- :class:`LocalNet` reads, at twice that resolution, one small patch centred on
  each current point (:func:`cascade.crops.sample_grids`).
  One small encoder is shared by all points; each point's own linear head says
  where its landmark lies in its patch, and one fully connected layer over all
  patches and the offsets adds what the shape as a whole implies.

The last layer of each starts at zero ("no correction"): a random last layer
throws the points far off at first, and the gradient that pulls them back
kills the head's units.
"""
import torch
from torch import nn

from cascade.crops import CELL

#: Offsets are fractions of the crop (a few hundredths); scaled to the order of the features.
OFFSET_SCALE = 10.0
#: The channels of a pixel input: a cell's pixels ("Pixels in cells" in :mod:`cascade.crops`).
CELLS = CELL * CELL


def standardise(crops):
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    std = crops.std(dim=(1, 2, 3), keepdim=True)
    return (crops - mean) / (std + 1.0)


def conv_bn_relu(channels_in, channels_out, kernel, stride, padding=0):
    return [nn.Conv2d(channels_in, channels_out, kernel, stride, padding), nn.BatchNorm2d(channels_out), nn.ReLU()]


def zero_last_layer(layer):
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class GlobalNet(nn.Module):
    patch_size = None       # it reads the whole crop

    def __init__(self, crop_size, n_landmarks, hidden=256):
        super().__init__()
        self.n_landmarks = n_landmarks
        side = crop_size // CELL // 4          # cells, then two stride-2 convolutions
        self.features = nn.Sequential(
            *conv_bn_relu(CELLS, 32, 1, 1), *conv_bn_relu(32, 32, 3, 1, 1), *conv_bn_relu(32, 64, 3, 2, 1),
            *conv_bn_relu(64, 64, 3, 1, 1), *conv_bn_relu(64, 128, 3, 2, 1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(128 * side * side + 2 * n_landmarks, hidden), nn.BatchNorm1d(hidden),
                                  nn.ReLU(), nn.Linear(hidden, n_landmarks * 2))
        zero_last_layer(self.head[-1])

    def forward(self, crops, offsets):
        x = self.features(standardise(crops))
        x = torch.cat([x, offsets.flatten(1) * OFFSET_SCALE], dim=1)
        return self.head(x).reshape(-1, self.n_landmarks, 2)


class LocalNet(nn.Module):
    def __init__(self, n_landmarks, patch_size, n_features=64, hidden=256):
        super().__init__()
        self.n_landmarks, self.patch_size, self.n_features = n_landmarks, patch_size, n_features
        # 4x4 cells to 16 channels at stride 4 (no overlap), then two plain 3x3 convolutions: on
        # tens of thousands of 24 px patches this runs 1.7x faster in ONNX Runtime than depthwise
        # blocks (slow on small maps), and it did better on the held-out faces
        side = patch_size // CELL // 2
        self.encoder = nn.Sequential(
            *conv_bn_relu(CELLS, 16, 1, 1), *conv_bn_relu(16, 32, 3, 1, 1), *conv_bn_relu(32, 64, 3, 2, 1),
            nn.Flatten(),
            nn.Linear(64 * side * side, n_features), nn.BatchNorm1d(n_features), nn.ReLU())
        L = n_landmarks
        self.point_heads = nn.Conv1d(L * n_features, L * 2, 1, groups=L)    # one linear map per point
        self.shape_head = nn.Sequential(nn.Linear(L * n_features + 2 * L, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                        nn.Linear(hidden, 2 * L))
        zero_last_layer(self.point_heads)
        zero_last_layer(self.shape_head[-1])

    def forward(self, patches, offsets):
        n, L, side = patches.shape[0], self.n_landmarks, self.patch_size // CELL
        features = self.encoder(standardise(patches).reshape(n * L, CELLS, side, side)).reshape(n, L * self.n_features)
        per_point = self.point_heads(features[:, :, None]).reshape(n, L, 2)
        whole_shape = self.shape_head(torch.cat([features, offsets.flatten(1) * OFFSET_SCALE], dim=1))
        return per_point + whole_shape.reshape(n, L, 2)
