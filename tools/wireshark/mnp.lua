-- Wireshark dissector for the mnp-gateway governance header, protocol
-- version 2 (docs/protocol.md §3): over UDP (port 6160, a preference) and
-- directly over Ethernet (EtherType 0x88B5), under 802.1Q / 802.1ad tags
-- (Wireshark's VLAN dissector hands the inner EtherType on).
--
-- Install: copy into your personal plugins folder
-- (~/.local/lib/wireshark/plugins/), or run
--   tshark -X lua_script:tools/wireshark/mnp.lua -r capture.pcapng
-- A drop capture's reason (its packet comment) shows as mnp.drop_reason.

local mnp = Proto("mnp", "MNP governance header")

local TYPES = { [1] = "data", [2] = "credential announcement", [3] = "health report" }
local HEADER_LEN = 88

local f = mnp.fields
f.version = ProtoField.uint8("mnp.version", "Version")
f.type = ProtoField.uint8("mnp.type", "Type", base.DEC, TYPES)
f.flags = ProtoField.uint16("mnp.flags", "Flags", base.HEX)
f.dst_zone = ProtoField.uint16("mnp.dst_zone", "Destination zone")
f.payload_len = ProtoField.uint16("mnp.payload_len", "Payload length")
f.seq = ProtoField.uint64("mnp.seq", "Sequence")
f.timestamp = ProtoField.uint64("mnp.timestamp", "Timestamp (Unix ms)")
f.sent = ProtoField.absolute_time("mnp.sent", "Sent at", base.UTC)
f.authority = ProtoField.uint32("mnp.claims.authority", "Authority")
f.epoch = ProtoField.uint16("mnp.claims.epoch", "Epoch")
f.zone = ProtoField.uint16("mnp.claims.zone", "Zone")
f.credential = ProtoField.uint64("mnp.claims.credential", "Credential")
f.not_before = ProtoField.absolute_time("mnp.claims.not_before", "Valid from", base.UTC)
f.not_after = ProtoField.absolute_time("mnp.claims.not_after", "Valid until", base.UTC)
f.trust = ProtoField.uint8("mnp.claims.trust", "Trust")
f.claims_reserved = ProtoField.uint8("mnp.claims.reserved", "Reserved")
f.permitted = ProtoField.uint16("mnp.claims.permitted", "Permitted zone")
f.hop_budget = ProtoField.uint8("mnp.hop_budget", "Hop budget")
f.hop_count = ProtoField.uint8("mnp.hop_count", "Hop count")
f.reserved = ProtoField.uint16("mnp.reserved", "Reserved", base.HEX)
f.lineage = ProtoField.bytes("mnp.lineage", "Lineage")
f.mac = ProtoField.bytes("mnp.mac", "MAC")
f.payload = ProtoField.bytes("mnp.payload", "Payload")
f.cred_version = ProtoField.uint8("mnp.credential.version", "Credential version")
f.cred_credential = ProtoField.uint64("mnp.credential.id", "Credential id")
f.cred_signature = ProtoField.bytes("mnp.credential.signature", "Signature")
f.health_gateway = ProtoField.uint32("mnp.health.gateway_id", "Reporting gateway")
f.health_time = ProtoField.absolute_time("mnp.health.time", "Reported at", base.UTC)
f.health_value = ProtoField.uint16("mnp.health.value", "Health (per mille)")
f.health_signature = ProtoField.bytes("mnp.health.signature", "Signature")
f.drop_reason = ProtoField.string("mnp.drop_reason", "Dropped by the gateway")

local e_malformed = ProtoExpert.new("mnp.malformed", "Malformed governance header",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_dropped = ProtoExpert.new("mnp.dropped", "Dropped by the gateway",
    expert.group.COMMENTS_GROUP, expert.severity.WARN)
mnp.experts = { e_malformed, e_dropped }

local comment_field = Field.new("frame.comment")

local function ms_time(range)
    local ms = range:uint64()
    local secs = (ms / 1000):tonumber()
    local rest = (ms % 1000):tonumber()
    return NSTime.new(secs, rest * 1000000)
end

local function claims(tree, tvb, at)
    local c = tree:add(mnp, tvb(at, 32), "Claims")
    c:add(f.authority, tvb(at, 4))
    c:add(f.epoch, tvb(at + 4, 2))
    c:add(f.zone, tvb(at + 6, 2))
    c:add(f.credential, tvb(at + 8, 8))
    c:add(f.not_before, tvb(at + 16, 4), NSTime.new(tvb(at + 16, 4):uint(), 0))
    c:add(f.not_after, tvb(at + 20, 4), NSTime.new(tvb(at + 20, 4):uint(), 0))
    c:add(f.trust, tvb(at + 24, 1))
    c:add(f.claims_reserved, tvb(at + 25, 1))
    for i = 0, 2 do
        c:add(f.permitted, tvb(at + 26 + 2 * i, 2))
    end
    return c
end

local function control_payload(tree, tvb, ptype)
    if ptype == 2 and tvb:len() >= 104 and tvb(0, 4):string() == "MNPC" then
        local c = tree:add(mnp, tvb(0, 104), "Credential")
        c:add(f.cred_version, tvb(4, 1))
        c:add(f.cred_credential, tvb(16, 8))
        claims(c, tvb, 8)
        c:add(f.cred_signature, tvb(40, 64))
    elseif ptype == 3 and tvb:len() >= 88 and tvb(0, 4):string() == "MNPH" then
        local h = tree:add(mnp, tvb(0, 88), "Health report")
        h:add(f.health_gateway, tvb(8, 4))
        h:add(f.health_time, tvb(12, 8), ms_time(tvb(12, 8)))
        h:add(f.health_value, tvb(20, 2))
        h:add(f.health_signature, tvb(24, 64))
    end
end

function mnp.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol = "MNP"
    local t = tree:add(mnp, tvb())
    local c = comment_field()
    if c then
        local text = tostring(c.value)
        local reason = text:match("^drop: (.*)$")
        if reason then
            t:add(f.drop_reason, reason)
            t:add_proto_expert_info(e_dropped, "dropped: " .. reason)
        end
    end
    if tvb:len() < HEADER_LEN then
        t:add_proto_expert_info(e_malformed,
            string.format("%d bytes, shorter than the %d-byte header", tvb:len(), HEADER_LEN))
        return
    end
    local version = tvb(0, 1):uint()
    t:add(f.version, tvb(0, 1))
    if version ~= 2 then
        t:add_proto_expert_info(e_malformed, "version " .. version .. " (this dissector reads version 2)")
        return
    end
    local ptype = tvb(1, 1):uint()
    t:add(f.type, tvb(1, 1))
    if TYPES[ptype] == nil then
        t:add_proto_expert_info(e_malformed, "type " .. ptype .. " is not 1-3")
    end
    t:add(f.flags, tvb(2, 2))
    t:add(f.dst_zone, tvb(4, 2))
    local plen = tvb(6, 2):uint()
    t:add(f.payload_len, tvb(6, 2))
    t:add(f.seq, tvb(8, 8))
    t:add(f.timestamp, tvb(16, 8))
    t:add(f.sent, tvb(16, 8), ms_time(tvb(16, 8)))
    claims(t, tvb, 24)
    t:add(f.hop_budget, tvb(56, 1))
    t:add(f.hop_count, tvb(57, 1))
    t:add(f.reserved, tvb(58, 2))
    t:add(f.lineage, tvb(60, 12))
    t:add(f.mac, tvb(72, 16))
    if tvb(2, 2):uint() ~= 0 or tvb(49, 1):uint() ~= 0 or tvb(58, 2):uint() ~= 0 then
        t:add_proto_expert_info(e_malformed, "a reserved field is not zero")
    end
    local available = tvb:len() - HEADER_LEN
    if plen ~= available then
        t:add_proto_expert_info(e_malformed,
            string.format("payload_len %d, but %d bytes follow the header", plen, available))
    end
    if available > 0 then
        local n = math.min(plen, available)
        t:add(f.payload, tvb(HEADER_LEN, n))
        if ptype == 2 or ptype == 3 then
            control_payload(t, tvb(HEADER_LEN, n):tvb(), ptype)
        end
    end
    pinfo.cols.info:set(string.format("%s authority %d credential %s seq %s zone %d -> %d",
        TYPES[ptype] or "?", tvb(24, 4):uint(), tostring(tvb(32, 8):uint64()),
        tostring(tvb(8, 8):uint64()), tvb(30, 2):uint(), tvb(4, 2):uint()))
end

mnp.prefs.udp_port = Pref.uint("UDP port", 6160, "The governance UDP port (gateway.udp_port)")
local registered_port = 6160
function mnp.prefs_changed()
    local udp = DissectorTable.get("udp.port")
    udp:remove(registered_port, mnp)
    registered_port = mnp.prefs.udp_port
    udp:add(registered_port, mnp)
end

DissectorTable.get("udp.port"):add(6160, mnp)
DissectorTable.get("ethertype"):add(0x88b5, mnp)
