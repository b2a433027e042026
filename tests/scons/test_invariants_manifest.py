"""`load_manifest` itself refuses a fingerprint that is not 16 lowercase hex digits.

Everything downstream (cache keys, preinstalled names, op types) trusts the
manifest's fingerprint as a name, so the reader -- not some later caller --
is where a malformed one must stop.  The manifests are the real build's,
damaged in one field, so the test follows whatever schema the build writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simpler_build.manifest import ROLES, ManifestError, load_manifest
from tests.conftest import BuiltTree

BAD = {
    "upper-case": lambda fp: "A" + fp[1:].upper(),
    "15-digits": lambda fp: fp[:-1],
    "17-digits": lambda fp: fp + "0",
    "not-hex": lambda fp: "g" + fp[1:],
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", sorted(BAD))
def test_load_manifest_refuses_a_malformed_fingerprint(
    role: str, kind: str, built_tree: BuiltTree, tmp_path: Path
) -> None:
    raw = json.loads(built_tree.manifest("a5", "host_build_graph").read_text())
    good = raw["binaries"][role]["fingerprint"]
    bad = BAD[kind](good)
    raw["binaries"][role]["fingerprint"] = bad
    path = tmp_path / "runtime_binaries.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.path == path
    assert "fingerprint" in info.value.problem and repr(bad) in info.value.problem

    raw["binaries"][role]["fingerprint"] = good  # the same file, repaired, loads
    path.write_text(json.dumps(raw))
    assert load_manifest(path).binaries[role].fingerprint == good
