"""The preinstall directory's names are told apart with string operations that agree with
the documented patterns (`simpler_build.device.INSTALLED_SO` / `DISPATCHER_TEMP`).

The runtime checks the name of every inner SO it loads and sweeps the dispatcher's
temp files on every first run; compiling the patterns for that cost more than the
checks (issue 9, "Lean entry points").  So `installed_fingerprint` and
`is_dispatcher_temp` answer without compiling, and must answer exactly what the
patterns do, or `device gc` and the loader would disagree about a file.  The
patterns end in `\\Z`: a name with a final newline is not the dispatcher's.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from simpler_build import device

#: Pieces of names close to the real ones, about half of each piece right, so most
#: examples are near misses and a good share are real names.
PREFIXES = st.one_of(
    st.just("simpler_inner_"), st.sampled_from(["simpler_inner", "simpler_innerX", "", "x"])
)
FINGERPRINTS = st.one_of(
    st.just("0123456789abcdef"),
    st.text(alphabet="0123456789abcdef", min_size=15, max_size=17),
    st.text(alphabet="0123456789abcdefABCDEFg_", min_size=0, max_size=18),
)
DEVICES = st.one_of(
    st.just(""),
    st.text(alphabet="0123456789", min_size=1, max_size=3).map(lambda d: "_" + d),
    # digits that are not ASCII ([0-9] is): Arabic-Indic three, superscript two
    st.text(alphabet="0123456789٣²", min_size=1, max_size=3).map(lambda d: "_" + d),
    st.text(alphabet="_0123456789a٣²", min_size=0, max_size=4),
)
SUFFIXES = st.one_of(
    st.just(".so"), st.sampled_from([".so\n", ".so\n\n", ".sox", "so", ".so.tmp.", ""])
)
TEMP_TAILS = st.one_of(
    st.just(""),
    st.text(alphabet="AZaz09", min_size=6, max_size=6).map(lambda t: ".tmp." + t),
    st.text(alphabet="AZaz09_.-\n", min_size=0, max_size=8).map(lambda t: ".tmp." + t),
)


def _reference_installed(name: str) -> str | None:
    m = re.compile(device._PATTERNS["INSTALLED_SO"]).match(name)
    return None if m is None else m.group(1)


def _reference_temp(name: str) -> bool:
    return re.compile(device._PATTERNS["DISPATCHER_TEMP"]).match(name) is not None


@settings(max_examples=800, deadline=None)
@given(PREFIXES, FINGERPRINTS, DEVICES, SUFFIXES, TEMP_TAILS)
def test_string_checks_agree_with_the_patterns(
    prefix: str, fp: str, dev: str, suffix: str, tail: str
) -> None:
    name = prefix + fp + dev + suffix + tail
    assert device.installed_fingerprint(name) == _reference_installed(name), name
    assert device.is_dispatcher_temp(name) == _reference_temp(name), name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_string_checks_agree_with_the_patterns_on_any_text(name: str) -> None:
    assert device.installed_fingerprint(name) == _reference_installed(name)
    assert device.is_dispatcher_temp(name) == _reference_temp(name)


def test_the_real_names() -> None:
    fp = "0123456789abcdef"
    assert device.installed_fingerprint(f"simpler_inner_{fp}_3.so") == fp
    assert device.installed_fingerprint(f"simpler_inner_{fp}.so") == fp  # the legacy name
    assert device.installed_fingerprint(f"simpler_inner_{fp}_3.so.tmp.Ab12Cd") is None
    assert device.installed_fingerprint(f"simpler_inner_{fp.upper()}_3.so") is None
    assert device.installed_fingerprint(f"simpler_inner_{fp}_.so") is None
    # A final newline: neither the patterns nor the string checks take the name (fixed
    # examples, not left to hypothesis drawing one).
    for name in (f"simpler_inner_{fp}_3.so\n", f"simpler_inner_{fp}.so\n"):
        assert device.installed_fingerprint(name) is None is _reference_installed(name)
    name = f"simpler_inner_{fp}_3.so.tmp.Ab12Cd\n"
    assert not device.is_dispatcher_temp(name) and not _reference_temp(name)
    for digit in ("\u0663", "\u00b2"):  # Arabic-Indic three, superscript two: isdigit(), not [0-9]
        name = f"simpler_inner_{fp}_{digit}.so"
        assert device.installed_fingerprint(name) is None is _reference_installed(name)
    assert device.is_dispatcher_temp(f"simpler_inner_{fp}_3.so.tmp.Ab12Cd")
    assert not device.is_dispatcher_temp(f"simpler_inner_{fp}_3.so.tmp.Ab12C")
    assert not device.is_dispatcher_temp(f"simpler_inner_{fp}_3.so")


def test_the_patterns_stay_importable_by_name() -> None:
    """`DISPATCHER_TEMP` / `INSTALLED_SO` are still module attributes, compiled on first use."""
    from simpler_build.runtime.sim import fs

    assert isinstance(device.INSTALLED_SO, re.Pattern)
    assert fs.INSTALLED_SO is device.INSTALLED_SO
    assert fs.DISPATCHER_TEMP is device.DISPATCHER_TEMP
