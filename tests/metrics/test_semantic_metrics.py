"""Confusion matrix and segmentation scores: brute force, hand-computed values, absent classes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microprep.errors import UsageError
from microprep.metrics import SegmentationScores, confusion_matrix


def brute_force(pred: np.ndarray, target: np.ndarray, k: int, valid=None) -> np.ndarray:
    out = np.zeros((k, k), np.int64)
    for index in np.ndindex(pred.shape):
        if valid is not None and not valid[index]:
            continue
        out[int(target[index]), int(pred[index])] += 1
    return out


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 5),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    seed=st.integers(0, 2**31 - 1),
    masked=st.booleans(),
)
def test_confusion_matrix_matches_brute_force(
    k: int, shape: tuple[int, int], seed: int, masked: bool
) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, k, shape).astype(np.uint8)
    target = rng.integers(0, k, shape).astype(np.uint16)
    valid = rng.random(shape) < 0.6 if masked else None
    got = confusion_matrix(pred, target, num_classes=k, valid=valid)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, brute_force(pred, target, k, valid))


def test_rows_are_ground_truth_columns_prediction() -> None:
    cm = confusion_matrix(np.array([2, 2, 2]), np.array([0, 1, 2]), num_classes=3)
    assert cm[:, 2].tolist() == [1, 1, 1]  # everything predicted as 2
    assert cm.sum(axis=1).tolist() == [1, 1, 1]  # one pixel of each true class


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (np.array([0, 3]), np.array([0, 1]), "prediction holds class index 3"),
        (np.array([0, 1]), np.array([-1, 1]), "ground truth holds class index -1"),
        (np.array([0, 1]), np.array([0, 1, 1]), "shape"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "integers"),
    ],
)
def test_confusion_matrix_refuses_bad_input(
    pred: np.ndarray, target: np.ndarray, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        confusion_matrix(pred, target, num_classes=3)


def test_hand_computed_scores() -> None:
    # ground truth: 6 background, 4 class 1, 2 class 2
    target = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 2, 1])
    scores = SegmentationScores.from_confusion(confusion_matrix(pred, target, num_classes=3))
    # class 0: TP 4, FP 1 (a class-1 pixel), FN 2
    # class 1: TP 3, FP 3 (2 background + 1 class-2), FN 1
    # class 2: TP 1, FP 0, FN 1
    expected_iou = [4 / 7, 3 / 7, 1 / 2]
    expected_f1 = [8 / 11, 6 / 10, 2 / 3]
    np.testing.assert_allclose(scores.iou, expected_iou)
    np.testing.assert_allclose(scores.f1, expected_f1)
    np.testing.assert_allclose(scores.precision, [4 / 5, 3 / 6, 1 / 1])
    np.testing.assert_allclose(scores.recall, [4 / 6, 3 / 4, 1 / 2])
    assert scores.macro_iou == pytest.approx(np.mean(expected_iou))
    assert scores.macro_f1 == pytest.approx(np.mean(expected_f1))
    # micro: TP 8, FP 4, FN 4
    assert scores.micro_iou == pytest.approx(8 / 16)
    assert scores.micro_f1 == pytest.approx(16 / 24)
    assert scores.accuracy == pytest.approx(8 / 12)


def test_without_background() -> None:
    target = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 2, 1])
    cm = confusion_matrix(pred, target, num_classes=3)
    scores = SegmentationScores.from_confusion(cm, include_background=False)
    assert scores.macro_iou == pytest.approx((3 / 7 + 1 / 2) / 2)
    # micro over classes 1, 2: TP 4, FP 3, FN 2 (background errors still count)
    assert scores.micro_iou == pytest.approx(4 / 9)
    assert scores.micro_f1 == pytest.approx(8 / 13)
    assert scores.iou[0] == pytest.approx(4 / 7)  # still reported
    assert scores.counted.tolist() == [False, True, True]


def test_absent_class_is_nan_and_left_out_of_averages() -> None:
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 0])
    scores = SegmentationScores.from_confusion(confusion_matrix(pred, target, num_classes=4))
    assert all(math.isnan(v) for v in (scores.iou[3], scores.f1[3], scores.precision[2]))
    assert scores.present.tolist() == [True, True, False, False]
    assert scores.macro_iou == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_class_only_in_prediction_or_only_in_truth_scores_zero() -> None:
    # class 2 predicted but absent from the truth; class 1 in the truth but never predicted
    scores = SegmentationScores.from_confusion(
        confusion_matrix(np.array([0, 2, 0]), np.array([0, 0, 1]), num_classes=3)
    )
    assert scores.iou[1] == 0 and scores.iou[2] == 0
    assert scores.precision[1] == 0  # never predicted: 0/0 counts as 0
    assert scores.recall[2] == 0  # not in the truth: 0/0 counts as 0
    assert scores.macro_iou == pytest.approx((1 / 3 + 0 + 0) / 3)


def test_table_without_absent_classes_has_no_left_out_line() -> None:
    scores = SegmentationScores.from_confusion([[3, 1], [0, 4]])
    assert "not in the averages" not in scores.table()
    assert scores.as_dict()["left_out"] == []


def test_training_validation_uses_the_same_macro_as_evaluate() -> None:
    # one definition: the U-Net's validation scores are those of SegmentationScores
    plugin = pytest.importorskip("microprep_unet.plugin")
    cm = confusion_matrix(np.array([0, 2, 0, 1]), np.array([0, 0, 1, 1]), num_classes=4)
    expected = SegmentationScores.from_confusion(cm)
    got = plugin._scores(cm, True, ["background", "a", "b", "c"])
    assert got["iou_macro"] == pytest.approx(expected.macro_iou)
    assert got["iou_macro"] == pytest.approx((1 / 3 + 1 / 2 + 0) / 3)  # class 3 left out
    assert math.isnan(got["iou_3_c"])


def test_nothing_present_gives_nan_averages() -> None:
    scores = SegmentationScores.from_confusion(np.zeros((2, 2), np.int64))
    assert math.isnan(scores.macro_iou) and math.isnan(scores.micro_f1)
    assert json.loads(json.dumps(scores.as_dict()))["macro"]["iou"] is None


def test_as_dict_and_table() -> None:
    cm = confusion_matrix(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), num_classes=3)
    scores = SegmentationScores.from_confusion(cm, include_background=False)
    data = scores.as_dict(["background", "pore", "crack"])
    json.dumps(data, allow_nan=False)  # strict JSON
    assert data["per_class"]["pore"]["iou"] == pytest.approx(2 / 3)
    assert data["per_class"]["crack"]["iou"] is None
    assert data["per_class"]["pore"]["gt_pixels"] == 2
    assert data["per_class"]["pore"]["pred_pixels"] == 3
    assert data["confusion_matrix"] == cm.tolist()
    text = scores.table(["background", "pore", "crack"])
    lines = text.splitlines()
    assert "IoU" in lines[0] and "precision" in lines[0]
    assert "background*" in lines[1]
    assert "0.6667" in lines[2]
    assert lines[3].split()[2] == "-"  # crack: absent
    assert any(line.split()[0] == "macro" for line in lines)
    assert data["left_out"] == ["background", "crack"]
    assert lines[-1].startswith("- not in the averages") and lines[-1].endswith(": crack")
    with pytest.raises(UsageError, match="class names"):
        scores.table(["only one"])


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.array([[1, -1], [0, 0]])])
def test_from_confusion_refuses_bad_matrices(bad: np.ndarray) -> None:
    with pytest.raises(UsageError):
        SegmentationScores.from_confusion(bad.astype(np.int64))
