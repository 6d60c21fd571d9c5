//! Licence operations (seed 003): the catalogue (`add_licence`, `set_licence`,
//! `remove_licence`) and the licences a user holds (`set_user_licence`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_engine::{Depth, Licence, Organization, Privilege, Setup};

use crate::{OpError, Operation};

/// A licence as the operations API takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceOp {
    /// Name, unique in the catalogue.
    pub name: String,
    /// Relative price (Professional 4, Basic 2, Essential 1).
    pub price: u32,
    /// The ceiling of every privilege on a table not listed in `tables` (default `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Ceilings: table → privilege → depth; a listed table's privilege not named is `none`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, BTreeMap<String, String>>,
    /// Every miscellaneous privilege is allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_misc: bool,
    /// Miscellaneous privileges allowed (`prv` names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misc: Vec<String>,
    /// Every app is allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_apps: bool,
    /// Apps allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
}

fn depth(licence: &str, text: &str) -> Result<Depth, OpError> {
    Depth::from_name(text).ok_or_else(|| {
        OpError::invalid(
            "unknown_depth",
            format!(
                "licence `{licence}`: unknown depth `{text}` (none user business_unit parent_child organization)"
            ),
        )
    })
}

/// The engine's licence for an operation's, every name resolved (an unknown table, privilege,
/// depth or app is refused, naming it).
pub fn licence(org: &Organization, op: &LicenceOp) -> Result<Licence, OpError> {
    let mut ceilings = BTreeMap::new();
    for (t, row) in &op.tables {
        let table = org.table_id(t).ok_or_else(|| {
            OpError::invalid(
                "unknown_reference",
                format!("licence `{}`: unknown table `{t}`", op.name),
            )
        })?;
        let mut depths = [Depth::None; 8];
        for (p, d) in row {
            let privilege = Privilege::from_name(p).ok_or_else(|| {
                OpError::invalid(
                    "unknown_privilege",
                    format!(
                        "licence `{}`: unknown privilege `{p}` on table `{t}` (create read write delete append append_to assign share)",
                        op.name
                    ),
                )
            })?;
            depths[privilege.index()] = depth(&op.name, d)?;
        }
        ceilings.insert(table, depths);
    }
    let apps = op
        .apps
        .iter()
        .map(|a| {
            org.app_id(a).ok_or_else(|| {
                OpError::invalid(
                    "unknown_reference",
                    format!("licence `{}`: unknown app `{a}`", op.name),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Licence {
        name: op.name.clone(),
        price: op.price,
        default_ceiling: op
            .default
            .as_deref()
            .map(|d| depth(&op.name, d))
            .transpose()?
            .unwrap_or(Depth::None),
        ceilings,
        all_misc: op.all_misc,
        misc: op.misc.clone(),
        all_apps: op.all_apps,
        apps,
    })
}

/// The operation's form of an engine licence (for the catalogue's answers).
#[must_use]
pub fn licence_op(org: &Organization, l: &Licence) -> LicenceOp {
    LicenceOp {
        name: l.name.clone(),
        price: l.price,
        default: Some(l.default_ceiling.name().to_owned()),
        tables: l
            .ceilings
            .iter()
            .map(|(t, depths)| {
                (
                    org.table(*t).name.clone(),
                    Privilege::ALL
                        .into_iter()
                        .map(|p| (p.name().to_owned(), depths[p.index()].name().to_owned()))
                        .collect(),
                )
            })
            .collect(),
        all_misc: l.all_misc,
        misc: l.misc.clone(),
        all_apps: l.all_apps,
        apps: l.apps.iter().map(|a| org.app(*a).name.clone()).collect(),
    }
}

/// Applies a licence operation in a setup session.
pub(crate) fn apply(setup: &mut Setup<'_>, op: &Operation) -> Result<(), OpError> {
    let org = setup.org();
    match op {
        Operation::AddLicence(l) => {
            let l = licence(org, l)?;
            setup.add_licence(l)?;
        }
        Operation::SetLicence(l) => {
            let l = licence(org, l)?;
            setup.set_licence(l)?;
        }
        Operation::RemoveLicence { name } => setup.remove_licence(name)?,
        Operation::SetUserLicence { user, licences } => {
            let u = org
                .user_id(user)
                .ok_or_else(|| OpError::unknown("user", user))?;
            setup.set_user_licences(u, licences)?;
        }
        _ => return Err(OpError::invalid("not_setup", "not a licence operation")),
    }
    Ok(())
}

// ----- answers as JSON (the server's routes and the CLI's `--json`) -----

fn uncovered_json(org: &Organization, u: &strata_engine::Uncovered) -> serde_json::Value {
    use serde_json::json;
    match u {
        strata_engine::Uncovered::Cell { need, ceiling } => json!({
            "kind": "privilege",
            "table": org.table(need.table).name,
            "privilege": need.privilege.name(),
            "needed": need.depth.name(),
            "ceiling": ceiling.name(),
        }),
        strata_engine::Uncovered::Misc(m) => json!({ "kind": "misc", "privilege": m }),
        strata_engine::Uncovered::App(a) => json!({ "kind": "app", "app": org.app(*a).name }),
    }
}

/// The catalogue: every licence as the operations take it, and whether licensing is enforced.
#[must_use]
pub fn catalogue_json(org: &Organization) -> serde_json::Value {
    serde_json::json!({
        "enforced": org.licensing_enforced(),
        "licences": org
            .licences()
            .iter()
            .map(|l| licence_op(org, l))
            .collect::<Vec<_>>(),
    })
}

/// One user's licence answer: held, cheapest covering set, fit, what is not covered.
#[must_use]
pub fn user_report_json(
    org: &Organization,
    r: &strata_engine::UserLicenceReport,
) -> serde_json::Value {
    serde_json::json!({
        "user": org.user(r.user).name,
        "held": r.held,
        "held_price": r.held_price,
        "cheapest": r.cheapest.as_ref().map(|c| serde_json::json!({ "licences": c.licences, "price": c.price })),
        "fit": r.fit.name(),
        "uncovered": r.uncovered.iter().map(|u| uncovered_json(org, u)).collect::<Vec<_>>(),
        "system_administrator": org.system_administrator(r.user).is_some(),
    })
}

/// The licence report's totals over `lines` (what `report_json` answers without its users).
pub fn report_totals_json(
    org: &Organization,
    lines: &[strata_engine::UserLicenceReport],
) -> serde_json::Map<String, serde_json::Value> {
    let total_held: u64 = lines.iter().map(|u| u.held_price).sum();
    let total_cheapest: u64 = lines
        .iter()
        .map(|u| u.cheapest.as_ref().map_or(u.held_price, |c| c.price))
        .sum();
    let count = |fit: strata_engine::LicenceFit| lines.iter().filter(|l| l.fit == fit).count();
    let mut totals = serde_json::Map::new();
    totals.insert("enforced".into(), org.licensing_enforced().into());
    totals.insert("total_held".into(), total_held.into());
    totals.insert("total_cheapest".into(), total_cheapest.into());
    totals.insert(
        "savings".into(),
        total_held.saturating_sub(total_cheapest).into(),
    );
    totals.insert(
        "over_licensed".into(),
        count(strata_engine::LicenceFit::OverLicensed).into(),
    );
    totals.insert(
        "under_licensed".into(),
        count(strata_engine::LicenceFit::UnderLicensed).into(),
    );
    totals
}

/// The licence report over some users (their lines and totals).
#[must_use]
pub fn report_json(
    org: &Organization,
    lines: &[strata_engine::UserLicenceReport],
) -> serde_json::Value {
    let mut report = report_totals_json(org, lines);
    report.insert(
        "users".into(),
        lines
            .iter()
            .map(|l| user_report_json(org, l))
            .collect::<Vec<_>>()
            .into(),
    );
    serde_json::Value::Object(report)
}

/// Where roles exceed a licence, cell by cell: one role, or every role that exceeds it.
pub fn exceeds_json(
    org: &Organization,
    licence: &str,
    role: Option<&str>,
) -> Result<serde_json::Value, OpError> {
    use serde_json::json;
    let l = org
        .licence(licence)
        .ok_or_else(|| OpError::unknown("licence", licence))?;
    let roles: Vec<strata_engine::RoleId> = match role {
        Some(r) => vec![org.role_id(r).ok_or_else(|| OpError::unknown("role", r))?],
        None => org.role_ids().collect(),
    };
    let mut out = Vec::new();
    for r in roles {
        let excess = org.role_exceeds_licence(r, l);
        if excess.is_empty() && role.is_none() {
            continue;
        }
        let cells: Vec<serde_json::Value> = excess
            .iter()
            .map(|e| match e {
                strata_engine::Excess::Cell {
                    table,
                    privilege,
                    role_depth,
                    ceiling,
                } => json!({
                    "kind": "privilege",
                    "table": org.table(*table).name,
                    "privilege": privilege.name(),
                    "role_depth": role_depth.name(),
                    "ceiling": ceiling.name(),
                }),
                strata_engine::Excess::Misc(m) => json!({ "kind": "misc", "privilege": m }),
                strata_engine::Excess::App(a) => json!({ "kind": "app", "app": org.app(*a).name }),
            })
            .collect();
        out.push(json!({ "role": org.role(r).name, "within": cells.is_empty(), "exceeds": cells }));
    }
    Ok(json!({ "licence": l.name, "roles": out }))
}
