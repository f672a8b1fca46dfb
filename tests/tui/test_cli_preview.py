"""``atdata-tui preview``: first samples summarized; bad samples reported, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atdata_core.index import Index
from atdata_core.shards import ShardWriter
from atdata_tui import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_preview_json_summarizes_arrays_and_images(
    capsys: pytest.CaptureFixture[str], demo_index: Index
) -> None:
    path = demo_index.provider.address
    code, out, _ = run(capsys, "preview", "demo-images", "-n", "2", "--json", "--index", path)
    assert code == 0
    doc = json.loads(out)
    assert [s["status"] for s in doc["samples"]] == ["ok", "ok"]
    image = doc["samples"][0]["fields"]["image"]
    assert image["dtype"] == "uint8" and len(image["ndarray"]) == 3


def test_preview_marks_a_bad_sample_and_exits_non_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    index = Index(path=tmp_path / "i.db")
    writer = ShardWriter(str(tmp_path / "bad-%06d.tar"))
    writer.write(("good", b"\x81\xa1x\x01"))
    writer.write(("bad", b"\xc1 not msgpack"))
    [info] = writer.commit()
    index.add_entry([info.url], name="broken", schema_ref="atdata://local/schema/X@1.0.0")
    code, out, _ = run(capsys, "preview", "broken", "--index", str(tmp_path / "i.db"))
    assert code == 1
    assert "── good" in out and "[error:" in out and "not valid msgpack" in out
