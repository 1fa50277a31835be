"""The Lightning callback logs every definition's fractions through the Trainer's logger, warns,
and keeps its history across a resumed training (a real Trainer on tiny data)."""

import warnings

import pandas as pd
import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch", reason="the lightning extra is not installed")

from sparsitylib.filters import find_filter_layers  # noqa: E402
from sparsitylib.lightning import DeadFilterCallback  # noqa: E402
from sparsitylib.monitor import FiltersDyingWarning  # noqa: E402

from .planted import WIDTHS, planted_network  # noqa: E402


class Frozen(pl.LightningModule):
    """The planted network, trained with lr 0 and BatchNorm kept in inference mode, so that its
    planted dead filters (C2: 1 and 3 by activation, 1 and 2 by gamma; C5: 0) stay as planted."""

    def __init__(self):
        super().__init__()
        self.model = planted_network()

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        self.model.eval()
        images, labels = batch
        return nn.functional.cross_entropy(self(images), labels)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.0, weight_decay=5e-4)


def _trainer(tmp_path, epochs, callback):
    return pl.Trainer(max_epochs=epochs, callbacks=[callback], logger=pl.loggers.CSVLogger(tmp_path, name="logs", version=0),
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                      default_root_dir=tmp_path, log_every_n_steps=1)


def _loader():
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 1, 16, 16, generator=generator), torch.randint(0, 3, (16,), generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)


def test_the_callback_logs_each_definition_per_layer_and_in_total(tmp_path):
    callback = DeadFilterCallback(torch.randn(32, 1, 16, 16))
    layers = find_filter_layers(Frozen())
    with warnings.catch_warnings():
        warnings.simplefilter("error", FiltersDyingWarning)  # nothing dies after the first (baseline) measurement
        _trainer(tmp_path, 2, callback).fit(Frozen(), _loader())
    logged = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    rows = logged.dropna(subset=["filters/total/activation"])
    assert rows["epoch"].tolist() == [0, 1]
    last = rows.iloc[-1]
    c1, c2, c5, c7 = (layers[i].name for i in (0, 1, 4, 6))  # module paths inside the LightningModule
    assert c2 == "model.features.2.bn"
    assert last[f"filters/{c2}/activation"] == pytest.approx(2 / 6) and last[f"filters/{c2}/gamma"] == pytest.approx(2 / 6)
    assert last[f"filters/{c5}/activation"] == pytest.approx(1 / 8)
    assert last["filters/total/activation"] == pytest.approx(3 / sum(WIDTHS))
    assert last["filters/total/dormant-1%"] == pytest.approx(3 / sum(WIDTHS))
    assert {f"filters/{c1}/dormant-0", f"filters/{c7}/dormant-0.025", "filters/total/dormant-0.1"} <= set(logged.columns)
    assert callback.monitor.history["epoch"].unique().tolist() == [0, 1]  # as Lightning logs them


def test_a_filter_dying_during_training_warns_and_a_resumed_training_keeps_the_history(tmp_path):
    class Dying(Frozen):
        def on_train_epoch_start(self):
            if self.current_epoch == 1:  # as Adam + L2 would: C3's filter 0 dies in the second epoch
                with torch.no_grad():
                    self.model.blocks[2].conv.weight[0].zero_()
                    self.model.blocks[2].bn.bias[0] = -1.0

    callback = DeadFilterCallback(torch.randn(32, 1, 16, 16))
    trainer = _trainer(tmp_path, 2, callback)
    with pytest.warns(FiltersDyingWarning, match=r"epoch 1: 1 more filter\(s\) dead \(model\.features\.3\.bn \+1\).*Likely cause: Adam"):
        trainer.fit(Dying(), _loader())
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    resumed = DeadFilterCallback(torch.randn(32, 1, 16, 16))
    _trainer(tmp_path, 3, resumed).fit(Dying(), _loader(), ckpt_path=tmp_path / "last.ckpt")
    history = resumed.monitor.history
    assert history["epoch"].unique().tolist() == [0, 1, 2]
    c3 = find_filter_layers(Dying())[2].name
    assert resumed.monitor.deaths().set_index(["layer", "filter"]).loc[(c3, 0), "died_at"] == 1
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"][callback.state_key]
    assert len(state["filter_rows"]) == 1 and len(state["rows"]) == 2 * len(find_filter_layers(Dying()))  # bounded
    assert resumed.monitor.filter_history["epoch"].unique().tolist() == [2]


def test_every_n_epochs_is_checked():
    with pytest.raises(ValueError, match="every_n_epochs must be at least 1"):
        DeadFilterCallback(torch.randn(4, 1, 16, 16), every_n_epochs=0)


def test_two_callbacks_need_their_own_prefix_and_each_keeps_its_own_state(tmp_path):
    train = DeadFilterCallback(torch.randn(32, 1, 16, 16), prefix="train_filters/")
    held_out = DeadFilterCallback(torch.randn(32, 1, 16, 16), prefix="val_filters/")
    trainer = pl.Trainer(max_epochs=1, callbacks=[train, held_out], logger=pl.loggers.CSVLogger(tmp_path, name="logs", version=0),
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                         default_root_dir=tmp_path, log_every_n_steps=1)
    trainer.fit(Frozen(), _loader())
    logged = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    assert {"train_filters/total/activation", "val_filters/total/activation"} <= set(logged.columns)
    assert train.state_key != held_out.state_key
    clash = [DeadFilterCallback(torch.randn(4, 1, 16, 16)), DeadFilterCallback(torch.randn(4, 1, 16, 16))]
    with pytest.raises(RuntimeError, match="state_key` must be unique"):  # the same prefix: Lightning says so
        pl.Trainer(max_epochs=1, callbacks=clash, logger=False, accelerator="cpu", devices=1, default_root_dir=tmp_path)


def test_a_module_without_forward_is_measured_through_the_network_it_names(tmp_path):
    class Wrapper(pl.LightningModule):  # keeps its network in self.model and has no forward()
        def __init__(self):
            super().__init__()
            self.model = planted_network()

        def training_step(self, batch, _):
            self.model.eval()
            return nn.functional.cross_entropy(self.model(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def fit(callback):
        pl.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_progress_bar=False, enable_model_summary=False,
                   accelerator="cpu", devices=1, default_root_dir=tmp_path).fit(Wrapper(), _loader())

    from sparsitylib.filters import TraceError

    with pytest.raises(TraceError, match="pass module= its attribute \\('model'\\)"):
        fit(DeadFilterCallback(torch.randn(8, 1, 16, 16)))
    with pytest.raises(ValueError, match="has no sub-module 'net'; pass module= one of \\['model'\\]"):
        fit(DeadFilterCallback(torch.randn(8, 1, 16, 16), module="net"))
    callback = DeadFilterCallback(torch.randn(8, 1, 16, 16), module="model")
    fit(callback)
    assert callback.monitor.history["layer"].iloc[0] == find_filter_layers(planted_network())[0].name


class DyingInTheSecondEpoch(Frozen):
    def on_train_epoch_start(self):
        if self.current_epoch == 1:  # C3's filter 0 dies, on every rank alike
            with torch.no_grad():
                self.model.blocks[2].conv.weight[0].zero_()
                self.model.blocks[2].bn.bias[0] = -1.0


def test_under_ddp_every_rank_logs_the_same_values_as_one_metric_and_rank_zero_alone_warns(tmp_path, capfd):
    callback = DeadFilterCallback(torch.randn(16, 1, 16, 16))
    trainer = pl.Trainer(max_epochs=2, callbacks=[callback], logger=pl.loggers.CSVLogger(tmp_path, name="logs", version=0),
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=2,
                         strategy="ddp_spawn", default_root_dir=tmp_path, log_every_n_steps=1)
    trainer.fit(DyingInTheSecondEpoch(), _loader())  # 2 CPU processes (gloo)
    printed = capfd.readouterr()
    assert "sync_dist" not in printed.err + printed.out  # logged as a distributed metric: nothing to warn about
    assert printed.err.count("epoch 1: 1 more filter(s) dead") == 1  # rank 0 alone warns
    logged = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    assert logged["filters/total/activation"].dropna().tolist() == [pytest.approx(3 / sum(WIDTHS)),
                                                                     pytest.approx(4 / sum(WIDTHS))]
