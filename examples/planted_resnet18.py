"""Write a ResNet-18 checkpoint with dead and dormant channels planted by hand, to try `inspect` on:

    python examples/planted_resnet18.py resnet18_planted.pt
    python -m sparsitylib inspect torchvision:resnet18:num_classes=10 --weights resnet18_planted.pt --data synthetic

BatchNorm statistics are calibrated on the images `inspect --data synthetic` measures on (as after
training on them), so no channel is dead by accident. Planted (gamma, beta) per channel, after that calibration (normalized input ~ N(0, 1)):
- dead, the paper's way (gamma 0, beta < 0): the stem's channel 4, layer1.0.bn1 channels 2 and 5,
  layer3.1.bn1 channel 9;
- rarely firing (gamma 1, beta -3: fires on about 0.1% of positions; Dohare's dormant, not dead):
  layer2.0.bn1 channels 3 and 11;
- weakly firing (gamma 0.02, beta 0: a mean output at about 2% of its layer's; ReDo's 0.025- and
  0.1-dormant, firing on half of its positions): layer2.1.bn1 channel 0.
"""

import sys

import torch
import torchvision
from torch import nn

from sparsitylib.data import load_data

PLANTED = {  # BatchNorm -> {channel: (gamma, beta)}
    "bn1": {4: (0.0, -1.0)},
    "layer1.0.bn1": {2: (0.0, -1.0), 5: (0.0, -1.0)},
    "layer3.1.bn1": {9: (0.0, -1.0)},
    "layer2.0.bn1": {3: (1.0, -3.0), 11: (1.0, -3.0)},
    "layer2.1.bn1": {0: (0.02, 0.0)},
}


@torch.no_grad()
def planted_resnet18(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the calibration batches
    # gray 16 x 16 images, repeated to 3 channels as inspect does for an RGB model
    images = load_data("synthetic", train_size=512, test_size=1, seed=seed).train_images.repeat(1, 3, 1, 1)
    model.train()
    for batch in images.split(128):
        model(batch)
    for name, channels in PLANTED.items():
        bn = model.get_submodule(name)
        for channel, (gamma, beta) in channels.items():
            bn.weight[channel], bn.bias[channel] = gamma, beta
    return model.eval()


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "resnet18_planted.pt"
    torch.save(planted_resnet18().state_dict(), path)
    print(f"wrote {path}")
