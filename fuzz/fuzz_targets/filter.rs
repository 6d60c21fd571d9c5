//! The native list filter language (`strata_ops::parse_filter`) and order (`parse_order`):
//! no panic, and a parsed filter prints (`print_filter`) and parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ops::{MAX_FILTER_CHARS, parse_filter, parse_order, print_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_order(text);
    let Ok(tree) = parse_filter(text) else {
        return;
    };
    let printed = match print_filter(&tree) {
        Ok(printed) => printed,
        Err(e) => panic!("a parsed filter has no text form ({e}): {text:?} → {tree:?}"),
    };
    // Floats may print longer than they were written (`1e5` → `100000.0`).
    if printed.chars().count() > MAX_FILTER_CHARS {
        return;
    }
    match parse_filter(&printed) {
        Ok(again) => assert_eq!(again, tree, "{text:?} printed as {printed:?}"),
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
    }
});
