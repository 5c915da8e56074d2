"""Site-sent text held to the federation's rules, terminal-safe text, and per-peer token buckets."""

from __future__ import annotations

import pytest

from controlplane.domain import site_input
from controlplane.domain.ratelimit import TokenBuckets, peer_host
from controlplane.domain.text import escape_controls
from controlplane.domain.validation import validate_label_key, validate_label_value, validate_labels
from controlplane.errors import InvalidArgument


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("tier", True),
        ("topology.kubernetes.io/region", True),
        ("a_b.c-d", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("-tier", False),
        ("tier!", False),
        ("/tier", False),
        ("Example.com/tier", False),
        ("tier\x1b", False),
        ("", False),
        ("a" * 254 + "/x", False),
    ],
)
def test_label_keys_follow_kubernetes(key: str, ok: bool) -> None:
    if ok:
        assert validate_label_key("labels", key) == key
    else:
        with pytest.raises(InvalidArgument, match=r"^labels: key"):
            validate_label_key("labels", key)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("", True), ("gold", True), ("Gold-1.2_x", True), ("a b", False), ("é", False), ("x" * 64, False)],
)
def test_label_values_follow_kubernetes(value: str, ok: bool) -> None:
    if ok:
        validate_label_value("region", value)
    else:
        with pytest.raises(InvalidArgument, match=r"^region:"):
            validate_label_value("region", value)


def test_labels_are_counted() -> None:
    validate_labels("labels", {f"k{i}": "v" for i in range(64)})
    with pytest.raises(InvalidArgument, match="at most 64 labels"):
        validate_labels("labels", {f"k{i}": "v" for i in range(65)})


@pytest.mark.parametrize(
    ("deployment", "field"),
    [
        ({"name": ""}, "d.name"),
        ({"name": "Upper"}, "d.name"),
        ({"name": "a" * 254}, "d.name"),
        ({"name": "ok", "model": "m\x1b"}, "d.model"),
        ({"name": "ok", "version": "1.0 beta"}, "d.version"),
        ({"name": "ok", "phase": "Running\u202e"}, "d.phase"),
        ({"name": "ok", "release": "Rel"}, "d.release"),
        ({"name": "ok", "release": "a..b"}, "d.release"),
        ({"name": "ok", "digest": "sha256:xyz"}, "d.digest"),
    ],
)
def test_reported_deployments_follow_the_federations_names(deployment: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        site_input.validate_deployment("d", deployment)
    assert e.value.field == field
    site_input.validate_deployment(
        "d",
        {"name": "ns.atlas-1", "model": "atlas", "version": "1.2.0+b1", "phase": "Running", "release": "r1"},
    )
    # Release names are DNS subdomains, as the federation itself accepts them (atlas-1.2.0).
    site_input.validate_deployment(
        "d", {"name": "atlas", "release": "atlas-1.2.0", "digest": "sha256:" + "0" * 64}
    )


def test_capacity_names_counts_and_free_at_most_total() -> None:
    site_input.validate_capacity("c", {"h100": (64, 10)})
    for bad, why in (({"H100": (1, 0)}, "accelerator type"), ({"h100": (1, 2)}, "more than the total")):
        with pytest.raises(InvalidArgument, match=why):
            site_input.validate_capacity("c", bad)
    with pytest.raises(InvalidArgument, match="at most 16"):
        site_input.validate_capacity("c", {f"a{i}": (1, 0) for i in range(17)})


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("\x1b[2Jhi", "\\x1b[2Jhi"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("line\u2028sep", "line\\u2028sep"),
        ("new\nline\ttab", "new\\x0aline\\x09tab"),
        ("Zürich 東京", "Zürich 東京"),
    ],
)
def test_control_characters_are_escaped_and_other_text_kept(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown
    assert escape_controls(shown) == shown  # idempotent on its own output


def test_free_text_from_a_site_is_escaped_and_cut() -> None:
    assert site_input.clean_text("\x1b" * 1000) == ("\\x1b" * 128)
    assert len(site_input.clean_text("x" * 10_000)) == 512


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.1.2.3:5555", "ipv4:10.1.2.3"),
        ("ipv6:[2001:db8:1:2::5]:443", "ipv6:2001:db8:1:2::/64"),
        ("ipv6:[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:1", "ipv6:2001:db8:1:2::/64"),
        ("ipv6:[::1]:9", "ipv6:0:0:0:0::/64"),
        ("unix:/tmp/s", "unix:/tmp/s"),
    ],
)
def test_peers_are_keyed_by_address_without_port(peer: str, host: str) -> None:
    assert peer_host(peer) == host


def test_token_buckets_refill_and_stay_bounded() -> None:
    b = TokenBuckets(rate=1.0, burst=3.0, max_peers=100)
    for _ in range(3):
        assert b.allowed("p", 0.0)
        b.take("p", 0.0)
    assert not b.allowed("p", 0.0) and b.retry_after("p", 0.0) == pytest.approx(1.0)
    assert b.allowed("p", 1.0) and b.allowed("other", 0.0)  # one token back after 1 s; others unaffected
    b.take("p", 1.0)
    assert not b.allowed("p", 1.0)
    b.refund("p", 1.0)  # the attempt succeeded after all
    assert b.allowed("p", 1.0)
    for i in range(10_000):
        b.take(f"peer-{i}", 2.0)
    assert len(b) == 100  # the least recently used go first
    assert b.allowed("p", 2.0)  # evicted: back to a full bucket, as it would be once refilled
