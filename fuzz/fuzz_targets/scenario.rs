//! Scenario files (`strata_scenario::load_str`: the YAML reader, the format's parser and
//! validation), and the organisation a valid one builds. No panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scenario) = strata_scenario::load_str(text) {
        let _ = strata_scenario::engine_target::build(&scenario);
    }
});
