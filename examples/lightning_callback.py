"""The dead-filter callback in a PyTorch Lightning training (needs the extra: pip install
'sparsitylib[lightning]'): Adam + L2 (weight_decay) on BasicNet, Fashion-MNIST, CSV logger.

    .venv/bin/python examples/lightning_callback.py [--epochs 4] [--logs scratch/lightning_logs] [--held-out] [--ddp N]

Prints the head of the CSV logger's metrics file: every definition's fraction of dead filters in
total, per epoch (per layer too in the file: filters/<layer>/<definition>). ``--held-out`` adds a
second callback measuring on test images (``val_filters/``); ``--ddp N`` trains on N CPU processes
(gloo): every rank measures the same weights on the same sample, so each value is logged once.
"""

import argparse
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from sparsitylib.data import load_data
from sparsitylib.lightning import DeadFilterCallback
from sparsitylib.models import ModelSpec, build_model


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = build_model(ModelSpec("basicnet", (16, 32, 32, 64, 64, 128, 128), in_channels=1, num_classes=10))

    def forward(self, images):
        return self.model(images)

    def training_step(self, batch, _):
        images, labels = batch
        loss = F.cross_entropy(self(images), labels)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2, weight_decay=5e-4)  # L2 on every parameter, BN included


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--logs", default="scratch/lightning_logs", help="the CSV logger's folder (scratch/ is ignored by git)")
    parser.add_argument("--held-out", action="store_true", help="a second callback on 1,000 test images")
    parser.add_argument("--ddp", type=int, default=0, help="train on this many CPU processes (DDP, gloo)")
    args = parser.parse_args()
    pl.seed_everything(0, verbose=False)
    warnings.simplefilter("always")
    warnings.formatwarning = lambda message, category, *_: f"{category.__name__}: {message}\n"
    data = load_data("fashion-mnist", train_size=10000, test_size=1000)
    loader = DataLoader(TensorDataset(data.train_images, data.train_labels), batch_size=64, shuffle=True)
    # a version named before training: under DDP the spawned processes write the log, not this one
    version = "_".join(["run", *(["held_out"] if args.held_out else []), *([f"ddp{args.ddp}"] if args.ddp else [])])
    logger = pl.loggers.CSVLogger(args.logs, name="basicnet_adam_l2", version=version)
    callbacks = [DeadFilterCallback(data.train_images[:1000])]
    if args.held_out:
        callbacks.append(DeadFilterCallback(data.test_images[:1000], prefix="val_filters/"))
    distributed = dict(strategy="ddp_spawn", devices=args.ddp, accelerator="cpu") if args.ddp else {}
    trainer = pl.Trainer(max_epochs=args.epochs, callbacks=callbacks, logger=logger, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, **distributed)
    trainer.fit(Classifier(), loader)
    metrics = pd.read_csv(Path(logger.log_dir) / "metrics.csv")
    columns = ["epoch", "train_loss"] + [c for c in metrics if "/total/" in c]
    print(f"{Path(logger.log_dir) / 'metrics.csv'}: {len(metrics.columns)} columns; the totals:")
    print(metrics.dropna(subset=["filters/total/activation"])[columns].round(4).to_string(index=False))
