"""The negative pool's long-lived workers: the same images whatever their number, across many requests; a bad
image named from a worker; the workers end with the pool."""
import os

import pytest
import torch
from PIL import Image
from torchvision import transforms

from trainers.dpc.negative_pool import NegativePool, _Item, negative_workers

AUGMENT = transforms.Compose([transforms.RandomResizedCrop(16), transforms.RandomHorizontalFlip(),
                              transforms.ToTensor()])


@pytest.fixture
def items(tmp_path):
    generator = torch.Generator().manual_seed(0)
    made = []
    for label in range(6):
        for i in range(3):
            path = str(tmp_path / f"{label}_{i}.png")
            pixels = (torch.rand(24, 24, 3, generator=generator) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(path)
            made.append(_Item(path, label))
    return made


def requests(pool, rounds=5):
    torch.manual_seed(3)
    return [pool.request([r % 6, (r + 2) % 6, (r + 4) % 6]).collect() for r in range(rounds)]


def test_any_number_of_workers_loads_the_same_images(items):
    pools = [NegativePool(items, AUGMENT, num_workers=n) for n in (0, 1, 2)]
    try:
        results = [requests(pool) for pool in pools]
    finally:
        for pool in pools:
            pool.close()
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))
    assert results[0][0].shape == (3, 3, 16, 16) and not torch.equal(results[0][0], results[0][1])


def test_an_unreadable_image_is_named_from_a_worker(items):
    with open(items[0].impath, "wb") as f:
        f.write(b"not an image")
    pool = NegativePool([items[0]], AUGMENT, num_workers=1)
    try:
        with pytest.raises(OSError, match=os.path.basename(items[0].impath)):
            pool.request([0]).collect()
    finally:
        pool.close()


def test_workers_end_with_the_pool(items):
    pool = NegativePool(items, AUGMENT, num_workers=2)
    processes = list(pool.workers.processes)
    pool.close()
    assert all(not process.is_alive() for process in processes)


def test_cpu_training_keeps_a_core_for_the_main_process(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert negative_workers(4, "cpu") == 1 and negative_workers(0, "cpu") == 0
    assert negative_workers(4, "cuda") == 4
