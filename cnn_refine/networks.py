"""The refiner's two networks, in PyTorch (training only; inference runs their ONNX export).

Both read grey pixels of the face warped onto the template (:mod:`cnn_refine.crop`;
raw grey levels, standardised inside the network) and the current shape's
``offsets`` from the template ``(n, L, 2)`` (crop pixels / ``S``), and both
give a correction of every point in crop pixels / ``S``.

- :class:`GlobalNet` reads the whole face at 112 px: a stem and three stages of
  MobileNet-style residual blocks (depthwise 3x3 then pointwise 1x1: most of
  the reach of a plain 3x3 convolution for a fraction of its multiply-adds)
  down to 7x7, then two fully connected layers that keep where each feature
  was and also read the offsets (the deformation the crop cannot show).
- :class:`LocalNet` reads, at twice that resolution, one small patch centred on
  each current point (``(n, L, P, P)``, :func:`cnn_refine.crop.warp_patches`).
  One small encoder is shared by all points; each point's own linear head says
  where its landmark lies in its patch, and one fully connected layer over all
  patches and the offsets adds what the shape as a whole implies.

The last layer of each starts at zero ("no correction"): a random last layer
throws the points far off at first, and the gradient that pulls them back
kills the head's units.
"""
import torch
from torch import nn

#: Offsets are fractions of the crop (a few hundredths); scaled to the order of the features.
OFFSET_SCALE = 10.0


def standardise(crops):
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    std = crops.std(dim=(1, 2, 3), keepdim=True)
    return (crops - mean) / (std + 1.0)


def separable(channels_in, channels_out, stride):
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, stride, 1, groups=channels_in, bias=False),
        nn.BatchNorm2d(channels_in),
        nn.Conv2d(channels_in, channels_out, 1, bias=False),
        nn.BatchNorm2d(channels_out),
    )


class Block(nn.Module):
    """A residual depthwise-separable block."""

    def __init__(self, channels_in, channels_out, stride):
        super().__init__()
        self.body = separable(channels_in, channels_out, stride)
        self.skip = (nn.Identity() if stride == 1 and channels_in == channels_out else
                     nn.Sequential(nn.AvgPool2d(stride), nn.Conv2d(channels_in, channels_out, 1, bias=False),
                                   nn.BatchNorm2d(channels_out)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def encoder(widths, side):
    """Stem (stride 2), then per width a block at stride 1 and one at stride 2 to the next, then
    one more block: ``(m, 1, side, side)`` -> ``(m, widths[-1] * (side / 2 ** len(widths)) ** 2)``."""
    layers = [nn.Conv2d(1, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for channels_in, channels_out in zip(widths[:-1], widths[1:]):
        layers += [Block(channels_in, channels_in, 1), Block(channels_in, channels_out, 2)]
    layers += [Block(widths[-1], widths[-1], 1), nn.Flatten()]
    return nn.Sequential(*layers), widths[-1] * (side // 2 ** len(widths)) ** 2


def zero_last_layer(layer):
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class GlobalNet(nn.Module):
    patch_size = None       # it reads the whole crop

    def __init__(self, crop_size, n_landmarks, widths=(32, 64, 128, 128), hidden=256):
        super().__init__()
        self.n_landmarks = n_landmarks
        self.features, n_features = encoder(widths, crop_size)
        self.head = nn.Sequential(nn.Linear(n_features + 2 * n_landmarks, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                  nn.Linear(hidden, n_landmarks * 2))
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
        # tens of thousands of 24 px patches this runs 1.7x faster in ONNX Runtime than the global
        # stage's depthwise blocks (slow on small maps), and it did better on the held-out faces
        side = patch_size // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 4, 4), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * side * side, n_features), nn.BatchNorm1d(n_features), nn.ReLU())
        L = n_landmarks
        self.point_heads = nn.Conv1d(L * n_features, L * 2, 1, groups=L)    # one linear map per point
        self.shape_head = nn.Sequential(nn.Linear(L * n_features + 2 * L, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                        nn.Linear(hidden, 2 * L))
        zero_last_layer(self.point_heads)
        zero_last_layer(self.shape_head[-1])

    def forward(self, patches, offsets):
        n, L, P = patches.shape[0], self.n_landmarks, self.patch_size
        features = self.encoder(standardise(patches).reshape(n * L, 1, P, P)).reshape(n, L * self.n_features)
        per_point = self.point_heads(features[:, :, None]).reshape(n, L, 2)
        whole_shape = self.shape_head(torch.cat([features, offsets.flatten(1) * OFFSET_SCALE], dim=1))
        return per_point + whole_shape.reshape(n, L, 2)
