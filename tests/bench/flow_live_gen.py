#!/usr/bin/env python3
"""Writes the capture the live benchmark replays, and the meshflow config that names its nodes.

Ethernet/IPv4/TCP frames between NODES nodes (10.77.0.1..) on the reference cluster's role ports,
one direction per (source node, destination node, port) so the capture yields exactly SERIES flow
series; frame sizes cycle through a mix of ACKs, small requests and full-MTU segments.
  flow_live_gen.py OUT.pcap OUT.yml INTERFACE [SERIES] [PACKETS_PER_SERIES]
"""
import struct
import sys

PORTS = [6443, 6379, 5432, 443, 80, 8000, 2379, 10250, 9100, 9090]
SIZES = [66, 150, 576, 1514]  # Ethernet frame lengths, without FCS


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, length: int, seq: int) -> bytes:
    payload = b"\x5a" * (length - 14 - 20 - 20)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), seq & 0xFFFF, 0x4000, 64, 6, 0,
                     src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp


def main() -> None:
    out_pcap, out_yml, iface = sys.argv[1:4]
    series = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    per_series = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    nodes = 1
    while nodes * (nodes - 1) * len(PORTS) < series:
        nodes += 1
    combos = []
    for port in PORTS:
        for s in range(nodes):
            for d in range(nodes):
                if s != d and len(combos) < series:
                    combos.append((s, d, port))
    ip = lambda n: bytes([10, 77, n // 250, n % 250 + 1])
    with open(out_pcap, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        n = 0
        for round_ in range(per_series):
            for i, (s, d, port) in enumerate(combos):
                data = frame(ip(s), ip(d), 40000 + i % 20000, port, SIZES[n % len(SIZES)], n)
                f.write(struct.pack("<IIII", 1_700_000_000 + n // 1_000_000, n % 1_000_000,
                                    len(data), len(data)))
                f.write(data)
                n += 1
    packets = n
    with open(out_yml, "w") as f:
        f.write("node_name: bench\nnodes:\n")
        for k in range(nodes):
            a = ".".join(str(b) for b in ip(k))
            f.write(f"  - name: node-{k}\n    addresses: [{a}/32]\n")
        f.write("flows:\n  max_series: %d\n  capture:\n    interfaces:\n" % series)
        f.write(f'      include: ["^{iface}$"]\n      exclude: []\n')
    print(f"{packets} packets, {len(combos)} series over {nodes} nodes")


if __name__ == "__main__":
    main()
