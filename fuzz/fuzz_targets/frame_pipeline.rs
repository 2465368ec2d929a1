//! Arbitrary bytes as a burst of frames through the whole pipeline.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let snap = mnp_fuzz::snapshot();
    mnp_fuzz::judge_and_check(&snap, mnp_fuzz::frames(data), mnp_traffic::fixture::NOW_MS);
});
