#!/usr/bin/env python3
"""Seeds for discovery_netlink: generic netlink answers laid out as the kernel's
include/uapi/linux/wireguard.h and linux/netlink.h say. Each seed starts with the two bytes of
the family id the fuzzer checks the dump against (little-endian), then the messages."""
import os
import socket
import struct
import sys

FAMILY = 0x1B
NLMSG_ERROR, NLMSG_DONE, NLM_F_MULTI, NLA_F_NESTED = 2, 3, 2, 0x8000
GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 0x10, 1, 1, 2


def pad(b):
    return b + b"\0" * (-len(b) % 4)


def attr(t, payload, nested=False):
    return pad(struct.pack("=HH", 4 + len(payload), t | (NLA_F_NESTED if nested else 0)) + payload)


def msg(t, payload):
    return pad(struct.pack("=IHHII", 16 + len(payload), t, NLM_F_MULTI, 2, 0) + payload)


def genl(cmd, attrs):
    return struct.pack("=BBH", cmd, 1, 0) + attrs


def allowed(ip, mask):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return attr(0, attr(1, struct.pack("=H", fam)) + attr(2, socket.inet_pton(fam, ip)) +
                attr(3, bytes([mask])), True)


def endpoint4(ip, port):
    return attr(4, struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) +
                socket.inet_pton(socket.AF_INET, ip) + b"\0" * 8)


def endpoint6(ip, port):
    return attr(4, struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) +
                socket.inet_pton(socket.AF_INET6, ip) + struct.pack("=I", 0))


def device(peers):
    return msg(FAMILY, genl(0, attr(1, struct.pack("=I", 7)) + attr(2, b"wg0\0") +
                            attr(8, peers, True)))


done = msg(NLMSG_DONE, struct.pack("=i", 0))
peer1 = attr(0, attr(1, b"\xab" * 32) + endpoint4("198.51.100.1", 51820) +
             attr(9, allowed("10.4.0.2", 32) + allowed("10.42.2.0", 24), True), True)
peer2a = attr(1, attr(1, b"\x02" * 32) + endpoint6("2001:db8::2", 51821) +
              attr(9, allowed("10.4.0.3", 32), True), True)
peer2b = attr(0, attr(1, b"\x02" * 32) + attr(9, allowed("fd00:4::3", 128), True), True)
family_reply = msg(GENL_ID_CTRL, genl(CTRL_CMD_NEWFAMILY, attr(CTRL_ATTR_FAMILY_NAME, b"wireguard\0") +
                                      attr(CTRL_ATTR_FAMILY_ID, struct.pack("=H", FAMILY))))
seeds = {
    "two_peers_split": device(peer1 + peer2a) + device(peer2b) + done,
    "no_peers": device(b"") + done,
    "enodev": msg(NLMSG_ERROR, struct.pack("=i", -19) + b"\0" * 16),
    "family_reply": family_reply,
}
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                          "discovery_netlink")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<H", FAMILY) + data)
