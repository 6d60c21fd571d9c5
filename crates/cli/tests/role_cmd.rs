//! `strata role …` and `strata user compare` on a database file: questions as tables and JSON,
//! changes through the write path as a user or the system, refusals with exit status 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::strata;

#[test]
fn roles_are_shown_compared_replaced_deprecated_and_edited_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("roles.db");
    let db = db.to_string_lossy().into_owned();
    common::create_org(
        None,
        &db,
        "o",
        &common::repo().join("tests/scenarios/admin/17-replace-role.yaml"),
    );
    let at = ["--db", db.as_str(), "--org", "o"];
    let with = |verb: &[&str]| -> Vec<String> {
        verb.iter()
            .chain(at.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let call = |verb: &[&str]| {
        let args = with(verb);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        strata(&refs)
    };
    let call_ok = |verb: &[&str]| {
        let (code, out, err) = call(verb);
        assert_eq!(code, 0, "{verb:?}: {out}{err}");
        out
    };
    let call_json = |verb: &[&str]| -> serde_json::Value {
        let mut v: Vec<&str> = verb.to_vec();
        v.push("--json");
        let out = call_ok(&v);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    };

    let holders = call_json(&["role", "holders", "Work365 User"]);
    assert_eq!(holders["users"][0]["user"], "ann");
    assert_eq!(holders["through_teams"][0]["team"], "Billing");

    // The assigner may not hand out the replacement (D11): refused, nothing written.
    let (code, _, err) = call(&[
        "role",
        "replace",
        "Work365 User",
        "Work 365 CS Manager",
        "--as",
        "assigner",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot hand out role `Work 365 CS Manager`"),
        "{err}"
    );
    let out = call_ok(&["role", "replace", "Work365 User", "Work 365 CS Manager"]);
    assert!(out.starts_with("done: revision "), "{out}");

    // A table for a person: names, the team a holder holds it through.
    let table = call_ok(&["role", "holders", "Work 365 CS Manager"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ann") && l.contains("direct")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ben") && l.contains("via team Billing")),
        "{table}"
    );

    // Both hold business-unit read now, one directly and one through a team.
    let c = call_json(&["user", "compare", "ann", "ben"]);
    assert_eq!(c["differences"], 0, "{c}");
    let text = call_ok(&["user", "compare", "ann", "assigner"]);
    assert!(
        text.contains("business_unit (Work 365 CS Manager)"),
        "{text}"
    );
    assert!(text.contains("organization (Role Assigner)"), "{text}");

    // Deprecate, then assigning it is refused naming the successor.
    call_ok(&[
        "role",
        "deprecate",
        "Work 365 CS Manager",
        "--message",
        "moved",
        "--successor",
        "Role Assigner",
    ]);
    let shown = call_json(&["role", "show", "Work 365 CS Manager"]);
    assert_eq!(shown["deprecation"]["successors"][0], "Role Assigner");
    let nobody = call_json(&["role", "assigners", "Work 365 CS Manager"]);
    assert_eq!(nobody["assigners"], serde_json::json!([]));

    // One cell, and the comparison of two roles shows it.
    call_ok(&[
        "role",
        "set",
        "Role Assigner",
        "w365_invoice",
        "write",
        "user",
    ]);
    let rc = call_json(&["role", "compare", "Work 365 CS Manager", "Role Assigner"]);
    let write = rc["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["table"] == "w365_invoice" && c["privilege"] == "write")
        .cloned()
        .unwrap_or_default();
    assert_eq!(write["right"], "user", "{rc}");
    assert_eq!(write["differs"], true);

    // Delete is refused while held; with a replacement it goes.
    let (code, _, err) = call(&["role", "delete", "Work 365 CS Manager"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("role_in_use") || err.contains("still held"),
        "{err}"
    );
    call_ok(&[
        "role",
        "delete",
        "Work 365 CS Manager",
        "--replacement",
        "Role Assigner",
    ]);
    let (code, _, err) = call(&["role", "show", "Work 365 CS Manager"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown role"), "{err}");
}

/// The same verbs against a running server: the routes of `admin_roles.rs`, with the root key.
#[test]
fn role_verbs_talk_to_a_server() {
    const ROOT: &str = "root-key-for-the-role-verbs";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let db = db.to_string_lossy().into_owned();
    common::create_org(
        None,
        &db,
        "o",
        &common::repo().join("tests/scenarios/admin/18-delete-role.yaml"),
    );
    let (mut child, url) = common::spawn_serving(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--db", &db, "--listen", "127.0.0.1:0"])
            .args(["--root-key", ROOT]),
    );
    let at = |verb: &[&str]| -> (i32, String, String) {
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(["--server", &url, "--org", "o", "--key", ROOT]);
        strata(&args)
    };
    let (code, out, err) = at(&["role", "show", "Legacy Sales"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Apps:          Sales Hub"), "{out}");
    let (code, _, err) = at(&["role", "delete", "Legacy Sales"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("HTTP 409") && err.contains("replacement"),
        "{err}"
    );
    let (code, out, err) = at(&[
        "role",
        "delete",
        "Legacy Sales",
        "--replacement",
        "Salesperson",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"revision\""), "{out}");
    let (code, out, err) = at(&["role", "holders", "Salesperson", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let holders: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(holders["users"][0]["user"], "sam");
    assert_eq!(holders["apps"], serde_json::json!(["Sales Hub"]));
    let (code, out, err) = at(&["role", "set", "Salesperson", "account", "delete", "user"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = at(&["user", "compare", "sam", "tia", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["differences"], 0, "{c}");
    let (code, out, err) = at(&[
        "role",
        "deprecate",
        "Salesperson",
        "--successor",
        "Unknown Role",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("unknown role `Unknown Role`"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
}
