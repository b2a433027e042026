"""The `__slots__` records that replaced dataclasses keep the dataclass behaviour callers use."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from simpler_build.cache import CacheEntry, CacheStats, WarmReport
from simpler_build.cache.transfer import PullReport, Wanted
from simpler_build.manifest import BinaryRecord


def _entry(**changes: object) -> CacheEntry:
    fields = {"fingerprint": "0123456789abcdef", "path": Path("/c/x.so"), "size": 3}
    return CacheEntry(**{**fields, **changes})


def test_construction_defaults_and_errors() -> None:
    e = _entry()
    assert (e.arch, e.added, e.created) == (None, False, 0.0)
    assert CacheEntry("0123456789abcdef", Path("/c/x.so"), 3) == e  # positional too
    assert BinaryRecord("inner_so", Path("/b"), 1, "0" * 16, None).sha256 is None
    with pytest.raises(TypeError, match="missing"):
        CacheEntry("0123456789abcdef")
    with pytest.raises(TypeError, match="unexpected keyword"):
        _entry(colour="red")
    with pytest.raises(TypeError, match="multiple values"):
        CacheEntry("0123456789abcdef", fingerprint="x", path=Path("/"), size=1)


def test_frozen_records_refuse_assignment_and_hash_by_value() -> None:
    e = _entry()
    with pytest.raises(AttributeError, match="frozen"):
        e.size = 4  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del e.size  # type: ignore[misc]
    assert hash(e) == hash(_entry()) and {e, _entry()} == {e}
    assert e != _entry(size=4) and e != object()


def test_replace_as_dict_repr_pickle_copy() -> None:
    e = _entry(arch="a5")
    bigger = e.replace(size=9)
    assert (bigger.size, bigger.arch, e.size) == (9, "a5", 3)
    assert pickle.loads(pickle.dumps(e)) == e
    assert copy.deepcopy(e) == e and copy.copy(e) == e
    assert repr(e).startswith("CacheEntry(fingerprint='0123456789abcdef', path=")
    stats = CacheStats(Path("/c"), 2, 10, hits=1)
    assert stats.to_json()["root"] == "/c"
    assert stats.as_dict()["hits"] == 1 and stats.as_dict()["max_bytes"] is None


def test_mutable_reports_get_fresh_lists_and_are_not_hashable() -> None:
    a, b = WarmReport(), WarmReport()
    a.added.append(1)
    assert b.added == [] and a != b
    report = PullReport()
    report.bytes_pulled += 5  # reports are filled in as the work proceeds
    assert report.bytes_pulled == 5 and report.missing == []
    with pytest.raises(TypeError, match="unhashable"):
        hash(report)
    w = Wanted("0" * 16, None, 1, "inner_so", "a5", "rt", None, Path("/m"), Path("/b"))
    assert pickle.loads(pickle.dumps(w)) == w


def test_written_out_initialisers_match_the_generated_one() -> None:
    """Manifest, BinaryRecord and Wanted write their __init__ (no compile() on a first run);
    each takes its fields in order, keyword or positional, with the defaults it had."""
    from simpler_build.cache._record import Record
    from simpler_build.manifest import SCHEMA_VERSION, Manifest

    rec = BinaryRecord("aicore", Path("/b/k.elf"), 7, "0" * 16, "ab", sha256="cd")
    values: dict[type[Record], tuple[object, ...]] = {
        BinaryRecord: ("aicore", Path("/b/k.elf"), 7, "0" * 16, "ab", "cd"),
        Manifest: (Path("/b/m.json"), "a5", "hbg", "release", {"aicore": rec}, {"cc": "gcc"}, 2),
        Wanted: ("0" * 16, None, 7, "aicore", "a5", None, None, Path("/m"), Path("/b")),
    }
    for cls, args in values.items():
        assert "__init__" in vars(cls), cls
        written = cls(*args)
        assert written._values() == args
        assert cls(**dict(zip(cls._fields, args, strict=True))) == written
        with pytest.raises(TypeError):
            cls(*args[:-3])
    m = Manifest(Path("/m"), "a5", "hbg", "release", {})
    assert (m.toolchain, m.schema_version) == ({}, SCHEMA_VERSION)
    assert Manifest(Path("/m"), "a5", "hbg", "release", {}).toolchain is not m.toolchain
