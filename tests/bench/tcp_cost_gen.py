#!/usr/bin/python3
"""Writes a capture for the passive-TCP cost benchmark (tcp_cost.sh): the reference cluster's
TCP roles over a bounded set of long-lived connections with real sequence numbers, TCP
timestamps echoed by the peer, some retransmissions and steady connection churn (handshakes
and FINs), as one node's interface sees them. Deterministic (fixed seed).

    tcp_cost_gen.py OUT.pcap PACKETS CONNECTIONS

Also writes OUT.pcap.yaml, the matching meshflow config (node_name ct-serv-jp).
"""

import random
import struct
import sys

NODES = [("ct-serv-jp", "100.64.0.1"), ("acer-agent", "100.64.0.2"),
         ("gce-agent-tw", "100.64.0.3"), ("laptop-agent", "100.64.0.4"),
         ("desktop-agent", "100.64.0.5")]
# (server port, request bytes, response bytes, weight): K3s API, PostgreSQL, Redis, scrapes,
# ingress.
ROLES = [(6443, 300, 1448, 4), (5432, 120, 600, 3), (6379, 40, 80, 3), (9100, 120, 1448, 1),
         (443, 500, 1448, 1)]
SNAPLEN = 128
SELF = "100.64.0.1"


def ip_bytes(text):
    return bytes(int(x) for x in text.split("."))


class Conn:
    def __init__(self, rng, port_counter):
        role = rng.choices(ROLES, weights=[r[3] for r in ROLES])[0]
        self.sport_role = role
        others = [a for _, a in NODES if a != SELF]
        # This node is one end of every connection: client of some, server of others.
        peer = ip_bytes(rng.choice(others))
        me = ip_bytes(SELF)
        self.client, self.server = (me, peer) if rng.random() < 0.5 else (peer, me)
        self.cport, self.sport = 32768 + port_counter % 28000, role[0]
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]  # client, server
        self.ts = [rng.getrandbits(31), rng.getrandbits(31)]
        self.last_sent = [None, None]
        self.state = "new"


def main():
    out, packets, connections = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(20261122)
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    f = open(out, "wb")
    f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, SNAPLEN, 1))
    t_ns = 1_700_000_000 * 10**9
    counter = 0
    conns = []
    for _ in range(connections):
        c = Conn(rng, counter)
        counter += 1
        c.state = "open"  # already running when capture starts
        conns.append(c)
    written = 0
    queue = []  # packets of a handshake or close in progress: (direction, flags, payload)

    def emit(c, d, flags, payload, seq=None):
        nonlocal t_ns, written
        src, dst = (c.client, c.server) if d == 0 else (c.server, c.client)
        sport, dport = (c.cport, c.sport) if d == 0 else (c.sport, c.cport)
        if seq is None:
            seq = c.seq[d]
            c.seq[d] = (c.seq[d] + payload + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
            c.last_sent[d] = (seq, payload, flags)
        c.ts[d] = (c.ts[d] + 1) & 0xFFFFFFFF
        total = 20 + 32 + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
        ack = c.seq[1 - d] if flags & 0x10 else 0
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 8 << 4, flags, 65535, 0, 0)
        tcp += struct.pack("!BBBBII", 1, 1, 8, 10, c.ts[d], c.ts[1 - d] if flags & 0x10 else 0)
        frame = eth + ip + tcp
        wire = len(frame) + payload
        cap = min(wire, SNAPLEN)
        frame = (frame + bytes(cap))[:cap]
        t_ns += 1000 + rng.randrange(2000)
        f.write(struct.pack("<IIII", t_ns // 10**9, t_ns % 10**9, cap, wire))
        f.write(frame)
        written += 1

    while written < packets:
        if queue:
            c, d, flags, payload = queue.pop(0)
            emit(c, d, flags, payload)
            continue
        i = rng.randrange(len(conns))
        c = conns[i]
        r = rng.random()
        if r < 0.002:  # churn: this one closes, a new one opens in its place
            queue += [(c, 0, 0x11, 0), (c, 1, 0x11, 0), (c, 0, 0x10, 0)]
            n = Conn(rng, counter)
            counter += 1
            conns[i] = n
            queue += [(n, 0, 0x02, 0), (n, 1, 0x12, 0), (n, 0, 0x10, 0)]
        elif r < 0.007 and c.last_sent[1] is not None:  # the server resends its last segment
            seq, payload, flags = c.last_sent[1]
            emit(c, 1, flags, payload, seq=seq)
        else:  # a request, its response and the client's ACK
            _, req, resp, _ = c.sport_role
            emit(c, 0, 0x18, req)
            emit(c, 1, 0x18, resp)
            emit(c, 0, 0x10, 0)
    f.close()
    with open(out + ".yaml", "w") as y:
        y.write("node_name: ct-serv-jp\nnodes:\n")
        for name, addr in NODES:
            y.write(f"  - {{name: {name}, addresses: [{addr}]}}\n")


if __name__ == "__main__":
    main()
