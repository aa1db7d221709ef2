"""The U-Net plugin's losses: limits, hand-computed values, the valid mask, class weights."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from microprep.errors import UsageError  # noqa: E402
from microprep_unet import (  # noqa: E402
    CombinedLoss,
    UNet,
    class_weights,
    cross_entropy,
    jaccard2,
    parse_loss,
    soft_dice,
)


@pytest.fixture(autouse=True)
def _seed_one_thread() -> Iterator[None]:
    """Seeded, and one CPU thread: tiny tensors gain nothing from more, and cores are shared."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _target(shape: tuple[int, ...], k: int) -> torch.Tensor:
    """Class indices where every class occurs."""
    t = torch.randint(0, k, shape)
    t.view(-1)[:k] = torch.arange(k)
    return t


def _confident(target: torch.Tensor, k: int, scale: float = 40.0) -> torch.Tensor:
    """Logits +scale on the target class, -scale elsewhere: (B, K, *spatial)."""
    onehot = torch.nn.functional.one_hot(target, k).movedim(-1, 1).float()
    return scale * (2.0 * onehot - 1.0)


@pytest.mark.parametrize("shape", [(2, 6, 5), (2, 3, 4, 5)])
def test_perfect_prediction_scores_zero(shape: tuple[int, ...]) -> None:
    target = _target(shape, 3)
    logits = _confident(target, 3)
    assert float(cross_entropy(logits, target)) < 1e-6
    assert float(soft_dice(logits, target)) < 1e-5
    assert float(jaccard2(logits, target)) < 1e-5


@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 4, 4, 8)])
def test_wrong_prediction_scores_high(shape: tuple[int, ...]) -> None:
    target = _target(shape, 3)
    logits = _confident((target + 1) % 3, 3)
    assert float(cross_entropy(logits, target)) > 50.0
    # eps=1 leaves 1/(n_y + n_p + 1) per class: tiny for 40+ pixels per class
    assert float(soft_dice(logits, target)) > 0.95
    assert float(jaccard2(logits, target)) > 0.95
    assert float(soft_dice(logits, target)) <= 1.0


def _hand_example() -> tuple[torch.Tensor, torch.Tensor, list[float], list[int]]:
    """One image, 2 classes, 1x3 pixels; returns logits, target, p(class 1), target list."""
    a = [1.0, 0.0, 2.0]  # class-0 logits
    b = [0.0, 0.5, -1.0]  # class-1 logits
    logits = torch.tensor([[[a], [b]]])  # (1, 2, 1, 3)
    labels = [0, 1, 1]
    p1 = [1.0 / (1.0 + math.exp(ai - bi)) for ai, bi in zip(a, b, strict=True)]
    return logits, torch.tensor([[labels]]), p1, labels


@pytest.mark.parametrize("eps", [0.0, 0.5, 1.0])
def test_jaccard2_matches_hand_computation(eps: float) -> None:
    logits, target, p1, labels = _hand_example()
    scores = []
    for k in (0, 1):
        p = [q if k == 1 else 1.0 - q for q in p1]
        y = [1.0 if t == k else 0.0 for t in labels]
        inter = sum(pi * yi for pi, yi in zip(p, y, strict=True))
        y2 = sum(yi * yi for yi in y)
        p2 = sum(pi * pi for pi in p)
        scores.append((inter + eps) / (y2 + p2 - inter + eps))
    expected = 1.0 - (scores[0] + scores[1]) / 2.0
    assert float(jaccard2(logits, target, eps=eps)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("eps", [0.0, 1.0])
def test_dice_matches_hand_computation(eps: float) -> None:
    logits, target, p1, labels = _hand_example()
    scores = []
    for k in (0, 1):
        p = [q if k == 1 else 1.0 - q for q in p1]
        y = [1.0 if t == k else 0.0 for t in labels]
        inter = sum(pi * yi for pi, yi in zip(p, y, strict=True))
        scores.append((2.0 * inter + eps) / (sum(y) + sum(p) + eps))
    expected = 1.0 - (scores[0] + scores[1]) / 2.0
    assert float(soft_dice(logits, target, eps=eps)) == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_matches_hand_computation_with_weights() -> None:
    logits, target, p1, labels = _hand_example()
    w = [0.5, 2.0]
    probs = [1.0 - p1[i] if t == 0 else p1[i] for i, t in enumerate(labels)]
    num = sum(-w[t] * math.log(q) for t, q in zip(labels, probs, strict=True))
    den = sum(w[t] for t in labels)
    assert float(cross_entropy(logits, target, weight=w)) == pytest.approx(num / den, rel=1e-5)
    plain = sum(-math.log(q) for q in probs) / 3
    assert float(cross_entropy(logits, target)) == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize("shape", [(2, 6, 6), (2, 3, 4, 4)])
def test_one_hot_target_gives_the_same_losses(shape: tuple[int, ...]) -> None:
    target = _target(shape, 3)
    onehot = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float()
    logits = torch.randn(shape[0], 3, *shape[1:])
    valid = torch.rand(shape) > 0.3
    w = [0.2, 1.0, 3.0]
    for fn in (cross_entropy, soft_dice, jaccard2):
        kwargs = {"weight": w} if fn is cross_entropy else {}
        a = fn(logits, target, valid=valid, **kwargs)
        b = fn(logits, onehot, valid=valid, **kwargs)
        assert float(a) == pytest.approx(float(b), rel=1e-6)


@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 4, 6, 6)])
def test_masked_pixels_do_not_count(shape: tuple[int, ...]) -> None:
    target = _target(shape, 3)
    logits = torch.randn(shape[0], 3, *shape[1:])
    valid = torch.rand(shape) > 0.4
    changed_target = torch.where(valid, target, torch.full_like(target, 255))
    noise = torch.randn_like(logits) * 10.0
    changed_logits = torch.where(valid.unsqueeze(1), logits, noise)
    combined = CombinedLoss({"ce": 1.0, "dice": 1.0, "jaccard2": 1.0}, class_weight=[1, 2, 3])
    for fn in (cross_entropy, soft_dice, jaccard2):
        before = float(fn(logits, target, valid=valid))
        after = float(fn(changed_logits, changed_target, valid=valid))
        assert before == pytest.approx(after, rel=1e-6)
        # and the mask does act: without it the loss differs
        assert float(fn(logits, target)) != pytest.approx(before, rel=1e-3)
    before_total, _ = combined(logits, target, valid)
    after_total, _ = combined(changed_logits, changed_target, valid)
    assert float(before_total) == pytest.approx(float(after_total), rel=1e-6)


def test_masked_pixels_get_no_gradient() -> None:
    target = _target((1, 6, 6), 2)
    logits = torch.randn(1, 2, 6, 6, requires_grad=True)
    valid = torch.zeros(1, 6, 6, dtype=torch.bool)
    valid[:, :3] = True
    total, _ = CombinedLoss(parse_loss("ce+dice+jaccard2"))(logits, target, valid)
    total.backward()
    assert logits.grad is not None
    assert float(logits.grad[:, :, 3:].abs().max()) == 0.0
    assert float(logits.grad[:, :, :3].abs().max()) > 0.0


def test_nothing_valid_gives_zero_cross_entropy() -> None:
    logits = torch.randn(1, 2, 4, 4)
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert float(cross_entropy(logits, torch.zeros(1, 4, 4, dtype=torch.long), valid=valid)) == 0


def test_bad_targets_are_refused() -> None:
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        cross_entropy(logits, torch.full((1, 4, 4), 2))
    with pytest.raises(ValueError, match="integer dtype"):
        soft_dice(logits, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="does not match"):
        jaccard2(logits, torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="valid mask"):
        cross_entropy(logits, torch.zeros(1, 4, 4, dtype=torch.long), valid=torch.ones(4, 4))
    with pytest.raises(ValueError, match="class weight"):
        cross_entropy(logits, torch.zeros(1, 4, 4, dtype=torch.long), weight=[1.0, 1.0, 1.0])


def test_class_weights_favour_rare_classes() -> None:
    counts = [10_000, 1_000, 10, 0, 100]
    for method in ("inverse_sqrt", "inverse", "median"):
        w = class_weights(counts, method=method)
        assert w.dtype == np.float32
        assert w[3] == 0.0
        present = w[[0, 1, 2, 4]]
        assert present.mean() == pytest.approx(1.0, rel=1e-6)
        # order: rarer class -> larger weight
        assert w[0] < w[1] < w[4] < w[2]
    inv = class_weights(counts, method="inverse")
    assert inv[2] / inv[0] == pytest.approx(1000.0, rel=1e-5)
    sq = class_weights(counts, method="inverse_sqrt")
    assert sq[1] / sq[0] == pytest.approx(math.sqrt(10.0), rel=1e-5)
    assert np.allclose(class_weights(counts, method="median"), inv, rtol=1e-6)


def test_class_weights_equal_counts_are_all_one() -> None:
    assert np.allclose(class_weights([7, 7, 7]), 1.0)


@pytest.mark.parametrize(
    ("counts", "method", "match"),
    [
        ([0, 0], "inverse", "no labelled pixels"),
        ([5, -1], "inverse", ">= 0"),
        ([], "inverse", "1-D"),
        ([1, 2], "log", "unknown method"),
    ],
)
def test_class_weights_errors(counts: list[int], method: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        class_weights(counts, method=method)


def test_parse_loss_forms() -> None:
    assert parse_loss("ce+dice") == {"ce": 1.0, "dice": 1.0}
    assert parse_loss(" CE + 0.25*jaccard2 ") == {"ce": 1.0, "jaccard2": 0.25}
    assert parse_loss({"dice": 2}) == {"dice": 2.0}
    assert parse_loss(["jaccard2", "ce"]) == {"jaccard2": 1.0, "ce": 1.0}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("ce+focal", "unknown loss term 'focal'"),
        ("ce+ce", "twice"),
        ("", "empty"),
        ("ce+", "cannot read"),
        ("x*ce", "cannot read|bad weight"),
        ({"ce": -1.0}, ">= 0"),
        ({"ce": 0.0}, "above 0"),
        ({"ce": "1"}, "number"),
        (3, "expected"),
    ],
)
def test_parse_loss_errors(spec: object, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        parse_loss(spec)  # type: ignore[arg-type]


def test_combined_loss_is_the_weighted_sum() -> None:
    target = _target((2, 6, 6), 3)
    logits = torch.randn(2, 3, 6, 6)
    w = [0.5, 1.0, 2.0]
    loss = CombinedLoss({"ce": 0.5, "dice": 2.0, "jaccard2": 1.0}, class_weight=w)
    total, parts = loss(logits, target)
    ce = float(cross_entropy(logits, target, weight=w))
    dice = float(soft_dice(logits, target))
    j2 = float(jaccard2(logits, target))
    assert float(parts["ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(parts["dice"]) == pytest.approx(dice, rel=1e-6)
    assert float(parts["jaccard2"]) == pytest.approx(j2, rel=1e-6)
    assert float(total) == pytest.approx(0.5 * ce + 2.0 * dice + j2, rel=1e-6)
    assert not parts["ce"].requires_grad
    # the class weight changes only the cross-entropy term
    _, unweighted = CombinedLoss(loss.terms)(logits, target)
    assert float(unweighted["ce"]) != pytest.approx(ce, rel=1e-3)
    assert float(unweighted["dice"]) == pytest.approx(dice, rel=1e-6)
    assert loss.class_weight is not None and "class_weight" in dict(loss.named_buffers())


def test_combined_loss_rejects_bad_class_weight() -> None:
    with pytest.raises(UsageError, match="class_weight"):
        CombinedLoss({"ce": 1.0}, class_weight=[1.0, float("nan")])


def test_training_steps_reduce_the_loss() -> None:
    """A bright square on a dark background: a few gradient steps learn to segment it.

    Plain gradient descent by hand: torch.optim's first use imports torch._dynamo (seconds).
    """
    gen = torch.Generator().manual_seed(1)
    images = 0.1 * torch.rand(4, 1, 16, 16, generator=gen)
    target = torch.zeros(4, 16, 16, dtype=torch.long)
    for i, (r, c) in enumerate([(2, 3), (6, 8), (9, 1), (4, 4)]):
        images[i, 0, r : r + 6, c : c + 6] += 0.8
        target[i, r : r + 6, c : c + 6] = 1
    net = UNet(in_channels=1, num_classes=2, depth=2, base_filters=4, dropout=0.0)
    loss = CombinedLoss(
        parse_loss("ce+dice"),
        class_weight=class_weights([int((target == 0).sum()), int(target.sum())]),
    )
    history = []
    for _ in range(20):
        net.zero_grad()
        total, _ = loss(net(images), target)
        total.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
        history.append(float(total.detach()))
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.5 * history[0]
    net.eval()
    with torch.no_grad():
        accuracy = float((net(images).argmax(1) == target).float().mean())
    # all-background would score 1 - 4 * 36 / 1024 = 0.86
    assert accuracy > 0.95
