//! The container.json reader: any input gives a config or an error naming a path, never a
//! panic; a config that validates serialises to a canonical form that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut config) = common::config::Config::parse(data) else {
        return;
    };
    if config.validate_fields().is_err() {
        return;
    }
    let canonical = config.to_json();
    let mut again = common::config::Config::parse(&canonical).expect("canonical form parses");
    again.validate_fields().expect("canonical form validates");
    assert_eq!(config, again);
});
