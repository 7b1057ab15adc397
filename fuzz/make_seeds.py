#!/usr/bin/env python3
"""Writes the seed corpora of the open_segment and queue_ops targets (fuzz/corpus/...).

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

# ---- queue_ops (crates/shm-queue/src/model.rs `check_ops` documents the encoding) --------
# Byte 0: ring kind (b % 4: typed SPSC, typed MPMC, SPSC bytes, MPMC bytes), capacity
# 1 + (b >> 2) % 8, byte maximum [0, 1, 2, 3, 5, 8, 13, 16][b >> 5]. Then one byte per
# operation (b % 16, argument b >> 4); 15 forges, with the next byte saying what (and 8 raw
# bytes after it when (f // 6) % 8 == 7). Seeds named qseed_* are regenerated here; the
# older seed_* files are kept as they are (any bytes are a valid input).
def kind(k, cap, maxi=0):
    return (k & 3) | (((cap - 1) % 8) << 2) | ((maxi & 7) << 5)

def op(code, arg=0):
    return (code & 15) | ((arg & 15) << 4)

def forge(target, mode, k=0, raw=None):
    f = target + 6 * mode + 48 * k
    assert f < 256 and f % 6 == target and (f // 6) % 8 == mode
    out = [15, f]
    if mode == 7:
        out += list(struct.pack("<Q", raw or 0))
    return out

traffic_typed = [op(0), op(1), op(3), op(6, 3), op(7, 2), op(5), op(8, 2 + 8), op(9, 1 + 8),
                 op(10), op(4), op(11), op(12), op(13)]
traffic_bytes = [op(0, 1), op(1, 3), op(4, 0), op(4, 15), op(6, 3), op(7, 2), op(8), op(5),
                 op(9), op(10, 15), op(11, 2), op(12), op(3)]
after = [op(3), op(0), op(4, 15), op(8), op(9, 4), op(6, 2), op(7, 1), op(5), op(10), op(3)]
qseeds = {}
for k, name in enumerate(["spsc", "mpmc", "bspsc", "bmpmc"]):
    traffic = traffic_typed if k < 2 else traffic_bytes
    for cap in (1, 2, 5):
        head = [kind(k, cap, 5)]
        qseeds[f"qseed_{name}_cap{cap}_traffic"] = head + traffic * 3
        qseeds[f"qseed_{name}_cap{cap}_close"] = head + traffic + [op(14, 15)] + traffic
        for target in range(6):
            for mode in range(8):
                # Every forgery once per ring kind: odd ones on capacity 1, even on 2.
                if cap == 5 or (target * 8 + mode) % 2 != cap % 2:
                    continue
                body = head + traffic + forge(target, mode, cap % 4, raw=0x1234_5678_9abc_def0)
                qseeds[f"qseed_{name}_cap{cap}_forge{target}{mode}"] = body + after * 2

qout = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "queue_ops")
os.makedirs(qout, exist_ok=True)
for old in os.listdir(qout):
    if old.startswith("qseed_"):
        os.remove(os.path.join(qout, old))
for name, data in qseeds.items():
    with open(os.path.join(qout, name), "wb") as f:
        f.write(bytes(data))
print(f"wrote {len(qseeds)} seeds to {qout}")
