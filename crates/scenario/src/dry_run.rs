//! The `dry_run` step (a Strata extension, docs/scenario-extensions.md): a batch tried and
//! rolled back, observed as the lines of its access difference, the same on the engine and over
//! HTTP.
//!
//! Lines, one per fact (order ignored): `USER: new`, `USER: enabled BEFORE -> AFTER`,
//! `USER: system_administrator BEFORE -> AFTER`, `USER: TABLE.PRIVILEGE BEFORE -> AFTER` (the
//! deepest grant, when it changes), `USER: TABLE +GAINED -LOST` (records readable), and
//! `withheld: N` when users the caller may not ask about are left out (D56).

use serde_json::Value as Json;
use strata_engine::{AccessDifference, Organization, Privilege, UserId};
use strata_ops::{OpErrorKind, Operation};

use crate::Observed;
use crate::spec::Outcome;

const CHECK_ACCESS_OF_OTHERS: &str = "prvCheckAccessOfOthers";

/// A user's line facts, from either answer.
struct Facts<'a> {
    user: &'a str,
    new: bool,
    enabled: (String, String),
    admin: (String, String),
    privileges: Vec<(String, String, String, String)>,
    records: Vec<(String, u64, u64)>,
}

fn lines_of(users: &[Facts<'_>], withheld: u64) -> Vec<String> {
    let mut out = Vec::new();
    for f in users {
        let u = f.user;
        if f.new {
            out.push(format!("{u}: new"));
        }
        if f.enabled.0 != f.enabled.1 {
            out.push(format!("{u}: enabled {} -> {}", f.enabled.0, f.enabled.1));
        }
        if f.admin.0 != f.admin.1 {
            out.push(format!(
                "{u}: system_administrator {} -> {}",
                f.admin.0, f.admin.1
            ));
        }
        for (table, privilege, before, after) in &f.privileges {
            if before != after {
                out.push(format!("{u}: {table}.{privilege} {before} -> {after}"));
            }
        }
        for (table, gained, lost) in &f.records {
            out.push(format!("{u}: {table} +{gained} -{lost}"));
        }
    }
    if withheld > 0 {
        out.push(format!("withheld: {withheld}"));
    }
    out
}

/// Whether `asker` may see `target` in a difference (D56, as the server decides it).
fn may_see(org: &Organization, asker: UserId, target: UserId) -> bool {
    asker == target
        || org.system_administrator(asker).is_some()
        || (org.holds_misc(asker, CHECK_ACCESS_OF_OTHERS)
            && org.check(asker, Privilege::Read, org.user(target).record))
}

fn lines_of_difference(
    org: &Organization,
    caller: Option<&str>,
    d: &AccessDifference,
) -> Vec<String> {
    let asker = caller.and_then(|name| org.user_id(name));
    let shown: Vec<_> = d
        .users
        .iter()
        .filter(|u| u.new || asker.is_none_or(|a| may_see(org, a, u.user)))
        .collect();
    let withheld = (d.users.len() - shown.len()) as u64;
    let facts: Vec<Facts<'_>> = shown
        .iter()
        .map(|u| Facts {
            user: &u.name,
            new: u.new,
            enabled: (u.enabled.0.to_string(), u.enabled.1.to_string()),
            admin: (
                u.system_administrator.0.to_string(),
                u.system_administrator.1.to_string(),
            ),
            privileges: u
                .privileges
                .iter()
                .map(|p| {
                    (
                        p.table.clone(),
                        p.privilege.name().to_owned(),
                        p.before.name().to_owned(),
                        p.after.name().to_owned(),
                    )
                })
                .collect(),
            records: u
                .records
                .iter()
                .map(|r| (r.table.clone(), r.gained, r.lost))
                .collect(),
        })
        .collect();
    lines_of(&facts, withheld)
}

/// The dry run on the engine: each operation as `caller` (`strata_ops::apply_as`), the whole
/// batch rolled back.
pub(crate) fn on_engine(
    org: &mut Organization,
    caller: Option<&str>,
    ops: &[Operation],
) -> Observed {
    let tried = org.dry_run(|o| {
        for op in ops {
            strata_ops::apply_as(o, op, caller)?;
        }
        Ok::<(), strata_ops::OpError>(())
    });
    match tried {
        Err(e) => Observed::Error(format!("the dry run could not be rolled back: {e}")),
        Ok(Err(e)) => Observed::Outcome {
            outcome: match e.kind {
                OpErrorKind::Denied => Outcome::Denied,
                OpErrorKind::Invalid => Outcome::Invalid,
            },
            message: e.message,
        },
        Ok(Ok(((), difference))) => Observed::Names(lines_of_difference(org, caller, &difference)),
    }
}

/// The lines of the API's answer (`POST …/operations?dry_run=true`).
pub(crate) fn lines_of_answer(answer: &Json) -> Result<Vec<String>, String> {
    let text = |v: &Json| match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let users = answer["difference"]["users"]
        .as_array()
        .ok_or_else(|| format!("the dry run answered no `difference.users`: {answer}"))?;
    let facts: Vec<Facts<'_>> = users
        .iter()
        .map(|u| Facts {
            user: u["user"].as_str().unwrap_or_default(),
            new: u["new"] == true,
            enabled: (text(&u["enabled"]["before"]), text(&u["enabled"]["after"])),
            admin: (
                text(&u["system_administrator"]["before"]),
                text(&u["system_administrator"]["after"]),
            ),
            privileges: u["privileges"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|p| {
                            (
                                text(&p["table"]),
                                text(&p["privilege"]),
                                text(&p["before"]),
                                text(&p["after"]),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            records: u["records"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|r| {
                            (
                                text(&r["table"]),
                                r["gained"].as_u64().unwrap_or(0),
                                r["lost"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok(lines_of(
        &facts,
        answer["difference"]["withheld"].as_u64().unwrap_or(0),
    ))
}
