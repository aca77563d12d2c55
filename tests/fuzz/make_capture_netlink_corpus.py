#!/usr/bin/env python3
"""Writes the seed corpus of the capture_netlink fuzzer: rtnetlink link and address messages as
the kernel sends them (events, a dump with its end), malformed framings, and /proc maps text."""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "capture_netlink")
os.makedirs(out, exist_ok=True)

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR = 16, 17, 20
NLMSG_DONE, NLMSG_ERROR = 3, 2
NLM_F_MULTI = 2
IFF_UP = 1
IFLA_IFNAME, IFLA_MTU = 3, 4


def align(b):
    return b + b"\0" * (-len(b) % 4)


def attr(kind, payload):
    return align(struct.pack("=HH", 4 + len(payload), kind) + payload)


def msg(kind, flags, body, length=None):
    n = 16 + len(body)
    return align(struct.pack("=IHHII", length if length is not None else n, kind, flags, 0, 0) + body)


def link(kind, index, up, name, flags=0):
    info = struct.pack("=BxHiII", 0, 1, index, IFF_UP if up else 0, 0)
    return msg(kind, flags, info + attr(IFLA_MTU, struct.pack("=I", 1500)) + attr(IFLA_IFNAME, name + b"\0"))


seeds = {
    "newlink": link(RTM_NEWLINK, 4, True, b"tailscale0"),
    "dellink": link(RTM_DELLINK, 4, False, b"tailscale0"),
    "recreate": link(RTM_DELLINK, 4, False, b"wg0") + link(RTM_NEWLINK, 9, True, b"wg0"),
    "rename": link(RTM_NEWLINK, 3, True, b"eth0") + link(RTM_NEWLINK, 3, True, b"en0"),
    "dump": link(RTM_NEWLINK, 1, True, b"lo", NLM_F_MULTI) + link(RTM_NEWLINK, 2, True, b"eth0", NLM_F_MULTI)
            + msg(NLMSG_DONE, NLM_F_MULTI, struct.pack("=i", 0)),
    "error": msg(NLMSG_ERROR, 0, struct.pack("=i", -16) + b"\0" * 16),
    "newaddr": msg(RTM_NEWADDR, 0, struct.pack("=BBBBI", 2, 24, 0, 0, 4)),
    "length_past_end": msg(RTM_NEWLINK, 0, b"\0" * 16, length=4096),
    "length_too_small": msg(RTM_NEWLINK, 0, b"\0" * 16, length=8),
    "no_name": msg(RTM_NEWLINK, 0, struct.pack("=BxHiII", 0, 1, 5, 1, 0)),
    "attr_too_long": msg(RTM_NEWLINK, 0, struct.pack("=BxHiII", 0, 1, 5, 1, 0) + struct.pack("=HH", 200, IFLA_IFNAME) + b"eth0"),
    "maps": b"7f0000000000-7f0000200000 rw-s 00000000 00:08 55 socket:[55]\n"
            b"55d0c0a00000-55d0c0a21000 r--p 00000000 fd:01 1234 /usr/bin/meshflow-exporter\n",
    "maps_bad_range": b"7fzz-7f00 rw-s 00000000 00:08 55 socket:[55]\nffffffffffffffffffff-1 rw-s 0 0:0 55 socket:[55]\n",
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
