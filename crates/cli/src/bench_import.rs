//! `strata bench import`: importing Dataverse solution roles (issue 12's speed line) — the
//! project's 30 KB all-Global role file and a generated 600 KB `customizations.xml` — read,
//! planned against an organisation and applied (tables created) in memory; prints a table of
//! medians and maxima.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use strata_engine::Organization;
use strata_engine::privilege_names::STANDARD_TABLES;
use strata_ops::{Operation, apply_all};
use strata_solution::{ImportOptions, plan, read_roles};

use crate::table;

const VERBS: [&str; 8] = [
    "Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share",
];
const LEVELS: [&str; 4] = ["Basic", "Local", "Deep", "Global"];

/// A role file with every verb on `tables` standard tables, all Global (`tables` = 62 gives
/// the 30 KB of tests/fixtures/solution/all-global.xml).
fn all_global(tables: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Role id=\"{66666666-7777-4888-8999-aaaaaaaaaaaa}\" name=\"Global Everything\" isinherited=\"1\">\n  <RolePrivileges>\n",
    );
    for t in STANDARD_TABLES.iter().take(tables) {
        for v in VERBS {
            let _ = writeln!(
                s,
                "    <RolePrivilege name=\"prv{v}{t}\" level=\"Global\" />"
            );
        }
    }
    s.push_str("  </RolePrivileges>\n</Role>\n");
    s
}

/// A packed customizations.xml of `roles` roles, each with every verb on 40 standard and 20
/// custom tables at mixed levels, and a few miscellaneous privileges: about 30 KB a role.
fn customizations(roles: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<ImportExportXml xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\r\n  <Entities />\r\n  <Roles>\r\n",
    );
    for r in 0..roles {
        let _ = write!(
            s,
            "    <Role id=\"{{{r:08x}-0000-4000-8000-000000000000}}\" name=\"Bench Role {r:02}\" isinherited=\"{}\">\r\n      <RolePrivileges>\r\n",
            r % 2
        );
        for (i, t) in STANDARD_TABLES.iter().skip(r).take(40).enumerate() {
            for (j, v) in VERBS.iter().enumerate() {
                let _ = write!(
                    s,
                    "        <RolePrivilege name=\"prv{v}{t}\" level=\"{}\" />\r\n",
                    LEVELS[(i + j + r) % 4]
                );
            }
        }
        for c in 0..20 {
            for (j, v) in VERBS.iter().enumerate() {
                let _ = write!(
                    s,
                    "        <RolePrivilege level=\"{}\" name=\"prv{v}cr123_table{c:02}\" />\r\n",
                    LEVELS[(c + j) % 4]
                );
            }
        }
        for m in [
            "prvExportToExcel",
            "prvBulkEdit",
            "prvGoOffline",
            "prvPrint",
        ] {
            let _ = write!(
                s,
                "        <RolePrivilege name=\"{m}\" level=\"Global\" />\r\n"
            );
        }
        s.push_str("      </RolePrivileges>\r\n    </Role>\r\n");
    }
    s.push_str("  </Roles>\r\n</ImportExportXml>\r\n");
    s
}

fn base() -> anyhow::Result<Organization> {
    let mut org = Organization::new();
    let ops: Vec<Operation> = serde_json::from_value(serde_json::json!([
        {"op": "add_business_unit", "name": "Root"},
        {"op": "add_table", "name": "account"},
        {"op": "add_table", "name": "contact"},
    ]))?;
    apply_all(&mut org, &ops).map_err(|(i, e)| anyhow!("{i}: {e}"))?;
    Ok(org)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Times read, plan and apply of each input `runs` times; prints medians and maxima.
pub(crate) fn run(runs: usize) -> anyhow::Result<()> {
    let runs = runs.max(1);
    let inputs = [
        ("all-Global role (Roles/*.xml)", all_global(62)),
        ("customizations.xml, 18 roles", customizations(18)),
    ];
    let org = base()?;
    let mut rows = Vec::new();
    for (label, text) in &inputs {
        let mut samples: Vec<[Duration; 4]> = Vec::new();
        let mut privileges = 0;
        let mut roles = 0;
        for _ in 0..runs {
            let mut target = org.clone();
            let t0 = Instant::now();
            let read = read_roles("bench.xml", text.as_bytes()).map_err(|e| anyhow!("{e}"))?;
            let t1 = Instant::now();
            let planned = plan(
                &target,
                &read,
                ImportOptions {
                    create_tables: true,
                },
            );
            let t2 = Instant::now();
            apply_all(&mut target, &planned.operations).map_err(|(i, e)| anyhow!("{i}: {e}"))?;
            let t3 = Instant::now();
            roles = read.len();
            privileges = read.iter().map(|r| r.privileges.len()).sum();
            samples.push([t1 - t0, t2 - t1, t3 - t2, t3 - t0]);
        }
        let stat = |k: usize| {
            let mut v: Vec<Duration> = samples.iter().map(|s| s[k]).collect();
            v.sort();
            (v[v.len() / 2], v[v.len() - 1])
        };
        let (total, total_max) = stat(3);
        rows.push(vec![
            (*label).to_owned(),
            format!("{:.1}", text.len() as f64 / 1024.0),
            roles.to_string(),
            privileges.to_string(),
            ms(stat(0).0),
            ms(stat(1).0),
            ms(stat(2).0),
            ms(total),
            ms(total_max),
        ]);
    }
    println!(
        "strata bench import: {runs} runs each, in memory (read, plan, apply with tables created)\n"
    );
    table::print(
        &[
            "input",
            "KiB",
            "roles",
            "privileges",
            "read ms",
            "plan ms",
            "apply ms",
            "total ms (median)",
            "total ms (max)",
        ],
        &rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_generated_inputs_have_the_sizes_the_bench_names() {
        let one = super::all_global(62);
        assert!((30_000..36_000).contains(&one.len()), "{}", one.len());
        let many = super::customizations(18);
        assert!((580_000..660_000).contains(&many.len()), "{}", many.len());
    }
}
