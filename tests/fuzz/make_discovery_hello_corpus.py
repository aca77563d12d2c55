#!/usr/bin/env python3
"""Writes the seed corpus of the discovery_hello fuzzer: hello requests and replies in the
format of common/discovery/hello.h, and DNS answers to A and AAAA queries."""
import ipaddress
import os
import struct
import sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "discovery_hello")
os.makedirs(out, exist_ok=True)


def header(kind, nonce, version=1):
    return b"MFHI" + bytes([version, kind, 0, 0]) + struct.pack(">Q", nonce)


def reply(nonce, name, prefixes):
    b = header(2, nonce) + bytes([len(name)]) + name.encode() + bytes([len(prefixes)])
    for p in prefixes:
        n = ipaddress.ip_network(p)
        b += bytes([4 if n.version == 4 else 6, n.prefixlen]) + n.network_address.packed
    return b


def dns(qtype, rdatas):
    q = b"\x05peers\x04mesh\x04test\x00" + struct.pack(">HH", qtype, 1)
    b = struct.pack(">HHHHHH", 0x1234, 0x8180, 1, len(rdatas), 0, 0) + q
    for r in rdatas:
        b += b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 30, len(r)) + r
    return b


seeds = {
    "request": header(1, 0x0102030405060708) + bytes(400 - 16),
    "request_v2": header(1, 1, version=2) + bytes(400 - 16),
    "reply": reply(7, "acer-agent", ["100.101.102.3/32", "fd7a:115c:a1e0::3/128"]),
    "reply_no_address": reply(9, "n", []),
    "dns_a": dns(1, [bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2])]),
    "dns_aaaa": dns(28, [ipaddress.ip_address("fd00:77::3").packed]),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}", file=sys.stderr)
