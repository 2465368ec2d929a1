//! Shared by the gateway's integration tests that include it (`mod common;`).

use mnp_dataplane::DropReason;
use mnp_testkit::summary_figure;
use mnp_traffic::gen::{Category, SCHEDULE};
use std::collections::BTreeMap;

/// The exit summary `text` of a demo run that judged `rx` packets of the
/// traffic mix (one worker, so in schedule order from the first: whole
/// cycles, then the start of one more) is exact: every valid packet
/// forwarded, every legacy-allowed one forwarded as legacy, every hostile one
/// dropped under its reason. Returns the expected drops by reason.
pub fn assert_exact_demo_accounting(text: &str, rx: u64) -> BTreeMap<DropReason, u64> {
    let (cycles, rest) = (
        rx / SCHEDULE.len() as u64,
        (rx % SCHEDULE.len() as u64) as usize,
    );
    let per = |c: Category| {
        SCHEDULE.iter().filter(|x| **x == c).count() as u64 * cycles
            + SCHEDULE[..rest].iter().filter(|x| **x == c).count() as u64
    };
    assert_eq!(summary_figure(text, "rx"), rx, "{text}");
    assert_eq!(
        summary_figure(text, "forwarded"),
        per(Category::Valid),
        "{text}"
    );
    assert_eq!(
        summary_figure(text, "legacy forwarded"),
        per(Category::LegacyAllowed)
    );
    let mut expected = BTreeMap::<DropReason, u64>::new();
    for c in Category::HOSTILE {
        *expected.entry(c.expected_drop().unwrap()).or_default() += per(c);
    }
    for (r, n) in &expected {
        assert_eq!(summary_figure(text, r.name()), *n, "{r}:\n{text}");
    }
    expected
}
