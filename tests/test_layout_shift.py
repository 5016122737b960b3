"""How bench/layout_shift.py splits a page's layout shift between Streamlit mounting its frame and the
page itself, on shifts written by hand the way Chromium reports them (1350x940, Lighthouse's window)."""

import pytest

from bench.layout_shift import attribute, frame_cause, score

VIEW = [1350, 940]
SIDEBAR_ARRIVES = {"testid": "", "header": True, "before": [0, 0, 1350, 940], "after": [300, 0, 1050, 940]}
WIDE_LAYOUT = {
    "testid": "stMainBlockContainer",
    "header": False,
    "before": [307, 0, 736, 256],
    "after": [0, 0, 1350, 256],
}


def element(before_y: float, after_y: float, height: float = 100) -> dict:
    return {"testid": "stElementContainer", "header": False, "before": [380, before_y, 890, height],
            "after": [380, after_y, 890, height]}  # fmt: skip


def test_the_sidebar_arriving_scores_what_chromium_reports():
    """The whole window moves 300 px of 1350: 0.222, Chromium's number for a six-line app."""
    assert score([SIDEBAR_ARRIVES], VIEW) == pytest.approx(300 / 1350)
    assert frame_cause(SIDEBAR_ARRIVES) == "the sidebar arrives"
    main = {**SIDEBAR_ARRIVES, "header": False, "testid": "stMain"}  # Chromium names the main area instead
    assert frame_cause(main) == "the sidebar arrives"
    assert frame_cause({**main, "after": [300, 0, 1350, 940]}) is None  # moved whole, not squeezed: the page's
    split = attribute([{"value": 0.2222, "viewport": VIEW, "sources": [SIDEBAR_ARRIVES]}])
    assert split["page"] == pytest.approx(0, abs=1e-4) and split["causes"] == ["the sidebar arrives"]


def test_the_wide_layout_arriving_is_the_frame_but_a_block_moving_right_is_the_page():
    assert score([WIDE_LAYOUT], VIEW) == pytest.approx(1350 * 256 / (1350 * 940) * 307 / 1350)
    assert frame_cause(WIDE_LAYOUT) == "the wide layout arrives"
    moved_right = {**WIDE_LAYOUT, "before": [0, 0, 1350, 256], "after": [307, 0, 736, 256]}
    assert frame_cause(moved_right) is None


def test_a_page_element_moving_is_the_page_own():
    shift = element(300, 400)
    value = score([shift], VIEW)
    assert value == pytest.approx(890 * 200 / (1350 * 940) * 100 / 1350)
    split = attribute([{"value": value, "viewport": VIEW, "sources": [shift]}])
    assert split["frame"] == 0 and split["page"] == pytest.approx(value) and split["causes"] == []


def test_a_shift_that_mixes_both_gives_the_page_only_what_it_adds():
    """The sidebar arrives while an element drops 400 px in the same frame: Chromium's score is the
    whole window times 400/1350; the frame alone would have been 300/1350, the page adds the rest."""
    value = score([SIDEBAR_ARRIVES, element(100, 500)], VIEW)
    assert value == pytest.approx(400 / 1350)
    split = attribute([{"value": value, "viewport": VIEW, "sources": [SIDEBAR_ARRIVES, element(100, 500)]}])
    assert split["frame"] == pytest.approx(300 / 1350)
    assert split["page"] == pytest.approx(100 / 1350)


def test_the_sidebar_navigation_arriving_above_its_content_is_the_frame():
    content = {
        "testid": "stSidebarUserContent",
        "header": False,
        "before": [30, 76, 240, 140],
        "after": [30, 367, 240, 140],
    }
    assert frame_cause(content) == "the sidebar's navigation arrives"
    assert frame_cause({**content, "after": [30, 40, 240, 140]}) is None  # moving up is not the navigation
