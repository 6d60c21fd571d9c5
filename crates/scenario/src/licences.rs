//! The licence extension of the scenario format (`docs/scenario-extensions.md`): the
//! `licences:` catalogue, a user's `licence:`, and the steps `cheapest_licence`, `licence_fit`
//! and `licence_exceeds`, answered the same way by the engine and over HTTP (from the same
//! JSON, `strata_ops::user_report_json` / `exceeds_json`).

use serde_json::Value as Json;
use strata_ops::{LicenceOp, Operation};

use crate::Observed;
use crate::spec::{Keys, LoadError, Result, Scenario, map_entries, names, text};
use crate::yaml::{Node, NodeKind};

/// `all` or a list of names.
fn all_or_names(node: &Node, what: &str) -> Result<(bool, Vec<String>)> {
    if let NodeKind::Scalar { .. } = &node.kind
        && !node.is_null()
    {
        return match text(node, what)?.as_str() {
            "all" => Ok((true, Vec::new())),
            other => Err(LoadError::new(
                node.line,
                format!("{what} must be `all` or a list, found `{other}`"),
            )),
        };
    }
    Ok((
        false,
        names(node, what)?.into_iter().map(|(n, _)| n).collect(),
    ))
}

/// One licence of `licences:`.
pub(crate) fn parse_licence(n: &Node) -> Result<LicenceOp> {
    let mut k = Keys::of(n, "licence")?;
    let name = text(k.req("name")?, "licence name")?;
    let price_node = k.req("price")?;
    let price = text(price_node, "price")?.parse::<u32>().map_err(|_| {
        LoadError::new(
            price_node.line,
            format!("licence `{name}`: price must be a whole number"),
        )
    })?;
    let default = k.opt("default").map(|d| text(d, "default")).transpose()?;
    let mut tables = std::collections::BTreeMap::new();
    if let Some(t) = k.opt("tables") {
        for (table, row) in map_entries(t, "tables")? {
            let mut depths = std::collections::BTreeMap::new();
            for (p, d) in map_entries(row, &format!("tables.{table}"))? {
                depths.insert(p, text(d, "depth")?);
            }
            tables.insert(table, depths);
        }
    }
    let (all_misc, misc) = match k.opt("misc") {
        Some(m) => all_or_names(m, "misc")?,
        None => (false, Vec::new()),
    };
    let (all_apps, apps) = match k.opt("apps") {
        Some(a) => all_or_names(a, "apps")?,
        None => (false, Vec::new()),
    };
    k.finish()?;
    Ok(LicenceOp {
        name,
        price,
        default,
        tables,
        all_misc,
        misc,
        all_apps,
        apps,
    })
}

/// The catalogue and the users' licences as setup operations, with their lines (after the apps
/// and users they name).
#[must_use]
pub fn setup_operations(s: &Scenario) -> Vec<(usize, Operation)> {
    let mut ops: Vec<(usize, Operation)> = s
        .licences
        .iter()
        .map(|(l, line)| (*line, Operation::AddLicence(l.clone())))
        .collect();
    for (user, licences, line) in &s.user_licences {
        ops.push((
            *line,
            Operation::SetUserLicence {
                user: user.clone(),
                licences: licences.clone(),
            },
        ));
    }
    ops
}

/// Names check: users' licences name licences of the catalogue.
pub(crate) fn validate(s: &Scenario) -> Result<()> {
    for (user, licences, line) in &s.user_licences {
        for l in licences {
            if !s.licences.iter().any(|(op, _)| op.name == *l) {
                return Err(LoadError::new(
                    *line,
                    format!("user `{user}`: unknown licence `{l}`"),
                ));
            }
        }
    }
    Ok(())
}

/// `cheapest_licence`'s answer from a user's licence JSON.
pub(crate) fn cheapest(answer: &Json) -> Observed {
    match answer["cheapest"]["licences"].as_array() {
        Some(list) => Observed::Names(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        None => Observed::Error(format!(
            "no licence set of the catalogue covers user `{}`",
            answer["user"].as_str().unwrap_or_default()
        )),
    }
}

/// `licence_fit`'s answer from a user's licence JSON.
pub(crate) fn fit(answer: &Json) -> Observed {
    match answer["fit"].as_str() {
        Some(f) => Observed::Names(vec![f.to_owned()]),
        None => Observed::Error(format!("the licence answer has no `fit`: {answer}")),
    }
}

/// `licence_exceeds`'s answer from the exceeds JSON of one role.
pub(crate) fn exceeds(answer: &Json) -> Observed {
    let cells = answer["roles"][0]["exceeds"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    Observed::Names(
        cells
            .iter()
            .map(|c| match c["kind"].as_str() {
                Some("misc") => format!("misc:{}", c["privilege"].as_str().unwrap_or_default()),
                Some("app") => format!("app:{}", c["app"].as_str().unwrap_or_default()),
                _ => format!(
                    "{}.{}",
                    c["table"].as_str().unwrap_or_default(),
                    c["privilege"].as_str().unwrap_or_default()
                ),
            })
            .collect(),
    )
}
