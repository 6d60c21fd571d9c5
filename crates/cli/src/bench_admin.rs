//! `strata bench admin`: the administrator's answers of issue 11 on the generated organisation
//! (10,000 users): the smallest role set among 100 roles, two users compared, the licence
//! report over every user,
//! one user's cheapest licence, who may open an app, and a dry run of a role edit; prints a
//! table of medians and p99.

use anyhow::anyhow;
use serde_json::json;
use strata_ops::Operation;

use crate::bench_cmd::{build, time};

/// The privileges the extra roles give, one or two each, and the depths.
const PRIVILEGES: [&str; 6] = ["create", "read", "write", "append", "append_to", "share"];
const DEPTHS: [&str; 3] = ["business_unit", "parent_child", "organization"];

/// 100 roles, an app with needs, and a licence catalogue with every user licensed.
pub(crate) fn admin_model(seed: u64, users: &[String]) -> anyhow::Result<Vec<Operation>> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut ops = Vec::new();
    for i in 0..100 {
        let mut grid = serde_json::Map::new();
        for _ in 0..2 {
            let table = if next(2) == 0 { "account" } else { "contact" };
            let entry = grid.entry(table).or_insert_with(|| json!({}));
            entry[PRIVILEGES[next(6)]] = json!(DEPTHS[next(3)]);
        }
        ops.push(
            json!({ "op": "add_role", "name": format!("Bench role {i:03}"), "privileges": grid }),
        );
    }
    // A newcomer with no role: the smallest role set chooses among all 100.
    ops.push(json!({ "op": "add_user", "name": "bench_newcomer", "business_unit": "U0" }));
    ops.push(json!({ "op": "add_app", "name": "Bench Workspace",
        "roles": (0..10).map(|i| format!("Bench role {i:03}")).collect::<Vec<_>>() }));
    // Every privilege of the two tables at Business Unit depth: 12 needs, each role gives two.
    let unit_grid: serde_json::Map<String, serde_json::Value> = PRIVILEGES
        .iter()
        .map(|p| ((*p).to_owned(), json!("business_unit")))
        .collect();
    ops.push(json!({ "op": "set_app_needs", "app": "Bench Workspace",
        "needs": { "account": unit_grid, "contact": unit_grid } }));
    let every = |name: &str, price: u32| {
        json!({ "op": "add_licence", "name": name, "price": price, "default": "organization",
            "all_misc": true, "all_apps": true })
    };
    ops.push(every("Enterprise", 6));
    ops.push(every("Professional", 4));
    ops.push(json!({ "op": "add_licence", "name": "Basic", "price": 2, "tables": {
        "account": { "create": "organization", "read": "organization", "write": "organization", "append": "organization", "append_to": "organization" },
        "contact": { "create": "organization", "read": "organization", "write": "organization", "append": "organization", "append_to": "organization" } } }));
    ops.push(
        json!({ "op": "add_licence", "name": "Essential", "price": 1, "tables": {
        "account": { "read": "organization" }, "contact": { "read": "organization" } } }),
    );
    let licensed = users.iter().map(String::as_str).chain(["bench_newcomer"]);
    for (i, user) in licensed.enumerate() {
        let licence = ["Professional", "Enterprise", "Basic"][i % 3];
        ops.push(json!({ "op": "set_user_licence", "user": user, "licences": [licence] }));
    }
    ops.into_iter()
        .map(|o| serde_json::from_value(o).map_err(|e| anyhow!("bench model: {e}")))
        .collect()
}

/// `strata bench admin`.
pub fn run(records: usize, seed: u64, runs: usize) -> anyhow::Result<()> {
    let (mut org, built) = build(records, seed)?;
    let users: Vec<String> = org.user_ids().map(|u| org.user(u).name.clone()).collect();
    strata_ops::apply_all(&mut org, &admin_model(seed, &users)?)
        .map_err(|(i, e)| anyhow!("bench model operation {i}: {}", e.message))?;
    println!(
        "generated organisation: {} users, {} roles, {} records in {:.1} s; 100 extra roles, an app with 12 needs, 4 licences",
        users.len(),
        org.role_ids().count(),
        org.record_count(),
        built.as_secs_f64()
    );
    let user = org
        .user_id("bench_newcomer")
        .ok_or_else(|| anyhow!("no bench_newcomer"))?;
    let (left, right) = match (org.user_id("reader_unit"), org.user_id("reader_manager")) {
        (Some(l), Some(r)) => (l, r),
        _ => return Err(anyhow!("no reader_unit or reader_manager")),
    };
    let app = org
        .app_id("Bench Workspace")
        .ok_or_else(|| anyhow!("no app"))?;
    let set = org
        .roles_needed(user, app)
        .map_err(|e| anyhow!("roles needed: {e:?}"))?;
    let report = org.licence_report();
    println!(
        "smallest role set for a user with no role: {} roles (exact: {}, {} candidates, {} branches); licence report: {} users",
        set.roles.len(),
        set.exact,
        set.candidates,
        set.searched,
        report.users.len()
    );
    // One cell of a role many users hold (the generator's `Read Own`): Read on accounts
    // from User to Business Unit depth.
    let edit: Vec<Operation> = serde_json::from_value(json!([{ "op": "set_role_privilege",
        "role": "Read Own", "table": "account", "privilege": "read", "depth": "business_unit" }]))?;
    let holders = org
        .role_id("Read Own")
        .map_or(0, |r| org.role_holders(r).users.len());
    println!("Read Own is held directly by {holders} users");
    let mut failed = None;
    let mut rows = Vec::new();
    rows.push((
        "smallest role set (100 roles, 12 needs)",
        time(runs, || {
            let _ = org.roles_needed(user, app);
        }),
    ));
    rows.push((
        "compare two users (reader_unit, reader_manager)",
        time(runs, || {
            let _ = org.compare_users(left, right);
        }),
    ));
    rows.push((
        "licence report (every user)",
        time(runs, || {
            let _ = org.licence_report();
        }),
    ));
    rows.push((
        "cheapest licence of one user",
        time(runs, || {
            let _ = org.cheapest_licences(user);
        }),
    ));
    rows.push((
        "who may open an app",
        time(runs, || {
            let _ = org.who_can_open(app);
        }),
    ));
    rows.push((
        "dry run: one cell of Read Own (account read: user → business unit)",
        time(runs, || {
            if let Err(e) = org.dry_run(|o| strata_ops::apply_all(o, &edit)) {
                failed = Some(anyhow!("dry run: {e}"));
            }
        }),
    ));
    if let Some(e) = failed {
        return Err(e);
    }
    println!();
    println!("{runs} runs each; milliseconds");
    println!("| question | p50 | p99 |");
    println!("|---|---:|---:|");
    for (name, (p50, p99)) in rows {
        println!("| {name} | {p50:.3} | {p99:.3} |");
    }
    Ok(())
}
