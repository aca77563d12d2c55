#!/usr/bin/env python3
"""Writes the seed corpus of the flow decoder fuzzer from the flow fixture captures
(tests/fixtures/flow): every packet of every capture, prefixed with the fuzzer's link-type byte
and the extra wire length (see flow_decoder_fuzzer.cc for the input layout)."""
import hashlib
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "fixtures", "flow")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "decoder")
os.makedirs(out, exist_ok=True)

# The fuzzer's link-type table, in order.
LINKS = [1, 101, 12, 14, 228, 229, 113, 276, 0, 108, 147]


def records(path):
    data = open(path, "rb").read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":  # pcapng: section header, interface, enhanced packets
        link, off = None, 0
        while off + 12 <= len(data):
            kind, total = struct.unpack_from("<II", data, off)
            if kind == 1:
                link = struct.unpack_from("<H", data, off + 8)[0]
            elif kind == 6:
                caplen, wire = struct.unpack_from("<II", data, off + 20)
                yield link, data[off + 28:off + 28 + caplen], wire
            off += total
        return
    magic, = struct.unpack_from("<I", data, 0)
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"{path}: not a little-endian pcap")
    link, = struct.unpack_from("<I", data, 20)
    off = 24
    while off + 16 <= len(data):
        _, _, caplen, wire = struct.unpack_from("<IIII", data, off)
        yield link, data[off + 16:off + 16 + caplen], wire
        off += 16 + caplen


count = 0
for name in sorted(os.listdir(fixtures)):
    if not name.endswith((".pcap", ".pcapng")):
        continue
    for link, packet, wire in records(os.path.join(fixtures, name)):
        if link not in LINKS:
            continue
        extra = min(0xFFFF, max(0, (wire - len(packet) + 15) // 16))
        seed = bytes([LINKS.index(link)]) + struct.pack(">H", extra) + packet
        digest = hashlib.sha1(seed).hexdigest()[:16]
        with open(os.path.join(out, f"{os.path.splitext(name)[0]}-{digest}"), "wb") as f:
            f.write(seed)
        count += 1
print(f"wrote {count} seeds to {out}", file=sys.stderr)
