//! `strata app` and `strata column` as a user runs them on a scenario's organisation: tables,
//! `--json`, exit codes and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{repo, strata};

fn seed001() -> String {
    repo()
        .join("tests/scenarios/apps/05-seed001-why-not-and-smallest-role-set.yaml")
        .display()
        .to_string()
}

#[test]
fn app_list_show_why_and_needs() {
    let s = seed001();
    let (code, out, err) = strata(&["app", "list", "--scenario", &s]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("APP"), "{out}");
    assert!(out.contains("Customer Service Workspace  App Profile User, Sales Case Desk"));

    let (code, out, _) = strata(&[
        "app",
        "show",
        "--scenario",
        &s,
        "Customer Service Workspace",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("admin  system_administrator  System Administrator"),
        "{out}"
    );

    let (code, out, _) = strata(&[
        "app",
        "why",
        "--scenario",
        &s,
        "Customer Service Workspace",
        "stuck_user",
    ]);
    assert_eq!(code, 1, "a user who cannot open the app exits 1");
    assert!(out.contains("no_associated_role"), "{out}");
    assert!(out.contains("incident  append"), "{out}");

    let (code, out, _) = strata(&[
        "app",
        "needs",
        "--json",
        "--scenario",
        &s,
        "Customer Service Workspace",
        "stuck_user",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(
        v["roles"],
        serde_json::json!(["Customer Service Representative", "App Profile User"])
    );
    assert_eq!(v["exact"], serde_json::json!(true));

    let (code, _, err) = strata(&[
        "app",
        "needs",
        "--scenario",
        &s,
        "Omnichannel admin center",
        "stuck_user",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no_role_set"), "{err}");
    let (code, _, err) = strata(&["app", "why", "--scenario", &s, "Nope", "stuck_user"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown app `Nope`"), "{err}");
}

#[test]
fn column_who_names_the_profile_and_the_team() {
    let s = repo()
        .join("tests/scenarios/columns/07-seed004-omnichannel-secret-columns.yaml")
        .display()
        .to_string();
    let (code, out, err) = strata(&[
        "column",
        "who",
        "--scenario",
        &s,
        "msdyn_authenticationsettings",
        "msdyn_authenticationclientsecret",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "field security profile `Channel secret readers` through team `Channel Admins`"
        ),
        "{out}"
    );
    let (_, out, _) = strata(&[
        "column",
        "who",
        "--json",
        "--scenario",
        &s,
        "msdyn_authenticationsettings",
        "msdyn_name",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v["secured"], serde_json::json!(false));
}

#[test]
fn column_check_and_explain_answer_with_exit_codes() {
    let s = repo()
        .join("tests/scenarios/columns/07-seed004-omnichannel-secret-columns.yaml")
        .display()
        .to_string();
    let ask = |verb: &str, user: &str, update: bool| {
        let mut args = vec![
            "column",
            verb,
            "--scenario",
            &s,
            "--user",
            user,
            "--record",
            "auth1",
            "--column",
            "msdyn_authenticationclientsecret",
        ];
        if update {
            args.push("--update");
        }
        strata(&args)
    };
    // The team's profile reads the secret but does not update it.
    assert_eq!(
        ask("check", "channel_admin", false),
        (0, "allow\n".into(), String::new())
    );
    let (code, out, _) = ask("check", "channel_admin", true);
    assert_eq!((code, out.as_str()), (1, "deny\n"));
    let (code, out, err) = ask("explain", "channel_admin", false);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Channel secret readers"), "{out}");
    let (code, out, _) = ask("explain", "agent", false);
    assert_eq!(code, 1);
    assert!(out.starts_with("deny"), "{out}");
    // JSON for scripts.
    let (code, out, _) = strata(&[
        "column",
        "explain",
        "--json",
        "--scenario",
        &s,
        "--user",
        "omni_admin",
        "--record",
        "auth1",
        "--column",
        "msdyn_authenticationclientsecret",
        "--update",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v["access"], "update");
    assert_eq!(v["allowed"], true);
    // An unknown column is an error that names it.
    let (code, _, err) = strata(&[
        "column",
        "check",
        "--scenario",
        &s,
        "--user",
        "agent",
        "--record",
        "auth1",
        "--column",
        "nosuch",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown_column") && err.contains("nosuch"),
        "{err}"
    );
}
