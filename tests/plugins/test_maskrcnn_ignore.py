"""Mask R-CNN training leaves pixels that are not annotated out of the negatives: anchors and
proposals mostly on invalid pixels are discarded, positives stay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
ignore_module = pytest.importorskip("microprep_maskrcnn.ignore")

from microprep.model import ImageInfo, LabelMap, LabelSpec  # noqa: E402
from microprep.store import ZarrSink  # noqa: E402
from microprep.targets.types import Targets  # noqa: E402
from microprep_maskrcnn.ignore import (  # noqa: E402
    IGNORED_FRACTION,
    IgnoreAwareRoIHeads,
    IgnoreAwareRPN,
    ignored_fraction,
    ignored_integral,
)
from microprep_maskrcnn.model import build_model  # noqa: E402

SIZE = 64
WINDOW = 64
#: Few proposals keep a ResNet-50 Mask R-CNN fast on a CPU.
FAST = [
    "--device", "cpu", "--batch-size", "1", "--workers", "0", "--window", str(WINDOW), "-q",
    "--set", "threads=1", "--set", "optimizer=sgd",
    "--set", "model.box_detections_per_img=4", "--set", "model.rpn_pre_nms_top_n_train=100",
    "--set", "model.rpn_post_nms_top_n_train=50", "--set", "model.rpn_pre_nms_top_n_test=50",
    "--set", "model.rpn_post_nms_top_n_test=20", "--set", "model.box_batch_size_per_image=32",
]  # fmt: skip


def ignore_store(path: Path, *, count: int = 2) -> Path:
    """``count`` images of one window: bright squares (class 1) on both halves, the left half
    not annotated (255 in the class map; its squares stay objects)."""
    from crops.helpers import instances_from_masks

    label_map = LabelMap((LabelSpec("pore"), LabelSpec("unsure", role="ignore")))
    with ZarrSink(path, label_map, provenance={"source": "synthetic", "sha256": None}) as sink:
        for k in range(count):
            class_map = np.zeros((WINDOW, WINDOW), np.uint8)
            image = np.full((WINDOW, WINDOW), 40, np.uint8)
            masks = []
            for top, left in ((8 + 4 * k, 6), (36, 40 - 2 * k)):
                mask = np.zeros((WINDOW, WINDOW), bool)
                mask[top : top + 12, left : left + 12] = True
                masks.append(mask)
                class_map[mask] = 1
                image[mask] = 200
            class_map[:, : WINDOW // 2] = 255
            name = f"img{k}.png"
            objects = instances_from_masks(masks, [1, 1])
            sink.add(
                Targets(name, (ImageInfo(name, WINDOW, WINDOW),), class_map, objects, 2), image
            )
    return path


def left_ignored(size: int = SIZE, cut: int = SIZE // 2) -> Any:
    """``valid`` ``(size, size)``: columns before ``cut`` not annotated."""
    valid = torch.ones(size, size, dtype=torch.bool)
    valid[:, :cut] = False
    return valid


def target(boxes: list[list[float]], valid: Any, size: int = SIZE) -> dict[str, Any]:
    n = len(boxes)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, int(y0) : int(y1), int(x0) : int(x1)] = 1
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
        "labels": torch.ones(n, dtype=torch.int64),
        "masks": masks,
        "valid": valid,
    }


def test_the_fraction_comes_from_the_integral_image() -> None:
    valid = torch.ones(10, 12, dtype=torch.bool)
    valid[2:6, 3:9] = False
    table = ignored_integral(valid)
    assert table is not None and table.shape == (11, 13)
    boxes = torch.tensor(
        [[3, 2, 9, 6], [0, 0, 12, 10], [3, 2, 6, 4], [9, 0, 12, 10], [-3, -2, 3, 2], [5, 5, 5, 9]],
        dtype=torch.float32,
    )
    expected = [1.0, 24 / 120, 1.0, 0.0, 0.0, 0.0]
    assert ignored_fraction(boxes, table).tolist() == pytest.approx(expected)
    # rounding to whole pixels; the part outside the image counts as valid
    half_out = torch.tensor([[2.6, 1.6, 9.4, 6.4], [3, 2, 15, 6]])
    assert ignored_fraction(half_out, table).tolist() == pytest.approx([1.0, 0.5])


def test_rpn_discards_negative_anchors_inside_the_ignored_area() -> None:
    model = build_model(num_classes=2, min_size=SIZE)
    assert isinstance(model.rpn, IgnoreAwareRPN)
    assert isinstance(model.roi_heads, IgnoreAwareRoIHeads)
    anchors = torch.tensor(
        [
            [2, 2, 18, 18],  # negative, inside the ignored half: discarded
            [40, 40, 56, 56],  # negative, annotated half: kept
            [22, 2, 38, 18],  # negative, 10 of 16 columns ignored: discarded
            [28, 2, 44, 18],  # negative, 4 of 16 ignored: kept
            [4, 40, 20, 56],  # the object in the ignored half: positive, kept
        ],
        dtype=torch.float32,
    )
    t = target([[4, 40, 20, 56]], left_ignored())
    [labels], _ = model.rpn.assign_targets_to_anchors([anchors], [t])
    assert labels.tolist() == [-1.0, 0.0, -1.0, 0.0, 1.0]
    # without a valid mask (or all valid), torchvision's labels
    plain = {k: v for k, v in t.items() if k != "valid"}
    [labels], _ = model.rpn.assign_targets_to_anchors([anchors], [plain])
    assert labels.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    # an image without objects: every anchor is a negative, the ignored ones discarded
    [labels], _ = model.rpn.assign_targets_to_anchors([anchors], [target([], left_ignored())])
    assert labels.tolist() == [-1.0, 0.0, -1.0, 0.0, -1.0]


def test_roi_heads_sample_no_negative_inside_the_ignored_area() -> None:
    model = build_model(num_classes=2, min_size=SIZE, box_batch_size_per_image=64)
    torch.manual_seed(0)
    xy = torch.rand(400, 2) * 48
    proposals = torch.cat([xy, xy + 16], dim=1)
    t = target([[36, 36, 52, 52]], left_ignored())
    boxes, _, labels, _ = model.roi_heads.select_training_samples([proposals.clone()], [t])
    table = ignored_integral(t["valid"])
    negatives = boxes[0][labels[0] == 0]
    assert len(negatives) > 10
    assert (ignored_fraction(negatives, table) <= IGNORED_FRACTION).all()
    assert (labels[0] == 1).any()  # positives (the object itself at least) stay
    # torchvision's own sampling draws negatives there
    plain = {k: v for k, v in t.items() if k != "valid"}
    boxes, _, labels, _ = model.roi_heads.select_training_samples([proposals.clone()], [plain])
    negatives = boxes[0][labels[0] == 0]
    assert (ignored_fraction(negatives, table) > IGNORED_FRACTION).any()
    assert model.roi_heads._ignore_tables is None  # nothing kept between steps


def test_an_object_in_the_ignored_area_stays_positive_for_the_roi_heads() -> None:
    model = build_model(num_classes=2, min_size=SIZE)
    proposals = torch.tensor([[4.0, 40, 20, 56], [5, 41, 21, 57], [2, 2, 18, 18]])
    t = target([[4, 40, 20, 56]], left_ignored())
    model.roi_heads._ignore_tables = [ignored_integral(t["valid"])]
    _, [labels] = model.roi_heads.assign_targets_to_proposals(
        [proposals], [t["boxes"]], [t["labels"]]
    )
    assert labels.tolist() == [1, 1, -1]


def test_the_transform_resizes_valid_with_the_image() -> None:
    model = build_model(num_classes=2, min_size=2 * SIZE)  # twice the crop
    model.train()
    valid = left_ignored(SIZE, 16)
    images, targets = model.transform([torch.rand(1, SIZE, SIZE)], [target([], valid)])
    resized = targets[0]["valid"]
    assert images.tensors.shape[-2:] == (128, 128) and resized.shape == (128, 128)
    assert not resized[:, :32].any() and resized[:, 32:].all()


def _record(model: Any) -> dict[str, list[Any]]:
    """Record, in one training forward, the boxes each head sampled as negatives."""
    seen: dict[str, list[Any]] = {"rpn": [], "roi": []}
    anchors: list[Any] = []
    proposals: list[Any] = []
    rpn_assign = model.rpn.assign_targets_to_anchors
    roi_assign = model.roi_heads.assign_targets_to_proposals

    def assign_anchors(a: list[Any], t: list[Any]) -> Any:
        anchors[:] = a
        return rpn_assign(a, t)

    def assign_proposals(p: list[Any], *rest: Any) -> Any:
        proposals[:] = p
        return roi_assign(p, *rest)

    def sampler(
        boxes: list[Any], key: str, original: Callable[..., Any]
    ) -> Callable[[list[Any]], Any]:
        def sample(labels: list[Any]) -> Any:
            pos, neg = original(labels)
            for b, n in zip(boxes, neg, strict=True):
                seen[key].append(b[n.bool()])
            return pos, neg

        return sample

    model.rpn.assign_targets_to_anchors = assign_anchors
    model.roi_heads.assign_targets_to_proposals = assign_proposals
    model.rpn.fg_bg_sampler = sampler(anchors, "rpn", model.rpn.fg_bg_sampler)
    model.roi_heads.fg_bg_sampler = sampler(proposals, "roi", model.roi_heads.fg_bg_sampler)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("with_valid", [True, False])
def test_a_training_step_draws_no_negative_in_the_ignored_area(with_valid: bool) -> None:
    """A whole forward: the negatives both heads draw lie outside the ignored three quarters;
    the seeded draw of negatives does not change when the ignored pixels do."""
    valid = left_ignored(SIZE, 48)
    t = target([[50, 8, 60, 20]], valid)
    if not with_valid:
        del t["valid"]
    drawn = []
    for noise in (0.0, 1.0) if with_valid else (0.0,):
        torch.manual_seed(0)
        model = build_model(
            num_classes=2, min_size=SIZE, rpn_post_nms_top_n_train=200, box_batch_size_per_image=64
        )
        model.train()
        seen = _record(model)
        image = torch.full((1, SIZE, SIZE), 0.3)
        image[:, 8:20, 50:60] = 0.9
        pixels = torch.rand(1, SIZE, 40, generator=torch.Generator().manual_seed(1))
        image[:, :, :40] += noise * pixels  # deep inside the ignored area
        losses = model([image], [t])
        assert torch.isfinite(sum(losses.values()))
        drawn.append(seen["rpn"][0])
        table = ignored_integral(valid)
        for key in ("rpn", "roi"):
            [negatives] = seen[key]
            assert len(negatives) > 0
            inside = ignored_fraction(negatives, table) > IGNORED_FRACTION
            assert not inside.any() if with_valid else inside.any()
    if with_valid:
        assert torch.equal(drawn[0], drawn[1])  # the same anchors drawn as negatives


# -- validation and the trainer through the CLI


class Replay(torch.nn.Module):
    """Eval mode only: the given outputs, one per image in order."""

    def __init__(self, outputs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.outputs = outputs
        self.calls = 0

    def forward(self, images: list[Any], targets: Any = None) -> Any:
        out = self.outputs[self.calls : self.calls + len(images)]
        self.calls += len(images)
        return out


def test_validation_leaves_out_detections_and_objects_in_the_ignored_area() -> None:
    from microprep.training.runtime import Precision
    from microprep_maskrcnn.validation import evaluate_detector

    t = target([[40, 40, 56, 56], [4, 4, 20, 20]], left_ignored())
    t["image_id"] = torch.tensor(0)
    boxes = torch.tensor([[40.0, 40, 56, 56], [8, 30, 24, 46]])  # the object; a miss on nothing
    masks = torch.zeros(2, 1, SIZE, SIZE)
    masks[0, 0, 40:56, 40:56] = 0.9
    masks[1, 0, 30:46, 8:24] = 0.9
    output = {"boxes": boxes, "labels": torch.ones(2, dtype=torch.int64),
              "scores": torch.tensor([0.6, 0.9]), "masks": masks}  # fmt: skip
    precision = Precision("off", torch.device("cpu"))

    def run(target_: dict[str, Any]) -> dict[str, float]:
        loader = [([torch.zeros(1, SIZE, SIZE)], [target_])]
        return evaluate_detector(
            Replay([output]), loader, torch.device("cpu"), precision, classes=("bg", "a"),
            loss=False,
        )  # fmt: skip

    # the object in the ignored half is not missed, the detection on nothing there not false
    assert run(t)["segm_ap50"] == pytest.approx(1.0)
    plain = {k: v for k, v in t.items() if k != "valid"}
    assert run(plain)["segm_ap50"] < 0.9


@pytest.mark.slow
def test_training_through_the_cli_discards_negatives_in_the_ignored_area(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microprep.cli.main import main

    store = ignore_store(tmp_path / "d.zarr")
    assert main(["split", str(store), "--val", "0.5", "--test", "0", "--by", "image", "-q"]) == 0
    calls = {"images": 0, "discarded": 0}
    original = ignore_module.discard_ignored_negatives

    def counting(labels: Any, boxes: Any, table: Any, **kw: Any) -> Any:
        out = original(labels, boxes, table, **kw)
        calls["images"] += int(table is not None)
        calls["discarded"] += int(((out == -1) & (labels == 0)).sum())
        return out

    monkeypatch.setattr(ignore_module, "discard_ignored_negatives", counting)
    threads = torch.get_num_threads()
    try:
        code = main(["train", "maskrcnn", str(store), "--out", str(tmp_path / "run"),
                     "--epochs", "1", "--lr", "1e-6", *FAST])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    # the training step and the validation loss, both heads: every window has ignored pixels
    assert calls["images"] >= 4 and calls["discarded"] > 0
