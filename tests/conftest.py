import os

import pytest
import torch

from sparsitylib.data import DatasetNotFoundError, load_data

# Small thread count keeps timings stable when tests run beside other work; under pytest-xdist
# (``make test`` runs one worker per core) each worker gets its share of the cores.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch):
    """Every test gets its own run store, so no test sees another's runs."""
    monkeypatch.setenv("SPARSITYLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def fashion_mnist_available():
    """Skip (or, under CI, fail) when Fashion-MNIST is not on this machine."""
    try:
        load_data("fashion-mnist", train_size=10, test_size=10)
    except DatasetNotFoundError as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have Fashion-MNIST (make installs it): {error}")
        pytest.skip("Fashion-MNIST is not installed here (make test installs it)")
