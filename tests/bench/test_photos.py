"""The benchmarks' one photo loader and one contact-sheet writer."""

from __future__ import annotations

import pytest
from PIL import Image

from bench.photos import contact_sheet, fit_photo, load_photo


@pytest.mark.parametrize(("fit", "size"), [("longer", (64, 43)), ("shorter", (96, 64)), ("square", (64, 64))])
def test_a_shipped_photo_is_loaded_by_name_and_fitted(fit: str, size: tuple[int, int]) -> None:
    photo = load_photo("chelsea", 64, fit=fit)  # 451 x 300
    assert photo.mode == "RGB" and photo.size == size


def test_a_file_loads_as_rgb_at_its_own_size(tmp_path) -> None:
    Image.new("L", (30, 20), 128).save(tmp_path / "grey.png")
    photo = load_photo(tmp_path / "grey.png")
    assert photo.mode == "RGB" and photo.size == (30, 20) and photo.getpixel((0, 0)) == (128, 128, 128)


def test_an_unknown_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="fit must be"):
        fit_photo(Image.new("RGB", (4, 4)), 2, "cover")  # type: ignore[arg-type]


def test_a_sheet_centres_each_image_in_its_cell_under_the_titles() -> None:
    wide, tall = Image.new("RGB", (40, 20), "red"), Image.new("RGB", (10, 40), "blue")
    sheet = contact_sheet([[wide, tall], [tall]], ["a wide one", "a title far too long to fit in one cell"], cell=40,
                          gap=4)
    assert sheet.size == (40 * 2 + 4, 22 + 40 * 2 + 4)
    assert sheet.getpixel((20, 22 + 20)) == (255, 0, 0)  # the wide image, centred vertically in its cell
    assert sheet.getpixel((20, 22 + 2)) == (255, 255, 255)  # above it, the cell's margin
    assert sheet.getpixel((44 + 20, 22 + 20)) == (0, 0, 255)
    assert sheet.getpixel((44 + 20, 22 + 44 + 20)) == (255, 255, 255)  # the second row has one image only
    assert sheet.getpixel((20, 22 + 44 + 20)) == (0, 0, 255)
    title_area = sheet.crop((44 + 40 - 2, 0, 44 + 40, 22))
    assert title_area.getextrema() == ((255, 255), (255, 255), (255, 255))  # the long title was cut to its cell


def test_a_row_of_landscape_photos_is_only_as_tall_as_they_are() -> None:
    wide = Image.new("RGB", (60, 40), "red")
    sheet = contact_sheet([[wide, wide], [wide]], cell=30, gap=2)
    assert sheet.size == (30 * 2 + 2, 20 * 2 + 2)
