"""A BasicNet with dead filters planted by hand (shared by the sparsity and pruning tests)."""

import torch

from sparsitylib.models import ModelSpec, build_model

WIDTHS = (4, 6, 6, 8, 8, 8, 8)


def planted_network():
    """In C2: filter 1 gamma=0 & beta<0 (dead by both criteria), filter 2 gamma=0 & beta>0 (dead by
    gamma only: outputs the constant 0.5), filter 3 with zero weights and beta<0 (dead by activation
    only: gamma stays 1). In C5: filter 0 with zero weights and beta<0. Every other filter fires: a
    large running variance shrinks the normalized conv output far below beta = 1."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("basicnet", WIDTHS, in_channels=1, num_classes=3))
    model.eval()
    with torch.no_grad():
        for block in model.blocks:
            block.bn.running_mean.zero_()
            block.bn.running_var.fill_(1e4)
            block.bn.bias.fill_(1.0)
        c2, c5 = model.blocks[1], model.blocks[4]
        c2.bn.weight[1], c2.bn.bias[1] = 0.0, -0.2
        c2.bn.weight[2], c2.bn.bias[2] = 0.0, 0.5
        c2.conv.weight[3].zero_()
        c2.bn.bias[3] = -0.1
        c5.conv.weight[0].zero_()
        c5.bn.bias[0] = -1.0
    return model
