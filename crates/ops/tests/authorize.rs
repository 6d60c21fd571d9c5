//! Administration by users: privileges on the system tables, no escalation (D11),
//! customization for System Administrators only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use strata_engine::Organization;
use strata_ops::{OpErrorKind, Operation, apply_all, authorize_setup};

fn ops(v: serde_json::Value) -> Vec<Operation> {
    serde_json::from_value(v).unwrap()
}

fn org() -> Organization {
    let mut org = Organization::new();
    apply_all(
        &mut org,
        &ops(json!([
            {"op": "add_business_unit", "name": "Contoso"},
            {"op": "add_business_unit", "name": "Sales", "parent": "Contoso"},
            {"op": "add_business_unit", "name": "Service", "parent": "Contoso"},
            {"op": "add_table", "name": "account"},
            {"op": "add_role", "name": "Delegated Admin", "privileges": {
                "systemuser": {"create": "business_unit", "write": "business_unit", "read": "organization"},
                "businessunit": {"create": "business_unit"},
                "role": {"create": "business_unit", "assign": "business_unit"},
                "account": {"read": "business_unit"}
            }},
            {"op": "add_role", "name": "System Administrator", "system_administrator": true},
            {"op": "add_user", "name": "delegate", "business_unit": "Sales"},
            {"op": "add_user", "name": "root", "business_unit": "Contoso"},
            {"op": "add_user", "name": "seller", "business_unit": "Sales"},
            {"op": "assign_role", "principal": "delegate", "role": "Delegated Admin"},
            {"op": "assign_role", "principal": "root", "role": "System Administrator"}
        ])),
    )
    .unwrap();
    org
}

fn verdict(org: &Organization, user: &str, op: serde_json::Value) -> Result<(), OpErrorKind> {
    let op: Operation = serde_json::from_value(op).unwrap();
    authorize_setup(org, org.user_id(user).unwrap(), &op).map_err(|e| e.kind)
}

#[test]
fn delegated_administration_follows_system_table_privileges() {
    let org = org();
    // Users and units in the delegate's own unit, not elsewhere.
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "add_user", "name": "new", "business_unit": "Sales"})
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "add_user", "name": "new", "business_unit": "Service"})
        ),
        Err(OpErrorKind::Denied)
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "add_business_unit", "name": "East", "parent": "Sales"})
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "add_business_unit", "name": "X", "parent": "Service"})
        ),
        Err(OpErrorKind::Denied)
    );
    // A user's fields: Write on that user's record.
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "set_user_fields", "user": "seller", "fields": {"title": "Rep"}})
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "set_user_fields", "user": "root", "fields": {"title": "x"}})
        ),
        Err(OpErrorKind::Denied)
    );
    // Roles: only privileges the delegate holds, at most at the depth held, over the role's unit.
    let role = |privileges: serde_json::Value| json!({"op": "add_role", "name": "R", "business_unit": "Sales", "privileges": privileges});
    assert_eq!(
        verdict(
            &org,
            "delegate",
            role(json!({"account": {"read": "business_unit"}}))
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            role(json!({"account": {"read": "organization"}}))
        ),
        Err(OpErrorKind::Denied)
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            role(json!({"account": {"write": "user"}}))
        ),
        Err(OpErrorKind::Denied)
    );
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "add_role", "name": "SA2", "business_unit": "Sales", "system_administrator": true})
        ),
        Err(OpErrorKind::Denied)
    );
    // Customization is for System Administrators.
    assert_eq!(
        verdict(
            &org,
            "delegate",
            json!({"op": "add_table", "name": "invoice"})
        ),
        Err(OpErrorKind::Denied)
    );
    assert_eq!(
        verdict(
            &org,
            "seller",
            json!({"op": "add_user", "name": "n2", "business_unit": "Sales"})
        ),
        Err(OpErrorKind::Denied)
    );
    assert_eq!(
        verdict(&org, "root", json!({"op": "add_table", "name": "invoice"})),
        Ok(())
    );
}

#[test]
fn editing_roles_and_users() {
    let mut org = org();
    let edit = |grid: serde_json::Value| json!({"op": "set_role_privileges", "role": "Delegated Admin", "privileges": grid});
    // Editing a role needs Write on `role` and, per D11, the privileges it gives.
    assert_eq!(
        verdict(
            &org,
            "delegate",
            edit(json!({"account": {"read": "business_unit"}}))
        ),
        Err(OpErrorKind::Denied)
    );
    assert_eq!(
        verdict(
            &org,
            "root",
            edit(json!({"account": {"read": "organization"}}))
        ),
        Ok(())
    );
    // The System Administrator role cannot be edited, even by a System Administrator.
    let sa: Operation = serde_json::from_value(
        json!({"op": "set_role_privileges", "role": "System Administrator"}),
    )
    .unwrap();
    let err = strata_ops::apply(&mut org, &sa).unwrap_err();
    assert_eq!(
        (err.kind, err.code),
        (OpErrorKind::Invalid, "system_administrator_not_editable")
    );
    // Applied: the grid is replaced.
    apply_all(
        &mut org,
        &ops(json!([edit(json!({"account": {"read": "organization"}}))])),
    )
    .unwrap();
    let (delegate, account) = (
        org.user_id("delegate").unwrap(),
        org.table_id("account").unwrap(),
    );
    assert_eq!(
        org.max_depth(delegate, account, strata_engine::Privilege::Read),
        strata_engine::Depth::Organization
    );
    assert_eq!(
        org.max_depth(
            delegate,
            org.table_id("systemuser").unwrap(),
            strata_engine::Privilege::Create
        ),
        strata_engine::Depth::None
    );
    // Disabling a user: Write on the user's record; a disabled user is refused everything.
    assert_eq!(
        verdict(
            &org,
            "seller",
            json!({"op": "set_user_enabled", "user": "root", "enabled": false})
        ),
        Err(OpErrorKind::Denied)
    );
    apply_all(
        &mut org,
        &ops(json!([{"op": "set_user_enabled", "user": "seller", "enabled": false}])),
    )
    .unwrap();
    let seller = org.user_id("seller").unwrap();
    assert!(!org.check(
        seller,
        strata_engine::Privilege::Read,
        org.user(seller).record
    ));
}

/// Security finding 7: an unknown caller is `unknown_user`, never the system; a user's action
/// runs as that user and may not name another.
#[test]
fn the_caller_is_named_and_never_falls_back_to_the_system() {
    let mut org = org();
    let disable: Operation = serde_json::from_value(
        json!({"op": "set_user_enabled", "user": "seller", "enabled": false}),
    )
    .unwrap();
    let err = strata_ops::apply_as(&mut org, &disable, Some("ghost")).unwrap_err();
    assert_eq!(err.code, "unknown_user");
    assert!(org.user(org.user_id("seller").unwrap()).enabled);
    let err = strata_ops::apply_as(&mut org, &disable, Some("seller")).unwrap_err();
    assert_eq!(err.kind, OpErrorKind::Denied);
    let other: Operation = serde_json::from_value(
        json!({"op": "move_user", "as": "root", "user": "seller", "business_unit": "Service"}),
    )
    .unwrap();
    let err = strata_ops::apply_as(&mut org, &other, Some("seller")).unwrap_err();
    assert_eq!(err.code, "bad_actor");
    let ghost: Operation = serde_json::from_value(
        json!({"op": "move_user", "as": "ghost", "user": "seller", "business_unit": "Service"}),
    )
    .unwrap();
    assert_eq!(
        strata_ops::apply_all(&mut org, &[ghost])
            .unwrap_err()
            .1
            .code,
        "unknown_user"
    );
    assert!(strata_ops::apply_as(&mut org, &disable, None).is_ok());
}

/// D80: renaming a business unit takes Write on `businessunit` over that unit, as a move does;
/// the new name follows the rules of a new unit's, with stable codes.
#[test]
fn renaming_a_unit_needs_write_on_it_and_a_free_name() {
    let mut org = org();
    apply_all(
        &mut org,
        &ops(json!([
            {"op": "add_role", "name": "Unit Writer", "privileges": {
                "businessunit": {"read": "organization", "write": "business_unit"}
            }},
            {"op": "assign_role", "principal": "delegate", "role": "Unit Writer"}
        ])),
    )
    .unwrap();
    let rename = |name: &str, new_name: &str| -> Operation {
        serde_json::from_value(
            json!({"op": "rename_business_unit", "name": name, "new_name": new_name}),
        )
        .unwrap()
    };
    // The seller has no privilege on units; the delegate none over Service.
    let err =
        strata_ops::apply_as(&mut org, &rename("Sales", "Sales EMEA"), Some("seller")).unwrap_err();
    assert_eq!((err.kind, err.code), (OpErrorKind::Denied, "denied"));
    let err = strata_ops::apply_as(&mut org, &rename("Service", "Support"), Some("delegate"))
        .unwrap_err();
    assert_eq!((err.kind, err.code), (OpErrorKind::Denied, "denied"));
    assert!(org.business_unit_id("Service").is_some());
    // Over their own unit it is allowed; the unit keeps its id, users and place.
    let sales = org.business_unit_id("Sales").unwrap();
    strata_ops::apply_as(&mut org, &rename("Sales", "Sales EMEA"), Some("delegate")).unwrap();
    assert_eq!(org.business_unit_id("Sales EMEA"), Some(sales));
    assert_eq!(org.business_unit_id("Sales"), None);
    assert_eq!(org.units().name(sales), "Sales EMEA");
    let seller = org.user_id("seller").unwrap();
    assert_eq!(org.user(seller).business_unit, sales);
    // Refusals, whoever asks: a taken name, a reserved one, an empty one, an unknown unit.
    for (op, code) in [
        (rename("Sales EMEA", "Service"), "duplicate"),
        (rename("Sales EMEA", "organization"), "bad_name"),
        (rename("Sales EMEA", ""), "bad_name"),
        (rename("Nowhere", "Somewhere"), "unknown_reference"),
    ] {
        let err = strata_ops::apply_as(&mut org, &op, None).unwrap_err();
        assert_eq!((err.kind, err.code), (OpErrorKind::Invalid, code), "{op:?}");
    }
    assert_eq!(org.business_unit_id("Sales EMEA"), Some(sales));
    // Its own name: nothing changes.
    strata_ops::apply_as(&mut org, &rename("Sales EMEA", "Sales EMEA"), None).unwrap();
    assert_eq!(org.business_unit_id("Sales EMEA"), Some(sales));
}

/// D82: one miscellaneous privilege given or taken away, the grid and the others kept; Write
/// on `role` and D11 for the privileges that result.
#[test]
fn a_role_misc_privilege_is_set_alone_without_escalation() {
    let mut org = org();
    apply_all(
        &mut org,
        &ops(json!([
            {"op": "add_role", "name": "Role Writer", "privileges": {
                "role": {"read": "organization", "write": "organization"}
            }, "misc": ["prvExportToExcel"]},
            {"op": "add_role", "name": "Clerk", "business_unit": "Sales", "privileges": {"account": {"read": "user"}},
             "misc": ["prvBulkDelete"]},
            {"op": "assign_role", "principal": "delegate", "role": "Role Writer"},
            {"op": "assign_role", "principal": "delegate", "role": "Clerk"}
        ])),
    )
    .unwrap();
    let set = |privilege: &str, held: bool| -> Operation {
        serde_json::from_value(json!({"op": "set_role_misc_privilege", "role": "Clerk",
            "privilege": privilege, "held": held}))
        .unwrap()
    };
    let clerk = org.role_id("Clerk").unwrap();
    strata_ops::apply_as(&mut org, &set("prvExportToExcel", true), Some("delegate")).unwrap();
    assert_eq!(org.role(clerk).misc, ["prvBulkDelete", "prvExportToExcel"]);
    assert_eq!(org.role(clerk).privileges.len(), 1);
    // A privilege the delegate does not hold: refused, nothing changed.
    let err = strata_ops::apply_as(
        &mut org,
        &set("prvReadAuditSummary", true),
        Some("delegate"),
    )
    .unwrap_err();
    assert_eq!((err.kind, err.code), (OpErrorKind::Denied, "denied"));
    assert!(
        err.message.contains("prvReadAuditSummary"),
        "{}",
        err.message
    );
    // Without Write on `role`.
    let err =
        strata_ops::apply_as(&mut org, &set("prvBulkDelete", false), Some("seller")).unwrap_err();
    assert_eq!(err.kind, OpErrorKind::Denied);
    strata_ops::apply_as(&mut org, &set("prvBulkDelete", false), Some("delegate")).unwrap();
    assert_eq!(org.role(clerk).misc, ["prvExportToExcel"]);
    // Taking away one not held, or giving one held, changes nothing.
    strata_ops::apply_as(&mut org, &set("prvBulkDelete", false), None).unwrap();
    strata_ops::apply_as(&mut org, &set("prvExportToExcel", true), None).unwrap();
    assert_eq!(org.role(clerk).misc, ["prvExportToExcel"]);
    // The System Administrator role is not edited; an empty name is refused.
    let sa: Operation = serde_json::from_value(json!({"op": "set_role_misc_privilege",
        "role": "System Administrator", "privilege": "prvBulkDelete"}))
    .unwrap();
    assert_eq!(
        strata_ops::apply_as(&mut org, &sa, None).unwrap_err().kind,
        OpErrorKind::Invalid
    );
    let err = strata_ops::apply_as(&mut org, &set("", true), None).unwrap_err();
    assert_eq!(err.code, "bad_name");
}
