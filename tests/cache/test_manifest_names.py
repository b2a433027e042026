"""The manifest's name and build-id checks, written as string operations, accept exactly
what their patterns describe (ASCII only, no trailing newline: a regex's `$` lets one in)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build.manifest import _BUILD_ID_CHARS, _NAME_CHARS, _all_of

_alphabet = st.characters(min_codepoint=0, max_codepoint=0x17F) | st.sampled_from("\n٣²Ａ")


@settings(max_examples=500, deadline=None)
@given(st.text(_NAME_CHARS, max_size=70) | st.text(_alphabet, max_size=70))
def test_a_name_is_1_to_64_of_letters_digits_and_four_marks(text: str) -> None:
    expected = re.fullmatch(r"[A-Za-z0-9_.+\-]{1,64}", text, re.ASCII) is not None
    assert _all_of(_NAME_CHARS, text, 64) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(_BUILD_ID_CHARS, max_size=140) | st.text(_alphabet, max_size=140))
def test_a_build_id_is_1_to_128_printable_ascii_characters(text: str) -> None:
    expected = re.fullmatch(r"[\x21-\x7e]{1,128}", text) is not None
    assert _all_of(_BUILD_ID_CHARS, text, 128) == expected


def test_the_edges() -> None:
    assert _all_of(_NAME_CHARS, "a" * 64, 64) and not _all_of(_NAME_CHARS, "a" * 65, 64)
    for bad in ("", "a5\n", "a 5", "a/5", "a٣", "Ａ5"):
        assert not _all_of(_NAME_CHARS, bad, 64), bad
    assert _all_of(_NAME_CHARS, "host_build_graph", 64) and _all_of(_NAME_CHARS, "a2a3", 64)
