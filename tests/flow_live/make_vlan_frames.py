#!/usr/bin/env python3
"""Writes the tagged frames the live test injects: 5 TCP SYNs to redis behind one 802.1Q tag,
3 to postgresql behind QinQ (802.1ad 200, 802.1Q 300), 4 untagged DNS datagrams, and 2 tagged
ARP requests that the capture filter must keep out.  make_vlan_frames.py OUT.pcap"""
import sys

from scapy.all import ARP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, wrpcap

eth = dict(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")
ip = dict(src="10.1.0.1", dst="10.1.0.2")
frames = []
frames += [Ether(**eth) / Dot1Q(vlan=100) / IP(**ip) / TCP(sport=40000 + i, dport=6379, flags="S")
           for i in range(5)]
frames += [Ether(**eth) / Dot1AD(vlan=200) / Dot1Q(vlan=300) / IP(**ip) /
           TCP(sport=41000 + i, dport=5432, flags="S") for i in range(3)]
frames += [Ether(**eth) / IP(**ip) / UDP(sport=5000, dport=53) for _ in range(4)]
frames += [Ether(**eth) / Dot1Q(vlan=100) / ARP() for _ in range(2)]
wrpcap(sys.argv[1], frames)
