//! Column answers (D53) against `column_access` and `check`, one user and record at a time, on
//! random organisations with field security profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Rng;
use strata_engine::{ColumnPermission, ColumnSource, Organization, Principal, Privilege};

fn with_profiles(rng: &mut Rng) -> Organization {
    let mut org = common::organisation(rng);
    let account = org.table_id("account").unwrap();
    let users: Vec<_> = org.user_ids().collect();
    let teams: Vec<_> = org.team_ids().collect();
    {
        let mut s = org.setup();
        for i in 0..3 {
            let mut members = Vec::new();
            for u in &users {
                if rng.chance(25) {
                    members.push(Principal::User(*u));
                }
            }
            if rng.chance(50) {
                members.push(Principal::Team(teams[rng.below(teams.len())]));
            }
            let permissions = vec![ColumnPermission {
                table: account,
                column: "secret".into(),
                read: rng.chance(70),
                update: rng.chance(50),
                create: rng.chance(50),
            }];
            s.add_profile(&format!("P{i}"), members, permissions)
                .unwrap();
        }
    }
    org
}

#[test]
fn who_can_read_or_update_agrees_with_column_access() {
    let mut rng = Rng(0x0bad_cafe_1234_5678);
    let mut holders = 0;
    for _ in 0..40 {
        let org = with_profiles(&mut rng);
        let account = org.table_id("account").unwrap();
        assert_eq!(org.column_holders(account, "name").unwrap(), None);
        assert_eq!(
            org.column_holders(account, "nope").unwrap_err().code(),
            "unknown_column"
        );
        let list = org.column_holders(account, "secret").unwrap().unwrap();
        for user in org.user_ids() {
            let access = org.column_access(user, account, "secret", None);
            let listed = list.iter().find(|h| h.user == user);
            let enabled = org.user(user).enabled;
            assert_eq!(
                listed.is_some(),
                enabled && (access.read || access.update),
                "user {}",
                org.user(user).name
            );
            if let Some(h) = listed {
                holders += 1;
                assert_eq!(h.access.read, access.read);
                assert_eq!(h.access.update, access.update);
                for (source, _) in &h.sources {
                    match source {
                        ColumnSource::SystemAdministrator(_) => {
                            assert!(org.system_administrator(user).is_some());
                        }
                        ColumnSource::Profile { profile, team } => {
                            let members = &org.profile(*profile).members;
                            match team {
                                None => assert!(members.contains(&Principal::User(user))),
                                Some(t) => {
                                    assert!(org.is_member(user, *t));
                                    assert!(members.contains(&Principal::Team(*t)));
                                }
                            }
                        }
                        ColumnSource::FieldShare { .. } => panic!("no record was asked about"),
                    }
                }
            }
        }
    }
    assert!(holders > 20, "{holders}");
}

#[test]
fn column_check_is_record_access_and_column_permission() {
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    let (mut allowed, mut denied) = (0, 0);
    for _ in 0..40 {
        let org = with_profiles(&mut rng);
        let account = org.table_id("account").unwrap();
        for user in org.user_ids() {
            for &record in org.table_records(account) {
                for update in [false, true] {
                    let v = org.explain_column(user, record, "secret", update).unwrap();
                    let p = if update {
                        Privilege::Write
                    } else {
                        Privilege::Read
                    };
                    let access = org.column_access(user, account, "secret", Some(record));
                    let column = if update { access.update } else { access.read };
                    let expected = org.check(user, p, record) && column && org.user(user).enabled;
                    assert_eq!(v.allowed, expected, "{}", org.render_column_verdict(&v));
                    let text = org.render_column_verdict(&v);
                    assert!(text.starts_with(if expected { "allow" } else { "deny" }));
                    if expected {
                        allowed += 1;
                    } else {
                        denied += 1;
                    }
                    let unsecured = org.explain_column(user, record, "name", update).unwrap();
                    assert_eq!(unsecured.allowed, org.check(user, p, record));
                }
            }
        }
    }
    assert!(allowed > 10 && denied > 10, "{allowed} {denied}");
}
