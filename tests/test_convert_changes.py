"""``prep convert`` into an existing store reports what changed since the last conversion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from microprep.cli.main import main
from splits.test_splits import images_xml

Capture = pytest.CaptureFixture[str]


def test_convert_into_an_existing_store_reports_what_changed(
    write_cvat: Callable[..., Path], tmp_path: Path, capsys: Capture
) -> None:
    store = tmp_path / "d.zarr"
    export = write_cvat(images_xml(4))
    assert main(["convert", str(export), "--out", str(store), "-q"]) == 0
    # unchanged export: nothing changed
    assert main(["convert", str(export), "--out", str(store)]) == 0
    assert "since the last conversion: no images changed" in capsys.readouterr().out
    # corrected: img_00 gone, img_01 gets a second box, img_04 new, img_02 resized
    parts = images_xml(5).split("</image>\n")
    box = '<box label="precipitate" occluded="0" xtl="6" ytl="6" xbr="9" ybr="9" z_order="0"/>'
    parts[1] += box
    parts[2] = parts[2].replace('width="16" height="12"', 'width="20" height="12"')
    corrected = write_cvat("</image>\n".join(parts[1:]), name="corrected.xml")
    assert main(["convert", str(corrected), "--out", str(store)]) == 0
    out = capsys.readouterr().out
    assert "1 image(s) added: img_04.png" in out
    assert "1 image(s) removed: img_00.png" in out
    assert "1 image(s) resized: img_02.png (12x16 -> 12x20)" in out
    assert "1 image(s) with changed annotations: img_01.png (objects 1 -> 2)" in out
