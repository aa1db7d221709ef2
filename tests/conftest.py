"""Shared fixtures: tiny CVAT exports built in code, and the path of the shipped sample data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# A verdict must not depend on the machine's load: no hypothesis test has a deadline, and the
# examples are derandomised so that every run of the suite tries the same ones.
settings.register_profile("microprep", deadline=None, derandomize=True)
settings.load_profile("microprep")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"

LABELS_XML = """
<labels>
  <label><name>bubble</name><color>#e6194b</color><type>ellipse</type><attributes/></label>
  <label><name>precipitate</name><color>#3cb44b</color><type>polygon</type><attributes/></label>
</labels>"""


def cvat_xml(images: str, labels: str = LABELS_XML, prologue: str = "") -> str:
    """A CVAT for images 1.1 task export around the given ``<image>`` elements."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"{prologue}"
        "<annotations>\n<version>1.1</version>\n"
        f"<meta><task><id>1</id><name>t</name>{labels}</task></meta>\n"
        f"{images}\n</annotations>\n"
    )


GOOD_IMAGE = (
    '<image id="0" name="a.png" width="32" height="24">\n'
    '  <box label="precipitate" occluded="0" source="manual" xtl="2.5" ytl="3" xbr="10"'
    ' ybr="9.5" z_order="0"/>\n'
    '  <ellipse label="bubble" occluded="0" source="manual" cx="20" cy="12" rx="5.5" ry="4"'
    ' rotation="30" z_order="1"/>\n'
    "</image>"
)


@pytest.fixture
def write_cvat(tmp_path: Path) -> Callable[..., Path]:
    """Write a CVAT export (``images`` XML, optional ``prologue`` before the root) to a file."""

    def write(images: str = GOOD_IMAGE, name: str = "annotations.xml", **kw: str) -> Path:
        path = tmp_path / name
        path.write_text(cvat_xml(images, **kw), encoding="utf-8")
        return path

    return write


@pytest.fixture
def sample_data() -> Path:
    """The shipped sample data folder."""
    if not (SAMPLE_DATA / "cvat" / "annotations.xml").is_file():
        pytest.fail("sample_data/cvat/annotations.xml is missing: run sample_data/generate.py")
    return SAMPLE_DATA
