#!/usr/bin/env python3
"""Independent check of docs/protocol.md §10, written from the document alone.

Needs the PyPI packages `blake3` and `pynacl`. Recomputes the claims block, the
packet key, the MAC, the lineage fold, the forwarding rewrite of each frame
(checksums from scratch, not incrementally) and the credential, and compares
each with the vector in the document. Exit status 0 when all agree.
"""
import re
import struct
import sys
from pathlib import Path

import blake3
import nacl.signing

doc = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
text = doc.read_text()
vec = {}
for block in re.findall(r"```vectors\n(.*?)```", text, re.S):
    cur = None
    for line in block.splitlines():
        if "=" in line:
            cur, val = (s.strip() for s in line.split("=", 1))
            vec[cur] = val
        elif line.strip() and cur:
            vec[cur] += line.strip()
V = {k: bytes.fromhex(v) for k, v in vec.items()}
failures = []


def check(name, got):
    if V[name] != got:
        failures.append(name)
        print(f"MISMATCH {name}\n  doc  {V[name].hex()}\n  here {got.hex()}")
    else:
        print(f"ok {name}")


secret = bytes(range(32))
claims = struct.pack(">IHHQIIBB3H", 1, 1, 10, 0x0102030405060708, 1700000000, 1900000000, 3, 0, 20, 30, 0)
check("claims", claims)
key = blake3.blake3(secret + claims, derive_key_context="mnp-gateway v1 packet key").digest()
check("packet_key", key)
payload = b"memory-native packet payload"
check("payload", payload)
# version 2, type data, flags 0, dst_zone 20, payload_len, sequence 1,
# timestamp 1800000000000 ms (§3, §10).
immutable = struct.pack(">BBHHHQQ", 2, 1, 0, 20, len(payload), 1, 1800000000000) + claims
check("immutable_header", immutable)
mac = blake3.blake3(immutable + payload, key=key).digest(16)
check("mac", mac)
lineage = blake3.blake3(bytes(12) + struct.pack(">IB", 7, 1), derive_key_context="mnp-gateway v1 lineage").digest(12)
check("lineage_after_gateway_7", lineage)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data)//2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


gov = immutable + bytes([8, 0, 0, 0]) + bytes(12) + mac + payload
gov_out = immutable + bytes([7, 1, 0, 0]) + lineage + mac + payload
eth_in = bytes.fromhex("020000000001" "020000000002")
eth_out = bytes.fromhex("020000002001" "020000000100")


def udp(src, dst, pseudo_extra, body):
    hdr = struct.pack(">HHHH", 40000, 6160, 8 + len(body), 0)
    c = csum(src + dst + pseudo_extra(8 + len(body)) + hdr + body) or 0xFFFF
    return hdr[:6] + struct.pack(">H", c) + body


def v4(eth, ttl, body):
    src, dst = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 20])
    u = udp(src, dst, lambda n: struct.pack(">BBH", 0, 17, n), body)
    ip = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(u), 0, 0x4000, ttl, 17, 0) + src + dst
    ip = ip[:10] + struct.pack(">H", csum(ip)) + ip[12:]
    return eth + b"\x08\x00" + ip + u


def v6(eth, hops, body):
    src = bytes.fromhex("20010db8000000000000000000000010")
    dst = bytes.fromhex("20010db8000000010000000000000020")
    u = udp(src, dst, lambda n: struct.pack(">IxxxB", n, 17), body)
    ip = struct.pack(">IHBB", 0x60000000, len(u), 17, hops) + src + dst
    return eth + b"\x86\xdd" + ip + u


vlan = b"\x81\x00\x00\x64\x88\xb5"
check("frame_udp4_in", v4(eth_in, 64, gov))
check("frame_udp4_out", v4(eth_out, 63, gov_out))
check("frame_udp6_in", v6(eth_in, 64, gov))
check("frame_udp6_out", v6(eth_out, 63, gov_out))
check("frame_eth_vlan_in", eth_in + vlan + gov)
check("frame_eth_vlan_out", eth_out + vlan + gov_out)

sk = nacl.signing.SigningKey(V["authority_signing_seed"])
check("authority_public_key", bytes(sk.verify_key))
prefix = b"MNPC" + bytes([1, 0, 0, 0]) + claims
check("credential", prefix + sk.sign(b"mnp-gateway v1 credential" + prefix).signature)

cred = prefix + sk.sign(b"mnp-gateway v1 credential" + prefix).signature


def governed(ptype, body_payload):
    imm = struct.pack(">BBHHHQQ", 2, ptype, 0, 20, len(body_payload), 1, 1800000000000) + claims
    m = blake3.blake3(imm + body_payload, key=key).digest(16)
    return imm + bytes([8, 0, 0, 0]) + bytes(12) + m + body_payload, imm + bytes([7, 1, 0, 0]) + lineage + m + body_payload


# Two BLAKE3 chunks of MAC input.
long_in, long_out = governed(1, bytes(i % 251 for i in range(1400)))
check("frame_udp4_long_in", v4(eth_in, 64, long_in))
check("frame_udp4_long_out", v4(eth_out, 63, long_out))
# QinQ: 0x88A8 VLAN 200 outside 0x8100 VLAN 100, raw EtherType.
qinq = b"\x88\xa8\x00\xc8" + vlan
check("frame_qinq_in", eth_in + qinq + gov)
check("frame_qinq_out", eth_out + qinq + gov_out)
# A credential announcement (type 2) carrying the credential.
ann_in, _ = governed(2, cred)
check("frame_announcement_in", v4(eth_in, 64, ann_in))
# A peer's health report (§7.3).
peer = nacl.signing.SigningKey(V["peer_signing_seed"])
body = b"MNPH" + bytes([1, 0, 0, 0]) + struct.pack(">IQH", 9, 1800000000000, 750) + bytes(2)
check("health_report", body + peer.sign(b"mnp-gateway v1 health" + body).signature)
# A revocation list: ids ascending, without duplicates (§7.2).
ids = sorted({9002, 9001})
msg = b"mnp-gateway v1 revocation" + struct.pack(">IQQI", 1, 3, 1800000000, len(ids)) + b"".join(struct.pack(">Q", i) for i in ids)
check("revocation_message", msg)
check("revocation_signature", sk.sign(msg).signature)

checked = 14 + 8
print(f"vectors: {checked - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
