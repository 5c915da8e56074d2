"""What a site trusts before it looks at a directive: the control plane's directive key, and the
release publishers whose signed releases it will deploy.

Both come with enrollment (``EnrollResponse.directive_key`` and ``.publishers``, received over TLS
checked against the CA certificate the site was given out of band) and are kept beside the site's
key: ``directive-key.pem`` and ``publishers.json``. The publisher set changes only by a
``Publishers`` directive, which like every directive must verify with the directive key. A site
whose policy names its own publisher keys (``LocalPolicy.trusted_publisher_keys``) trusts exactly
those and ignores the federation's set.

Every directive is checked first (``check``): it must carry a signature by the directive key over
this site's id and the directive with its signature fields cleared (controlplane/pki/directive_key.py).
An unsigned directive (e.g. written straight into the federation's store), one signed with another
key, one altered after signing, or one signed for another site is refused with the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.api.v1 import types_pb2 as tpb
from controlplane.pki import directive_key as dk

log = logging.getLogger(__name__)


class DirectiveTrust:
    def __init__(self, site_id: str, directory: Path | None) -> None:
        self.site_id = site_id
        self.directory = directory
        self._key: Ed25519PublicKey | None = None
        self._publishers: dict[str, bytes] | None = None

    @property
    def key(self) -> Ed25519PublicKey | None:
        if self._key is None and self.directory is not None:
            self._key = dk.read_site_key(self.directory)  # written by join; read once it exists
        return self._key

    def check(self, d: tpb.Directive) -> str | None:
        """Why ``d`` must be refused on its directive signature, or None."""
        return dk.check(self.key, self.site_id, d)

    def publisher_keys(self) -> set[bytes]:
        if self._publishers is None:
            self._publishers = dk.read_publishers(self.directory) if self.directory is not None else {}
        return set(self._publishers.values())

    def set_publishers(self, payload: tpb.PublishersPayload) -> None:
        """Apply a (verified) Publishers directive: the whole set replaces the one held."""
        if self.directory is not None:
            dk.write_publishers(self.directory, list(payload.publishers))
        held = {p.name: bytes(p.public_key) for p in payload.publishers if len(p.public_key) == 32}
        self._publishers = held
