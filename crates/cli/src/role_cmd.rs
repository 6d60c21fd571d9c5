//! `strata role …` and `strata user compare`: roles as things to manage. Questions read a
//! scenario's organisation, a database's or a server's (the routes of `admin_roles.rs`);
//! changes are role operations written through the application layer (a database, as `--as`
//! or the system) or through a server's routes. Tables for people, `--json` for scripts.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::{Value as J, json};
use strata_engine::{Organization, Privilege};
use strata_ops::Operation;

use crate::args::{Source, WriteTarget};
use crate::remote::encode;
use crate::source::{LocalOrg, Place};
use crate::table;

/// Where a role change is written (a database, as `--as` or the system, or a server with a
/// key), and how its answer is printed.
#[derive(Args, Debug)]
pub(crate) struct RoleWrite {
    #[command(flatten)]
    target: WriteTarget,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RoleCommand {
    /// A role: unit, inheritance, deprecation, the grid, miscellaneous privileges, apps.
    Show {
        role: String,
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Who holds a role: users directly, and through which teams.
    Holders {
        role: String,
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Who may assign a role (D11 applied to every user), and to principals of which units.
    Assigners {
        role: String,
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Two roles side by side: every table and privilege with both depths, differences marked.
    Compare {
        left: String,
        right: String,
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Copy a role under a new name (same grid, miscellaneous privileges, unit, inheritance).
    Copy {
        role: String,
        name: String,
        #[command(flatten)]
        target: RoleWrite,
    },
    /// Rename a role.
    Rename {
        role: String,
        name: String,
        #[command(flatten)]
        target: RoleWrite,
    },
    /// Delete a role; while it is held or associated with apps, name a --replacement.
    Delete {
        role: String,
        /// The role every holder and app moves to.
        #[arg(long)]
        replacement: Option<String>,
        #[command(flatten)]
        target: RoleWrite,
    },
    /// Deprecate a role (assigning it is then refused, naming the successors), or --undo.
    Deprecate {
        role: String,
        /// Why, and what to do instead.
        #[arg(long, default_value = "")]
        message: String,
        /// A role to assign instead (repeat for several).
        #[arg(long = "successor")]
        successors: Vec<String>,
        /// Take the deprecation back.
        #[arg(long, conflicts_with_all = ["message", "successors"])]
        undo: bool,
        #[command(flatten)]
        target: RoleWrite,
    },
    /// Replace a role by another for every user and team holding it.
    Replace {
        role: String,
        replacement: String,
        #[command(flatten)]
        target: RoleWrite,
    },
    /// Set one cell of a role's grid: one privilege's depth on one table.
    Set {
        role: String,
        table: String,
        /// create read write delete append append_to assign share.
        privilege: String,
        /// none user business_unit parent_child organization.
        depth: String,
        #[command(flatten)]
        target: RoleWrite,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Two users' effective permissions side by side: depth and source role of each cell.
    Compare {
        left: String,
        right: String,
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
}

// ----- questions -----

fn local_role(org: &Organization, name: &str) -> anyhow::Result<strata_engine::RoleId> {
    org.role_id(name)
        .ok_or_else(|| anyhow!("unknown role `{name}`"))
}

fn local_user(org: &Organization, name: &str) -> anyhow::Result<strata_engine::UserId> {
    org.user_id(name)
        .ok_or_else(|| anyhow!("unknown user `{name}`"))
}

fn s(v: &J) -> String {
    match v {
        J::String(t) => t.clone(),
        J::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn list(v: &J) -> String {
    let items: Vec<String> = v.as_array().into_iter().flatten().map(s).collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

fn print(json_out: bool, answer: &J, human: impl FnOnce(&J)) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        human(answer);
    }
    Ok(())
}

fn show_role(r: &J) {
    println!("Role:          {}", s(&r["name"]));
    println!("Business unit: {}", s(&r["business_unit"]));
    println!("Inheritance:   {}", s(&r["inheritance"]));
    if r["system_administrator"] == json!(true) {
        println!("System Administrator: every privilege on every table");
    }
    match r["deprecation"].as_object() {
        Some(d) => println!(
            "Deprecated:    yes: {} (use instead: {})",
            d.get("message").map(s).unwrap_or_default(),
            d.get("successors").map(list).unwrap_or_default()
        ),
        None => println!("Deprecated:    no"),
    }
    println!("Apps:          {}", list(&r["apps"]));
    println!("Misc:          {}", list(&r["misc"]));
    let mut headers = vec!["table"];
    headers.extend(Privilege::ALL.iter().map(|p| p.name()));
    let rows: Vec<Vec<String>> = r["privileges"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(t, row)| {
            let mut cells = vec![t.clone()];
            cells.extend(Privilege::ALL.iter().map(|p| s(&row[p.name()])));
            cells
        })
        .collect();
    println!();
    table::print(&headers, &rows);
}

fn show_holders(h: &J) {
    let mut rows: Vec<Vec<String>> = h["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            let how = match &u["business_unit"] {
                J::Null => "direct".to_owned(),
                unit => format!("direct, in {}", s(unit)),
            };
            vec![s(&u["user"]), how]
        })
        .collect();
    rows.extend(
        h["through_teams"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| vec![s(&u["user"]), format!("via team {}", s(&u["team"]))]),
    );
    table::print(&["user", "holds it"], &rows);
    let teams: Vec<String> = h["teams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("{} ({})", s(&t["team"]), s(&t["business_unit"])))
        .collect();
    println!();
    println!(
        "Teams: {}",
        if teams.is_empty() {
            "-".to_owned()
        } else {
            teams.join(", ")
        }
    );
    println!("Apps:  {}", list(&h["apps"]));
}

fn show_assigners(a: &J) {
    if a["deprecated"] == json!(true) {
        println!("role `{}` is deprecated: nobody assigns it", s(&a["role"]));
        return;
    }
    let rows: Vec<Vec<String>> = a["assigners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| vec![s(&u["user"]), list(&u["business_units"])])
        .collect();
    table::print(&["user", "may assign it to principals of"], &rows);
}

fn mark(differs: &J) -> String {
    if *differs == json!(true) {
        "*".to_owned()
    } else {
        String::new()
    }
}

/// A comparison side by side, between `l` and `r`: each grid cell (its sides as `cell` shows
/// them), then each miscellaneous privilege (as `misc` shows them), differences marked, and
/// their count.
fn print_comparison(c: &J, (l, r): (&str, &str), cell: fn(&J) -> String, misc: fn(&J) -> String) {
    let side_by_side = |list: &J, what: &str, first: fn(&J) -> String, show: fn(&J) -> String| {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                vec![
                    first(x),
                    s(&x[what]),
                    show(&x["left"]),
                    show(&x["right"]),
                    mark(&x["differs"]),
                ]
            })
            .collect::<Vec<_>>()
    };
    let mut rows = side_by_side(&c["cells"], "privilege", |x| s(&x["table"]), cell);
    rows.extend(side_by_side(
        &c["misc"],
        "name",
        |_| "(misc)".to_owned(),
        misc,
    ));
    table::print(&["table", "privilege", l, r, "differs"], &rows);
    println!();
    println!("{} difference(s)", s(&c["differences"]));
}

fn show_role_comparison(c: &J) {
    let (l, r) = (s(&c["left"]), s(&c["right"]));
    print_comparison(c, (&l, &r), s, |v| {
        if *v == json!(true) { "yes" } else { "no" }.to_owned()
    });
}

fn source_text(src: &J) -> String {
    let role = s(&src["role"]);
    match &src["via"] {
        J::Object(v) => format!(
            "{role} via team {}",
            v.get("team").map(s).unwrap_or_default()
        ),
        _ => role,
    }
}

fn sources_text(list: &J) -> String {
    let items: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(source_text)
        .collect();
    items.join("; ")
}

fn effective_text(e: &J) -> String {
    let depth = s(&e["depth"]);
    let sources = sources_text(&e["sources"]);
    if sources.is_empty() {
        depth
    } else {
        format!("{depth} ({sources})")
    }
}

fn show_user_comparison(c: &J) {
    let (l, r) = (s(&c["left"]["name"]), s(&c["right"]["name"]));
    for side in ["left", "right"] {
        if c[side]["enabled"] == json!(false) {
            println!(
                "note: user `{}` is disabled and is refused everything",
                s(&c[side]["name"])
            );
        }
    }
    print_comparison(c, (&l, &r), effective_text, |v| {
        let t = sources_text(v);
        if t.is_empty() { "no".to_owned() } else { t }
    });
}

// ----- changes -----

/// Writes one role operation through the application layer (a database) or a server's route.
fn write(
    RoleWrite { target, json }: &RoleWrite,
    op: Operation,
    (method, path, body): (&str, String, Option<J>),
) -> anyhow::Result<()> {
    let answer = match target.place()? {
        Place::Local { db, user } => {
            let local = LocalOrg::open(db, &target.org, user)?;
            let ops = local.as_actor(vec![op]);
            json!({ "revision": local.write(ops)?.revision })
        }
        Place::Server(server) => server.send(method, &path, body)?,
    };
    print(*json, &answer, |a| {
        println!("done: revision {}", s(&a["revision"]));
    })
}

pub(crate) fn role(command: RoleCommand) -> anyhow::Result<()> {
    match command {
        RoleCommand::Show { role, source, json } => {
            let path = format!("/roles/{}", encode(&role));
            let answer = source.answer(&path, |o| {
                Ok(strata_ops::role_json(o, local_role(o, &role)?))
            })?;
            print(json, &answer, show_role)
        }
        RoleCommand::Holders { role, source, json } => {
            let path = format!("/roles/{}/holders", encode(&role));
            let answer = source.answer(&path, |o| {
                Ok(strata_ops::role_holders_json(
                    o,
                    local_role(o, &role)?,
                    |_| true,
                ))
            })?;
            print(json, &answer, show_holders)
        }
        RoleCommand::Assigners { role, source, json } => {
            let path = format!("/roles/{}/assigners", encode(&role));
            let answer = source.answer(&path, |o| {
                Ok(strata_ops::assigners_json(o, local_role(o, &role)?, |_| {
                    true
                }))
            })?;
            print(json, &answer, show_assigners)
        }
        RoleCommand::Compare {
            left,
            right,
            source,
            json,
        } => {
            let path = format!("/roles/{}/compare/{}", encode(&left), encode(&right));
            let answer = source.answer(&path, |o| {
                Ok(strata_ops::compare_roles_json(
                    o,
                    local_role(o, &left)?,
                    local_role(o, &right)?,
                ))
            })?;
            print(json, &answer, show_role_comparison)
        }
        RoleCommand::Copy { role, name, target } => {
            let route = (
                "POST",
                format!("/roles/{}/copy", encode(&role)),
                Some(json!({ "name": name })),
            );
            write(&target, Operation::CopyRole { role, name }, route)
        }
        RoleCommand::Rename { role, name, target } => {
            let route = (
                "POST",
                format!("/roles/{}/rename", encode(&role)),
                Some(json!({ "name": name })),
            );
            write(&target, Operation::RenameRole { role, name }, route)
        }
        RoleCommand::Delete {
            role,
            replacement,
            target,
        } => {
            let query = replacement
                .as_deref()
                .map(|r| format!("?replacement={}", encode(r)))
                .unwrap_or_default();
            let route = ("DELETE", format!("/roles/{}{query}", encode(&role)), None);
            write(&target, Operation::DeleteRole { role, replacement }, route)
        }
        RoleCommand::Deprecate {
            role,
            message,
            successors,
            undo,
            target,
        } => {
            let path = format!("/roles/{}/deprecation", encode(&role));
            let route = if undo {
                ("DELETE", path, None)
            } else {
                (
                    "POST",
                    path,
                    Some(json!({ "message": message, "successors": successors })),
                )
            };
            let op = Operation::DeprecateRole {
                role,
                deprecated: !undo,
                message,
                successors,
            };
            write(&target, op, route)
        }
        RoleCommand::Replace {
            role,
            replacement,
            target,
        } => {
            let route = (
                "POST",
                format!("/roles/{}/replace", encode(&role)),
                Some(json!({ "replacement": replacement })),
            );
            write(&target, Operation::ReplaceRole { role, replacement }, route)
        }
        RoleCommand::Set {
            role,
            table,
            privilege,
            depth,
            target,
        } => {
            let route = (
                "PUT",
                format!(
                    "/roles/{}/privileges/{}/{}",
                    encode(&role),
                    encode(&table),
                    encode(&privilege)
                ),
                Some(json!({ "depth": depth })),
            );
            let op = Operation::SetRolePrivilege {
                role,
                table,
                privilege,
                depth,
            };
            write(&target, op, route)
        }
    }
}

pub(crate) fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Compare {
            left,
            right,
            source,
            json,
        } => {
            let path = format!("/users/{}/compare/{}", encode(&left), encode(&right));
            let answer = source.answer(&path, |o| {
                Ok(strata_ops::compare_users_json(
                    o,
                    local_user(o, &left)?,
                    local_user(o, &right)?,
                ))
            })?;
            print(json, &answer, show_user_comparison)
        }
    }
}
