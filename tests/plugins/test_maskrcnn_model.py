"""The Mask R-CNN network of the maskrcnn plugin: offline build, gray input, local weights."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
model_module = pytest.importorskip("microprep_maskrcnn.model")

from microprep.errors import UsageError  # noqa: E402

build_model = model_module.build_model
load_local_weights = model_module.load_local_weights
WeightsError = model_module.WeightsError

SIZE = 64
#: Few proposals, sampled boxes and detections keep random-weight models fast on a CPU.
FAST = {
    "rpn_pre_nms_top_n_train": 100,
    "rpn_post_nms_top_n_train": 50,
    "box_batch_size_per_image": 32,
    "rpn_pre_nms_top_n_test": 50,
    "rpn_post_nms_top_n_test": 20,
    "box_detections_per_img": 4,
}
PREDICTOR_KEYS = {
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.cls_score.bias",
    "roi_heads.box_predictor.bbox_pred.weight",
    "roi_heads.box_predictor.bbox_pred.bias",
    "roi_heads.mask_predictor.mask_fcn_logits.weight",
    "roi_heads.mask_predictor.mask_fcn_logits.bias",
}
LOSSES = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download or network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")

    import torchvision.models._api as api

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(api, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def targets(count: int, labels: tuple[int, ...] = (1, 2)) -> list[dict[str, Any]]:
    out = []
    for k in range(count):
        masks = torch.zeros((len(labels), SIZE, SIZE), dtype=torch.uint8)
        boxes = []
        for j in range(len(labels)):
            y0, x0 = 6 + 20 * j, 8 + 5 * k
            masks[j, y0 : y0 + 14, x0 : x0 + 18] = 1
            boxes.append([x0, y0, x0 + 18, y0 + 14])
        out.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "masks": masks,
            }
        )
    return out


def test_v1_gray_trains_and_detects() -> None:
    torch.manual_seed(0)
    model = build_model(num_classes=3, in_channels=1, min_size=SIZE, max_size=SIZE, **FAST)
    assert model.transform.min_size == (SIZE,) and model.transform.max_size == SIZE
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    images = [torch.rand(1, SIZE, SIZE)]
    losses = model(images, targets(1))
    assert set(losses) == LOSSES
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    assert model.backbone.body.conv1.weight.requires_grad  # no weights: every layer trains
    assert isinstance(model.backbone.body.bn1, torch.nn.BatchNorm2d)
    model.eval()
    with torch.no_grad():
        [out] = model(images[:1])
    assert set(out) == {"boxes", "labels", "scores", "masks"}
    n = out["boxes"].shape[0]
    assert n <= 4 and out["masks"].shape == (n, 1, SIZE, SIZE)
    forward = model_module.detector_forward(model)
    [result] = forward([np.random.default_rng(0).random((1, SIZE, SIZE), np.float32)])
    assert result["masks"].shape == (result["scores"].shape[0], SIZE, SIZE)
    assert result["masks"].dtype == np.float32 and result["labels"].dtype == np.int64


def test_v2_rgb_trains() -> None:
    torch.manual_seed(0)
    model = build_model(num_classes=2, in_channels=3, variant="v2", min_size=SIZE, **FAST)
    assert model.rpn.head.conv[0][0].out_channels == 256  # v2: the two-conv RPN head
    losses = model([torch.rand(3, SIZE, SIZE)], targets(1, labels=(1,)))
    assert set(losses) == LOSSES


def test_gray_is_repeated_and_channels_are_checked() -> None:
    model = build_model(num_classes=2, in_channels=1, min_size=SIZE)
    out = model.transform.normalize(torch.full((1, 4, 4), 0.5))
    mean = torch.tensor(model_module.IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(model_module.IMAGENET_STD)[:, None, None]
    assert out.shape == (3, 4, 4)
    torch.testing.assert_close(out, ((0.5 - mean) / std).expand(3, 4, 4))
    with pytest.raises(ValueError, match="in_channels = 1"):
        model.transform.normalize(torch.zeros(3, 4, 4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "v3"}, "variant"),
        ({"num_classes": 1}, "num_classes"),
        ({"in_channels": 2}, "in_channels"),
        ({"max_size": 8}, "min_size"),
        ({"trainable_backbone_layers": 6}, "trainable_backbone_layers"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    args = {"num_classes": 3, "min_size": SIZE, **kwargs}
    with pytest.raises(UsageError, match=message):
        build_model(**args)


def test_local_weights_round_trip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(1)
    source = build_model(num_classes=3, min_size=SIZE)
    path = tmp_path / "w.pt"
    # a checkpoint nesting the state dict, saved from a DataParallel-wrapped model
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save({"epoch": 3, "model": state}, path)
    torch.manual_seed(2)
    with caplog.at_level(logging.INFO, logger="microprep_maskrcnn"):
        target = build_model(num_classes=5, min_size=SIZE, weights=path)
    skipped = {
        r.getMessage().split(": skipped ")[1].split(":")[0]
        for r in caplog.records
        if ": skipped " in r.getMessage()
    }
    assert skipped == PREDICTOR_KEYS
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # nothing missing
    assert "maskrcnn weights" in caplog.text
    # pretrained start: frozen batch norm, and only the last 3 ResNet stages train
    assert isinstance(target.backbone.body.bn1, torchvision.ops.misc.FrozenBatchNorm2d)
    assert not target.backbone.body.conv1.weight.requires_grad
    assert not target.backbone.body.layer1[0].conv1.weight.requires_grad
    assert target.backbone.body.layer2[0].conv1.weight.requires_grad
    theirs, ours = source.state_dict(), target.state_dict()
    for key, value in ours.items():
        if key in PREDICTOR_KEYS:
            assert value.shape != theirs[key].shape
        else:
            assert torch.equal(value, theirs[key]), key


def test_backbone_only_weights(tmp_path: Path) -> None:
    resnet = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        resnet.conv1.weight.fill_(0.25)
    path = tmp_path / "resnet50.pth"
    torch.save(resnet.state_dict(), path)
    model = build_model(num_classes=2, min_size=SIZE, variant="v2")
    report = load_local_weights(model, path)
    assert report.kind == "backbone" and not report.skipped and not report.missing
    assert all(key.startswith("backbone.body.") for key in report.loaded)
    assert not any(".fc." in key for key in report.loaded)
    assert bool((model.backbone.body.conv1.weight == 0.25).all())


def test_bad_weights_files(tmp_path: Path) -> None:
    model = build_model(num_classes=2, min_size=SIZE)
    with pytest.raises(WeightsError, match="not found"):
        load_local_weights(model, tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="folder"):
        load_local_weights(model, tmp_path)
    text = tmp_path / "notes.pt"
    text.write_text("not a weights file", encoding="utf-8")
    with pytest.raises(WeightsError, match=r"notes\.pt: cannot be read"):
        load_local_weights(model, text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.weight": torch.zeros(3)}, foreign)
    with pytest.raises(WeightsError, match="neither a Mask R-CNN nor a ResNet-50"):
        load_local_weights(model, foreign)
    mismatched = tmp_path / "other.pt"
    torch.save({"backbone.body.conv1.weight": torch.zeros(1)}, mismatched)
    with pytest.raises(WeightsError, match="none of its 1 tensors fits"):
        load_local_weights(model, mismatched)
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 1}, empty)
    with pytest.raises(WeightsError, match="holds no state dict"):
        build_model(num_classes=2, min_size=SIZE, weights=empty)
    assert issubclass(WeightsError, UsageError)
