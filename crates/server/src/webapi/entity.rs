//! Entity sets and entities: which table an entity set is, a record as Dataverse's JSON
//! (`accountid`, `_ownerid_value`, `@odata.etag`…), references (`/contacts(<id>)`), and a
//! request body read into the columns, owner and lookups it sets, and the related records it
//! holds (deep insert, D146).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};
use strata_engine::{
    BusinessUnitId, Guid, Organization, Owner, RecordId, RecordState, RelationshipId, RoleId,
    Table, TableId, TeamId, TemplateId, UserId, Value,
};

use super::path::{self, Args, Segment};
use super::{WebError, bad};

/// What an entity set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Set {
    /// Records of a table (`systemusers` are the users' own records).
    Records(TableId),
    /// `teams`.
    Teams,
    /// `businessunits`.
    Units,
    /// `roles`.
    Roles,
    /// `teamtemplates`.
    Templates,
}

/// The entity set of this name.
pub(crate) fn resolve_set(o: &Organization, name: &str) -> Result<(Set, TableId), WebError> {
    if name == "teamtemplates" {
        let team = o
            .table_id("team")
            .ok_or_else(|| bad("internal", "no team table"))?;
        return Ok((Set::Templates, team));
    }
    let table = o.table_by_entity_set(name).ok_or_else(|| {
        bad(
            "odata_unknown",
            format!("Resource not found for the segment '{name}'."),
        )
    })?;
    let set = match o.table(table).name.as_str() {
        "team" => Set::Teams,
        "businessunit" => Set::Units,
        "role" => Set::Roles,
        _ => Set::Records(table),
    };
    Ok((set, table))
}

/// The annotation of a formatted value.
pub(crate) const FORMATTED_VALUE: &str = "OData.Community.Display.V1.FormattedValue";

/// The annotations a request asks for (`Prefer: odata.include-annotations="…"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Annotations {
    /// `@Microsoft.Dynamics.CRM.lookuplogicalname` on lookups (any `include-annotations`).
    pub(crate) lookups: bool,
    /// `@OData.Community.Display.V1.FormattedValue` on lookups and the state (`*`, the
    /// annotation's name, or `OData.Community.Display.V1.*`).
    pub(crate) formatted: bool,
    /// A FetchXML list's `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` and
    /// `@Microsoft.Dynamics.CRM.morerecords` (`*`, either name, or `Microsoft.Dynamics.CRM.*`).
    pub(crate) paging: bool,
}

impl Annotations {
    /// What the `Prefer` headers' `odata.include-annotations` preferences ask for.
    pub(crate) fn asked<'a>(prefer: impl Iterator<Item = &'a str>) -> Self {
        let mut out = Annotations::default();
        for value in prefer {
            for preference in outside_quotes(value) {
                let Some((name, list)) = preference.trim().split_once('=') else {
                    continue;
                };
                if !name
                    .trim()
                    .eq_ignore_ascii_case("odata.include-annotations")
                {
                    continue;
                }
                out.lookups = true;
                for term in list.trim().trim_matches('"').split(',') {
                    let term = term.trim();
                    if term == "*"
                        || term == FORMATTED_VALUE
                        || term == "OData.Community.Display.V1.*"
                    {
                        out.formatted = true;
                    }
                    if term == "*"
                        || term == "Microsoft.Dynamics.CRM.*"
                        || term == "Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
                        || term == "Microsoft.Dynamics.CRM.morerecords"
                    {
                        out.paging = true;
                    }
                }
            }
        }
        out
    }
}

/// A `Prefer` header's preferences: split at the commas outside double quotes (a list of
/// annotations is quoted and holds commas).
fn outside_quotes(value: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    value.split(move |c| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ',' && !quoted
    })
}

/// The primary id column: `accountid`.
pub(crate) fn primary_id(table: &Table) -> String {
    format!("{}id", table.name)
}

/// The primary name column Dataverse gives the table.
pub(crate) fn primary_name(table: &Table) -> String {
    match table.name.as_str() {
        "contact" | "systemuser" | "lead" => "fullname".to_owned(),
        "incident" => "title".to_owned(),
        "email" | "phonecall" | "task" | "appointment" | "activitypointer" => "subject".to_owned(),
        name => match name.split_once('_') {
            Some((prefix, _)) if !table.built_in => format!("{prefix}_name"),
            _ => "name".to_owned(),
        },
    }
}

/// The columns Strata adds to every record of a table, besides its own.
pub(crate) fn system_columns(o: &Organization, table: TableId) -> Vec<String> {
    let t = o.table(table);
    let mut out = vec![
        primary_id(t),
        "statecode".to_owned(),
        "statuscode".to_owned(),
        "_owningbusinessunit_value".to_owned(),
        strata_engine::CREATED_ON.to_owned(),
        strata_engine::MODIFIED_ON.to_owned(),
        "_createdby_value".to_owned(),
        "_modifiedby_value".to_owned(),
    ];
    if t.ownership == strata_engine::Ownership::UserOrTeam {
        out.extend(["_ownerid_value", "_owninguser_value", "_owningteam_value"].map(str::to_owned));
    }
    if t.name == "systemuser" {
        out.extend(
            [
                "domainname",
                "fullname",
                "isdisabled",
                "_businessunitid_value",
                "_parentsystemuserid_value",
            ]
            .map(str::to_owned),
        );
    }
    if t.built_in {
        // The columns of the JSON a team, unit or role is written as (`team_json`, …).
        let written: &[&str] = match t.name.as_str() {
            "team" => &["name", "teamtype", "_businessunitid_value", "isdefault"],
            "businessunit" => &["name", "_parentbusinessunitid_value"],
            "role" => &["name", "_businessunitid_value"],
            _ => &[],
        };
        out.extend(written.iter().map(|c| (*c).to_owned()));
    }
    for r in o.relationship_ids() {
        let rel = o.relationship(r);
        if rel.child == table {
            out.push(format!("_{}_value", rel.lookup));
        }
    }
    out
}

/// Every column a `$select` or `$filter` may name on this table.
pub(crate) fn known_columns(o: &Organization, table: TableId) -> Vec<String> {
    let mut out: Vec<String> = o
        .table(table)
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    out.extend(o.columns_seen(table).map(str::to_owned));
    out.extend(system_columns(o, table));
    out.sort();
    out.dedup();
    out
}

/// The weak ETag of a record: a hash of everything about it that a write can change, so that
/// it changes whenever the record does (`If-Match` compares it).
pub(crate) fn etag(o: &Organization, r: RecordId) -> String {
    // FNV-1a, 64 bits, over the record's facts: stable across processes and builds.
    struct Fnv(u64);
    impl Fnv {
        fn bytes(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
        fn word(&mut self, n: u64) {
            self.bytes(&n.to_le_bytes());
        }
    }
    let rec = o.record(r);
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    match rec.owner {
        Owner::User(u) => h.word(1 << 32 | u.index() as u64),
        Owner::Team(t) => h.word(2 << 32 | t.index() as u64),
        Owner::None => h.word(0),
    }
    h.word(rec.business_unit.index() as u64);
    h.word(u64::from(rec.state == RecordState::Active) | u64::from(rec.alive) << 1);
    for (relationship, parent) in &rec.lookups {
        h.word((relationship.index() as u64) << 32 | parent.index() as u64);
    }
    for (name, value) in &rec.fields {
        h.bytes(name.as_bytes());
        match value {
            Value::Null => h.word(0),
            Value::Bool(b) => h.word(1 + u64::from(*b)),
            Value::Int(i) => {
                h.word(3);
                h.bytes(&i.to_le_bytes());
            }
            Value::Float(x) => {
                h.word(4);
                h.word(x.to_bits());
            }
            Value::Text(t) => {
                h.word(5);
                h.bytes(t.as_bytes());
            }
        }
    }
    format!("W/\"{}\"", h.0)
}

fn guid_json(g: Guid) -> Json {
    Json::String(g.to_string())
}

/// The GUID of a record's owner, and its table.
pub(crate) fn owner_guid(o: &Organization, owner: Owner) -> Option<(Guid, &'static str)> {
    match owner {
        Owner::User(u) => Some((o.user_guid(u), "systemuser")),
        Owner::Team(t) => Some((o.team_guid(t), "team")),
        Owner::None => None,
    }
}

/// One value of a record's JSON, borrowed where it can be.
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Text(&'a str),
    Value(&'a Value),
    Guid(Guid),
}

impl Scalar<'_> {
    fn to_json(&self) -> Json {
        match self {
            Scalar::Null => Json::Null,
            Scalar::Bool(b) => Json::Bool(*b),
            Scalar::Int(i) => json!(i),
            Scalar::Text(t) => Json::String((*t).to_owned()),
            Scalar::Value(v) => strata_ops::to_json(v),
            Scalar::Guid(g) => guid_json(*g),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing to a `Vec` cannot fail.
        let _ = match self {
            Scalar::Null | Scalar::Value(Value::Null) => out.write_all(b"null"),
            Scalar::Bool(b) | Scalar::Value(Value::Bool(b)) => write!(out, "{b}"),
            Scalar::Int(i) | Scalar::Value(Value::Int(i)) => write!(out, "{i}"),
            Scalar::Value(Value::Float(x)) if x.is_finite() => {
                serde_json::to_writer(&mut *out, x).map_err(std::io::Error::other)
            }
            Scalar::Value(Value::Float(_)) => out.write_all(b"null"),
            Scalar::Text(t) => serde_json::to_writer(&mut *out, t).map_err(std::io::Error::other),
            Scalar::Value(Value::Text(t)) => {
                serde_json::to_writer(&mut *out, t).map_err(std::io::Error::other)
            }
            Scalar::Guid(g) => write!(out, "\"{g}\""),
        };
    }
}

/// Where a record's JSON goes. A name given twice keeps its first value.
pub(crate) trait Sink {
    fn put(&mut self, name: &str, value: Scalar<'_>);
}

impl Sink for Map<String, Json> {
    fn put(&mut self, name: &str, value: Scalar<'_>) {
        if !self.contains_key(name) {
            self.insert(name.to_owned(), value.to_json());
        }
    }
}

/// A record's JSON object written straight into bytes (a list's page: no map, no tree).
pub(crate) struct Writer<'b> {
    out: &'b mut Vec<u8>,
    /// The byte ranges of the names written so far.
    names: Vec<(usize, usize)>,
}

impl<'b> Writer<'b> {
    /// Opens an object.
    pub(crate) fn open(out: &'b mut Vec<u8>) -> Writer<'b> {
        out.push(b'{');
        Writer {
            out,
            names: Vec::new(),
        }
    }

    /// Closes the object.
    pub(crate) fn close(self) {
        self.out.push(b'}');
    }
}

impl Sink for Writer<'_> {
    fn put(&mut self, name: &str, value: Scalar<'_>) {
        let mark = self.out.len();
        if !self.names.is_empty() {
            self.out.push(b',');
        }
        let start = self.out.len();
        Scalar::Text(name).write(self.out);
        let end = self.out.len();
        let written = &self.out[start..end];
        if self.names.iter().any(|&(s, e)| self.out[s..e] == *written) {
            self.out.truncate(mark);
            return;
        }
        self.names.push((start, end));
        self.out.push(b':');
        value.write(self.out);
    }
}

/// A record as Dataverse's JSON, as `readers` see it (the caller has decided they may read
/// it): its primary id, its columns (a secured column the readers may not all read is null,
/// by the engine's column security), and its owner, unit, state and lookups — only what
/// `select` names, when given, each computed only when wanted. Annotations are added as
/// `annotations` asks.
pub(crate) fn record_json(
    o: &Organization,
    r: RecordId,
    readers: (UserId, Option<UserId>),
    select: Option<&[String]>,
    annotations: Annotations,
) -> Map<String, Json> {
    let mut out = Map::new();
    render_record(&mut out, o, r, readers, select, annotations);
    out
}

/// [`record_json`] into any sink.
pub(crate) fn render_record(
    out: &mut impl Sink,
    o: &Organization,
    r: RecordId,
    readers: (UserId, Option<UserId>),
    select: Option<&[String]>,
    annotations: Annotations,
) {
    let rec = o.record(r);
    let table = o.table(rec.table);
    let wanted = |c: &str| select.is_none_or(|s| s.iter().any(|x| x == c));
    let visible = |c: &str| {
        !table.is_secured(c)
            || std::iter::once(readers.0)
                .chain(readers.1)
                .all(|u| o.column_access(u, rec.table, c, Some(r)).read)
    };
    out.put("@odata.etag", Scalar::Text(&etag(o, r)));
    out.put(&primary_id(table), Scalar::Guid(o.record_guid(r)));
    let column = |out: &mut dyn FnMut(&str, Scalar<'_>), name: &str| {
        if visible(name) {
            out(name, Scalar::Value(rec.field(name)));
        } else {
            out(name, Scalar::Null);
        }
    };
    {
        let mut put = |name: &str, value: Scalar<'_>| out.put(name, value);
        match select {
            Some(columns) => {
                for c in columns {
                    // A column of the record's own (declared or ever set); the state and the
                    // stamps are added below.
                    if c != strata_engine::STATE_COLUMN
                        && !strata_engine::STAMP_COLUMNS.contains(&c.as_str())
                        && o.has_column(rec.table, c)
                    {
                        column(&mut put, c);
                    }
                }
            }
            None => {
                for c in &table.columns {
                    column(&mut put, &c.name);
                }
                for (name, _) in &rec.fields {
                    column(&mut put, name);
                }
            }
        }
    }
    // A lookup's formatted value (the related entity's name), only when the readers may read
    // it (D147).
    let formatted = |target: Option<Target>| -> Option<String> {
        if !annotations.formatted {
            return None;
        }
        super::records::name_as_seen(o, target?, readers)
    };
    let mut put = |name: &str, value: Scalar<'_>, logical: Option<&str>, shown: Option<String>| {
        if wanted(name) {
            if annotations.lookups
                && let Some(logical) = logical
            {
                out.put(
                    &format!("{name}@Microsoft.Dynamics.CRM.lookuplogicalname"),
                    Scalar::Text(logical),
                );
            }
            if let Some(shown) = shown {
                out.put(&format!("{name}@{FORMATTED_VALUE}"), Scalar::Text(&shown));
            }
            out.put(name, value);
        }
    };
    let (state, status) = match rec.state {
        RecordState::Active => (0, 1),
        RecordState::Inactive => (1, 2),
    };
    let state_name = || {
        annotations.formatted.then(|| {
            match rec.state {
                RecordState::Active => "Active",
                RecordState::Inactive => "Inactive",
            }
            .to_owned()
        })
    };
    put("statecode", Scalar::Int(state), None, state_name());
    put("statuscode", Scalar::Int(status), None, state_name());
    // When and by whom the record was created and last changed (D165): seconds, UTC; a writer
    // is a user, or null for the system.
    let stamps = rec.stamps;
    for (name, at) in [
        (strata_engine::CREATED_ON, stamps.created_at),
        (strata_engine::MODIFIED_ON, stamps.modified_at),
    ] {
        match strata_engine::Stamps::text(at) {
            Some(t) => put(name, Scalar::Text(&t), None, None),
            None => put(name, Scalar::Null, None, None),
        }
    }
    for (name, writer) in [
        ("_createdby_value", stamps.creator()),
        ("_modifiedby_value", stamps.modifier()),
    ] {
        put(
            name,
            writer.map_or(Scalar::Null, |u| Scalar::Guid(o.user_guid(u))),
            Some("systemuser"),
            formatted(writer.map(Target::User)),
        );
    }
    put(
        "_owningbusinessunit_value",
        Scalar::Guid(o.unit_guid(rec.business_unit)),
        Some("businessunit"),
        formatted(Some(Target::Unit(rec.business_unit))),
    );
    if table.ownership == strata_engine::Ownership::UserOrTeam {
        let owner = owner_guid(o, rec.owner);
        let owner_target = match rec.owner {
            Owner::User(u) => Some(Target::User(u)),
            Owner::Team(t) => Some(Target::Team(t)),
            _ => None,
        };
        put(
            "_ownerid_value",
            owner.map_or(Scalar::Null, |(g, _)| Scalar::Guid(g)),
            owner.map(|(_, t)| t),
            formatted(owner_target),
        );
        put(
            "_owninguser_value",
            match rec.owner {
                Owner::User(u) => Scalar::Guid(o.user_guid(u)),
                _ => Scalar::Null,
            },
            Some("systemuser"),
            formatted(owner_target.filter(|t| matches!(t, Target::User(_)))),
        );
        put(
            "_owningteam_value",
            match rec.owner {
                Owner::Team(t) => Scalar::Guid(o.team_guid(t)),
                _ => Scalar::Null,
            },
            Some("team"),
            formatted(owner_target.filter(|t| matches!(t, Target::Team(_)))),
        );
    }
    if table.name == "systemuser"
        && let Owner::User(u) = rec.owner
        && o.user(u).record == r
    {
        let user = o.user(u);
        put("domainname", Scalar::Text(&user.name), None, None);
        if !rec.fields.iter().any(|(c, _)| &**c == "fullname") {
            put("fullname", Scalar::Text(&user.name), None, None);
        }
        put("isdisabled", Scalar::Bool(!user.enabled), None, None);
        put(
            "_businessunitid_value",
            Scalar::Guid(o.unit_guid(user.business_unit)),
            Some("businessunit"),
            formatted(Some(Target::Unit(user.business_unit))),
        );
        put(
            "_parentsystemuserid_value",
            user.manager
                .map_or(Scalar::Null, |m| Scalar::Guid(o.user_guid(m))),
            Some("systemuser"),
            formatted(user.manager.map(Target::User)),
        );
    }
    // Every lookup of the table: its parent's GUID (annotated with the parent's table), or null.
    for relationship in o.relationship_ids() {
        let rel = o.relationship(relationship);
        if rel.child != rec.table {
            continue;
        }
        let name = format!("_{}_value", rel.lookup);
        match rec.lookup(relationship) {
            Some(parent) => put(
                &name,
                Scalar::Guid(o.record_guid(parent)),
                Some(&o.table(o.record(parent).table).name),
                formatted(Some(Target::Record(parent))),
            ),
            None => put(&name, Scalar::Null, None, None),
        }
    }
}

/// A team as Dataverse's JSON.
pub(crate) fn team_json(o: &Organization, t: TeamId) -> Map<String, Json> {
    let team = o.team(t);
    let mut out = Map::new();
    out.insert("teamid".into(), guid_json(o.team_guid(t)));
    out.insert("name".into(), Json::String(team.name.clone()));
    out.insert("teamtype".into(), json!(team.kind.code()));
    out.insert(
        "_businessunitid_value".into(),
        guid_json(o.unit_guid(team.business_unit)),
    );
    out.insert("isdefault".into(), Json::Bool(false));
    out
}

/// A business unit as Dataverse's JSON.
pub(crate) fn unit_json(o: &Organization, u: BusinessUnitId) -> Map<String, Json> {
    let mut out = Map::new();
    out.insert("businessunitid".into(), guid_json(o.unit_guid(u)));
    out.insert("name".into(), Json::String(o.units().name(u).to_owned()));
    out.insert(
        "_parentbusinessunitid_value".into(),
        o.units()
            .parent(u)
            .map_or(Json::Null, |p| guid_json(o.unit_guid(p))),
    );
    out
}

/// A role as Dataverse's JSON.
pub(crate) fn role_json(o: &Organization, r: RoleId) -> Map<String, Json> {
    let role = o.role(r);
    let mut out = Map::new();
    out.insert("roleid".into(), guid_json(o.role_guid(r)));
    out.insert("name".into(), Json::String(role.name.clone()));
    out.insert(
        "_businessunitid_value".into(),
        guid_json(o.unit_guid(role.business_unit)),
    );
    out
}

/// An access team template as Dataverse's JSON.
pub(crate) fn template_json(o: &Organization, t: TemplateId) -> Map<String, Json> {
    let template = o.template(t);
    let mut out = Map::new();
    out.insert("teamtemplateid".into(), guid_json(o.template_guid(t)));
    out.insert(
        "teamtemplatename".into(),
        Json::String(template.name.clone()),
    );
    out.insert(
        "objecttypecode".into(),
        Json::String(o.table(template.table).name.clone()),
    );
    out.insert(
        "defaultaccessrightsmask".into(),
        json!(template.rights.bits()),
    );
    out
}

/// What a reference (`/contacts(<id>)`, an `@odata.id`, an `@odata.bind`) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Record(RecordId),
    User(UserId),
    Team(TeamId),
    Unit(BusinessUnitId),
    Role(RoleId),
    Template(TemplateId),
    /// A record an earlier request of this `$batch` change set creates: its table and key.
    Pending(TableId, Guid),
}

/// A record's table and key, whether it exists or an earlier request of this change set
/// creates it (`None` for users, teams and the other entities).
pub(crate) fn record_of(o: &Organization, target: Target) -> Option<(TableId, String)> {
    match target {
        Target::Record(r) => Some((o.record(r).table, o.record(r).key.to_string())),
        Target::Pending(table, g) => Some((table, g.to_string())),
        _ => None,
    }
}

/// The entity of `set` with this GUID, or `not_found` naming it.
pub(crate) fn by_guid(
    o: &Organization,
    set: Set,
    table: TableId,
    g: Guid,
) -> Result<Target, WebError> {
    let found = match set {
        Set::Records(t) if o.table(t).name == "systemuser" => o.user_by_guid(g).map(Target::User),
        Set::Records(t) => o
            .record_by_guid(g)
            .filter(|r| o.record(*r).table == t && o.record(*r).alive)
            .map(Target::Record),
        Set::Teams => o.team_by_guid(g).map(Target::Team),
        Set::Units => o.unit_by_guid(g).map(Target::Unit),
        Set::Roles => o.role_by_guid(g).map(Target::Role),
        Set::Templates => o.template_by_guid(g).map(Target::Template),
    };
    let pending = || {
        super::batch::pending(g)
            .filter(|(t, _)| *t == table)
            .map(|(t, _)| Target::Pending(t, g))
    };
    found.or_else(pending).ok_or_else(|| {
        WebError(crate::error::ApiError::new(
            "not_found",
            format!("{} With Id = {g} Does Not Exist", o.table(table).name),
        ))
    })
}

/// Parses a reference: `/contacts(<id>)`, `contacts(<id>)`, or an absolute URL ending so.
pub(crate) fn reference(o: &Organization, text: &str) -> Result<Target, WebError> {
    let tail = match text.find("/api/data/") {
        Some(i) => {
            let rest = &text[i + "/api/data/".len()..];
            rest.split_once('/').map_or("", |(_, r)| r)
        }
        None => text.trim_start_matches('/'),
    };
    let parsed = path::parse(tail, &[])?;
    match parsed.segments.as_slice() {
        [
            Segment::Named {
                name,
                args: Some(Args::Id(g)),
            },
        ] => {
            let (set, table) = resolve_set(o, name)?;
            by_guid(o, set, table, *g)
        }
        _ => Err(bad(
            "bad_reference",
            format!("`{text}` is not a reference of the form /<entityset>(<guid>)"),
        )),
    }
}

/// The principal name Strata's operations take for a user or team target.
pub(crate) fn principal_name(o: &Organization, target: Target) -> Result<String, WebError> {
    match target {
        Target::User(u) => Ok(o.user(u).name.clone()),
        Target::Team(t) => Ok(format!("team:{}", o.team(t).name)),
        _ => Err(bad(
            "bad_reference",
            "a principal is a systemuser or a team",
        )),
    }
}

/// What a request body sets on a record.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// The primary id, when given.
    pub(crate) id: Option<Guid>,
    /// Columns.
    pub(crate) fields: BTreeMap<String, Json>,
    /// A new owner (principal name), from `ownerid@odata.bind`.
    pub(crate) owner: Option<String>,
    /// Lookups set (`Some` parent key) or cleared (`None`), by lookup name.
    pub(crate) lookups: BTreeMap<String, Option<String>>,
    /// `statecode`.
    pub(crate) state: Option<RecordState>,
    /// `businessunitid@odata.bind` on a systemuser: move the user.
    pub(crate) business_unit: Option<String>,
    /// `parentsystemuserid@odata.bind` on a systemuser: the manager (`None` clears it).
    pub(crate) manager: Option<Option<String>>,
    /// Related records to create with this one (deep insert, D146), in the body's order.
    pub(crate) nested: Vec<Nested>,
}

/// Related records in a body (deep insert, D146).
#[derive(Debug)]
pub(crate) enum Nested {
    /// A single-valued navigation property (`primarycontactid: {…}`): a record of the lookup's
    /// table, created first, that the lookup then refers to.
    Parent {
        /// The body's property holding the record.
        property: String,
        lookup: String,
        table: TableId,
    },
    /// A collection-valued one (`contact_customer_accounts: [{…}]`): records of the child
    /// table, created after, whose lookup refers to this record.
    Children {
        /// The body's property holding the records.
        property: String,
        lookup: String,
        table: TableId,
    },
}

impl Body {
    /// Refuses related records, for the writes that take none (an update, an upsert, the
    /// `…Multiple` messages): deep insert is a create's.
    pub(crate) fn flat(self) -> Result<Self, WebError> {
        match self.nested.first() {
            None => Ok(self),
            Some(Nested::Parent { property, .. } | Nested::Children { property, .. }) => Err(bad(
                "bad_value",
                format!(
                    "`{property}`: related records are created with a record (deep insert, POST), not here"
                ),
            )),
        }
    }
}

/// The relationship of a lookup of `table` named `nav`, or `<lookup>_<parent table>` (how a
/// polymorphic lookup is named in Dataverse): the lookup's name and the relationship.
pub(crate) fn lookup_of(
    o: &Organization,
    table: TableId,
    nav: &str,
) -> Option<(String, RelationshipId)> {
    if let Some(r) = o.relationship_by_lookup(table, nav) {
        return Some((nav.to_owned(), r));
    }
    let (base, parent) = nav.rsplit_once('_')?;
    let r = o.relationship_by_lookup(table, base)?;
    (o.table(o.relationship(r).parent).name == parent).then(|| (base.to_owned(), r))
}

/// The one-to-many relationship named `nav` whose parent is `table` (a collection-valued
/// navigation property).
pub(crate) fn children_of(o: &Organization, table: TableId, nav: &str) -> Option<RelationshipId> {
    o.relationship_ids().find(|r| {
        let rel = o.relationship(*r);
        rel.parent == table && rel.name == nav
    })
}

/// Reads a JSON body for a record of `table`.
pub(crate) fn read_body(o: &Organization, table: TableId, body: &Json) -> Result<Body, WebError> {
    let object = body
        .as_object()
        .ok_or_else(|| bad("invalid_body", "the body is a JSON object of columns"))?;
    let t = o.table(table);
    let id_column = primary_id(t);
    let mut out = Body::default();
    for (key, value) in object {
        if let Some(nav) = key.strip_suffix("@odata.bind") {
            let target = match value {
                Json::Null => None,
                Json::String(s) => Some(reference(o, s)?),
                _ => {
                    return Err(bad(
                        "bad_reference",
                        format!("`{key}` takes a reference such as \"/contacts(<guid>)\""),
                    ));
                }
            };
            bind(o, table, nav, target, &mut out)?;
            continue;
        }
        if key.starts_with('@') || key.contains('@') {
            // Annotations (`@odata.type`, `@odata.etag`…) carry nothing to write.
            continue;
        }
        if *key == id_column {
            let g = value
                .as_str()
                .and_then(|s| s.parse::<Guid>().ok())
                .ok_or_else(|| bad("bad_value", format!("`{key}` is a GUID")))?;
            out.id = Some(g);
            continue;
        }
        match key.as_str() {
            "statecode" => {
                out.state = Some(match value.as_i64() {
                    Some(0) => RecordState::Active,
                    Some(1) => RecordState::Inactive,
                    _ => {
                        return Err(bad(
                            "bad_value",
                            "`statecode` is 0 (active) or 1 (inactive)",
                        ));
                    }
                });
                continue;
            }
            // Kept by the system (D165): ignored in a body, as Dataverse ignores columns that
            // are not valid for create or update, so that a record read can be written back.
            "statuscode" | "createdon" | "modifiedon" | "_createdby_value"
            | "_modifiedby_value" => continue,
            _ => {}
        }
        if key.starts_with('_') && key.ends_with("_value") {
            return Err(bad(
                "bad_value",
                format!(
                    "`{key}` is read only: set a lookup with `{}@odata.bind`",
                    key.trim_start_matches('_').trim_end_matches("_value")
                ),
            ));
        }
        if value.is_object() {
            let (lookup, r) = lookup_of(o, table, key).ok_or_else(|| {
                bad(
                    "bad_value",
                    format!(
                        "`{key}` is not a single-valued navigation property of `{}`: a record in a body is created with it through a lookup (deep insert)",
                        t.name
                    ),
                )
            })?;
            out.nested.push(Nested::Parent {
                property: key.clone(),
                lookup,
                table: o.relationship(r).parent,
            });
            continue;
        }
        if value.is_array() {
            let r = children_of(o, table, key).ok_or_else(|| {
                bad(
                    "bad_value",
                    format!(
                        "`{key}` is not a collection-valued navigation property of `{}`: records in a body are created with it through a one-to-many relationship (deep insert)",
                        t.name
                    ),
                )
            })?;
            let rel = o.relationship(r);
            out.nested.push(Nested::Children {
                property: key.clone(),
                lookup: rel.lookup.clone(),
                table: rel.child,
            });
            continue;
        }
        out.fields.insert(key.clone(), value.clone());
    }
    Ok(out)
}

fn bind(
    o: &Organization,
    table: TableId,
    nav: &str,
    target: Option<Target>,
    out: &mut Body,
) -> Result<(), WebError> {
    let is_user_table = o.table(table).name == "systemuser";
    match (nav, target) {
        ("ownerid", Some(t)) => {
            out.owner = Some(principal_name(o, t)?);
            Ok(())
        }
        ("ownerid", None) => Err(bad("bad_value", "a record always has an owner")),
        ("businessunitid", Some(Target::Unit(u))) if is_user_table => {
            out.business_unit = Some(o.units().name(u).to_owned());
            Ok(())
        }
        ("parentsystemuserid", Some(Target::User(u))) if is_user_table => {
            out.manager = Some(Some(o.user(u).name.clone()));
            Ok(())
        }
        ("parentsystemuserid", None) if is_user_table => {
            out.manager = Some(None);
            Ok(())
        }
        (nav, target) => {
            // A polymorphic lookup is bound by `<lookup>_<parent table>` (`parentcustomerid_account`).
            let (lookup, relationship) = match lookup_of(o, table, nav) {
                Some((lookup, r)) => (lookup, Some(r)),
                None => (nav.to_owned(), None),
            };
            let lookup = lookup.as_str();
            let relationship = relationship.ok_or_else(|| {
                // A property of the payload: a bad request (400), as Dataverse answers it.
                bad(
                    "unknown_column",
                    format!(
                        "An undeclared property '{lookup}' which only has property annotations in the payload: no lookup `{lookup}` on table `{}`",
                        o.table(table).name
                    ),
                )
            })?;
            let parent = match target {
                None => None,
                Some(Target::Record(r)) => {
                    if o.record(r).table != o.relationship(relationship).parent {
                        return Err(bad(
                            "bad_reference",
                            format!(
                                "`{lookup}` refers to a `{}` record",
                                o.table(o.relationship(relationship).parent).name
                            ),
                        ));
                    }
                    Some(o.record(r).key.to_string())
                }
                Some(Target::User(u)) => Some(o.record(o.user(u).record).key.to_string()),
                Some(Target::Pending(t, g)) if t == o.relationship(relationship).parent => {
                    Some(g.to_string())
                }
                Some(_) => {
                    return Err(bad(
                        "bad_reference",
                        format!("`{lookup}` refers to a record"),
                    ));
                }
            };
            out.lookups.insert(lookup.to_owned(), parent);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Annotations;

    #[test]
    fn annotations_are_read_from_every_preference() {
        let asked = |v: &[&str]| Annotations::asked(v.iter().copied());
        assert_eq!(asked(&[]), Annotations::default());
        assert_eq!(asked(&["return=representation"]), Annotations::default());
        let both = Annotations {
            lookups: true,
            formatted: true,
            paging: false,
        };
        assert_eq!(
            asked(&["odata.include-annotations=\"*\""]),
            Annotations {
                paging: true,
                ..both
            }
        );
        assert_eq!(
            asked(&[
                "odata.maxpagesize=5, odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname,OData.Community.Display.V1.FormattedValue\""
            ]),
            both
        );
        assert_eq!(
            asked(&[
                "odata.maxpagesize=5",
                "odata.include-annotations=\"OData.Community.Display.V1.*\""
            ]),
            both
        );
        assert_eq!(
            asked(&["odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\""]),
            Annotations {
                lookups: true,
                formatted: false,
                paging: false,
            }
        );
        // FetchXML's paging annotations, by either name or the namespace.
        for names in [
            "Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords",
            "Microsoft.Dynamics.CRM.morerecords",
            "Microsoft.Dynamics.CRM.*",
        ] {
            let asked = asked(&[&format!("odata.include-annotations=\"{names}\"")]);
            assert!(asked.paging && !asked.formatted, "{names}");
        }
    }
}
