"""Watch filters die in a PyTorch Lightning training (an optional extra: ``pip install
'sparsitylib[lightning]'``; the rest of sparsitylib does not need Lightning).

    from sparsitylib.lightning import DeadFilterCallback

    trainer = lightning.Trainer(callbacks=[DeadFilterCallback(train_images[:1000])], logger=CSVLogger("logs"))
    trainer.fit(module, loader)

At the end of each training epoch (numbered as Lightning numbers them, from 0, in the monitor's
history too) the callback measures the module's filters on the fixed sample
(``monitor.SparsityMonitor``: every definition of ``dormancy``), logs per layer and in total the
fraction of filters each definition marks through the Trainer's own logger (so TensorBoard, CSV
and W&B loggers all receive them), and raises ``FiltersDyingWarning`` with its advice when more
filters are dead than at the previous measurement. The monitor's history travels in the
Trainer's checkpoints, so a resumed training keeps it: the per-layer rows in full, the per-filter
tables bounded (``filter_history``), each filter's date of death exact. Under DDP the weights are the same on every
rank after each step and the sample is fixed, so every rank measures the same values: they are
logged with ``sync_dist`` (their mean is that value) and only rank 0 warns.
"""

from __future__ import annotations

try:
    import lightning.pytorch as pl
except ImportError as error:  # the optional extra is not installed
    raise ImportError("sparsitylib.lightning needs PyTorch Lightning: pip install 'sparsitylib[lightning]'") from error

import torch

from .filters import TraceError
from .monitor import SparsityMonitor


class DeadFilterCallback(pl.Callback):
    """Measures the LightningModule's filters every ``every_n_epochs`` training epochs.

    Args:
        images: a fixed sample of training images (a few hundred to a thousand is enough).
        every_n_epochs: measure at the end of every n-th training epoch.
        per_layer: log each layer's fractions as well as the totals.
        warn: raise ``FiltersDyingWarning`` when more filters are dead than at the last measurement.
        dormancy: measure the dormant definitions too (not only the paper's two criteria).
        prefix: the logged metrics' names start with it: ``<prefix><layer>/<definition>`` and
            ``<prefix>total/<definition>``, each a fraction of the filters the definition applies to.
            Several callbacks in one Trainer (training and validation images, say) each need their
            own: it also names the callback's state in the checkpoint.
        module: the attribute path of the sub-module to measure (``"model"`` for a LightningModule
            that keeps its network in ``self.model``); None measures the LightningModule itself.
        filter_history: how many of the latest per-filter tables the monitor keeps, in memory and in
            the checkpoint (``SparsityMonitor``'s ``keep_filter_measurements``; each is about 70 bytes
            a filter, 1.8 MB for ResNet-50); None keeps every epoch's. ``monitor.deaths()`` is exact
            either way.
    """

    def __init__(self, images: torch.Tensor, every_n_epochs: int = 1, per_layer: bool = True, warn: bool = True,
                 dormancy: bool = True, prefix: str = "filters/", module: str | None = None,
                 filter_history: int | None = 1):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be at least 1, got {every_n_epochs}")
        if filter_history is not None and (not isinstance(filter_history, int) or filter_history < 0):
            raise ValueError(f"filter_history must be a whole number >= 0 or None (keep all), got {filter_history!r}")
        self.filter_history = filter_history
        self.images, self.every_n_epochs, self.per_layer = images, every_n_epochs, per_layer
        self.warn, self.dormancy, self.prefix, self.module = warn, dormancy, prefix, module
        self.monitor: SparsityMonitor | None = None
        self._restored: dict | None = None

    @property
    def state_key(self) -> str:
        # unique per prefix: Lightning refuses two callbacks with one key ("state_key must be unique"),
        # and their logged names would collide too
        return self._generate_state_key(prefix=self.prefix)

    def on_fit_start(self, trainer, pl_module) -> None:
        target = pl_module
        if self.module is not None:
            try:
                target = pl_module.get_submodule(self.module)
            except AttributeError:
                raise ValueError(f"the LightningModule has no sub-module {self.module!r}; pass module= one of "
                                 f"{[name for name, _ in pl_module.named_children()]}") from None
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        try:  # only rank 0 warns: the ranks' measurements are the same
            self.monitor = SparsityMonitor(target, self.images.to(pl_module.device), optimizer,
                                           warn=self.warn and trainer.is_global_zero, dormancy=self.dormancy,
                                           keep_filter_measurements=self.filter_history)
        except TraceError as error:
            if self.module is not None:
                raise
            children = [name for name, _ in pl_module.named_children()]
            raise TraceError(f"{error} A LightningModule is traced through its forward(); to measure the network "
                             f"it holds, pass module= its attribute ({', '.join(repr(c) for c in children)})") from error
        if self._restored:
            self.monitor.load_state_dict(self._restored)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch  # as Lightning numbers epochs (from 0), in the history and the logs alike
        if self.monitor is None or (epoch + 1) % self.every_n_epochs:
            return
        self.monitor(epoch)
        # under DDP every rank measures the same weights on the same sample: the mean over ranks is that value
        pl_module.log_dict(self.metrics(epoch), on_step=False, on_epoch=True, logger=True, sync_dist=True)

    def metrics(self, epoch: int) -> dict[str, float]:
        """The fractions logged for ``epoch``: per layer (with ``per_layer``) and in total."""
        history = self.monitor.history
        rows = history[history["epoch"] == epoch].rename(columns={"dead": "activation"})
        definitions = [c for c in ("activation", "gamma", "idle-branch", *(c for c in rows if c.startswith("dormant-")),
                                   "grama") if c in rows]
        metrics = {}
        for name in definitions:
            applies = rows[rows[name].notna()]
            if applies.empty:
                continue
            if self.per_layer:
                metrics.update({f"{self.prefix}{row['layer']}/{name}": float(row[name] / row["filters"])
                                for _, row in applies.iterrows()})
            metrics[f"{self.prefix}total/{name}"] = float(applies[name].sum() / applies["filters"].sum())
        return metrics

    def state_dict(self) -> dict:
        return self.monitor.state_dict() if self.monitor is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._restored = state_dict or None
        if self.monitor is not None and self._restored:
            self.monitor.load_state_dict(self._restored)
