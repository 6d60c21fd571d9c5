//! Checkpoint bytes (`strata_checkpoint::decode`): the bytes a store hands back under its MAC,
//! so only a store's own writer makes them — fuzzed all the same, as the decoder of a file.
//! Two kinds of input, by the first byte: even, the rest is decoded as it is; odd, the rest is
//! a list of edits (4 bytes of offset, little-endian, and 1 byte of value each; a last short
//! edit truncates at its offset) made to the demo's real checkpoint, so that the fuzzer works
//! past the header on a valid organisation.
//!
//! Properties: no panic and no hang, every count bounded by the bytes (an allocation larger
//! than the input allows is an out-of-memory crash); the unedited checkpoint decodes; what
//! decodes encodes to bytes that decode again to the same organisation (canonical dump).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// The demo's checkpoint (the current format), made once.
fn real() -> &'static [u8] {
    static REAL: OnceLock<Vec<u8>> = OnceLock::new();
    REAL.get_or_init(|| strata_fuzz::with_demo(|org| strata_checkpoint::encode(org)))
}

/// The demo's checkpoint with the input's edits made.
fn edited(edits: &[u8]) -> Vec<u8> {
    let mut bytes = real().to_vec();
    let mut chunks = edits.chunks(5);
    for edit in chunks.by_ref() {
        let mut offset = [0u8; 4];
        offset[..edit.len().min(4)].copy_from_slice(&edit[..edit.len().min(4)]);
        let at = u32::from_le_bytes(offset) as usize % bytes.len().max(1);
        match edit.get(4) {
            Some(value) => bytes[at] = *value,
            None => bytes.truncate(at),
        }
    }
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        // The unedited checkpoint must decode.
        if let Err(e) = strata_checkpoint::decode(real()) {
            panic!("the demo's own checkpoint does not decode: {e:?}");
        }
        return;
    };
    let bytes = if kind % 2 == 0 {
        rest.to_vec()
    } else {
        edited(rest)
    };
    let Ok(org) = strata_checkpoint::decode(&bytes) else {
        return;
    };
    let again = strata_checkpoint::encode(&org);
    match strata_checkpoint::decode(&again) {
        Ok(back) => assert!(
            back.canonical_dump() == org.canonical_dump(),
            "a decoded checkpoint encodes to another organisation"
        ),
        Err(e) => panic!("a decoded checkpoint's own encoding does not decode: {e:?}"),
    }
});
