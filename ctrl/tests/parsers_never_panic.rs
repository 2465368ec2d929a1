//! Arbitrary input never panics a control-side parser: credentials, and
//! configuration text (random, and the demo config with random damage).

use proptest::prelude::*;
use std::path::Path;

const DEMO: &str = include_str!("../../configs/demo.toml");

proptest! {
    #[test]
    fn credential_parser(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = mnp_ctrl::credential::Credential::from_bytes(&b);
    }

    #[test]
    fn config_parser_random_text(s in "\\PC{0,300}") {
        let _ = mnp_ctrl::compile::load_str(Path::new("/nonexistent/x.toml"), &s);
    }

    #[test]
    fn config_parser_damaged_demo(at in 0..DEMO.len(), cut in 0usize..40, junk in "[\\[\\]=\"a-z0-9 .,\\n-]{0,12}") {
        let mut text = DEMO.to_string();
        let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &junk);
        // Errors must locate themselves inside the file.
        if let Err(e) = mnp_ctrl::compile::load_str(Path::new("/nonexistent/demo.toml"), &text) {
            prop_assert!(e.line <= text.lines().count() + 1, "{e}");
            prop_assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn the_example_configs_parse() {
    for text in [
        DEMO,
        include_str!("../../configs/appliance.toml"),
        include_str!("../../configs/kernel.toml"),
    ] {
        toml::from_str::<mnp_ctrl::config::Config>(text).unwrap_or_else(|e| panic!("{e}"));
    }
}
