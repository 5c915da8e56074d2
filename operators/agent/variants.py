"""The site's side of localised variants: its own publisher key and the variants it signs.

The key is generated here, at the site, the first time it is needed, and kept in the site's
directory (``publisher.key``, mode 0600); only its public half goes upstream, in the status of a
succeeded fine-tune, for the federation to register as a publisher for this site's country only.
The site signs a variant only as the RunJob described it, with the digest of what it trained, and
only when its export rule allows nothing but this site's country: data of this country's law makes
a model that stays in this country, whatever the federation asks.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from controlplane.api.v1 import release_pb2 as rpb
from controlplane.domain import releases as rel
from controlplane.pki.keys import ensure_ed25519, write_atomic

log = logging.getLogger(__name__)
KEY_FILE = "publisher.key"
#: Its public half, base64 (what the site's people compare with `stargatectl publishers list`).
PUBLIC_FILE = "publisher.pub"
TEMPLATES_FILE = "variants.json"
#: Templates kept (one per fine-tune this site ran; the oldest are dropped first).
MAX_TEMPLATES = 256


def refusal(template: rpb.ModelRelease, country: str, base_release: str) -> str | None:
    """Why the site will not sign this variant, or None."""
    allow = list(template.export.allow_countries)
    if allow != [country] or template.export.deny_countries:
        return (
            f"variant: its export rule must allow only {country} (the data's country), not {allow or 'all'}"
        )
    if template.variant_of != base_release:
        return f"variant: variantOf {template.variant_of!r} is not the job's base {base_release!r}"
    return None


class SiteVariants:
    def __init__(self, directory: Path | None, persist: bool = True) -> None:
        self.directory = directory if persist else None
        self._key: Ed25519PrivateKey | None = None
        self._templates: dict[str, dict[str, Any]] = {}
        if self.directory is not None and (self.directory / TEMPLATES_FILE).exists():
            try:
                self._templates = dict(json.loads((self.directory / TEMPLATES_FILE).read_text()))
            except (ValueError, TypeError):
                log.error("%s is unreadable: variants of earlier jobs are not signed", TEMPLATES_FILE)

    def key(self) -> Ed25519PrivateKey:
        if self._key is None:
            if self.directory is None:
                self._key = Ed25519PrivateKey.generate()  # a site that keeps nothing: this run only
            else:
                self._key = ensure_ed25519(
                    self.directory / KEY_FILE,
                    self.directory / PUBLIC_FILE,
                    lambda k: base64.b64encode(k.public_key().public_bytes_raw()).decode() + "\n",
                )
        return self._key

    def public_key(self) -> bytes:
        return self.key().public_key().public_bytes_raw()

    def remember(self, job_id: str, template: rpb.ModelRelease) -> None:
        self._templates[job_id] = json_format.MessageToDict(template, preserving_proto_field_name=True)
        while len(self._templates) > MAX_TEMPLATES:
            self._templates.pop(next(iter(self._templates)))
        if self.directory is not None:
            write_atomic(self.directory / TEMPLATES_FILE, json.dumps(self._templates).encode(), 0o600)

    def sign(self, job_id: str, digest: str) -> bytes:
        """The signature over the job's variant with ``digest``; empty when the job had none."""
        t = self._templates.get(job_id)
        if t is None or not digest:
            return b""
        r = json_format.ParseDict(t, rpb.ModelRelease(), ignore_unknown_fields=True)
        r.digest = digest
        return rel.sign(self.key(), r)
