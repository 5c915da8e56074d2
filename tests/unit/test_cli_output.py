"""stargatectl output: tables and text escaped centrally; JSON and YAML faithful and terminal-safe."""

from __future__ import annotations

import json

import pytest
import yaml

from controlplane.cli.output import emit, table

HOSTILE = "a\x1b[31mb\x07c\x85d\x9be\x7ff\u202eg\u2066h\u200bi\u2028j\nk\tl"
RAW = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x202E, 0x2066, 0x200B, 0x2028)]


def _terminal_safe(text: str) -> None:
    bad = [c for c in text if c in RAW and c != "\n"]
    assert not bad, [hex(ord(c)) for c in bad]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_json_and_yaml_round_trip_hostile_text_without_raw_controls(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {"items": [{"region": HOSTILE, "labels": {HOSTILE: HOSTILE}}]}
    emit(data, fmt, lambda d: "unused")
    out = capsys.readouterr().out
    _terminal_safe(out)
    assert (json.loads(out) if fmt == "json" else yaml.safe_load(out)) == data


def test_tables_and_text_lines_are_escaped_whatever_the_renderer_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {"items": [{"region": HOSTILE}]}
    emit(
        data,
        "table",
        lambda d: (
            table([(i["region"],) for i in d["items"]], ["REGION"]) + "\nnote: " + d["items"][0]["region"]
        ),
    )
    out = capsys.readouterr().out
    _terminal_safe(out)
    assert out.count("\n") == 3  # header, one row, the note: a value's newline cannot add a line
    assert "a\\x1b[31mb\\x07c\\x85d\\x9be\\x7ff\\u202eg\\u2066h\\u200bi\\u2028j\\x0ak\\x09l" in out
    # A renderer that quotes text it did not get from the data is still escaped (only its own
    # newlines survive).
    emit({}, "table", lambda d: "raw: " + HOSTILE)
    _terminal_safe(capsys.readouterr().out)
