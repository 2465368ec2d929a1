//! Trust-weighted route selection.
//!
//! A route is eligible when its trust meets both the packet's demand (the
//! trust level it carries) and the zone rule's floor. Among eligible routes the
//! highest score (weight × health) wins; equal scores are split per flow by a
//! hash of (authority, credential), so one holder's packets keep one path and
//! different holders spread across equal paths. No allocation: the route list
//! is pre-sorted by score in the snapshot.

use crate::snapshot::Route;

/// Maximum equal-score routes considered for the per-flow split.
pub const MAX_ECMP: usize = 8;

/// Pick a route for a packet that demands `demand` trust under a rule with
/// floor `floor`. `routes` must be sorted by descending score.
pub fn select(routes: &[Route], demand: u8, floor: u8, flow: u64) -> Option<&Route> {
    let need = demand.max(floor);
    let mut tied = [0usize; MAX_ECMP];
    let mut n = 0;
    let mut best = None;
    for (i, r) in routes.iter().enumerate() {
        if r.trust < need || r.health == 0 {
            continue;
        }
        match best {
            None => best = Some(r.score()),
            Some(s) if r.score() < s => break,
            Some(_) => {}
        }
        if n < MAX_ECMP {
            tied[n] = i;
            n += 1;
        }
    }
    match n {
        0 => None,
        // One best route (the common case): no flow hash, no division.
        1 => Some(&routes[tied[0]]),
        _ => Some(&routes[tied[(flow_hash(flow) % n as u64) as usize]]),
    }
}

/// splitmix64 finaliser: a cheap, well-mixed, stable hash.
pub fn flow_hash(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The flow key of a governed packet.
pub fn flow_of(authority: u32, credential: u64) -> u64 {
    credential ^ ((authority as u64) << 32).rotate_left(17)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(port: u16, trust: u8, weight: u32) -> Route {
        Route {
            port,
            next_hop: [0; 6],
            trust,
            weight,
            health: 1000,
        }
    }

    fn sorted(mut v: Vec<Route>) -> Vec<Route> {
        v.sort_by_key(|r| core::cmp::Reverse(r.score()));
        v
    }

    #[test]
    fn excludes_routes_below_demand_or_floor() {
        let routes = sorted(vec![r(1, 2, 500), r(2, 5, 100), r(3, 3, 200)]);
        assert_eq!(select(&routes, 1, 0, 9).unwrap().port, 1);
        assert_eq!(select(&routes, 3, 0, 9).unwrap().port, 3);
        assert_eq!(select(&routes, 1, 4, 9).unwrap().port, 2);
        assert!(select(&routes, 6, 0, 9).is_none());
    }

    #[test]
    fn ties_split_stably_per_flow() {
        let routes = sorted(vec![r(1, 3, 100), r(2, 3, 100), r(3, 3, 50)]);
        let mut used = [0usize; 4];
        for flow in 0..1000u64 {
            let a = select(&routes, 1, 0, flow).unwrap().port;
            assert_eq!(a, select(&routes, 1, 0, flow).unwrap().port);
            used[a as usize] += 1;
        }
        assert!(used[1] > 300 && used[2] > 300 && used[3] == 0, "{used:?}");
    }

    #[test]
    fn unhealthy_route_is_skipped() {
        let mut routes = sorted(vec![r(1, 3, 100), r(2, 3, 10)]);
        routes[0].health = 0;
        assert_eq!(select(&routes, 1, 0, 0).unwrap().port, 2);
    }
}
