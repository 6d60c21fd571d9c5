//! `$batch` multipart bodies (`strata_odata::parse_batch`). The input is the request's
//! `Content-Type` on the first line and the body after it. No panic; every request a parsed
//! batch holds goes through the URL parser, as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_odata::{BatchPart, parse_batch, parse_request_target};

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return;
    };
    let Ok(batch) = parse_batch(content_type.trim_end_matches('\r'), body) else {
        return;
    };
    for part in &batch.parts {
        let requests = match part {
            BatchPart::Request(r) => std::slice::from_ref(r),
            BatchPart::ChangeSet(c) => &c.requests[..],
        };
        for request in requests {
            let _ = parse_request_target(&request.url);
        }
    }
});
