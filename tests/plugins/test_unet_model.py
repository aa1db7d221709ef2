"""The U-Net plugin's network: shapes in 2D and 3D, the size check, residual shortcuts, init."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from microprep.errors import PrepError, UsageError  # noqa: E402
from microprep_unet import ResidualBlock, ShapeError, UNet, count_parameters  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_one_thread() -> Iterator[None]:
    """Seeded, and one CPU thread: tiny tensors gain nothing from more, and cores are shared."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("dims", "depth", "spatial"),
    [
        (2, 1, (5, 3)),
        (2, 2, (6, 10)),
        (2, 3, (8, 12)),
        (2, 4, (16, 8)),
        (3, 1, (3, 2, 5)),
        (3, 2, (4, 6, 2)),
        (3, 3, (4, 8, 4)),
    ],
)
def test_output_shape(dims: int, depth: int, spatial: tuple[int, ...]) -> None:
    net = UNet(in_channels=2, num_classes=3, dims=dims, depth=depth, base_filters=2)
    x = torch.randn(2, 2, *spatial)
    y = net(x)
    assert y.shape == (2, 3, *spatial)
    assert y.dtype == torch.float32
    assert net.size_multiple == 2 ** (depth - 1)


@pytest.mark.parametrize("up", ["transpose", "upsample"])
@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
def test_variants_keep_shape(up: str, norm: str) -> None:
    net = UNet(in_channels=1, num_classes=2, depth=3, base_filters=2, norm=norm, up=up)
    assert net(torch.randn(2, 1, 8, 4)).shape == (2, 2, 8, 4)


@pytest.mark.parametrize("spatial", [(12, 16), (16, 10), (0, 16)])
def test_spatial_size_not_a_multiple_is_refused(spatial: tuple[int, int]) -> None:
    net = UNet(in_channels=1, num_classes=2, depth=4, base_filters=2)
    with pytest.raises(ValueError, match=r"multiple of 8") as info:
        net(torch.zeros(1, 1, *spatial))
    assert isinstance(info.value, ShapeError)
    assert isinstance(info.value, PrepError)


def test_wrong_rank_and_channels_are_refused() -> None:
    net = UNet(in_channels=3, num_classes=2, dims=3, depth=2, base_filters=2)
    with pytest.raises(ShapeError, match=r"\(B, C, D, H, W\)"):
        net(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ShapeError, match="1 channels, the network expects 3"):
        net(torch.zeros(1, 1, 4, 4, 4))


def test_group_norm_groups_divide_the_channels() -> None:
    net = UNet(in_channels=1, num_classes=2, depth=2, base_filters=6, norm="group")
    groups = {(m.num_groups, m.num_channels) for m in net.modules() if isinstance(m, nn.GroupNorm)}
    assert groups == {(2, 6), (4, 12)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dims": 4},
        {"depth": 0},
        {"base_filters": 0},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"norm": "layer"},
        {"up": "bicubic"},
        {"num_classes": 0},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"in_channels": 1, "num_classes": 2, **kwargs}
    with pytest.raises(UsageError, match=next(iter(kwargs))):
        UNet(**args)  # type: ignore[arg-type]


def test_projection_shortcut_only_when_channels_change() -> None:
    assert isinstance(ResidualBlock(4, 4, dims=2).shortcut, nn.Identity)
    proj = ResidualBlock(2, 6, dims=3).shortcut
    assert isinstance(proj, nn.Sequential)
    conv = proj[0]
    assert isinstance(conv, nn.Conv3d)
    assert conv.kernel_size == (1, 1, 1)
    assert (conv.in_channels, conv.out_channels) == (2, 6)
    # every encoder and decoder block of the U-Net changes the channel count
    net = UNet(in_channels=1, num_classes=2, depth=3, base_filters=4)
    blocks = [*net.encoder, *net.decoder]
    assert all(isinstance(b.shortcut, nn.Sequential) for b in blocks)


def test_identity_shortcut_carries_the_input() -> None:
    """With both 3x3 convolutions zeroed the block reduces to relu(x): the skip path exists."""
    block = ResidualBlock(3, 3, dims=2, dropout=0.0).eval()
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv2.weight.zero_()
    x = torch.randn(2, 3, 5, 4)
    assert torch.allclose(block(x), torch.relu(x))


def test_projection_shortcut_carries_the_input() -> None:
    block = ResidualBlock(2, 3, dims=2, dropout=0.0).eval()
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv2.weight.zero_()
        proj = block.shortcut[0]
        proj.weight.zero_()
        proj.weight[0, 0] = 1.0  # output channel 0 copies input channel 0
        proj.weight[2, 1] = -1.0  # output channel 2 is minus input channel 1
    x = torch.randn(1, 2, 4, 4)
    out = block(x)
    assert torch.allclose(out[:, 0], torch.relu(x[:, 0]), atol=1e-4)
    assert torch.allclose(out[:, 1], torch.zeros(1, 4, 4))
    assert torch.allclose(out[:, 2], torch.relu(-x[:, 1]), atol=1e-4)


def test_parameter_count_grows_with_base_filters() -> None:
    counts = [
        count_parameters(UNet(in_channels=1, num_classes=2, depth=3, base_filters=f))
        for f in (2, 4, 8)
    ]
    assert counts[0] < counts[1] < counts[2]
    # the 3x3 convolutions dominate: doubling the width multiplies the count by almost 4
    assert 3.0 < counts[2] / counts[1] <= 4.0


def test_parameter_count_of_a_single_block_by_hand() -> None:
    block = ResidualBlock(2, 3, dims=2, norm="batch")
    # conv1 2->3 3x3, conv2 3->3 3x3, projection 2->3 1x1 (no biases), three batch norms (w, b)
    expected = 2 * 3 * 9 + 3 * 3 * 9 + 2 * 3 + 3 * 2 * 3
    assert count_parameters(block) == expected
    block.conv2.weight.requires_grad_(False)
    assert count_parameters(block) == expected - 81
    assert count_parameters(block, trainable_only=False) == expected


def test_depth_adds_levels() -> None:
    shallow = UNet(in_channels=1, num_classes=2, depth=2, base_filters=4)
    deep = UNet(in_channels=1, num_classes=2, depth=4, base_filters=4)
    assert len(deep.encoder) == 4
    assert len(deep.decoder) == len(deep.ups) == 3
    assert count_parameters(deep) > count_parameters(shallow)


def test_gradients_reach_every_parameter() -> None:
    net = UNet(in_channels=1, num_classes=3, depth=3, base_filters=4, dropout=0.0)
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    net(x).square().mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name


def test_dropout_sits_in_every_block_and_only_acts_in_training() -> None:
    net = UNet(in_channels=1, num_classes=2, depth=3, base_filters=4, dropout=0.5)
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout2d)]
    assert len(drops) == 2 * 3 - 1
    x = torch.randn(1, 1, 8, 8)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
    assert not any(
        isinstance(m, nn.Dropout2d)
        for m in UNet(in_channels=1, num_classes=2, depth=2, dropout=0.0).modules()
    )


def test_kaiming_initialisation() -> None:
    net = UNet(in_channels=1, num_classes=2, depth=2, base_filters=16)
    conv = net.decoder[0].conv2  # 16 -> 16, 3x3: fan_out = 16 * 9
    std = float(conv.weight.detach().std())
    assert abs(std - math.sqrt(2.0 / (16 * 9))) < 0.1 * math.sqrt(2.0 / (16 * 9))
    bn = net.encoder[0].norm1
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_config_rebuilds_the_same_network() -> None:
    net = UNet(in_channels=2, num_classes=4, dims=3, depth=2, base_filters=3, norm="instance")
    copy = UNet(**net.config)
    copy.load_state_dict(net.state_dict())
    x = torch.randn(1, 2, 4, 4, 2)
    net.eval()
    copy.eval()
    assert torch.equal(net(x), copy(x))
