"""A plain PyTorch training loop with the sparsity monitor: Adam + L2 (weight_decay) on BasicNet.

    .venv/bin/python examples/monitor_plain_loop.py [--epochs 4]
"""

import argparse
import warnings

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from sparsitylib.data import load_data
from sparsitylib.models import ModelSpec, build_model
from sparsitylib.monitor import SparsityMonitor

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=4)
args = parser.parse_args()
torch.manual_seed(0)
warnings.simplefilter("always")
warnings.formatwarning = lambda message, category, *_: f"{category.__name__}: {message}\n"

data = load_data("fashion-mnist", train_size=10000, test_size=1000)
loader = DataLoader(TensorDataset(data.train_images, data.train_labels), batch_size=64, shuffle=True)
model = build_model(ModelSpec("basicnet", (16, 32, 32, 64, 64, 128, 128), in_channels=1, num_classes=10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=5e-4)  # L2 on every parameter, BN included

monitor = SparsityMonitor(model, data.train_images[:1000], optimizer)
for epoch in range(1, args.epochs + 1):
    model.train()
    for images, labels in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    monitor(epoch)

history = monitor.history
print(history.pivot(index="layer", columns="epoch", values="dead").loc[model.layer_names].to_string())
print(history[history["epoch"] == args.epochs][["layer", "dead_pct", "gamma_min", "gamma_median"]].round(4).to_string(index=False))
