"""The pixel size read from TIFF / OME-TIFF / ImageJ metadata when ``--pixel-size`` is not given,
through ``prep convert`` and ``prep export`` (ome-zarr axes and scales, nnU-Net spacing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from microprep.cli.main import main
from microprep.pixelsize import tiff_pixel_size

Capture = pytest.CaptureFixture[str]

W, H = 12, 10


def xml(names: tuple[str, ...]) -> str:
    return "\n".join(
        f'<image id="{i}" name="{n}" width="{W}" height="{H}">'
        '<box label="pore" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/></image>'
        for i, n in enumerate(names)
    )


def pixels() -> np.ndarray:
    return np.arange(H * W, dtype=np.uint8).reshape(H, W)


def ome_scale(out: Path, name: str) -> tuple[list[tuple[str, str | None]], list[float]]:
    meta = zarr.open_group(out / name, mode="r").attrs["ome"]["multiscales"][0]
    axes = [(a["name"], a.get("unit")) for a in meta["axes"]]
    return axes, meta["datasets"][0]["coordinateTransformations"][0]["scale"]


def test_reads_imagej_ome_and_centimeter_tiffs(tmp_path: Path) -> None:
    imagej, ome, cm, inch, plain = (tmp_path / f"{n}.tif" for n in ("ij", "ome", "cm", "in", "p"))
    stack = np.zeros((3, H, W), np.uint8)
    tifffile.imwrite(imagej, stack, imagej=True, resolution=(4.0, 4.0),
                     metadata={"unit": "micron", "spacing": 2.5, "axes": "ZYX"})  # fmt: skip
    tifffile.imwrite(ome, stack, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 0.5, "PhysicalSizeYUnit": "nm",
        "PhysicalSizeZ": 0.002, "PhysicalSizeZUnit": "µm"})  # fmt: skip
    tifffile.imwrite(cm, pixels(), resolution=(10000.0, 10000.0), resolutionunit="CENTIMETER")
    tifffile.imwrite(inch, pixels(), resolution=(72.0, 72.0), resolutionunit="INCH")
    tifffile.imwrite(plain, pixels())
    assert tiff_pixel_size(imagej) == (0.25, "micrometer", 2.5)
    size, unit, z = tiff_pixel_size(ome) or ()
    assert (size, unit, z) == (0.5, "nanometer", pytest.approx(2.0))
    assert tiff_pixel_size(cm) == (pytest.approx(1e-4), "centimeter", None)
    assert tiff_pixel_size(inch) is None
    assert tiff_pixel_size(plain) is None


def test_convert_takes_the_imagej_pixel_size(
    write_cvat: Callable[..., Path], tmp_path: Path
) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(images / name, pixels(), imagej=True, resolution=(2.0, 2.0),
                         metadata={"unit": "um"})  # fmt: skip
    out = tmp_path / "out"
    args = ["convert", str(write_cvat(xml(("a.tif", "b.tif")))), "--images", str(images)]
    assert main([*args, "--to", "zarr,ome-zarr", "-o", str(out), "-q"]) == 0
    axes, scale = ome_scale(out, "a.ome.zarr")
    assert axes == [("y", "micrometer"), ("x", "micrometer")]
    assert scale == [0.5, 0.5]
    # the store records it, and prep export uses it
    again = tmp_path / "again"
    assert main(["export", str(out / "dataset.zarr"), "--to", "ome-zarr", "-o", str(again)]) == 0
    assert ome_scale(again, "b.ome.zarr") == (axes, scale)
    # --pixel-size wins over the metadata
    given = tmp_path / "given"
    assert main([*args, "--to", "ome-zarr", "--pixel-size", "3nm", "-o", str(given), "-q"]) == 0
    assert ome_scale(given, "a.ome.zarr") == ([("y", "nanometer"), ("x", "nanometer")], [3, 3])


def test_ome_tiff_slices_give_nnunet_spacing_and_z_scale(
    write_cvat: Callable[..., Path], tmp_path: Path
) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    names = ("s0.tif", "s1.tif", "s2.tif")
    for name in names:
        tifffile.imwrite(images / name, pixels(), ome=True, metadata={
            "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 0.5,
            "PhysicalSizeYUnit": "nm", "PhysicalSizeZ": 4, "PhysicalSizeZUnit": "nm"})  # fmt: skip
    out = tmp_path / "out"
    args = ["convert", str(write_cvat(xml(names))), "--images", str(images), "--volume"]
    assert main([*args, "--to", "nnunet,ome-zarr", "-o", str(out), "-q"]) == 0
    (spacing,) = [json.loads(p.read_text()) for p in (out / "labelsTr").glob("*.json")]
    assert spacing == {"spacing": [4.0, 0.5, 0.5]}
    (ome,) = [p.name for p in out.glob("*.ome.zarr")]
    axes, scale = ome_scale(out, ome)
    assert [a for a, _ in axes] == ["z", "y", "x"] and {u for _, u in axes} == {"nanometer"}
    assert scale == [4.0, 0.5, 0.5]


def test_images_that_disagree_warn_and_take_the_first(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    for name, per_um in (("a.tif", 2.0), ("b.tif", 4.0), ("c.tif", 2.0)):
        tifffile.imwrite(images / name, pixels(), imagej=True, resolution=(per_um, per_um),
                         metadata={"unit": "um"})  # fmt: skip
    out = tmp_path / "out"
    export = write_cvat(xml(("a.tif", "b.tif", "c.tif")))
    code = main(["convert", str(export), "--images", str(images), "--to", "ome-zarr",
                 "-o", str(out)])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "different pixel sizes" in text and "b.tif (0.25 micrometer)" in text
    for name in ("a", "b", "c"):
        assert ome_scale(out, f"{name}.ome.zarr")[1] == [0.5, 0.5]


def test_png_images_leave_the_axes_without_unit(
    write_cvat: Callable[..., Path], tmp_path: Path
) -> None:
    from PIL import Image

    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(pixels()).save(images / "a.png")
    out = tmp_path / "out"
    args = ["convert", str(write_cvat(xml(("a.png",)))), "--images", str(images)]
    assert main([*args, "--to", "ome-zarr", "-o", str(out), "-q"]) == 0
    assert ome_scale(out, "a.ome.zarr") == ([("y", None), ("x", None)], [1.0, 1.0])
