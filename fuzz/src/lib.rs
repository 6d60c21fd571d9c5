//! What the fuzz targets share: the demo organisation, built once per process.
//!
//! The targets are in `fuzz_targets/`; `RELIABILITY.md` says how to run them.

use std::sync::{Mutex, OnceLock};

use strata_engine::Organization;

/// Records per main table of the demo the targets use: the named story records and a few
/// more, so that every setup operation (whose session rebuilds the derived indexes) stays fast.
pub const DEMO_RECORDS: usize = 8;

/// The demo organisation, built on first use. A target that changes it must leave it as it
/// found it (under an undo-journal checkpoint, rolled back).
///
/// # Panics
///
/// When the demo does not build (a defect of the demo, not an input's).
pub fn demo() -> &'static Mutex<Organization> {
    static DEMO: OnceLock<Mutex<Organization>> = OnceLock::new();
    DEMO.get_or_init(|| match strata_demo::organization(DEMO_RECORDS) {
        Ok(org) => Mutex::new(org),
        Err((i, e)) => panic!("the demo does not build: operation {i}: {e}"),
    })
}

/// The demo organisation, locked (a poisoned lock is taken over: a target that panicked has
/// already reported its crash).
pub fn with_demo<T>(f: impl FnOnce(&mut Organization) -> T) -> T {
    let mut org = match demo().lock() {
        Ok(org) => org,
        Err(poisoned) => poisoned.into_inner(),
    };
    f(&mut org)
}
