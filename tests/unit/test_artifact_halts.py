"""The halted-artifact decision and the directive signature's coverage, as tables (pure logic)."""

from __future__ import annotations

import pytest

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain import artifact_halts as ah
from controlplane.pki import directive_key as dk

A = ah.ArtifactHalts("atlas", "sha256:" + "a" * 64, {"h-global": "global"}, {"h-global": "atlas-r1"})
FR = ah.ArtifactHalts("atlas", "sha256:" + "a" * 64, {"h-fr": "country:FR"})
ONE = ah.ArtifactHalts("atlas", "sha256:" + "a" * 64, {"h-site": "site:fr-par-1"})
BAD = ah.ArtifactHalts("atlas", "sha256:" + "a" * 64, {"h-bad": "planet:mars"})


@pytest.mark.parametrize(
    ("index", "site", "country", "refused"),
    [
        (None, "fr-par-1", "FR", None),
        (A, "jp-tyo-1", "JP", "h-global"),
        (FR, "fr-par-1", "FR", "h-fr"),
        (FR, "de-fra-1", "DE", None),
        (ONE, "fr-par-1", "FR", "h-site"),
        (ONE, "fr-par-2", "FR", None),
        (BAD, "de-fra-1", "DE", "h-bad"),  # an unreadable scope covers every site: fail closed
        (ah.ArtifactHalts("atlas", "sha256:" + "a" * 64), "fr-par-1", "FR", None),
    ],
)
def test_refusal(index: ah.ArtifactHalts | None, site: str, country: str, refused: str | None) -> None:
    why = ah.refusal(index, site_id=site, country=country)
    assert (why is None) == (refused is None)
    if refused:
        assert refused in why and "is halted" in why  # type: ignore[operator]


def test_a_resume_removes_only_its_halt() -> None:
    both = ah.with_halt(
        A, halt_id="h2", scope="country:FR", release="atlas-copy", model="atlas", digest=A.digest
    )
    assert both.halts == {"h-global": "global", "h2": "country:FR"}
    left = ah.without_halt(both, "h-global")
    assert left is not None and left.halts == {"h2": "country:FR"} and left.releases == {"h2": "atlas-copy"}
    assert ah.without_halt(left, "h2") is None  # the record is deleted
    assert ah.without_halt(left, "unknown") == left


def _directive() -> tpb.Directive:
    d = tpb.Directive(sequence=7, id="x", kind=tpb.DIRECTIVE_KIND_DEPLOY, issuer="spiffe://t/user/a")
    d.deploy.deployment_name = "atlas"
    return d


def test_the_signature_covers_site_and_every_field_but_its_own() -> None:
    key = dk.DirectiveKey.generate()
    d = _directive()
    key.sign("fr-par-1", d)
    assert dk.check(key.public, "fr-par-1", d) is None
    assert dk.check(key.public, "de-fra-1", d) is not None  # another site
    assert dk.signing_bytes("fr-par-1", d).startswith(b"stargate-directive-v1\nfr-par-1\n")
    for change in ("sequence", "issuer", "deploy", "safety"):
        e = tpb.Directive()
        e.CopyFrom(d)
        if change == "sequence":
            e.sequence = 8
        elif change == "issuer":
            e.issuer = "spiffe://t/user/b"
        elif change == "deploy":
            e.deploy.replicas = 64
        else:
            e.signature = b"\0" * 64  # the safety signature (field 9) is covered too
        assert dk.check(key.public, "fr-par-1", e) is not None, change
    assert not ({14, 15} - dk.UNSIGNED_FIELDS) and {35, 39} <= dk.UNSIGNED_FIELDS
    unsigned = tpb.Directive()
    unsigned.CopyFrom(d)
    unsigned.ClearField("directive_signature")
    assert "not signed" in (dk.check(key.public, "fr-par-1", unsigned) or "")
    assert "no directive key" in (dk.check(None, "fr-par-1", d) or "")
