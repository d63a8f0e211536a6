"""The window cutter (pure): where windows end, their look-back, and what they add up to."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsafe_gateway.chat_proxy.windows import (
    FIRST_WINDOW_MIN_CHARS,
    Window,
    WindowCutter,
    context_start,
    cut_point,
)

TEXT = "One two three. Four five six seven. Eight nine ten eleven twelve. Thirteen."


def cut_all(text: str, size: int, lookback: int, pieces: list[str] | None = None) -> list[Window]:
    cutter = WindowCutter(size, lookback)
    windows: list[Window] = []
    for piece in pieces if pieces is not None else [text]:
        windows += cutter.feed(piece)
    return windows + cutter.finish()


def test_a_window_ends_at_the_first_sentence_end_after_half_its_size() -> None:
    # "One two three." is 14 characters: past half of 20, so the window closes there.
    assert cut_point(TEXT, 0, 20, final=False) == 14
    # With size 40 the first sentence end is before 20: the next one (35) is taken.
    assert cut_point(TEXT, 0, 40, final=False) == len("One two three. Four five six seven.")


def test_the_first_window_is_one_sentence_the_next_ones_half_a_window_or_more() -> None:
    # The first sentence end after FIRST_WINDOW_MIN_CHARS, not after half the size (50).
    assert FIRST_WINDOW_MIN_CHARS < 35 < 50
    windows = cut_all(TEXT, 100, 0)
    assert [(w.start, w.end) for w in windows] == [(0, 35), (35, len(TEXT))]


def test_a_sentence_end_counts_only_once_the_next_character_is_there() -> None:
    assert cut_point("It costs 3.", 0, 20, final=False) is None  # may be 3.14
    assert cut_point("It costs 3.14 now", 0, 20, final=False) is None
    assert cut_point("It costs 3. Now", 0, 20, final=False) == len("It costs 3.")
    assert cut_point("It costs 3.", 0, 20, final=True) == len("It costs 3.")


def test_without_a_sentence_end_it_cuts_at_the_last_space_then_hard() -> None:
    text = "alpha beta gamma delta epsilon zeta"
    assert cut_point(text, 0, 20, final=False) == len("alpha beta gamma ")
    assert cut_point("x" * 50, 0, 20, final=False) == 20
    assert cut_point("x" * 19, 0, 20, final=False) is None


def test_line_breaks_and_cjk_full_stops_end_sentences() -> None:
    assert cut_point("first line here\nsecond", 0, 20, final=False) == len("first line here\n")
    assert cut_point("这是第一句话。这是第二句话。", 0, 10, final=False) == 7
    assert cut_point('He said "stop." Then left', 0, 20, final=False) == len('He said "stop."')


def test_look_back_starts_at_a_word_boundary() -> None:
    assert context_start(TEXT, 35, 12) == len("One two three. Four five ")
    assert context_start(TEXT, 35, 0) == 35
    assert context_start(TEXT, 35, 1000) == 0
    assert context_start("abcdefghij klm", 13, 5) == 11  # after the space: "kl" + window
    assert context_start("abcdefghijklmnop", 13, 5) == 13  # no word boundary: no look-back


def test_windows_cover_the_reply_once_in_order_with_their_look_back() -> None:
    windows = cut_all(TEXT, 20, 15)
    assert [w.index for w in windows] == list(range(len(windows)))
    assert "".join(TEXT[w.start : w.end] for w in windows) == TEXT
    assert windows[0].start == windows[0].context_start == 0
    for previous, window in itertools.pairwise(windows):
        assert window.start == previous.end
        assert window.text == TEXT[window.context_start : window.end]
        assert 0 < window.start - window.context_start <= 15
        assert window.new_chars <= 20


def test_streaming_piece_by_piece_gives_the_same_windows_as_all_at_once() -> None:
    words = TEXT.split(" ")
    pieces = [words[0], *(" " + word for word in words[1:])]
    assert cut_all(TEXT, 20, 15, pieces) == cut_all(TEXT, 20, 15)


def test_nothing_is_cut_from_nothing_and_whitespace_is_kept() -> None:
    assert cut_all("", 20, 10) == []
    windows = cut_all("Short.  ", 20, 10)
    assert [(w.start, w.end) for w in windows] == [(0, 8)]


def test_the_cutter_keeps_only_what_the_next_window_needs() -> None:
    cutter = WindowCutter(20, 10)
    for _ in range(500):
        cutter.feed("A sentence of text. ")
    assert cutter.received == 500 * 20
    assert len(cutter._kept) < 20 + 10 + 20  # the open window, the look-back, one chunk


def test_size_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        WindowCutter(1, 0)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab .!?\n。")), max_size=300),
    size=st.integers(2, 60),
    lookback=st.integers(0, 80),
    seed=st.integers(0, 1000),
)
def test_any_text_in_any_pieces_is_covered_exactly(
    text: str, size: int, lookback: int, seed: int
) -> None:
    rng = random.Random(seed)
    pieces: list[str] = []
    rest = text
    while rest:
        take = rng.randint(1, 7)
        pieces.append(rest[:take])
        rest = rest[take:]
    windows = cut_all(text, size, lookback, pieces)
    assert "".join(text[w.start : w.end] for w in windows) == text
    for window in windows:
        assert 0 < window.new_chars <= size
        assert window.start - window.context_start <= lookback
        assert window.text == text[window.context_start : window.end]
