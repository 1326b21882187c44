//! The README stays true: its configuration example parses and validates with
//! the defaults it claims.

use std::path::Path;

use smsbridge::config::Config;

#[test]
fn readme_configuration_example_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```toml\n[database]")
        .expect("the configuration example")
        + "```toml\n".len();
    let toml = &readme[start..start + readme[start..].find("```").unwrap()];
    let cfg = Config::parse(toml, Path::new("README.md")).unwrap_or_else(|e| panic!("{e}"));
    cfg.validate().unwrap();
    // What the example says are the defaults, except the modem it adds.
    let defaults = Config::default();
    assert_eq!(cfg.sip, defaults.sip);
    assert_eq!(cfg.bridge, defaults.bridge);
    assert_eq!(cfg.status, defaults.status);
    assert_eq!(cfg.imps, defaults.imps);
    assert_eq!(cfg.database, defaults.database);
    assert_eq!(cfg.presence, defaults.presence);
    assert_eq!(cfg.modem.len(), 1);
    assert_eq!(cfg.modem[0].baud, 115_200);
}
