//! The Web API's request language (`strata-odata`): whole URLs, resource paths, query
//! strings, `$filter`, `$apply`, FetchXML and the `$batch` content type's boundary. No panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_odata::{
    Aliases, FetchContext, multipart_boundary, parse_apply, parse_fetch, parse_filter, parse_path,
    parse_query, parse_request_target, split_url,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_request_target(text);
    let aliases = match parse_query(text) {
        Ok(options) => options.aliases,
        Err(_) => Aliases::new(),
    };
    let _ = parse_path(text, &aliases);
    let _ = parse_filter(text, &aliases);
    let _ = parse_apply(text, &aliases);
    if let Ok(url) = split_url(text) {
        let _ = parse_query(url.query);
    }
    let _ = multipart_boundary(text);
    let lookups = |_: &str, name: &str| name == "ownerid" || name == "primarycontactid";
    let _ = parse_fetch(
        text,
        &FetchContext {
            is_lookup: &lookups,
            user: "00000000-0000-0000-0000-000000000001",
            business_unit: "00000000-0000-0000-0000-000000000002",
            today: strata_odata::date::Date {
                year: 2026,
                month: 12,
                day: 7,
            },
        },
    );
});
