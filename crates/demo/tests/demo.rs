//! The demo organisation applies quickly and the seeds' facts hold in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_demo::{ADMIN, DEFAULT_RECORDS_PER_TABLE, operations, tour};
use strata_engine::{
    AppAccess, Decision, Denial, GrantKind, Organization, Privilege, RecordId, UserId, Value,
};
use strata_ops::{OpErrorKind, Operation, apply, apply_all};

fn demo() -> &'static Organization {
    static ORG: OnceLock<Organization> = OnceLock::new();
    ORG.get_or_init(|| {
        let mut org = Organization::new();
        if let Err((i, e)) = apply_all(&mut org, &operations(DEFAULT_RECORDS_PER_TABLE)) {
            panic!("operation {i} refused: {}", e.message);
        }
        org
    })
}

fn user(org: &Organization, name: &str) -> UserId {
    org.user_id(name)
        .unwrap_or_else(|| panic!("no user `{name}`"))
}

fn record(org: &Organization, key: &str) -> RecordId {
    org.record_id(key)
        .unwrap_or_else(|| panic!("no record `{key}`"))
}

fn explain(org: &Organization, who: &str, privilege: &str, key: &str) -> Decision {
    let p = Privilege::from_name(privilege).unwrap();
    org.explain(user(org, who), p, record(org, key))
}

fn allowed_by(org: &Organization, who: &str, privilege: &str, key: &str, kind: GrantKind) {
    let d = explain(org, who, privilege, key);
    assert!(
        d.allowed && d.has(kind),
        "expected {who} {privilege} {key} by {}:\n{}",
        kind.name(),
        org.render_decision(&d)
    );
}

fn denied(org: &Organization, who: &str, privilege: &str, key: &str) -> Decision {
    let d = explain(org, who, privilege, key);
    assert!(
        !d.allowed,
        "expected {who} to lack {privilege} on {key}:\n{}",
        org.render_decision(&d)
    );
    d
}

fn column(org: &Organization, who: &str, key: &str, name: &str) -> Value {
    let fields = org
        .read_record(user(org, who), record(org, key))
        .unwrap_or_else(|| panic!("{who} cannot read {key}"));
    fields
        .into_iter()
        .find(|(c, _)| c == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} has no column {name}"))
}

#[test]
fn the_demo_applies_quickly_and_is_deterministic() {
    let ops = operations(DEFAULT_RECORDS_PER_TABLE);
    assert_eq!(ops, operations(DEFAULT_RECORDS_PER_TABLE));
    let started = Instant::now();
    let mut org = Organization::new();
    apply_all(&mut org, &ops)
        .map_err(|(i, e)| e.message + &format!(" at {i}"))
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "applying took {took:?}");
    assert!(
        (3_000..6_000).contains(&org.record_count()),
        "{} records",
        org.record_count()
    );
    assert_eq!(org.canonical_dump(), demo().canonical_dump());
    // the admin is a System Administrator and sees everything.
    let admin = user(&org, ADMIN);
    assert!(org.system_administrator(admin).is_some());
    allowed_by(
        &org,
        ADMIN,
        "delete",
        "log-0001",
        GrantKind::SystemAdministrator,
    );
}

#[test]
fn small_and_empty_sizes_still_hold_the_story() {
    for n in [0, 1, 10] {
        let mut org = Organization::new();
        apply_all(&mut org, &operations(n))
            .map_err(|(i, e)| format!("n={n}: operation {i}: {}", e.message))
            .unwrap();
        for key in [
            "acc-0008", "con-0001", "opp-0001", "cas-0001", "log-0001", "inv-0001",
        ] {
            assert!(org.record_id(key).is_some(), "n={n}: no {key}");
        }
    }
}

#[test]
fn every_name_of_the_tour_exists() {
    let org = demo();
    let questions = tour();
    assert!((6..=20).contains(&questions.len()));
    for (question, command) in questions {
        assert!(question.ends_with('?'), "{question}");
        let words: Vec<&str> = command.split_whitespace().collect();
        for pair in words.windows(2) {
            match pair[0] {
                "--user" => assert!(org.user_id(pair[1]).is_some(), "{command}"),
                "--record" => assert!(org.record_id(pair[1]).is_some(), "{command}"),
                "--privilege" => assert!(Privilege::from_name(pair[1]).is_some(), "{command}"),
                _ => {}
            }
        }
        if let Some(rest) = command.strip_prefix("GET /api/v1/orgs/demo/") {
            let (path, user) = rest
                .split_once("?user=")
                .or_else(|| rest.split_once(" as "))
                .unwrap_or((rest, ""));
            assert!(user.is_empty() || org.user_id(user).is_some(), "{command}");
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["apps", app, ..] => {
                    assert!(org.app_id(&app.replace("%20", " ")).is_some(), "{command}");
                }
                ["records", key, ..] => assert!(org.record_id(key).is_some(), "{command}"),
                ["licences", "users", user] => assert!(org.user_id(user).is_some(), "{command}"),
                ["tables", table, "columns", column, "access"] => {
                    let t = org.table_id(table).unwrap();
                    assert!(org.has_column(t, column), "{command}");
                }
                ["rules", "violations"] | ["licences", "report"] => {}
                ["users", a, "compare", b] => {
                    assert!(
                        org.user_id(a).is_some() && org.user_id(b).is_some(),
                        "{command}"
                    );
                }
                ["roles", role, "holders"] => {
                    assert!(
                        org.role_id(&role.replace("%20", " ")).is_some(),
                        "{command}"
                    );
                }
                other => panic!("a tour path the test does not know: {other:?}"),
            }
        }
    }
}

/// Seed 002, Sales Representative: Account Read (Business Unit), Write (User).
#[test]
fn a_rep_reads_the_accounts_of_the_unit_but_writes_only_their_own() {
    let org = demo();
    allowed_by(org, "rep_east", "read", "acc-0002", GrantKind::RoleDepth);
    allowed_by(org, "rep_east", "write", "acc-0001", GrantKind::Ownership);
    let d = denied(org, "rep_east", "write", "acc-0002");
    assert!(matches!(d.denial, Some(Denial::NoAccessPath { .. })));
    denied(org, "rep_east", "read", "acc-0008");
    // Order: Read (User) only.
    allowed_by(org, "rep_east", "read", "opp-0001", GrantKind::Ownership);
    let d = denied(org, "rep_east", "assign", "opp-0001");
    assert_eq!(d.denial, Some(Denial::NoPrivilege));
}

/// Seed 002, Hierarchy Security: manager model, depth 3; a direct manager gets Read, Write,
/// Append, AppendTo; further up Read only; the manager's unit is the report's or its parent.
#[test]
fn managers_reach_their_reports_records_through_hierarchy() {
    let org = demo();
    allowed_by(org, "mgr_na", "write", "acc-0001", GrantKind::Hierarchy);
    allowed_by(org, "vp_sales", "read", "acc-0003", GrantKind::Hierarchy);
    denied(org, "vp_sales", "write", "acc-0003");
    // rep_east's unit (Sales US East) is not vp_sales's unit (Sales) nor its child (D24).
    denied(org, "vp_sales", "read", "acc-0001");
    denied(org, "rep_east", "read", "acc-0003");
}

/// Owner team, access team template and an organization share.
#[test]
fn teams_and_shares_open_records_across_units() {
    let org = demo();
    allowed_by(
        org,
        "rep_west",
        "write",
        "acc-0004",
        GrantKind::TeamOwnership,
    );
    allowed_by(org, "rep_west", "write", "acc-0007", GrantKind::TeamShare);
    denied(org, "rep_west", "delete", "acc-0007");
    allowed_by(
        org,
        "agent",
        "read",
        "acc-0006",
        GrantKind::OrganizationShare,
    );
    // a parent's owner reaches the children of a parental relationship.
    allowed_by(org, "rep_east", "write", "con-0001", GrantKind::Inherited);
}

/// Seeds 001/004: Basic User + Omnichannel administrator does not open the workspace;
/// Customer Service Representative / App Profile User do.
#[test]
fn the_customer_service_workspace_needs_an_associated_role() {
    let org = demo();
    let app = org.app_id("Customer Service Workspace").unwrap();
    assert_eq!(org.app_access(user(org, "stuck_user"), app), None);
    assert!(matches!(
        org.app_access(user(org, "agent"), app),
        Some(AppAccess::Role { team: None, .. })
    ));
    assert!(matches!(
        org.app_access(user(org, ADMIN), app),
        Some(AppAccess::SystemAdministrator(_))
    ));
    // the Omnichannel administrator role does not read the channel secret either.
    let secret = "msdyn_authenticationclientsecret";
    assert_eq!(
        column(org, "stuck_user", "auth-portal", secret),
        Value::Null
    );
    assert_eq!(
        column(org, "oc_admin", "auth-portal", secret),
        Value::Text("s3cr3t-portal".into())
    );
}

/// Seed 002, Field-Level Security on systemuser.annualincome.
#[test]
fn salaries_are_blank_without_a_profile() {
    let org = demo();
    assert_eq!(
        column(org, "clerk", "rep_east", "annualincome"),
        Value::Null
    );
    assert_eq!(
        column(org, "rep_east", "rep_east", "annualincome"),
        Value::Null
    );
    assert_eq!(
        column(org, "hr_manager", "rep_east", "annualincome"),
        Value::Int(72_000)
    );
    assert_eq!(
        column(org, "mgr_na", "rep_east", "annualincome"),
        Value::Int(72_000)
    );
    let table = org.table_id("systemuser").unwrap();
    let view = org.column_access(user(org, "mgr_na"), table, "annualincome", None);
    assert!(view.read && !view.update);
    let hr = org.column_access(user(org, "hr_director"), table, "annualincome", None);
    assert!(hr.read && hr.update && hr.create);
}

fn approve(org: &Organization, who: &str) -> Result<(), OpErrorKind> {
    let mut org = org.clone();
    let op = Operation::Update {
        actor: Some(who.to_owned()),
        record: "log-0001".to_owned(),
        fields: [
            ("w365_approved".to_owned(), json!(true)),
            ("w365_status".to_owned(), json!("approved")),
        ]
        .into_iter()
        .collect(),
    };
    apply(&mut org, &op).map(|_| ()).map_err(|e| e.kind)
}

/// Seed 000: CS Representatives log time but cannot approve it; CS Managers and Admins can.
#[test]
fn time_logs_are_approved_by_cs_managers_only() {
    let org = demo();
    allowed_by(
        org,
        "cs_rep_east",
        "write",
        "log-0001",
        GrantKind::Ownership,
    );
    assert_eq!(approve(org, "cs_rep_east"), Err(OpErrorKind::Denied));
    assert_eq!(approve(org, "cs_manager_east"), Ok(()));
    assert_eq!(approve(org, "w365_admin"), Ok(()));
    // the West manager's scope is Customer Success West.
    assert_eq!(approve(org, "cs_manager_west"), Err(OpErrorKind::Denied));
    assert_eq!(
        column(org, "cs_rep_east", "log-0001", "w365_status"),
        Value::Text("submitted".into())
    );
}

/// Seed 000: Customer Service sees accounts and subscriptions, changes nothing financial;
/// the Work 365 Admin is not a CRM System Administrator.
#[test]
fn work365_roles_follow_the_seed() {
    let org = demo();
    let d = denied(org, "cs_support", "write", "bc-0001");
    assert_eq!(d.denial, Some(Denial::NoPrivilege));
    allowed_by(org, "cs_support", "read", "acc-0005", GrantKind::RoleDepth);
    allowed_by(org, "cs_support", "read", "sub-0001", GrantKind::RoleDepth);
    denied(org, "cs_support", "write", "sub-0001");
    allowed_by(org, "cs_rep_east", "read", "bc-0001", GrantKind::Ownership);
    denied(org, "cs_rep_east", "write", "bc-0001");
    allowed_by(
        org,
        "cs_manager_east",
        "read",
        "inv-0001",
        GrantKind::RoleDepth,
    );
    denied(org, "cs_manager_east", "write", "inv-0001");
    allowed_by(
        org,
        "w365_admin",
        "delete",
        "inv-0001",
        GrantKind::RoleDepth,
    );
    assert!(org.system_administrator(user(org, "w365_admin")).is_none());
    let d = denied(org, "w365_admin", "read", "cas-0001");
    assert_eq!(d.denial, Some(Denial::NoPrivilege));
    let app = org.app_id("Work 365").unwrap();
    assert_eq!(org.app_access(user(org, "legacy_user"), app), None);
    assert!(org.app_access(user(org, "cs_support"), app).is_some());
}

/// Seed 001 in the demo: stuck_user cannot open the workspace for want of an app role, and the
/// smallest set of roles to give names one that opens it and meets its case work (D51).
#[test]
fn stuck_user_gets_the_smallest_role_set_for_the_workspace() {
    let org = demo();
    let user = org.user_id("stuck_user").unwrap();
    let app = org.app_id("Customer Service Workspace").unwrap();
    let d = org.diagnose_app(user, app);
    assert!(d.access.is_none());
    assert_eq!(d.blocks.len(), 1);
    assert_eq!(org.app(app).needs.len(), 4);
    let set = org.roles_needed(user, app).unwrap();
    assert!(set.exact);
    let mut copy = org.clone();
    {
        let mut s = copy.setup();
        for g in &set.roles {
            s.assign_user_role(user, g.role, g.business_unit).unwrap();
        }
    }
    let after = copy.diagnose_app(user, app);
    assert!(after.access.is_some() && after.missing.is_empty());
}

/// Seeds 000 and 004's role rules are in the demo, added after the assignments that break
/// them (D46): the violations report names those holders.
#[test]
fn the_role_rules_report_the_holders_who_break_them() {
    let org = demo();
    let lines: Vec<String> = org.rule_violations().iter().map(|v| v.line(org)).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stuck_user:") && l.contains("requires System Administrator")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("Work 365")), "{lines:?}");
    // agent holds the Omnichannel agent role directly, with Basic User: no violation.
    assert!(!lines.iter().any(|l| l.starts_with("agent:")), "{lines:?}");
}
