#!/usr/bin/env python3
"""Runs tshark with tools/wireshark/mnp.lua over the protocol vectors' frames
(UDP/IPv4, UDP/IPv6, 802.1Q, QinQ, a credential announcement, a two-chunk
payload), a truncated governance header and a drop capture with a reason
comment, and checks field values in `tshark -T json` output. Exits 1 naming
each mismatch. Needs tshark (scripts/install-deps.sh installs it)."""
import json
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(__file__).resolve().parent.parent
text = (root / "docs" / "protocol.md").read_text()
vec = {}
for block in re.findall(r"```vectors\n(.*?)```", text, re.S):
    cur = None
    for line in block.splitlines():
        if "=" in line:
            cur, val = (s.strip() for s in line.split("=", 1))
            vec[cur] = val
        elif line.strip() and cur:
            vec[cur] += line.strip()

names = ["frame_udp4_in", "frame_udp6_in", "frame_eth_vlan_in", "frame_qinq_in",
         "frame_announcement_in", "frame_udp4_long_in"]
frames = [bytes.fromhex(vec[n]) for n in names]
truncated = frames[2][:18 + 40]  # 802.1Q + 0x88B5, then 40 bytes of header


def pcap(frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for b in frames:
        out += struct.pack("<IIII", 0, 0, len(b), len(b)) + b
    return out


def block(kind, body):
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def pcapng_with_comment(frame, comment):
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 65535))
    c = comment.encode()
    opt = struct.pack("<HH", 1, len(c)) + c + b"\0" * (-len(c) % 4) + struct.pack("<HH", 0, 0)
    data = frame + b"\0" * (-len(frame) % 4)
    epb = block(6, struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + data + opt)
    return shb + idb + epb


fields = ["mnp.version", "mnp.type", "mnp.seq", "mnp.timestamp", "mnp.dst_zone",
          "mnp.claims.authority", "mnp.claims.zone", "mnp.claims.credential",
          "mnp.claims.trust", "mnp.claims.permitted", "mnp.hop_budget", "mnp.mac",
          "mnp.payload_len", "mnp.credential.id", "mnp.drop_reason", "_ws.expert.message"]


def tshark(path):
    args = ["tshark", "-X", f"lua_script:{root / 'tools' / 'wireshark' / 'mnp.lua'}",
            "-r", str(path), "-T", "json"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [p["_source"]["layers"] for p in json.loads(out)]


failures = []


def expect(i, layers, field, want):
    got = [v.replace(":", "") for v in layers.get(field, [])]
    if want not in got:
        failures.append(f"packet {i}: {field} = {got}, want {want}")


with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "vectors.pcap"
    p.write_bytes(pcap(frames + [truncated]))
    packets = tshark(p)
    drop = Path(d) / "drop.pcapng"
    drop.write_bytes(pcapng_with_comment(frames[0], "drop: replay (24)"))
    dropped = tshark(drop)

if len(packets) != 7:
    failures.append(f"{len(packets)} packets decoded, want 7")
mac = vec["mac"]
for i, layers in enumerate(packets[:6]):
    expect(i, layers, "mnp.version", "2")
    expect(i, layers, "mnp.seq", "1")
    expect(i, layers, "mnp.timestamp", "1800000000000")
    expect(i, layers, "mnp.dst_zone", "20")
    expect(i, layers, "mnp.claims.authority", "1")
    expect(i, layers, "mnp.claims.zone", "10")
    expect(i, layers, "mnp.claims.credential", str(0x0102030405060708))
    expect(i, layers, "mnp.claims.trust", "3")
    expect(i, layers, "mnp.claims.permitted", "30")
    expect(i, layers, "mnp.hop_budget", "8")
for i in range(4):
    expect(i, packets[i], "mnp.mac", mac)
expect(4, packets[4], "mnp.type", "2")
expect(4, packets[4], "mnp.credential.id", str(0x0102030405060708))
expect(5, packets[5], "mnp.payload_len", "1400")
experts = " ".join(packets[6].get("_ws.expert.message", [])) if len(packets) > 6 else ""
if "shorter than the 88-byte header" not in experts:
    failures.append(f"truncated header not flagged: {experts!r}")
expect(0, dropped[0], "mnp.drop_reason", "replay (24)")

for f in failures:
    print(f"check-dissector: {f}", file=sys.stderr)
if failures:
    sys.exit(1)
print(f"check-dissector: ok ({len(packets)} frames and a drop capture decoded as expected)")
