"""A stored directive as the wire message a site receives, and its directive-key signature.

One function builds the message both when a directive is queued (to sign it) and when the link
sends it (to carry the stored signature), so the bytes signed are the bytes sent. The signature is
made here, by the replica that queues the directive, with the directive key on its disk; the store
holds the signature, never the key (controlplane/pki/directive_key.py).
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.api import directive_kinds
from controlplane.api.v1 import types_pb2 as tpb
from controlplane.domain.records import DirectiveRecord
from controlplane.pki.directive_key import DirectiveKey


def ts(seconds: float) -> Timestamp:
    t = Timestamp()
    if seconds:
        t.FromNanoseconds(int(seconds * 1e9))
    return t


def unsigned_pb(rec: DirectiveRecord) -> tpb.Directive:
    # A record of a kind nobody registered (an unreadable one's placeholder, a store edit) goes out
    # as kind 0 without a payload: shown as such, and refused by any site.
    kind = directive_kinds.find(rec.kind)
    d = tpb.Directive(
        sequence=rec.sequence,
        id=rec.id,
        kind=kind.number if kind else tpb.DIRECTIVE_KIND_UNSPECIFIED,
        issued_at=ts(rec.issued_at),
        expires_at=ts(rec.expires_at),
        issuer=rec.issuer,
    )
    if kind is not None:
        kind.fill(d, rec.payload)
    return d


def directive_to_pb(rec: DirectiveRecord) -> tpb.Directive:
    """The directive as sent, with the signature stored beside it (none when it has none: the
    site then refuses it)."""
    d = unsigned_pb(rec)
    if rec.signature:
        d.directive_key_id = rec.key_id
        d.directive_signature = bytes.fromhex(rec.signature)
    return d


def signed(rec: DirectiveRecord, key: DirectiveKey) -> DirectiveRecord:
    """``rec`` with its directive-key signature for its site and sequence."""
    d = unsigned_pb(rec)
    key.sign(rec.site_id, d)
    return rec.replace(key_id=d.directive_key_id, signature=d.directive_signature.hex())
