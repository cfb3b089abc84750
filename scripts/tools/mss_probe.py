#!/usr/bin/env python3
"""A TCP client without an MSS option, on a packet socket on the kernel's
side of a TAP device, to see what segment size ustack uses for it.

It plays a host at FAKE_IP (answering ARP itself), sends a SYN with no
options to TARGET:PORT (a chargen service), acknowledges everything for a
second, and prints for each data frame its payload, and the GSO type and
size from the virtio-net header the kernel reports (PACKET_VNET_HDR): with
TAP offloads ustack hands the kernel super segments and the GSO size is
what they are cut at on any real link. Then:

    max payload N
    max gso_size N

usage: mss_probe.py IFACE TARGET_IP FAKE_IP PORT
"""
import socket
import struct
import sys
import time

SOL_PACKET, PACKET_VNET_HDR = 263, 15
VNET = 10  # struct virtio_net_hdr


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def main():
    iface, target, fake, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    my_mac, my_ip, dst_ip = bytes.fromhex("029999999999"), socket.inet_aton(fake), socket.inet_aton(target)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.bind((iface, 0))
    sock.settimeout(0.5)

    def send(frame):
        sock.send(bytes(VNET) + frame)

    def segment(dst_mac, seq, ack, flags):
        header = struct.pack("!HHIIBBHHH", 40000, port, seq, ack, 5 << 4, flags, 60000, 0, 0)
        pseudo = my_ip + dst_ip + struct.pack("!BBH", 0, 6, len(header))
        header = header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(header), 1, 0x4000, 64, 6, 0, my_ip, dst_ip)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        return dst_mac + my_mac + b"\x08\x00" + ip + header

    def frames():
        try:
            data = sock.recv(70000)
        except socket.timeout:
            return None
        return data[:VNET], data[VNET:]

    # Who has TARGET? The answer gives its MAC (and ustack learns ours).
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + my_mac + my_ip + bytes(6) + dst_ip
    send(b"\xff" * 6 + my_mac + b"\x08\x06" + arp)
    target_mac = None
    for _ in range(20):
        got = frames()
        if got and got[1][12:14] == b"\x08\x06" and got[1][20:22] == b"\x00\x02" and got[1][28:32] == dst_ip:
            target_mac = got[1][22:28]
            break
    if target_mac is None:
        sys.exit("no ARP reply")

    def answer_arp(frame):
        if frame[12:14] == b"\x08\x06" and frame[38:42] == my_ip:
            reply = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + my_mac + my_ip + frame[22:28] + frame[28:32]
            send(frame[6:12] + my_mac + b"\x08\x06" + reply)
            return True
        return False

    def tcp_from_target(frame):
        if frame[0:6] != my_mac or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            return None
        tcp = frame[14 + (frame[14] & 15) * 4:]
        seq, ack = struct.unpack("!II", tcp[4:12])
        return seq, ack, tcp[13], len(tcp) - (tcp[12] >> 4) * 4

    send(segment(target_mac, 1000, 0, 0x02))  # SYN, no options
    synack = None
    for _ in range(20):
        got = frames()
        if not got or answer_arp(got[1]):
            continue
        seg = tcp_from_target(got[1])
        if seg and seg[2] & 0x12 == 0x12:
            synack = seg
            break
    if synack is None:
        sys.exit("no SYN-ACK")
    acked = (synack[0] + 1) & 0xFFFFFFFF
    send(segment(target_mac, 1001, acked, 0x10))
    sizes = []
    end = time.time() + 1.0
    while time.time() < end:
        got = frames()
        if not got or answer_arp(got[1]):
            continue
        seg = tcp_from_target(got[1])
        if seg and seg[3] > 0:
            _, gso_type, _, gso_size = struct.unpack("=BBHH", got[0][:6])
            sizes.append((seg[3], gso_type, gso_size))
            end_seq = (seg[0] + seg[3]) & 0xFFFFFFFF
            if (end_seq - acked) & 0xFFFFFFFF < 1 << 31:
                acked = end_seq
            send(segment(target_mac, 1001, acked, 0x10))
    send(segment(target_mac, 1001, acked, 0x04))  # RST: done
    if not sizes:
        sys.exit("no data")
    print("first frames (payload, gso_type, gso_size):", sizes[:6])
    print("max payload", max(s[0] for s in sizes))
    print("max gso_size", max(s[2] for s in sizes))


if __name__ == "__main__":
    main()
