//! Dataverse solution roles (`strata_solution::read_roles`): role XML, `customizations.xml`
//! and solution zips (sniffed by content), then the import planned against the demo
//! organisation. No panic. The first byte chooses whether unknown tables are created.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_solution::{ImportOptions, plan, read_roles};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let Ok(roles) = read_roles("fuzz", bytes) else {
        return;
    };
    let options = ImportOptions {
        create_tables: flags & 1 == 1,
    };
    strata_fuzz::with_demo(|org| {
        let _ = plan(org, &roles, options);
    });
});
