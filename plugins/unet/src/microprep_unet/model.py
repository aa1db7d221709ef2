"""A residual U-Net for 2D images and 3D volumes.

Layout for ``depth`` levels and ``base_filters`` = ``f``: level ``i`` (0 at full resolution) has
``f * 2**i`` channels. The encoder is one :class:`ResidualBlock` per level with a 2x max-pool
between levels; the decoder goes back up one level at a time (a transposed convolution, or
nearest-neighbour upsampling plus a 3x3 convolution), concatenates the encoder's output of that
level (the skip connection) and runs another residual block. A final 1x1 convolution gives one
logit per class. There is no softmax: losses take logits.

Every pooling halves the spatial size, so each spatial size of the input must be a multiple of
:attr:`UNet.size_multiple` = ``2**(depth - 1)`` (pixels / voxels); crops of such sizes keep the
skip connections aligned. Padding (``same`` 3x3 convolutions) keeps the output the size of the
input.

Dropout: each residual block has a channel dropout (``Dropout2d`` / ``Dropout3d``, zeroing whole
feature maps) between its two convolutions, in every block of the encoder, the bottom and the
decoder. ``dropout=0`` leaves it out.

Example:
    >>> import torch
    >>> net = UNet(in_channels=1, num_classes=3, depth=3, base_filters=4)
    >>> net.size_multiple
    4
    >>> net(torch.zeros(2, 1, 16, 12)).shape
    torch.Size([2, 3, 16, 12])
    >>> vol = UNet(in_channels=2, num_classes=2, dims=3, depth=2, base_filters=4)
    >>> vol(torch.zeros(1, 2, 4, 8, 6)).shape
    torch.Size([1, 2, 4, 8, 6])
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from microprep.errors import UsageError

__all__ = [
    "GROUPS",
    "NORMS",
    "UPSAMPLINGS",
    "ResidualBlock",
    "ShapeError",
    "UNet",
    "count_parameters",
]

log = logging.getLogger(__name__)

Norm = Literal["batch", "instance", "group", "none"]
Upsampling = Literal["transpose", "upsample"]
#: Normalisation layers a block can use (``none``: convolutions get a bias instead).
NORMS: tuple[str, ...] = get_args(Norm)
#: How the decoder doubles the resolution.
UPSAMPLINGS: tuple[str, ...] = get_args(Upsampling)


class ShapeError(UsageError, ValueError):
    """An input tensor's shape does not fit the network (rank, channels or spatial size)."""


#: Channel groups of ``norm="group"`` (fewer where the channel count is not a multiple: the
#: greatest common divisor of the two).
GROUPS = 8
_NORM_LAYERS = (
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
)


def _conv(dims: int) -> type[nn.Conv2d] | type[nn.Conv3d]:
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(kind: str, dims: int, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)
    if kind == "instance":
        if dims == 2:
            return nn.InstanceNorm2d(channels, affine=True)
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(math.gcd(channels, GROUPS), channels)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """Two 3x3 (3x3x3) convolutions with normalisation and ReLU, plus a shortcut.

    ``out = relu(norm(conv(dropout(relu(norm(conv(x)))))) + shortcut(x))``. The shortcut is the
    identity when the channel count is unchanged, else a 1x1 convolution with normalisation (the
    projection, :attr:`shortcut`). Input ``(B, in_channels, *spatial)``, output
    ``(B, out_channels, *spatial)``.

    Example:
        >>> block = ResidualBlock(2, 8, dims=2)
        >>> block(torch.zeros(1, 2, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
        >>> isinstance(block.shortcut, nn.Sequential)
        True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dims: int = 2,
        dropout: float = 0.0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        conv = _conv(dims)
        bias = norm == "none"
        self.conv1 = conv(in_channels, out_channels, 3, padding=1, bias=bias)
        self.norm1 = _norm(norm, dims, out_channels)
        self.dropout: nn.Module = nn.Identity()
        if dropout > 0:
            self.dropout = nn.Dropout2d(dropout) if dims == 2 else nn.Dropout3d(dropout)
        self.conv2 = conv(out_channels, out_channels, 3, padding=1, bias=bias)
        self.norm2 = _norm(norm, dims, out_channels)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv(in_channels, out_channels, 1, bias=bias), _norm(norm, dims, out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.dropout(self.act(self.norm1(self.conv1(x))))
        y = self.norm2(self.conv2(y))
        out: Tensor = self.act(y + self.shortcut(x))
        return out


def _up(kind: str, dims: int, in_channels: int, out_channels: int) -> nn.Module:
    if kind == "transpose":
        if dims == 2:
            return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        return nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        _conv(dims)(in_channels, out_channels, 3, padding=1),
    )


def _check_config(
    in_channels: int,
    num_classes: int,
    dims: int,
    depth: int,
    base_filters: int,
    dropout: float,
    norm: str,
    up: str,
) -> None:
    problems = []
    for name, value in (
        ("in_channels", in_channels),
        ("num_classes", num_classes),
        ("depth", depth),
        ("base_filters", base_filters),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{name} must be a positive integer, not {value!r}")
    if dims not in (2, 3):
        problems.append(f"dims must be 2 or 3, not {dims!r}")
    if not 0.0 <= dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), not {dropout!r}")
    if norm not in NORMS:
        problems.append(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if up not in UPSAMPLINGS:
        problems.append(f"up must be one of {', '.join(UPSAMPLINGS)}, not {up!r}")
    if problems:
        raise UsageError("U-Net: " + "; ".join(problems))


class UNet(nn.Module):
    """Residual U-Net: ``(B, in_channels, *spatial)`` float32 -> ``(B, num_classes, *spatial)``.

    Args:
        in_channels: image channels (1 for grey, 3 for RGB).
        num_classes: output channels, one logit per class (background included).
        dims: 2 for images ``(B, C, H, W)``, 3 for volumes ``(B, C, D, H, W)``.
        depth: number of resolution levels (``depth - 1`` poolings); 1 is a plain residual CNN.
        base_filters: channels at full resolution, doubled at each level down.
        dropout: channel-dropout probability inside every residual block (0 disables it).
        norm: ``batch``, ``instance`` (per-sample, per-channel), ``group`` (:data:`GROUPS`
            channel groups) or ``none``.
        up: ``transpose`` (2x2 transposed convolution, stride 2) or ``upsample`` (nearest
            upsampling plus a 3x3 convolution).

    Attributes:
        size_multiple: ``2**(depth - 1)``; every spatial size of the input must be a multiple.
        config: the constructor arguments, so ``UNet(**net.config)`` builds the same network.

    Raises:
        UsageError: an argument out of range. ``forward`` raises :class:`ShapeError` (a
            ``ValueError``) for an input of the wrong rank, channel count or spatial size.

    Weights use Kaiming (He) normal initialisation for the ReLU layers; normalisation layers start
    as the identity.

    Example:
        >>> net = UNet(in_channels=1, num_classes=2, depth=4, base_filters=8, dropout=0.0)
        >>> net.size_multiple
        8
        >>> net(torch.zeros(1, 1, 24, 40)).shape
        torch.Size([1, 2, 24, 40])
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        dims: int = 2,
        depth: int = 4,
        base_filters: int = 16,
        dropout: float = 0.1,
        norm: str = "batch",
        up: str = "transpose",
    ) -> None:
        super().__init__()
        _check_config(in_channels, num_classes, dims, depth, base_filters, dropout, norm, up)
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "dims": dims,
            "depth": depth,
            "base_filters": base_filters,
            "dropout": float(dropout),
            "norm": norm,
            "up": up,
        }
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.dims = dims
        self.depth = depth
        self.size_multiple = 2 ** (depth - 1)
        widths = [base_filters * 2**i for i in range(depth)]
        block = functools.partial(ResidualBlock, dims=dims, dropout=dropout, norm=norm)
        self.pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)
        self.encoder = nn.ModuleList(
            block(in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)
        )
        # decoder[j] / ups[j] bring level depth-1-j up to level depth-2-j
        levels = range(depth - 2, -1, -1)
        self.ups = nn.ModuleList(_up(up, dims, widths[i + 1], widths[i]) for i in levels)
        self.decoder = nn.ModuleList(block(2 * widths[i], widths[i]) for i in levels)
        self.head = _conv(dims)(widths[0], num_classes, 1)
        self._init_weights()
        log.debug("U-Net %s: %d parameters", self.config, count_parameters(self))

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Conv3d | nn.ConvTranspose2d | nn.ConvTranspose3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, _NORM_LAYERS) and module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.kaiming_normal_(self.head.weight, nonlinearity="linear")
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`ShapeError` unless ``x`` is ``(B, in_channels, *spatial)`` with every
        spatial size a positive multiple of :attr:`size_multiple`."""
        if x.ndim != self.dims + 2:
            expected = "(B, C, H, W)" if self.dims == 2 else "(B, C, D, H, W)"
            raise ShapeError(
                f"U-Net ({self.dims}D) input must be {expected}, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ShapeError(
                f"U-Net input has {x.shape[1]} channels, the network expects {self.in_channels}"
            )
        spatial = tuple(int(s) for s in x.shape[2:])
        if any(s == 0 or s % self.size_multiple for s in spatial):
            fixed = tuple(max(1, -(-s // self.size_multiple)) * self.size_multiple for s in spatial)
            raise ShapeError(
                f"U-Net input spatial size {spatial} must be a multiple of {self.size_multiple} "
                f"(2**(depth-1), depth={self.depth}) in every axis; crop or pad to e.g. {fixed}"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes, *spatial)`` for an input ``(B, in_channels, *spatial)``."""
        self.check_input(x)
        skips: list[Tensor] = []
        for i, block in enumerate(self.encoder):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottom level has no skip
        for up, block in zip(self.ups, self.decoder, strict=True):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        out: Tensor = self.head(x)
        return out


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` by default).

    Example:
        >>> count_parameters(nn.Conv2d(1, 2, 3))
        20
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
