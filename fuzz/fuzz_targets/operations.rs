//! JSON operation bodies: `strata_ops::Operation` deserialized (one operation or a list, as
//! the operations route takes), then applied to the demo organisation under an undo-journal
//! checkpoint and rolled back — a dry validation. No panic; a rollback that fails is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ops::Operation;

fuzz_target!(|data: &[u8]| {
    let ops: Vec<Operation> = match serde_json::from_slice::<Vec<Operation>>(data) {
        Ok(ops) => ops,
        Err(_) => match serde_json::from_slice::<Operation>(data) {
            Ok(op) => vec![op],
            Err(_) => return,
        },
    };
    // Round trip of the wire form: what deserializes serializes back to the same operations.
    if let Ok(json) = serde_json::to_vec(&ops) {
        match serde_json::from_slice::<Vec<Operation>>(&json) {
            Ok(again) => assert_eq!(again, ops, "operations changed through their JSON"),
            Err(e) => panic!("serialized operations do not deserialize: {e}"),
        }
    }
    strata_fuzz::with_demo(|org| {
        let checkpoint = org.checkpoint();
        for op in &ops {
            if strata_ops::apply(org, op).is_err() {
                break;
            }
        }
        if let Err(e) = org.rollback(checkpoint) {
            panic!("rollback failed: {e}");
        }
    });
});
