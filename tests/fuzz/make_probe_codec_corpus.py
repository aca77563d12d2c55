#!/usr/bin/env python3
"""Writes the seed corpus of the probe_codec fuzzer: valid requests and replies and one file per
malformed shape the decoder rejects (see collectors/probe/codec.h for the layout)."""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "probe_codec")
os.makedirs(out, exist_ok=True)


def pkt(kind, session, seq, send_ns, count=0, turnaround=0, magic=b"MFPR", version=1, reserved=0):
    return (magic + bytes([version, kind]) + struct.pack(">H", reserved) +
            struct.pack(">QQQQQ", session, seq, send_ns, count, turnaround))


seeds = {
    "request": pkt(1, 0x0102030405060708, 1, 1_700_000_000_000_000_000),
    "reply": pkt(2, 0x0102030405060708, 42, 123_456_789, count=41, turnaround=35_000),
    "truncated_request": pkt(1, 7, 1, 1)[:-1],
    "long_request": pkt(1, 7, 1, 1) + b"\x00",
    "bad_magic": pkt(1, 7, 1, 1, magic=b"MFPX"),
    "bad_version": pkt(1, 7, 1, 1, version=2),
    "bad_type": pkt(3, 7, 1, 1),
    "reserved_set": pkt(1, 7, 1, 1, reserved=1),
    "count_in_request": pkt(1, 7, 1, 1, count=5),
    "turnaround_in_request": pkt(1, 7, 1, 1, turnaround=5),
    "empty": b"",
    "http": b"GET / HTTP/1.0\r\n\r\n",
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
