"""Write a torchvision ResNet-18 checkpoint with known dead filters, for trying `inspect`.

    .venv/bin/python examples/planted_checkpoint.py resnet18_planted.pt

Channels 2, 5, 9 of layer1.0.bn1, 0 and 7 of layer2.1.bn1 and 1 of layer3.0.bn1 get gamma 0 and
beta -1 (dead after their ReLU, removable); channel 4 of the stem's bn1 too (dead, but it is the
residual stream's channel 4, alive after layer1's blocks: not removable). BatchNorm statistics come
from 512 Fashion-MNIST images repeated to 3 channels, as after training.
"""

import sys

import torch
import torchvision
from torch import nn

from sparsitylib.data import load_data

PLANTED = {"layer1.0.bn1": [2, 5, 9], "layer2.1.bn1": [0, 7], "layer3.0.bn1": [1], "bn1": [4]}

torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    for name, channels in PLANTED.items():
        bn = model.get_submodule(name)
        bn.weight[channels], bn.bias[channels] = 0.0, -1.0
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the calibration batches
    images = load_data("fashion-mnist", train_size=512, test_size=1).train_images.repeat(1, 3, 1, 1)
    model.train()
    for start in range(0, len(images), 128):
        model(images[start : start + 128])
torch.save(model.eval().state_dict(), sys.argv[1] if len(sys.argv) > 1 else "resnet18_planted.pt")
