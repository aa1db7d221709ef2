"""The batched torch path (skipped when torch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from microprep.augment import parse_noise
from microprep.augment.geometry2d import d4
from microprep.augment.torch_batch import batch_d4, batch_noise, torch_available
from microprep.errors import UsageError

torch = pytest.importorskip("torch")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("kind", ["gaussian", "poisson", "salt_and_pepper", "contrast", "blur"])
def test_dtype_shape_device_kept(kind: str, dtype: str) -> None:
    assert torch_available()
    batch = torch.full((3, 1, 32, 32), 100 if dtype == "uint8" else 0.4, device=DEVICE)
    batch = batch.to(getattr(torch, dtype))
    g = torch.Generator(device=DEVICE).manual_seed(0)
    out = batch_noise(batch, parse_noise(kind), generator=g)
    assert out.dtype == batch.dtype and out.shape == batch.shape and out.device == batch.device
    if dtype == "float32":
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_seeded_and_statistics() -> None:
    batch = torch.full((4, 256, 256), 0.4, device=DEVICE)
    specs = parse_noise("poisson:dose=50")
    a = batch_noise(batch, specs, generator=torch.Generator(device=DEVICE).manual_seed(1))
    b = batch_noise(batch, specs, generator=torch.Generator(device=DEVICE).manual_seed(1))
    assert torch.equal(a, b)
    counts = (a * 50).double()
    assert float(counts.mean()) == pytest.approx(20.0, rel=0.02)
    assert float(counts.var()) == pytest.approx(20.0, rel=0.05)


def test_d4_matches_numpy_and_moves_labels_with_images() -> None:
    image = torch.arange(2 * 3 * 5 * 7).reshape(2, 3, 5, 7).to(DEVICE)
    labels = image[:, 0]
    for k in range(8):
        moved_image, moved_labels = batch_d4([image, labels], k)
        expected = d4(image.cpu().numpy(), k, axes=(2, 3))
        np.testing.assert_array_equal(moved_image.cpu().numpy(), expected)
        assert torch.equal(moved_labels, moved_image[:, 0])


def test_unknown_kind_refused() -> None:
    with pytest.raises(UsageError):
        batch_noise(torch.zeros(1, 4, 4), parse_noise("jitter"))
