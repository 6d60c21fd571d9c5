//! D7: acting on behalf of another user needs `prvActOnBehalfOfAnotherUser`, and the action
//! is bounded by both users' privileges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use strata_engine::{
    ActionError, Actor, Depth, NewRecord, Organization, Owner, Privilege, RecordState,
    RoleDefinition, Value,
};

fn role(
    org_table: strata_engine::TableId,
    name: &str,
    write: Depth,
    misc: &[&str],
) -> RoleDefinition {
    common::role_definition(
        name,
        vec![
            (org_table, Privilege::Read, Depth::Organization),
            (org_table, Privilege::Write, write),
        ],
        misc,
    )
}

#[test]
fn impersonation_needs_the_privilege_and_intersects_both_users() {
    let mut org = Organization::new();
    let (svc, weak, alice, bob, own, other) = {
        let mut s = org.setup();
        let root = s.add_business_unit("Root", None).unwrap();
        let t = s.add_table("account", None, Vec::new()).unwrap();
        let service = s
            .add_role(role(
                t,
                "Service",
                Depth::Organization,
                &["prvActOnBehalfOfAnotherUser"],
            ))
            .unwrap();
        let weak_role = s
            .add_role(role(
                t,
                "Weak",
                Depth::None,
                &["prvActOnBehalfOfAnotherUser"],
            ))
            .unwrap();
        let rep = s.add_role(role(t, "Rep", Depth::User, &[])).unwrap();
        let svc = s.add_user("svc", root, true).unwrap();
        let weak = s.add_user("weak", root, true).unwrap();
        let alice = s.add_user("alice", root, true).unwrap();
        let bob = s.add_user("bob", root, true).unwrap();
        s.assign_user_role(svc, service, None).unwrap();
        s.assign_user_role(weak, weak_role, None).unwrap();
        s.assign_user_role(alice, rep, None).unwrap();
        s.assign_user_role(bob, rep, None).unwrap();
        let rec = |key: &str, owner| NewRecord {
            key: key.into(),
            table: t,
            owner: Owner::User(owner),
            business_unit: None,
            state: RecordState::Active,
            fields: Vec::new(),
        };
        let own = s.add_record(rec("own", alice)).unwrap();
        let other = s.add_record(rec("other", bob)).unwrap();
        (svc, weak, alice, bob, own, other)
    };
    let set = |v: i64| vec![("n".to_owned(), Value::Int(v))];
    // The service account writes what Alice may write…
    let on_behalf = Actor::OnBehalf {
        user: alice,
        impersonator: svc,
    };
    assert!(org.update_record(on_behalf, own, set(1)).is_ok());
    // …but not what only the service account may write.
    assert!(matches!(
        org.update_record(on_behalf, other, set(2)),
        Err(ActionError::Denied(_))
    ));
    // An impersonator without the Write privilege cannot write even Alice's own record.
    let weak_behalf = Actor::OnBehalf {
        user: alice,
        impersonator: weak,
    };
    assert!(matches!(
        org.update_record(weak_behalf, own, set(3)),
        Err(ActionError::Denied(_))
    ));
    // Without prvActOnBehalfOfAnotherUser nobody impersonates.
    let err = org.update_record(
        Actor::OnBehalf {
            user: alice,
            impersonator: bob,
        },
        own,
        set(4),
    );
    assert!(
        matches!(&err, Err(ActionError::Denied(m)) if m.contains("prvActOnBehalfOfAnotherUser")),
        "{err:?}"
    );
    assert_eq!(org.record(own).field("n"), &Value::Int(1));
}
