"""Image files: every format and sample type comes back with its shape and dtype kept."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from microprep.errors import ImageFileError, UnsafeInputError
from microprep.images import load_image, read_image


def ramp(shape: tuple[int, ...], dtype: type[np.generic], scale: float = 1.0) -> np.ndarray:
    """Distinct values over the whole range the test needs."""
    return (np.arange(int(np.prod(shape))).reshape(shape) * scale).astype(dtype)


def write_png16(path: Path, pixels: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written byte by byte (Pillow cannot write 16-bit colour PNGs)."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_png_8bit_gray(tmp_path: Path) -> None:
    pixels = ramp((4, 6), np.uint8, 10)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, pixels)


def test_png_16bit_gray_stays_uint16(tmp_path: Path) -> None:
    pixels = ramp((5, 7), np.uint16, 1800)  # up to 61200: needs 16 bits
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, pixels)


def test_png_16bit_gray_written_by_hand(tmp_path: Path) -> None:
    pixels = ramp((3, 4), np.uint16, 5000)
    write_png16(tmp_path / "a.png", pixels, colour_type=0)
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize(("colour_type", "channels"), [(2, 3), (6, 4), (4, 2)])
def test_png_16bit_colour_is_refused_not_truncated(
    tmp_path: Path, colour_type: int, channels: int
) -> None:
    write_png16(tmp_path / "c.png", np.full((3, 4, channels), 40000, np.uint16), colour_type)
    with pytest.raises(ImageFileError, match=r"16-bit .*TIFF"):
        read_image(tmp_path / "c.png")


def test_png_rgb_and_rgba(tmp_path: Path) -> None:
    rgb = ramp((4, 5, 3), np.uint8, 4)
    rgba = ramp((4, 5, 4), np.uint8, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba)


def test_jpeg_rgb_and_gray(tmp_path: Path) -> None:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 40, 40)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (16, 24, 3)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 8  # lossy, but the same picture

    gray = np.full((8, 8), 128, np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.jpeg")
    out = read_image(tmp_path / "g.jpeg")
    assert out.shape == (8, 8)
    assert abs(int(out.mean()) - 128) <= 2


def test_palette_images(tmp_path: Path) -> None:
    colour = Image.new("P", (4, 3))
    colour.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    colour.putpixel((1, 1), 1)
    colour.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (3, 4, 3)
    assert out[1, 1].tolist() == [255, 0, 0]

    gray = Image.new("P", (4, 3))
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    gray.putpixel((2, 0), 77)
    gray.save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4)
    assert out[0, 2] == 77


def test_gray_alpha_and_bilevel(tmp_path: Path) -> None:
    la = np.stack([ramp((3, 4), np.uint8, 9), np.full((3, 4), 255, np.uint8)], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out, la[..., 0])  # alpha dropped

    Image.fromarray(np.eye(3, dtype=bool)).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.uint8) * 255)


def test_tiff_16bit_and_float32(tmp_path: Path) -> None:
    u16 = ramp((6, 5), np.uint16, 2000)
    f32 = ramp((6, 5), np.float32, 0.25) - 3.5
    tifffile.imwrite(tmp_path / "u16.tif", u16)
    tifffile.imwrite(tmp_path / "f32.tiff", f32)
    out = read_image(tmp_path / "u16.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, u16)
    out = read_image(tmp_path / "f32.tiff")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, f32)


def test_tiff_rgb_contiguous_and_planar(tmp_path: Path) -> None:
    rgb = ramp((4, 6, 3), np.uint16, 300)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb", planarconfig="contig")
    tifffile.imwrite(
        tmp_path / "p.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "p.tif"), rgb)


def test_multipage_tiff_gives_the_first_page(tmp_path: Path) -> None:
    stack = ramp((3, 4, 5), np.uint8)
    with tifffile.TiffWriter(tmp_path / "s.tif") as tif:
        for plane in stack:
            tif.write(plane, contiguous=False)
    out = read_image(tmp_path / "s.tif")
    np.testing.assert_array_equal(out, stack[0])


def test_tiff_is_recognised_by_its_signature(tmp_path: Path) -> None:
    pixels = ramp((3, 3), np.uint16, 7000)
    tifffile.imwrite(tmp_path / "x.tif", pixels)
    (tmp_path / "x.dat").write_bytes((tmp_path / "x.tif").read_bytes())
    np.testing.assert_array_equal(read_image(tmp_path / "x.dat"), pixels)


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageFileError, match=r"bad\.png.*cannot read"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\xff" * 20)
    with pytest.raises(ImageFileError, match=r"bad\.tif"):
        read_image(tmp_path / "bad.tif")
    with pytest.raises(ImageFileError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageFileError, match="cannot open"):
        read_image(tmp_path)


def test_load_image_with_folders_spaces_and_unicode(tmp_path: Path) -> None:
    pixels = ramp((4, 6), np.uint8)
    (tmp_path / "grid 1").mkdir()
    Image.fromarray(pixels).save(tmp_path / "grid 1" / "ä b.png")
    out = load_image(tmp_path, "grid 1/ä b.png", expected=(6, 4))
    np.testing.assert_array_equal(out, pixels)


def test_load_image_missing_names_file_and_image(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError) as info:
        load_image(tmp_path, "sub/missing.png")
    message = str(info.value)
    assert "'sub/missing.png'" in message
    assert str(tmp_path / "sub" / "missing.png") in message
    assert "not found" in message


def test_load_image_size_mismatch_gives_both_sizes(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ImageFileError) as info:
        load_image(tmp_path, "a.png", expected=(5, 4))
    message = str(info.value)
    assert "6x4" in message
    assert "5x4" in message
    assert "'a.png'" in message


def test_load_image_wraps_unreadable_with_the_image_name(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.raises(ImageFileError, match=r"image 'a\.png'.*cannot read"):
        load_image(tmp_path, "a.png")


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd", "a/../../b.png"])
def test_load_image_refuses_names_escaping_root(tmp_path: Path, name: str) -> None:
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "outside.png")
    with pytest.raises(UnsafeInputError):
        load_image(root, name)


def test_load_image_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "outside.png")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(UnsafeInputError):
        load_image(root, "link.png")
