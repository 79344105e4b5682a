"""The sheet's numbers and the exercise registry: one entry per exercise, matching the book."""

import re

import pytest
import yaml

from book_helpers import ROOT
from dmlbook import explore, selfcheck
from dmlbook.sheet import EXERCISES, SHEET, by_key, exercise, keys, numbers, panel_keys

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def _part(prefix: str) -> list[str]:
    return [c["file"] for part in TOC["parts"] for c in part["chapters"]
            if c["file"].startswith(prefix)]


def test_registry_matches_the_table_of_contents():
    assert [e.chapter for e in EXERCISES] == _part("chapters/")
    assert [w for e in EXERCISES for w in e.workbook] == _part("workbook/")


def test_every_registered_page_exists():
    for e in EXERCISES:
        assert (ROOT / f"{e.chapter}.md").is_file(), e.chapter
        for page in e.workbook:
            assert (ROOT / f"{page}.md").is_file(), page


def test_numbers_and_keys_are_consecutive_and_unique():
    assert numbers() == tuple(range(1, len(EXERCISES) + 1))
    assert keys() == tuple(f"ex{n}" for n in numbers())
    assert len(set(panel_keys())) == len(panel_keys())
    for e in EXERCISES:
        assert re.fullmatch(rf"chapters/{e.key}_\w+", e.chapter)
        assert all(p == e.key or p.startswith(f"{e.key}_") for p in e.panels)


def test_panels_are_the_explorers_of_the_package():
    assert set(panel_keys()) == set(explore.SPECS)


def test_each_exercise_has_its_self_check():
    for e in EXERCISES:
        assert selfcheck.for_exercise(e.number).check_id == e.selfcheck


def test_each_chapter_shows_its_own_panels_in_order():
    for e in EXERCISES:
        text = (ROOT / f"{e.chapter}.md").read_text(encoding="utf-8")
        shown = re.findall(r"explore\.panel\(\s*[\"'](\w+)[\"']", text)
        assert shown == list(e.panels), e.chapter


def test_lookups_refuse_unknown_exercises():
    assert exercise(3).key == "ex3" and by_key("ex6").number == 6
    for bad in (0, len(EXERCISES) + 1, 1.0, True, "1", None):
        with pytest.raises(ValueError, match="exercise must be one of"):
            exercise(bad)
    with pytest.raises(ValueError, match="key must be one of"):
        by_key("ex0")


def test_sheet_numbers_give_the_sheets_answers():
    from dmlbook import bandwidth, costs, messages

    limit = bandwidth.max_participants(**SHEET.ex1)
    assert (limit.download, limit.n_max) == (SHEET.ex1_download_participants, SHEET.ex1_n_max)
    assert round(costs.fl_download_cost(**SHEET.ex2), 2) == SHEET.ex2_usd
    assert messages.dpsgd_messages(**SHEET.ex6) == SHEET.ex6_messages
    # The sheet's own arithmetic, typed as it prints it.
    assert SHEET.ex6_messages == (SHEET.dpsgd_steps * SHEET.dpsgd_nodes * SHEET.dpsgd_degree
                                  + SHEET.dpsgd_nodes * (SHEET.dpsgd_nodes - 1))
