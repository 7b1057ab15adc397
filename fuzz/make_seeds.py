#!/usr/bin/env python3
"""Writes the seed corpus of the open_segment target (fuzz/corpus/open_segment/).

Seeds named valid_* must open, bad_* must never open (tests/fuzz_corpus.rs checks both);
others may go either way. The header layout is documented in crates/shm-core/src/header.rs.
"""
import os, struct

HEADER, MAGIC, VERSION, READY = 256, int.from_bytes(b"SHMIPC\0\x01", "little"), 1, 0x52454459
KINDS = {"Bytes": 1, "Value": 2, "RawValue": 3, "Array": 4, "RawArray": 5, "SpscBytes": 15}

def fnv(h):
    s = 0xcbf29ce484222325
    for r in ((0, 16), (20, 76), (80, 88), (96, 160)):
        for b in h[r[0]:r[1]]:
            s = ((s ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return s

def image(kind, fmt, tc, size, align, count, body_len, param=0, state=READY, body=None):
    h = bytearray(HEADER)
    struct.pack_into("<QIIIIIIQQQQQIIQ", h, 0, MAGIC, VERSION, KINDS[kind], state, tc, size,
                     align, count, param, HEADER, body_len, HEADER + body_len, 4242, 0, 123456)
    h[96:96 + len(fmt)] = fmt
    reseal(h)
    return h + (body if body is not None else bytes((i * 7 + 3) & 0xFF for i in range(body_len)))

def reseal(img):
    struct.pack_into("<Q", img, 88, fnv(img))

def put(img, off, fmt, v, seal=False):
    img = bytearray(img)
    struct.pack_into(fmt, img, off, v)
    if seal:
        reseal(img)
    return img

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "open_segment")
os.makedirs(out, exist_ok=True)
i4 = image("RawArray", b"i", ord("i"), 4, 4, 4, 16)
seeds = {
    "valid_rawarray_i4": i4,
    "valid_rawvalue_d": image("RawValue", b"d", ord("d"), 8, 8, 1, 8),
    "valid_record_ci": image("RawArray", b"ci", 0, 8, 4, 2, 16),
    "valid_bytes_param": image("SpscBytes", b"B", ord("B"), 1, 1, 64, 64, param=32),
    "valid_empty_body": image("Bytes", b"B", ord("B"), 1, 1, 0, 0),
    "bad_short_header": i4[:200],
    "bad_short_body": i4[:HEADER + 8],
    "bad_garbage": bytes((i * 151 + 17) & 0xFF for i in range(300)),
    "bad_version": put(i4, 8, "<I", 2),
    "bad_version_resealed": put(i4, 8, "<I", 2, True),
    "bad_checksum_count": put(i4, 32, "<Q", 5),
    "bad_state": put(i4, 16, "<I", 0xDEADBEEF),
    "bad_total_size": put(i4, 64, "<Q", 1, True),
    "bad_body_offset": put(i4, 48, "<Q", 512, True),
    "bad_kind": put(i4, 12, "<I", 999, True),
    "bad_typecode_field": put(i4, 20, "<I", ord("d"), True),
    "bad_elem_size": put(i4, 24, "<I", 8, True),
    "bad_format_not_nul_padded": put(i4, 100, "<B", 0x41, True),
    "bad_format_garbage": put(i4, 96, "<B", 0xFF, True),
    "bad_huge_body_len": put(put(i4, 56, "<Q", 2**64 - 1 - HEADER), 64, "<Q", 2**64 - 1, True),
    "bad_overflowing_total": put(put(i4, 56, "<Q", 2**64 - 1), 64, "<Q", 2**64 - 1, True),
    "initialising": put(i4, 16, "<I", 0),
    "empty": b"",
    "zeros": bytes(512),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes(data))
print(f"wrote {len(seeds)} seeds to {out}")
