import pytest
import torch

from sparsitylib.data import DatasetNotFoundError, load_data, write_fake_cifar


def test_synthetic_is_held_as_normalized_channels_last_tensors():
    data = load_data("synthetic")
    assert data.train_images.shape == (2000, 1, 16, 16) and data.test_images.shape == (500, 1, 16, 16)
    assert data.train_images.is_contiguous(memory_format=torch.channels_last)
    assert data.train_images.mean().abs() < 1e-4 and (data.train_images.std() - 1).abs() < 1e-3
    assert data.num_classes == 10 and not data.augment


def test_epoch_batches_cover_every_image_once_in_a_seeded_order():
    data = load_data("synthetic", train_size=100)
    batches = list(data.train_batches(batch_size=32, seed=3, epoch=0))
    assert [len(labels) for _, labels in batches] == [32, 32, 32, 4]
    seen = torch.cat([images for images, _ in batches])
    assert sorted(seen.sum(dim=(1, 2, 3)).tolist()) == pytest.approx(sorted(data.train_images.sum(dim=(1, 2, 3)).tolist()))
    again = list(data.train_batches(batch_size=32, seed=3, epoch=0))
    other_epoch = list(data.train_batches(batch_size=32, seed=3, epoch=1))
    assert torch.equal(batches[0][1], again[0][1])
    assert not torch.equal(batches[0][0], other_epoch[0][0])


def test_classes_subset_is_relabelled_in_the_given_order():
    full = load_data("synthetic", normalize=False)
    data = load_data("synthetic", classes=(7, 2), normalize=False)
    assert data.num_classes == 2
    assert set(data.train_labels.tolist()) == {0, 1}
    # class 7 became label 0: its images are exactly the ones labelled 7 in the full set
    assert torch.equal(data.train_images[data.train_labels == 0], full.train_images[full.train_labels == 7])


def test_train_size_is_a_seeded_subset():
    a = load_data("synthetic", train_size=50, seed=1)
    b = load_data("synthetic", train_size=50, seed=1)
    c = load_data("synthetic", train_size=50, seed=2)
    assert torch.equal(a.train_images, b.train_images) and not torch.equal(a.train_images, c.train_images)
    with pytest.raises(ValueError, match="train_size=5000 is larger than the 2000 training images of synthetic"):
        load_data("synthetic", train_size=5000)


@pytest.mark.parametrize("name,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_is_read_from_torchvisions_on_disk_format(tmp_path, name, num_classes):
    write_fake_cifar(tmp_path, name, per_file=30)
    data = load_data(name, root=tmp_path)
    train_files = 5 if name == "cifar10" else 1
    assert data.train_images.shape == (30 * train_files, 3, 32, 32)
    assert data.test_images.shape == (30, 3, 32, 32)
    assert data.num_classes == num_classes and data.augment  # CIFAR augments by default


def test_augmentation_crops_and_flips_whole_batches(tmp_path):
    write_fake_cifar(tmp_path, "cifar10", per_file=8)
    data = load_data("cifar10", root=tmp_path, normalize=False)
    plain = load_data("cifar10", root=tmp_path, normalize=False, augment=False)
    augmented, labels = next(data.train_batches(batch_size=40, seed=0, epoch=0))
    original, labels_plain = next(plain.train_batches(batch_size=40, seed=0, epoch=0))
    assert torch.equal(labels, labels_plain) and augmented.shape == original.shape
    assert not torch.equal(augmented, original)
    # every output pixel comes from the batch's images or from the zero padding
    values = set(original.flatten().tolist()) | {0.0}
    assert set(augmented.flatten().tolist()) <= values


def test_missing_dataset_names_every_way_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load_data("cifar100", root=tmp_path)
    message = str(error.value)
    assert "cifar-100-python" in message and "download=True" in message and "SPARSITYLIB_DATA" in message


def test_missing_fashion_mnist_message(tmp_path, monkeypatch):
    monkeypatch.setattr("sparsitylib.data.DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_data("fashion-mnist", root=tmp_path)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_data("mnist")


def test_fashion_mnist_subset(fashion_mnist_available):
    data = load_data("fashion-mnist", train_size=500, test_size=200, classes=(0, 1, 2))
    assert data.train_images.shape == (500, 1, 28, 28) and data.test_images.shape == (200, 1, 28, 28)
    assert set(data.train_labels.tolist()) == {0, 1, 2}


def test_test_size_is_an_upper_bound():
    data = load_data("synthetic", classes=(0, 1), test_size=400)
    assert len(data.test_labels) == 100  # two of ten classes in the 500 test images


def test_a_truncated_cifar_batch_names_the_file_and_how_to_replace_it(tmp_path):
    from sparsitylib.data import DatasetError

    folder = write_fake_cifar(tmp_path, "cifar10", per_file=8)
    damaged = folder / "data_batch_3"
    damaged.write_bytes(damaged.read_bytes()[:500])
    with pytest.raises(DatasetError, match="data_batch_3 is damaged") as error:
        load_data("cifar10", root=tmp_path)
    assert "good copy" in str(error.value)


def test_a_cifar_folder_with_fewer_images_than_train_size_is_reported_before_training(tmp_path):
    from sparsitylib.data import DatasetError

    write_fake_cifar(tmp_path, "cifar10", per_file=8)  # 40 training images
    with pytest.raises(DatasetError, match=r"train_size=100 is larger than the 40 training images of cifar10"):
        load_data("cifar10", root=tmp_path, train_size=100)
