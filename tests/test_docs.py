"""The user documentation's shape: a short README that links to docs/ pages that exist, a configuration page that
states every setting with its default, and no words about how the project was built."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from model.registry import FAMILIES
from server.config import Config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "model" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "bench" / "results").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def test_the_readme_is_short_and_links_to_every_docs_page() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") < 300
    for page in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{page.name})" in text, f"link docs/{page.name} from the README's Documentation table"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_that_exist(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if not re.match(r"[a-z]+:", target):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to a missing {target}"


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if value == "":
        return "(empty)"
    return f"`{value:,}`" if isinstance(value, int) and value >= 100_000 else f"`{value}`"


def _settings() -> list[tuple[str, object]]:
    """(name, default) of every server setting and every model family's option."""
    server = [(f.name, f.default) for f in dataclasses.fields(Config) if not f.metadata.get("families")]
    return server + [(option.name, option.default) for family in FAMILIES for option in family.options]


def test_the_configuration_page_states_every_setting_with_its_default() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name, default in _settings():
        row = f"| `--{name.replace('_', '-')}` | `STYLETRANSFER_{name.upper()}` | {_format(default)} |"
        assert row in text, f"docs/configuration.md needs the row {row}"


# Tracker issue numbers and the load of the machine a number was measured on.
BUILD_HISTORY = re.compile(r"\bissues? #?\d+|\bload average\b", re.IGNORECASE)


@pytest.mark.parametrize("page", [p for p in PAGES if "bench/results" not in p.as_posix()],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_docs_speak_of_the_product_not_of_how_it_was_built(page: Path) -> None:
    """Dated measurements, with the conditions they were taken in, belong in bench/results/."""
    assert not BUILD_HISTORY.findall(page.read_text())
