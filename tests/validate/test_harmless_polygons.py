"""Invalid polygons judged by their pixels: harmless ones convert as drawn, others are refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from microprep.cli.main import main
from microprep.model import Shape
from microprep.targets.raster import rasterize_shape
from microprep.validate import pixels as pixels_module
from microprep.validate.checks import Batch, geometry_findings
from microprep.validate.outline import describe_outline, turn_backs
from microprep.validate.pixels import PixelChange, compare_pixels, too_large

Capture = pytest.CaptureFixture[str]

W, H = 64, 48
# Each image holds one polygon; what prep validate must say of it.
HARMLESS: dict[str, tuple[str, str]] = {
    # points clamped to the top border: the outline runs back and forth along y = 0
    "clamped_top.png": (
        "10,0;20,0;15,0;30,0;25,0;40,0;40,20;10,20",
        "runs back and forth along y = 0",
    ),
    # clamped to the left border, with a repeated vertex on it
    "clamped_left.png": (
        "0,10;0,30;0,30;0,20;0,40;20,40;20,10",
        "runs back and forth along x = 0",
    ),
    # a zero-area spike out of the right edge
    "spike.png": ("5,5;25,5;25,15;40,22;25,15;25,30;5,30", "zero-area spike"),
    # a collinear run that goes back along the top edge, plus a collinear vertex
    "back_and_forth.png": ("5,5;20,5;12,5;30,5;30,15;30,25;5,25", "back-and-forth run"),
    # a ring that touches itself at (5, 15): the loop is a hole for both forms
    "self_touch.png": (
        "5,5;25,5;25,25;5,25;5,15;10,10;18,10;18,20;10,20;5,15",
        "the ring touches itself",
    ),
}
# valid outlines: repeated vertices and collinear runs are no invalid polygon at all
VALID = {"repeats_collinear.png": "5,5;5,5;15,5;25,5;25,5;25,25;15,25;5,25;5,15"}
# a bow-tie whose left lobe is traced twice: the even-odd fill leaves the lobe empty, the
# repair fills it
RETRACED = "2,2;7,7;2,12;2,2;7,7;12,2;12,12;7,7;2,12"


def points(text: str) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in text.split(";")])


def image_xml(name: str, polygon: str, image_id: int) -> str:
    return (
        f'<image id="{image_id}" name="{name}" width="{W}" height="{H}">'
        f'<polygon label="precipitate" occluded="0" source="manual" points="{polygon}"'
        ' z_order="0"/></image>'
    )


def export_xml(polygons: dict[str, str]) -> str:
    return "\n".join(image_xml(n, p, k) for k, (n, p) in enumerate(polygons.items()))


def drawn_mask(polygon: str) -> np.ndarray:
    raster = rasterize_shape(Shape("polygon", "precipitate", points(polygon)), H, W)
    out = np.zeros((H, W), dtype=bool)
    raster.paste(out, 1)
    return out


# -------------------------------------------------------------------------------------- CLI


def test_harmless_polygons_convert_as_drawn_and_validate_names_each_case(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    polygons = {name: p for name, (p, _) in HARMLESS.items()} | VALID
    export = write_cvat(export_xml(polygons))
    report = tmp_path / "report.json"
    assert main(["validate", str(export), "--json", str(report)]) == 0
    table = capsys.readouterr().out
    assert "0 error(s)" in table
    found = json.loads(report.read_text(encoding="utf-8"))["findings"]
    harmless = {f["image"]: f for f in found if f["code"] == "harmless-invalid-polygon"}
    assert set(harmless) == set(HARMLESS)
    for k, (name, (polygon, case)) in enumerate(HARMLESS.items()):
        f = harmless[name]
        assert f["severity"] == "warning" and f["shape"] == k  # CVAT: order in the file
        assert case in f["message"] and f["message"].endswith("converts as drawn"), name
        assert case in table
        assert f["details"]["changed_pixels"] == 0
        assert f["details"]["pixels"] == int(drawn_mask(polygon).sum()) > 0
    assert "clamped to the image border" in harmless["clamped_top.png"]["message"]
    assert {f["code"] for f in found if f["image"] == "repeats_collinear.png"} == {
        "duplicate-vertices"
    }
    assert main(["validate", str(export), "--strict"]) == 1

    out = tmp_path / "out"
    assert main(["convert", str(export), "--to", "masks", "--out", str(out), "-q"]) == 0
    for name, polygon in polygons.items():
        mask = np.asarray(Image.open(out / "masks" / name))
        np.testing.assert_array_equal(mask == 2, drawn_mask(polygon), err_msg=name)


def test_a_polygon_whose_repair_changes_pixels_is_refused_then_repaired(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    export = write_cvat(
        export_xml({"a.png": HARMLESS["spike.png"][0], "b.png": RETRACED}), name="bad.xml"
    )
    out = tmp_path / "out"
    assert main(["convert", str(export), "--to", "masks", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "bad.xml" in err and "image 'b.png', shape #1" in err
    assert "polygon-self-intersection" in err
    drawn = int(drawn_mask(RETRACED).sum())
    assert f"changes {50 - drawn} pixel(s)" in err and "--repair" in err
    assert "traces part of itself twice in the same direction" in err
    assert not out.exists()

    assert main(["validate", str(export)]) == 2
    table = capsys.readouterr().out
    assert "harmless-invalid-polygon" in table and "use --repair" in table

    assert main(["convert", str(export), "--to", "masks", "--out", str(out), "--repair"]) == 0
    printed = capsys.readouterr().out
    assert "repaired: b.png: shape 1: polygon -> 2 polygons" in printed
    assert "a.png: shape 0" not in printed  # the harmless spike is not repaired
    repaired = np.asarray(Image.open(out / "masks" / "b.png")) == 2
    assert repaired.sum() == 50  # both triangles, the twice-traced lobe filled
    harmless = np.asarray(Image.open(out / "masks" / "a.png")) == 2
    np.testing.assert_array_equal(harmless, drawn_mask(HARMLESS["spike.png"][0]))


# --------------------------------------------------------------------------- the comparison


def fixed(p: np.ndarray) -> object:
    return shapely.make_valid(shapely.Polygon(p))


def test_compare_pixels_counts_what_the_repair_changes() -> None:
    bowtie = np.array([[0.0, 0], [10, 10], [10, 0], [0, 10]])
    change = compare_pixels(bowtie, fixed(bowtie), height=16, width=16)
    assert change.harmless and change.drawn == change.repaired == 50
    retraced = points(RETRACED)
    change = compare_pixels(retraced, fixed(retraced), height=16, width=16)
    assert (change.drawn, change.repaired) == (int(drawn_mask(RETRACED).sum()), 50)
    assert change.changed == 50 - change.drawn > 0 and not change.harmless
    twice = np.array([[2.0, 2], [12, 2], [12, 12], [2, 12]] * 2)
    change = compare_pixels(twice, fixed(twice), height=16, width=16)
    assert (change.changed, change.drawn, change.repaired) == (100, 0, 100)


def test_compare_pixels_only_looks_inside_the_image() -> None:
    # the twice-traced square is partly outside: only its 4 x 10 pixels inside count
    twice = np.array([[-6.0, 2], [4, 2], [4, 12], [-6, 12]] * 2)
    change = compare_pixels(twice, fixed(twice), height=16, width=16)
    assert change.window == (2, 0, 10, 4) and change.changed == 40
    outside = twice - [20.0, 0]
    assert compare_pixels(outside, fixed(outside), height=16, width=16).changed == 0


def test_compare_pixels_in_strips_gives_the_same_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 60, (25, 2))
    whole = compare_pixels(p, fixed(p), height=64, width=64)
    monkeypatch.setattr(pixels_module, "STRIP_WORK", 50)  # about one row a strip
    assert compare_pixels(p, fixed(p), height=64, width=64) == whole
    assert whole.drawn > 0


def test_a_window_above_the_cap_is_refused_naming_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pixels_module, "MAX_PIXELS", 99)
    bowtie = np.array([[0.0, 0], [10, 10], [10, 0], [0, 10]])
    change = compare_pixels(bowtie, fixed(bowtie), height=16, width=16)
    assert change.changed is None and not change.harmless
    assert too_large(change) == "its 10x10 px window is above the cap of 99 px per polygon"
    batch = Batch.single("a.png", 16, 16, [Shape("polygon", "grain", bowtie, order=4)])
    (f,) = geometry_findings(batch, batch.measure(100))
    assert (f.severity, f.code, f.shape) == ("error", "polygon-self-intersection", 4)
    assert "10x10 px window" in f.message and "use --repair" in f.message
    monkeypatch.setattr(pixels_module, "MAX_PIXELS", 1 << 26)
    monkeypatch.setattr(pixels_module, "MAX_CROSSINGS", 5)
    change = compare_pixels(bowtie, fixed(bowtie), height=16, width=16)
    assert change.changed is None and "pixel rows, above the cap of 5" in too_large(change)


def test_harmless_polygons_take_part_in_the_overlap_check() -> None:
    from microprep.validate.overlap import overlap_findings

    bowtie = np.array([[0.0, 0], [10, 10], [10, 0], [0, 10]])
    shapes = [
        Shape("polygon", "grain", bowtie, order=0),
        Shape("polygon", "grain", bowtie, order=1),
    ]
    batch = Batch.single("a.png", 16, 16, shapes)
    (f,) = overlap_findings(batch, batch.measure(100))
    assert (f.shape, f.details["other"], f.details["iou"]) == (0, 1, 1.0)


def test_describe_outline_cases() -> None:
    assert turn_backs(np.array([[0.0, 0], [4, 0], [2, 0], [6, 0], [6, 3]])).tolist() == [
        False, True, True, False, False,
    ]  # fmt: skip
    right = np.array([[10.0, 0], [16, 0], [16, 8], [16, 4], [16, 10], [10, 10]])
    assert describe_outline(right, "", width=16, height=10, parts=1).endswith("x = 16")
    bottom = np.array([[0.0, 0], [5, 0], [5, 10], [2, 10], [4, 10], [0, 10]])
    assert describe_outline(bottom, "", width=16, height=10, parts=1).endswith("y = 10")
    bowtie = np.array([[0.0, 0], [10, 10], [10, 0], [0, 10]])
    assert describe_outline(bowtie, "Self-intersection[5 5]", width=16, height=16, parts=2) == (
        "the outline crosses itself (2 lobes)"
    )


# ------------------------------------------------------------------------------- a property


def _square_with_noise(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(3, 9))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 6.28), min_size=n, max_size=n))))
    radius = np.array(draw(st.lists(st.integers(4, 12), min_size=n, max_size=n)), dtype=float)
    return np.round(np.column_stack((16 + radius * np.cos(angles), 16 + radius * np.sin(angles))))


@st.composite
def degenerate_outlines(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A valid polygon on integer vertices, and the same outline with repeated vertices,
    zero-area spikes and back-and-forth runs inserted along its edges.

    A spike touches the outline (and the other spikes) only where it starts: a spike whose tip
    lands on another part of the outline closes a face there, and ``make_valid``, which merges
    the spike's two coincident edges into one, fills that face (the repair changes pixels).
    """
    base = _square_with_noise(draw)
    if not shapely.Polygon(base).is_valid or shapely.Polygon(base).area == 0:
        base = np.array([[4.0, 4], [28, 4], [28, 28], [4, 28]])
    ring = shapely.LinearRing(base)
    spikes: list[shapely.LineString] = []
    out: list[Sequence[float]] = []
    for k, p in enumerate(base):
        q = base[(k + 1) % len(base)]
        out.append(p)
        what = draw(st.sampled_from(["none", "repeat", "spike", "back"]))
        if what == "repeat":
            out.append(p)
        elif what == "spike":  # out along the line of the edge p-q, beyond p, and back
            tip = p + draw(st.integers(1, 3)) * (p - q) / max(abs(p - q).max(), 1.0)
            spike = shapely.LineString([p, tip])
            alone = spike.intersection(ring).equals(shapely.Point(p))
            if alone and not any(spike.intersects(other) for other in spikes):
                spikes.append(spike)
                out.extend([tip, p])
        elif what == "back":  # along the edge to the middle, back towards p, then on
            mid = (p + q) / 2
            out.extend([mid, p + (mid - p) / 2])
    return base, np.array(out)


@settings(deadline=None, max_examples=60)
@given(degenerate_outlines())
def test_inserted_repeats_and_spikes_are_always_harmless(
    outlines: tuple[np.ndarray, np.ndarray],
) -> None:
    base, noisy = outlines
    batch = Batch.single("a.png", 32, 32, [Shape("polygon", "grain", noisy)])
    m = batch.measure(1000)
    findings = geometry_findings(batch, m)
    assert not [f for f in findings if f.severity == "error"], findings
    change = m.pixels[0]
    if change is not None:  # shapely found the noisy outline invalid
        assert isinstance(change, PixelChange) and change.harmless
    drawn = rasterize_shape(Shape("polygon", "grain", noisy), 32, 32)
    clean = rasterize_shape(Shape("polygon", "grain", base), 32, 32)
    assert drawn.area == clean.area


def test_a_spike_through_a_pixel_centre_draws_nothing() -> None:
    # the spike (14, 10) -> (11, 11.8) -> back passes the centre (11.5, 11.5) exactly; its two
    # edges must give the same crossing there, or one pixel appears on the spike
    base = np.array([[20.0, 16], [14, 10], [19, 7], [17, 12]])
    spiked = np.array([[20.0, 16], [14, 10], [11, 11.8], [14, 10], [19, 7], [17, 12]])
    a = rasterize_shape(Shape("polygon", "grain", spiked), 32, 32)
    b = rasterize_shape(Shape("polygon", "grain", base), 32, 32)
    assert a.area == b.area == 16
    batch = Batch.single("a.png", 32, 32, [Shape("polygon", "grain", spiked)])
    (f,) = geometry_findings(batch, batch.measure(100))
    assert (f.code, f.details["changed_pixels"]) == ("harmless-invalid-polygon", 0)


@pytest.mark.parametrize("beside", [False, True])
def test_convert_reports_the_harmless_polygons_in_one_warning(
    write_cvat: Callable[..., Path], tmp_path: Path, beside: bool
) -> None:
    from microprep.conversion import ConvertOptions, convert

    export = write_cvat(export_xml({name: p for name, (p, _) in HARMLESS.items()}))
    summary = convert(export, tmp_path / "d.zarr", ConvertOptions(check_beside=beside))
    (line,) = [w for w in summary.warnings if "converted as drawn" in w]
    assert line.startswith(f"{len(HARMLESS)} invalid polygon(s) converted as drawn")
    assert "image 'clamped_top.png', shape #0" in line
