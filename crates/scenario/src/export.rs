//! The whole organisation as a scenario file (`strata export`, docs/export.md): business units,
//! tables, relationships, roles (deprecations and deleted roles included), positions, users,
//! teams, access team templates, field security profiles, apps, role rules, licences, audit
//! switches and settings, and with [`ExportOptions::records`] the records, shares, column
//! shares and record access team members.
//!
//! The file rebuilds an organisation whose `canonical_dump` is the same (D65): everything is
//! written in id order, so that loading it (`engine_target::setup_operations`) creates each
//! entity at the index it had. Names are written as names; any text is quoted when YAML would
//! read it as something else ([`scalar`]). The same organisation always gives the same bytes.

use std::collections::HashSet;
use std::fmt::Write as _;

use strata_engine::{
    Cascade, CascadeType, DeleteBehavior, Depth, HierarchyModel, Inheritance, Organization, Owner,
    Ownership, Principal, Privilege, RecordId, RecordState, RoleId, RoleRule, TableId, TeamId,
    TeamType, Value,
};

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// The scenario's `name` (the organisation's name).
    pub name: String,
    /// Records, shares, column shares and record access team members too.
    pub records: bool,
}

/// A string as a YAML scalar that reads back as exactly this text: plain when that is safe,
/// double-quoted (with escapes for what is not printable) otherwise.
#[must_use]
pub fn scalar(text: &str) -> String {
    if plain_safe(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// YAML 1.2's printable characters (`c-printable`), less the byte order mark.
fn printable(c: char) -> bool {
    matches!(c as u32,
        0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

/// Words YAML 1.1 or 1.2 read as something other than text.
const SPECIAL_WORDS: [&str; 14] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf", "infinity", "",
];

fn plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && !text.ends_with(' ')
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-' | '(' | ')' | '/')
        })
        && !text.contains("  ")
        && !SPECIAL_WORDS.contains(&text.to_ascii_lowercase().as_str())
        && text.parse::<f64>().is_err()
}

/// A list of names in flow style.
fn flow<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let parts: Vec<String> = items.into_iter().map(|s| scalar(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// A column value as it reads back: text always quoted, floats with a point or an exponent.
fn value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_finite() => format!("{f:?}"),
        // Not finite: no scenario value reads back as one; kept as its text.
        Value::Float(f) => scalar(&f.to_string()),
        Value::Text(t) => {
            if plain_safe(t) {
                // Quoted anyway: plain text that looks like a number or a word must stay text.
                format!("\"{t}\"")
            } else {
                scalar(t)
            }
        }
    }
}

fn mapping(list: &[(strata_engine::ColumnName, Value)]) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar(k), value(v)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// A record's columns: one mapping when they are in name order (as one write leaves them),
/// else a list of mappings, each a run in name order, set one after the other (extension), so
/// that the rebuilt record holds them in the same order.
fn fields(list: &[(strata_engine::ColumnName, Value)]) -> String {
    let mut runs: Vec<&[(strata_engine::ColumnName, Value)]> = Vec::new();
    let mut start = 0;
    for i in 1..list.len() {
        if list[i].0 <= list[i - 1].0 {
            runs.push(&list[start..i]);
            start = i;
        }
    }
    runs.push(&list[start..]);
    if runs.len() == 1 {
        mapping(list)
    } else {
        let parts: Vec<String> = runs.into_iter().map(mapping).collect();
        format!("[{}]", parts.join(", "))
    }
}

/// A privilege grid row: the depths other than `none` (`{ read: none }` for a row that holds
/// only `none`, so that the row itself is kept).
fn grid_row(depths: &[Depth; 8]) -> String {
    let cells: Vec<String> = Privilege::ALL
        .iter()
        .filter(|p| depths[p.index()] != Depth::None)
        .map(|p| format!("{}: {}", p.name(), depths[p.index()].name()))
        .collect();
    if cells.is_empty() {
        "{ read: none }".to_owned()
    } else {
        format!("{{ {} }}", cells.join(", "))
    }
}

fn cascade_name(t: CascadeType) -> &'static str {
    match t {
        CascadeType::Cascade => "cascade",
        CascadeType::Active => "active",
        CascadeType::UserOwned => "user_owned",
        CascadeType::None => "none",
    }
}

fn team_type(kind: TeamType) -> &'static str {
    match kind {
        TeamType::Owner => "owner",
        TeamType::Access => "access",
        TeamType::SecurityGroup => "security_group",
        TeamType::OfficeGroup => "office_group",
    }
}

fn principal(org: &Organization, p: Principal) -> String {
    match p {
        Principal::User(u) => org.user(u).name.clone(),
        Principal::Team(t) => format!("team:{}", org.team(t).name),
        Principal::Organization => "organization".to_owned(),
    }
}

fn role_name(org: &Organization, role: RoleId) -> &str {
    &org.role(role).name
}

fn table_name(org: &Organization, table: TableId) -> &str {
    &org.table(table).name
}

/// The organisation as a scenario file (format 1 and Strata's extensions), with no steps.
#[must_use]
#[allow(
    clippy::too_many_lines,
    reason = "one section of the file after the other"
)]
pub fn export(org: &Organization, options: &ExportOptions) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "format: 1");
    let _ = writeln!(o, "name: {}", scalar(&options.name));
    let _ = writeln!(
        o,
        "description: {}",
        scalar(if options.records {
            "exported by strata export, with records"
        } else {
            "exported by strata export"
        })
    );
    let root = org.units().root();
    let unit = |id| scalar(org.units().name(id));

    // settings
    let st = org.settings();
    let _ = writeln!(o, "settings:");
    let _ = writeln!(
        o,
        "  share_to_previous_owner_on_assign: {}",
        st.share_to_previous_owner_on_assign
    );
    let _ = writeln!(
        o,
        "  ownership_across_business_units: {}",
        st.ownership_across_business_units
    );
    let _ = writeln!(
        o,
        "  do_not_remove_roles_on_change_business_unit: {}",
        st.do_not_remove_roles_on_change_business_unit
    );
    let _ = writeln!(
        o,
        "  always_move_record_to_owner_business_unit: {}",
        st.always_move_record_to_owner_business_unit
    );
    if let Some(h) = &st.hierarchy {
        let _ = writeln!(o, "  hierarchy:");
        let model = match h.model {
            HierarchyModel::Manager => "manager",
            HierarchyModel::Position => "position",
        };
        let _ = writeln!(o, "    model: {model}");
        let _ = writeln!(o, "    depth: {}", h.depth);
        if let Some(tables) = &h.tables {
            let _ = writeln!(
                o,
                "    tables: {}",
                flow(tables.iter().map(|t| table_name(org, *t)))
            );
        }
        let _ = writeln!(
            o,
            "    managers_must_be_in_same_or_parent_business_unit: {}",
            h.managers_must_be_in_same_or_parent_business_unit
        );
    }

    // audit (extension)
    let audit = org.audit_settings();
    if *audit != strata_engine::AuditSettings::default() {
        let _ = writeln!(o, "audit:");
        let _ = writeln!(o, "  enabled: {}", audit.enabled);
        let _ = writeln!(o, "  retention_days: {}", audit.retention_days);
        let _ = writeln!(o, "  user_access: {}", audit.user_access);
        let _ = writeln!(o, "  tables: {}", flow(&audit.tables));
        let _ = writeln!(o, "  columns_off: {}", flow(&audit.columns_off));
    }

    // business units, in id order (a parent before its children unless a unit was moved)
    let _ = writeln!(o, "business_units:");
    for id in org.units().ids() {
        let _ = write!(o, "  - name: {}", unit(id));
        if let Some(parent) = org.units().parent(id) {
            let _ = write!(o, "\n    parent: {}", unit(parent));
        }
        o.push('\n');
    }

    // tables: the built-in ones only when they declare columns or an entity set
    let _ = writeln!(o, "tables:");
    for id in org.table_ids() {
        let t = org.table(id);
        if t.built_in && t.columns.is_empty() && t.entity_set.is_none() {
            continue;
        }
        let _ = writeln!(o, "  - name: {}", scalar(&t.name));
        if !t.built_in {
            let ownership = match t.ownership {
                Ownership::Organization => "organization",
                _ => "user_or_team",
            };
            let _ = writeln!(o, "    ownership: {ownership}");
        }
        if let Some(e) = &t.entity_set {
            let _ = writeln!(o, "    entity_set: {}", scalar(e));
        }
        if !t.columns.is_empty() {
            let _ = writeln!(o, "    columns:");
            for c in &t.columns {
                if c.secured {
                    let _ = writeln!(o, "      - {{ name: {}, secured: true }}", scalar(&c.name));
                } else {
                    let _ = writeln!(o, "      - {{ name: {} }}", scalar(&c.name));
                }
            }
        }
    }

    // relationships
    if org.relationship_ids().next().is_some() {
        let _ = writeln!(o, "relationships:");
    }
    for id in org.relationship_ids() {
        let r = org.relationship(id);
        let _ = writeln!(o, "  - name: {}", scalar(&r.name));
        let _ = writeln!(o, "    parent: {}", scalar(table_name(org, r.parent)));
        let _ = writeln!(o, "    child: {}", scalar(table_name(org, r.child)));
        let _ = writeln!(o, "    lookup: {}", scalar(&r.lookup));
        let c = r.cascade;
        if c == Cascade::PARENTAL {
            let _ = writeln!(o, "    behavior: parental");
        } else if c == Cascade::REFERENTIAL {
            let _ = writeln!(o, "    behavior: referential");
        } else if c == Cascade::REFERENTIAL_RESTRICT_DELETE {
            let _ = writeln!(o, "    behavior: referential_restrict_delete");
        } else {
            let delete = match c.delete {
                DeleteBehavior::Cascade => "cascade",
                DeleteBehavior::RemoveLink => "remove_link",
                DeleteBehavior::Restrict => "restrict",
            };
            let _ = writeln!(o, "    behavior: custom");
            let _ = writeln!(
                o,
                "    cascade: {{ assign: {}, share: {}, unshare: {}, reparent: {}, delete: {delete} }}",
                cascade_name(c.assign),
                cascade_name(c.share),
                cascade_name(c.unshare),
                cascade_name(c.reparent),
            );
        }
    }

    // roles, deleted ones (tombstones) in their places
    let _ = writeln!(o, "roles:");
    for id in org.role_ids_with_deleted() {
        let r = org.role(id);
        let _ = writeln!(o, "  - name: {}", scalar(&r.name));
        if Some(r.business_unit) != root {
            let _ = writeln!(o, "    business_unit: {}", unit(r.business_unit));
        }
        if r.inheritance == Inheritance::TeamOnly {
            let _ = writeln!(o, "    inheritance: team_only");
        }
        if r.system_administrator {
            let _ = writeln!(o, "    system_administrator: true");
        }
        if !r.privileges.is_empty() {
            let _ = writeln!(o, "    privileges:");
            for (table, depths) in &r.privileges {
                let _ = writeln!(
                    o,
                    "      {}: {}",
                    scalar(table_name(org, *table)),
                    grid_row(depths)
                );
            }
        }
        if !r.misc.is_empty() {
            let _ = writeln!(o, "    misc: {}", flow(&r.misc));
        }
        if let Some(d) = &r.deprecation {
            let _ = writeln!(
                o,
                "    deprecation: {{ message: {}, successors: {} }}",
                scalar(&d.message),
                flow(d.successors.iter().map(|s| role_name(org, *s)))
            );
        }
        if r.deleted {
            let _ = writeln!(o, "    deleted: true");
        }
    }

    // positions
    if org.position_ids().next().is_some() {
        let _ = writeln!(o, "positions:");
    }
    for id in org.position_ids() {
        let p = org.position(id);
        let _ = write!(o, "  - name: {}", scalar(&p.name));
        if let Some(parent) = p.parent {
            let _ = write!(o, "\n    parent: {}", scalar(&org.position(parent).name));
        }
        o.push('\n');
    }

    // users; with records, a user created after records is created after the same record
    let own: HashSet<_> = org.user_ids().map(|u| org.user(u).record).collect();
    let data: Vec<RecordId> = if options.records {
        org.record_ids()
            .filter(|r| org.record(*r).alive && !own.contains(r))
            .collect()
    } else {
        Vec::new()
    };
    // Each user's first record, as an index into `data`.
    let mut first_owned: std::collections::HashMap<strata_engine::UserId, usize> =
        std::collections::HashMap::new();
    for (i, r) in data.iter().enumerate() {
        if let Owner::User(u) = org.record(*r).owner {
            first_owned.entry(u).or_insert(i);
        }
    }
    let _ = writeln!(o, "users:");
    for id in org.user_ids() {
        let u = org.user(id);
        let _ = writeln!(o, "  - name: {}", scalar(&u.name));
        if Some(u.business_unit) != root {
            let _ = writeln!(o, "    business_unit: {}", unit(u.business_unit));
        }
        if !u.roles.is_empty() {
            let roles: Vec<String> = u
                .roles
                .iter()
                .map(|a| match a.business_unit {
                    None => scalar(role_name(org, a.role)),
                    Some(bu) => format!(
                        "{{ role: {}, business_unit: {} }}",
                        scalar(role_name(org, a.role)),
                        unit(bu)
                    ),
                })
                .collect();
            let _ = writeln!(o, "    roles: [{}]", roles.join(", "));
        }
        if let Some(m) = u.manager {
            let _ = writeln!(o, "    manager: {}", scalar(&org.user(m).name));
        }
        if let Some(p) = u.position {
            let _ = writeln!(o, "    position: {}", scalar(&org.position(p).name));
        }
        if !u.enabled {
            let _ = writeln!(o, "    enabled: false");
        }
        let record = org.record(u.record);
        if !record.fields.is_empty() {
            let _ = writeln!(o, "    fields: {}", fields(&record.fields));
        }
        // Before the first record the user owns, whatever (a record assigned to them after
        // they were created: the rebuilt ids then differ, docs/export.md).
        let before = data
            .partition_point(|r| *r < u.record)
            .min(first_owned.get(&id).copied().unwrap_or(usize::MAX));
        if before > 0 {
            let _ = writeln!(
                o,
                "    after_record: {}",
                scalar(&org.record(data[before - 1]).key)
            );
        }
        let licences = org.user_licences(id);
        if !licences.is_empty() {
            let _ = writeln!(o, "    licence: {}", flow(licences.iter().map(|l| &l.name)));
        }
    }

    // teams (record access teams come back from `access_team_members`)
    let teams: Vec<_> = org
        .team_ids()
        .filter(|t| org.team(*t).record_team.is_none())
        .collect();
    if !teams.is_empty() {
        let _ = writeln!(o, "teams:");
    }
    for id in teams {
        let t = org.team(id);
        let _ = writeln!(o, "  - name: {}", scalar(&t.name));
        let _ = writeln!(o, "    type: {}", team_type(t.kind));
        if Some(t.business_unit) != root {
            let _ = writeln!(o, "    business_unit: {}", unit(t.business_unit));
        }
        if !t.members.is_empty() {
            let _ = writeln!(
                o,
                "    members: {}",
                flow(t.members.iter().map(|m| &org.user(*m).name))
            );
        }
        if !t.roles.is_empty() {
            let _ = writeln!(
                o,
                "    roles: {}",
                flow(t.roles.iter().map(|r| role_name(org, *r)))
            );
        }
    }

    // access team templates
    if org.template_ids().next().is_some() {
        let _ = writeln!(o, "access_team_templates:");
    }
    for id in org.template_ids() {
        let t = org.template(id);
        let _ = writeln!(o, "  - name: {}", scalar(&t.name));
        let _ = writeln!(o, "    table: {}", scalar(table_name(org, t.table)));
        let _ = writeln!(
            o,
            "    rights: {}",
            flow(t.rights.privileges().map(Privilege::name))
        );
    }

    if options.records {
        write_records(org, o);
    }

    // field security
    let with_field_shares = options.records
        && org
            .record_ids()
            .any(|r| org.record(r).alive && !org.record(r).field_shares.is_empty());
    if org.profile_ids().next().is_some() || with_field_shares {
        let _ = writeln!(o, "field_security:");
        let _ = writeln!(o, "  profiles:");
        for id in org.profile_ids() {
            let p = org.profile(id);
            let _ = writeln!(o, "    - name: {}", scalar(&p.name));
            let _ = writeln!(
                o,
                "      members: {}",
                flow(p.members.iter().map(|m| principal(org, *m)))
            );
            if !p.permissions.is_empty() {
                let _ = writeln!(o, "      permissions:");
                for q in &p.permissions {
                    let _ = writeln!(
                        o,
                        "        - {{ table: {}, column: {}, read: {}, update: {}, create: {} }}",
                        scalar(table_name(org, q.table)),
                        scalar(&q.column),
                        q.read,
                        q.update,
                        q.create
                    );
                }
            }
        }
        if with_field_shares {
            let _ = writeln!(o, "  field_shares:");
            for id in org.record_ids() {
                let r = org.record(id);
                if !r.alive {
                    continue;
                }
                for f in &r.field_shares {
                    let _ = writeln!(
                        o,
                        "    - {{ record: {}, column: {}, principal: {}, read: {}, update: {} }}",
                        scalar(&r.key),
                        scalar(&f.column),
                        scalar(&principal(org, f.principal)),
                        f.read,
                        f.update
                    );
                }
            }
        }
    }

    // apps
    if org.app_ids().next().is_some() {
        let _ = writeln!(o, "apps:");
    }
    for id in org.app_ids() {
        let a = org.app(id);
        let _ = writeln!(o, "  - name: {}", scalar(&a.name));
        let _ = writeln!(
            o,
            "    roles: {}",
            flow(a.roles.iter().map(|r| role_name(org, *r)))
        );
        if !a.needs.is_empty() {
            let _ = writeln!(o, "    needs:");
            let mut tables: Vec<TableId> = Vec::new();
            for n in &a.needs {
                if !tables.contains(&n.table) {
                    tables.push(n.table);
                }
            }
            for t in tables {
                let cells: Vec<String> = a
                    .needs
                    .iter()
                    .filter(|n| n.table == t)
                    .map(|n| format!("{}: {}", n.privilege.name(), n.depth.name()))
                    .collect();
                let _ = writeln!(
                    o,
                    "      {}: {{ {} }}",
                    scalar(table_name(org, t)),
                    cells.join(", ")
                );
            }
        }
    }

    // role rules (extension), in the order they were added
    if !org.role_rules().is_empty() {
        let _ = writeln!(o, "role_rules:");
    }
    for rule in org.role_rules() {
        let line = match rule {
            RoleRule::Requires { role, any_of } => format!(
                "{{ role: {}, requires: {} }}",
                scalar(role_name(org, *role)),
                flow(any_of.iter().map(|r| role_name(org, *r)))
            ),
            RoleRule::Excludes { role, other } => format!(
                "{{ role: {}, excludes: {} }}",
                scalar(role_name(org, *role)),
                scalar(role_name(org, *other))
            ),
            RoleRule::DirectOnly { role } => format!(
                "{{ role: {}, direct_only: true }}",
                scalar(role_name(org, *role))
            ),
        };
        let _ = writeln!(o, "  - {line}");
    }

    // licences (extension)
    if !org.licences().is_empty() {
        let _ = writeln!(o, "licences:");
    }
    for l in org.licences() {
        let _ = writeln!(o, "  - name: {}", scalar(&l.name));
        let _ = writeln!(o, "    price: {}", l.price);
        let _ = writeln!(o, "    default: {}", l.default_ceiling.name());
        if !l.ceilings.is_empty() {
            let _ = writeln!(o, "    tables:");
            for (table, depths) in &l.ceilings {
                let _ = writeln!(
                    o,
                    "      {}: {}",
                    scalar(table_name(org, *table)),
                    grid_row(depths)
                );
            }
        }
        if l.all_misc {
            let _ = writeln!(o, "    misc: all");
        } else if !l.misc.is_empty() {
            let _ = writeln!(o, "    misc: {}", flow(&l.misc));
        }
        if l.all_apps {
            let _ = writeln!(o, "    apps: all");
        } else if !l.apps.is_empty() {
            let _ = writeln!(
                o,
                "    apps: {}",
                flow(l.apps.iter().map(|a| &org.app(*a).name))
            );
        }
    }

    let _ = writeln!(o, "steps: []");
    out
}

/// `records`, `shares` and `access_team_members`, in id order (deleted records left out).
fn write_records(org: &Organization, o: &mut String) {
    let own: HashSet<_> = org.user_ids().map(|u| org.user(u).record).collect();
    let live: Vec<_> = org
        .record_ids()
        .filter(|r| org.record(*r).alive && !own.contains(r))
        .collect();
    // Deleted records (tombstones) in their places.
    let written: Vec<_> = org.record_ids().filter(|r| !own.contains(r)).collect();
    let order = lookup_order(org, &live);
    let record_major = order.windows(2).all(|w| w[0] <= w[1]);
    if !written.is_empty() {
        let _ = writeln!(o, "records:");
    }
    for id in &written {
        let r = org.record(*id);
        let _ = writeln!(o, "  - id: {}", scalar(&r.key));
        let _ = writeln!(o, "    table: {}", scalar(table_name(org, r.table)));
        match r.owner {
            Owner::User(u) => {
                let _ = writeln!(o, "    owner: {}", scalar(&org.user(u).name));
            }
            Owner::Team(t) => {
                let _ = writeln!(
                    o,
                    "    owner: {}",
                    scalar(&format!("team:{}", org.team(t).name))
                );
            }
            Owner::None => {}
        }
        let _ = writeln!(
            o,
            "    business_unit: {}",
            scalar(org.units().name(r.business_unit))
        );
        if r.state == RecordState::Inactive {
            let _ = writeln!(o, "    state: inactive");
        }
        if record_major && !r.lookups.is_empty() {
            let parts: Vec<String> = r
                .lookups
                .iter()
                .map(|(rel, parent)| {
                    format!(
                        "{}: {}",
                        scalar(&org.relationship(*rel).lookup),
                        scalar(&org.record(*parent).key)
                    )
                })
                .collect();
            let _ = writeln!(o, "    lookups: {{ {} }}", parts.join(", "));
        }
        if !r.fields.is_empty() {
            let _ = writeln!(o, "    fields: {}", fields(&r.fields));
        }
        if !r.alive {
            let _ = writeln!(o, "    deleted: true");
        }
    }
    if !record_major {
        // The children lists keep the order lookups were set in: replayed as it was.
        let _ = writeln!(o, "lookups:");
        for (child, k) in &order {
            let r = org.record(*child);
            let (rel, parent) = r.lookups[*k];
            let _ = writeln!(
                o,
                "  - {{ record: {}, lookup: {}, parent: {} }}",
                scalar(&r.key),
                scalar(&org.relationship(rel).lookup),
                scalar(&org.record(parent).key)
            );
        }
    }
    let is_record_team = |p: Principal| match p {
        Principal::Team(t) => org.team(t).record_team.is_some(),
        _ => false,
    };
    // Users' own records are shared too.
    let alive: Vec<_> = org.record_ids().filter(|r| org.record(*r).alive).collect();
    let share_line = |r: &strata_engine::Record, s: &strata_engine::Share| {
        format!(
            "  - {{ record: {}, principal: {}, rights: {} }}",
            scalar(&r.key),
            scalar(&principal(org, s.principal)),
            flow(s.mask.privileges().map(Privilege::name))
        )
    };
    let team_line = |t: TeamId| match org.team(t).record_team {
        Some((record, template)) => format!(
            "  - {{ record: {}, template: {}, users: {} }}",
            scalar(&org.record(record).key),
            scalar(&org.template(template).name),
            flow(org.team(t).members.iter().map(|m| &org.user(*m).name))
        ),
        None => String::new(),
    };
    // Record access teams in the order they were made (a team is made by its first member).
    let record_teams: Vec<TeamId> = org
        .team_ids()
        .filter(|t| {
            org.team(*t)
                .record_team
                .is_some_and(|(r, _)| org.record(r).alive)
        })
        .collect();
    // A record access team made before another share of its record: the shares and the
    // teams interleaved as they were made (extension).
    let interleaved = alive.iter().any(|id| {
        let shares = &org.record(*id).shares;
        let first_team = shares.iter().position(|s| is_record_team(s.principal));
        first_team.is_some_and(|f| shares[f..].iter().any(|s| !is_record_team(s.principal)))
    });
    let mut shares: Vec<String> = Vec::new();
    let mut members: Vec<String> = Vec::new();
    if interleaved {
        let order = share_order(org, &alive, &record_teams);
        for (record, k) in order {
            let r = org.record(record);
            let s = &r.shares[k];
            match s.principal {
                Principal::Team(t) if is_record_team(s.principal) => shares.push(team_line(t)),
                _ => shares.push(share_line(r, s)),
            }
        }
        // Teams that hold no share of their record (a template without rights).
        for t in &record_teams {
            if let Some((record, _)) = org.team(*t).record_team
                && !org
                    .record(record)
                    .shares
                    .iter()
                    .any(|s| s.principal == Principal::Team(*t) && !s.mask.is_empty())
            {
                members.push(team_line(*t));
            }
        }
    } else {
        for id in &alive {
            let r = org.record(*id);
            for s in &r.shares {
                if !is_record_team(s.principal) && !s.mask.is_empty() {
                    shares.push(share_line(r, s));
                }
            }
        }
        members = record_teams.iter().map(|t| team_line(*t)).collect();
    }
    if !shares.is_empty() {
        let _ = writeln!(o, "shares:");
        for s in shares {
            let _ = writeln!(o, "{s}");
        }
    }
    if !members.is_empty() {
        let _ = writeln!(o, "access_team_members:");
        for m in members {
            let _ = writeln!(o, "{m}");
        }
    }
}

/// The shares of the live records (by record, index; record access teams included) in an
/// order that keeps each record's shares in order and makes the record access teams in the
/// order of their ids.
fn share_order(
    org: &Organization,
    alive: &[RecordId],
    record_teams: &[TeamId],
) -> Vec<(RecordId, usize)> {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};
    let mut items: Vec<(RecordId, usize)> = Vec::new();
    let mut of_team: HashMap<TeamId, usize> = HashMap::new();
    for id in alive {
        for (k, s) in org.record(*id).shares.iter().enumerate() {
            if s.mask.is_empty() {
                continue;
            }
            if let Principal::Team(t) = s.principal
                && org.team(t).record_team.is_some()
            {
                of_team.insert(t, items.len());
            }
            items.push((*id, k));
        }
    }
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    let mut before = vec![0usize; items.len()];
    for i in 1..items.len() {
        if items[i - 1].0 == items[i].0 {
            after[i - 1].push(i);
            before[i] += 1;
        }
    }
    let teams: Vec<usize> = record_teams
        .iter()
        .filter_map(|t| of_team.get(t).copied())
        .collect();
    for w in teams.windows(2) {
        after[w[0]].push(w[1]);
        before[w[1]] += 1;
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..items.len())
        .filter(|i| before[*i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(items.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(items[i]);
        for j in std::mem::take(&mut after[i]) {
            before[j] -= 1;
            if before[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    if order.len() < items.len() {
        return items;
    }
    order
}

/// An order to set the live records' lookups in that gives every record's lookups and every
/// parent's children list in the order they have: each (record, index in its lookups), the
/// smallest first when several may come next (record by record when that is possible).
fn lookup_order(org: &Organization, live: &[RecordId]) -> Vec<(RecordId, usize)> {
    use std::cmp::Reverse;
    use std::collections::{BTreeSet, BinaryHeap, HashMap};
    let mut items: Vec<(RecordId, usize)> = Vec::new();
    let mut index: HashMap<(RecordId, strata_engine::RelationshipId), usize> = HashMap::new();
    let mut parents = BTreeSet::new();
    for id in live {
        for (k, (rel, parent)) in org.record(*id).lookups.iter().enumerate() {
            index.insert((*id, *rel), items.len());
            items.push((*id, k));
            parents.insert(*parent);
        }
    }
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    let mut before = vec![0usize; items.len()];
    let mut edge = |a: usize, b: usize| {
        after[a].push(b);
        before[b] += 1;
    };
    for i in 1..items.len() {
        if items[i - 1].0 == items[i].0 {
            edge(i - 1, i);
        }
    }
    for parent in parents {
        let list: Vec<usize> = org
            .children(parent)
            .iter()
            .filter_map(|(rel, child)| index.get(&(*child, *rel)).copied())
            .collect();
        for w in list.windows(2) {
            edge(w[0], w[1]);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..items.len())
        .filter(|i| before[*i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(items.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(items[i]);
        for j in std::mem::take(&mut after[i]) {
            before[j] -= 1;
            if before[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    if order.len() < items.len() {
        // Not reachable from a real history; record by record then.
        return items;
    }
    order
}
