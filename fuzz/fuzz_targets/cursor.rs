//! List cursors (`strata_server::cursor::Cursors`): any text decodes to a position or to
//! `bad_cursor`; a body signed with the key (past the MAC) decodes without a panic; a decoded
//! position encodes and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_server::cursor::Cursors;

const QUERY: &str = "demo\0account\0rep_east\0name eq 'x'\0name";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cursors = Cursors::new([7; 32]);
    let _ = cursors.decode(text, QUERY);
    let signed = cursors.sign(text, QUERY);
    let Ok(after) = cursors.decode(&signed, QUERY) else {
        return;
    };
    let again = cursors.encode(&after, QUERY);
    match cursors.decode(&again, QUERY) {
        Ok(back) => assert_eq!(back, after, "{text:?}"),
        Err(e) => panic!("a cursor this server gave is refused: {e:?}: {text:?}"),
    }
    assert!(cursors.decode(&again, "another query").is_err());
});
