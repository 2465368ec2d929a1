//! Every reason the gateway drops a packet, declared once.
//!
//! The list drives the counters, the stats line, the metrics names, the `why`
//! output and docs/protocol.md §8; numbers are stable and never reused.

macro_rules! drop_reasons {
    ($( $(#[$m:meta])* $variant:ident = $code:literal, $name:literal, auditable: $aud:literal, $help:literal; )*) => {
        /// Why a packet was not forwarded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$m])* $variant = $code, )*
        }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// One past the largest code: the size of a per-reason counter array.
            pub const COUNT: usize = 1 + { let mut m = 0u8; $( if $code > m { m = $code; } )* m } as usize;

            /// The stable operator-facing name (snake_case, used in metrics).
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
            pub const fn help(self) -> &'static str {
                match self { $(DropReason::$variant => $help,)* }
            }
            /// Whether audit mode may forward a packet that fails this check.
            pub const fn auditable(self) -> bool {
                match self { $(DropReason::$variant => $aud,)* }
            }
            pub const fn code(self) -> u8 { self as u8 }
            pub fn from_code(c: u8) -> Option<Self> {
                match c { $($code => Some(DropReason::$variant),)* _ => None }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|r| r.name() == s)
            }
        }
    };
}

// Declared in the order the gateway checks them (docs/protocol.md §8): this
// order is `DropReason::ALL`, which `why` and the summary follow. Numbers are
// stable and never reused, so they need not follow the order.
drop_reasons! {
    Oversize = 34, "oversize", auditable: false,
        "the frame is larger than the gateway's packet buffers";
    RxError = 35, "rx_error", auditable: false,
        "the port reported a receive error for the frame";
    Truncated = 1, "truncated", auditable: false,
        "frame shorter than the headers it announces";
    BadL3Header = 2, "bad_l3_header", auditable: false,
        "IPv4/IPv6/UDP header inconsistent (version, IHL, lengths, zero IPv6 UDP checksum)";
    BadIpChecksum = 3, "bad_ip_checksum", auditable: false,
        "IPv4 header checksum does not verify";
    Fragmented = 4, "fragmented", auditable: false,
        "governed packets must not be IP fragments";
    BadVersion = 5, "bad_version", auditable: false,
        "governance header version is not 2";
    BadType = 6, "bad_type", auditable: false,
        "governance packet type is not data, credential or health";
    ReservedNonZero = 7, "reserved_nonzero", auditable: false,
        "a reserved governance field is not zero";
    BadLength = 8, "bad_length", auditable: false,
        "governance payload_len disagrees with the bytes that follow";
    Ungoverned = 9, "ungoverned", auditable: false,
        "no governance header and no legacy rule allows it";
    UnknownAuthority = 10, "unknown_authority", auditable: false,
        "the claimed authority is not configured on this gateway";
    EpochRetired = 12, "epoch_retired", auditable: true,
        "the claimed epoch is older than every live epoch";
    UnknownEpoch = 11, "unknown_epoch", auditable: true,
        "no zone secret is loaded for the claimed epoch (newer than any live one)";
    Stale = 31, "stale", auditable: true,
        "the timestamp is older than the freshness interval";
    FutureTimestamp = 32, "future_timestamp", auditable: true,
        "the timestamp is further ahead of the gateway's clock than the allowed skew";
    SentBeforeStart = 33, "sent_before_start", auditable: true,
        "the timestamp is not after this gateway's start (plus skew): it may have been accepted before a restart";
    BadMac = 13, "bad_mac", auditable: true,
        "MAC does not verify under the key derived from the claims";
    NotYetValid = 14, "not_yet_valid", auditable: true,
        "the credential's validity window has not started";
    Expired = 15, "expired", auditable: true,
        "the credential's validity window has ended";
    Revoked = 16, "revoked", auditable: true,
        "the credential is on its authority's revocation list";
    ZoneNotGranted = 17, "zone_not_granted", auditable: true,
        "the authority is not trusted to grant the claimed zone";
    TrustAboveCeiling = 18, "trust_above_ceiling", auditable: true,
        "the claimed trust exceeds what policy lets the authority grant";
    DestinationNotPermitted = 19, "destination_not_permitted", auditable: true,
        "the destination zone is not among the credential's permitted zones";
    ZonePolicyDenied = 20, "zone_policy_denied", auditable: true,
        "no zone rule lets the source zone reach the destination zone";
    TrustBelowPolicy = 21, "trust_below_policy", auditable: true,
        "the packet's trust is below the zone rule's minimum";
    TypeNotAllowed = 22, "type_not_allowed", auditable: true,
        "the zone rule does not allow this packet type";
    HopBudgetExhausted = 23, "hop_budget_exhausted", auditable: true,
        "hop budget is zero";
    NoRoute = 26, "no_route", auditable: false,
        "no route to the destination zone meets the packet's trust and policy's floor";
    TtlExceeded = 27, "ttl_exceeded", auditable: false,
        "IPv4 TTL or IPv6 hop limit would reach zero";
    Replay = 24, "replay", auditable: true,
        "sequence number already seen, or older than the replay window";
    ReplayTableFull = 25, "replay_table_full", auditable: false,
        "no replay-window slot free for a new credential (fail closed)";
    RateLimited = 30, "rate_limited", auditable: true,
        "the credential exceeded the zone rule's per-credential packet rate";
    NoTxQueue = 36, "no_tx_queue", auditable: false,
        "the chosen egress port has no transmit queue on this worker";
    TxFull = 28, "tx_full", auditable: false,
        "egress queue did not accept the packet";
    ControlQueueFull = 29, "control_queue_full", auditable: false,
        "the control thread's queue for credential and health packets was full";
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.code()));
            assert_eq!(DropReason::from_code(r.code()), Some(*r));
            assert_eq!(DropReason::from_name(r.name()), Some(*r));
            assert!((r.code() as usize) < DropReason::COUNT);
        }
        assert_eq!(DropReason::from_code(0), None);
    }
}
