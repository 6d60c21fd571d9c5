//! The security messages Dataverse administrators and plug-ins call: `WhoAmI`,
//! `RetrievePrincipalAccess`, `RetrieveUserPrivileges`, `RetrieveSharedPrincipalsAndAccess`,
//! `GrantAccess`, `ModifyAccess`, `RevokeAccess`, `AddMembersTeam`, `RemoveMembersTeam`,
//! `AddUserToRecordTeam`, `RemoveUserFromRecordTeam`, and `CreateMultiple`, `UpdateMultiple`,
//! `UpsertMultiple`. Each is the native API's question or operations, with its authorization.

use axum::http::{Method, StatusCode};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use strata_engine::{AccessMask, Guid, Organization, Privilege, TableId};
use strata_ops::Operation;

use super::entity::{self, Set, Target};
use super::path::{Arg, Args, Segment};
use super::records::{self, readers, resolve_key, write};
use super::{Call, WebError, WebResult, bad, json_response, limits, no_content};

const UNBOUND: [&str; 7] = [
    "WhoAmI",
    "RetrievePrincipalAccess",
    "RetrieveSharedPrincipalsAndAccess",
    "GrantAccess",
    "ModifyAccess",
    "RevokeAccess",
    "RetrieveUserPrivileges",
];

const BOUND: [&str; 6] = [
    "RetrievePrincipalAccess",
    "RetrieveUserPrivileges",
    "AddMembersTeam",
    "RemoveMembersTeam",
    "AddUserToRecordTeam",
    "RemoveUserFromRecordTeam",
];

/// Whether `name` is an unbound function or action answered here.
pub(crate) fn is_unbound_operation(name: &str) -> bool {
    UNBOUND.contains(&name)
}

/// Whether `name` is a function or action bound to an entity, answered here.
pub(crate) fn is_bound_operation(name: &str) -> bool {
    BOUND.contains(&name)
}

/// Whether `name` is a `…Multiple` action bound to an entity set.
pub(crate) fn is_multiple(name: &str) -> bool {
    matches!(name, "CreateMultiple" | "UpdateMultiple" | "UpsertMultiple")
}

fn response_context(call: &Call<'_>, name: &str) -> Json {
    Json::String(format!(
        "{}$metadata#Microsoft.Dynamics.CRM.{name}Response",
        call.base
    ))
}

/// The organisation's GUID (`OrganizationId`): derived from its name.
pub(crate) fn organization_guid(name: &str) -> Guid {
    let digest = Sha256::digest(format!("strata organization\n{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let mut v = u128::from_be_bytes(bytes);
    // Version 8, RFC 9562 variant.
    v = (v & !(0xf << 76)) | (0x8 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    Guid(v)
}

fn expect_method(call: &Call<'_>, name: &str, function: bool) -> Result<(), WebError> {
    let want = if function { Method::GET } else { Method::POST };
    if call.method == want {
        return Ok(());
    }
    Err(bad(
        "method_not_allowed",
        format!(
            "{name} is {} and takes {want}",
            if function { "a function" } else { "an action" }
        ),
    ))
}

fn is_function(name: &str) -> bool {
    matches!(
        name,
        "WhoAmI"
            | "RetrievePrincipalAccess"
            | "RetrieveSharedPrincipalsAndAccess"
            | "RetrieveUserPrivileges"
    )
}

fn params<'c>(call: &'c Call<'_>) -> &'c [(String, Arg)] {
    match call.path.segments.last() {
        Some(Segment::Named {
            args: Some(Args::Named(p)),
            ..
        }) => p,
        _ => &[],
    }
}

fn param<'a>(params: &'a [(String, Arg)], name: &str) -> Option<&'a Arg> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// An entity named in a message: `{"@odata.id":"accounts(<id>)"}` or
/// `{"@odata.type":"Microsoft.Dynamics.CRM.account","accountid":"<id>"}`.
fn entity_ref(o: &Organization, value: &Json, what: &str) -> Result<Target, WebError> {
    if let Some(id) = value.get("@odata.id").and_then(Json::as_str) {
        return entity::reference(o, id);
    }
    let type_name = value.get("@odata.type").and_then(Json::as_str).map(|t| {
        t.trim_start_matches('#')
            .trim_start_matches("Microsoft.Dynamics.CRM.")
    });
    let (table_name, guid) = match type_name {
        Some(t) => {
            let column = format!("{t}id");
            let id = value.get(&column).and_then(Json::as_str);
            (t.to_owned(), id)
        }
        None => {
            // No type: the one `<table>id` property it carries.
            let found = value.as_object().and_then(|m| {
                m.iter().find_map(|(k, v)| {
                    let t = k.strip_suffix("id")?;
                    o.table_id(t).map(|_| (t.to_owned(), v.as_str()))
                })
            });
            found.unwrap_or_default()
        }
    };
    let guid = guid.and_then(|g| g.parse::<Guid>().ok()).ok_or_else(|| {
        bad(
            "bad_reference",
            format!("`{what}` is {{\"@odata.type\":\"Microsoft.Dynamics.CRM.<table>\",\"<table>id\":\"<guid>\"}} or {{\"@odata.id\":\"<set>(<guid>)\"}}"),
        )
    })?;
    let table = o.table_id(&table_name).ok_or_else(|| {
        bad(
            "odata_unknown",
            format!("`{what}`: unknown entity type `{table_name}`"),
        )
    })?;
    let set = entity::resolve_set(o, &o.table(table).entity_set())?.0;
    entity::by_guid(o, set, table, guid)
}

fn json_param<'p>(
    params: &'p [(String, Arg)],
    name: &str,
) -> Result<std::borrow::Cow<'p, Json>, WebError> {
    match param(params, name) {
        Some(Arg::Json(v)) => Ok(std::borrow::Cow::Borrowed(v)),
        Some(Arg::Value(strata_engine::Value::Text(t))) => {
            Ok(std::borrow::Cow::Owned(json!({ "@odata.id": t })))
        }
        _ => Err(bad(
            "invalid_body",
            format!("the function needs `{name}=@p1` with @p1 an entity reference"),
        )),
    }
}

fn record_of(o: &Organization, target: Target) -> Result<strata_engine::RecordId, WebError> {
    match target {
        Target::Record(r) => Ok(r),
        Target::User(u) => Ok(o.user(u).record),
        _ => Err(bad("bad_reference", "the target is a record")),
    }
}

/// Unbound functions and actions (`WhoAmI()`, `GrantAccess`…).
pub(crate) async fn unbound(call: &Call<'_>) -> WebResult {
    let Some(Segment::Named { name, .. }) = call.path.segments.first() else {
        return Err(bad("odata_unknown", "no operation"));
    };
    expect_method(call, name, is_function(name))?;
    match name.as_str() {
        "WhoAmI" => who_am_i(call).await,
        "RetrievePrincipalAccess" => {
            let p = params(call);
            let principal = json_param(p, "Principal")?;
            principal_access(call, p, Some(principal.into_owned()), None).await
        }
        "RetrieveSharedPrincipalsAndAccess" => shared_principals(call).await,
        "GrantAccess" | "ModifyAccess" | "RevokeAccess" => share(call, name).await,
        _ => Err(bad(
            "odata_unknown",
            format!(
                "{name} is bound: call it on an entity, e.g. systemusers(<id>)/Microsoft.Dynamics.CRM.{name}"
            ),
        )),
    }
}

/// Functions and actions bound to an entity.
pub(crate) async fn bound(
    call: &Call<'_>,
    set: Set,
    table: TableId,
    key: &Args,
    name: &str,
    _args: Option<&Args>,
) -> WebResult {
    expect_method(call, name, is_function(name))?;
    let this = {
        let loaded = call.request.handle.read().await;
        let reader = readers(call, &loaded.org).ok().map(|r| r.0);
        resolve_key(&loaded.org, set, table, key, reader)?
    };
    match name {
        "RetrievePrincipalAccess" => principal_access(call, params(call), None, Some(this)).await,
        "RetrieveUserPrivileges" => user_privileges(call, this).await,
        "AddMembersTeam" | "RemoveMembersTeam" => {
            members(call, this, name == "AddMembersTeam").await
        }
        _ => record_team(call, this, name == "AddUserToRecordTeam").await,
    }
}

async fn who_am_i(call: &Call<'_>) -> WebResult {
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let user = call.request.acting.user().ok_or_else(|| {
        bad(
            "bad_actor",
            "the root key is not a user: WhoAmI answers for a user's key or token",
        )
    })?;
    let body = json!({
        "@odata.context": response_context(call, "WhoAmI"),
        "BusinessUnitId": o.unit_guid(o.user(user).business_unit).to_string(),
        "UserId": o.user_guid(user).to_string(),
        "OrganizationId": organization_guid(&call.request.handle.name).to_string(),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `RetrievePrincipalAccess`: the principal's rights on the target (D27 for another user).
async fn principal_access(
    call: &Call<'_>,
    p: &[(String, Arg)],
    principal: Option<Json>,
    bound_to: Option<Target>,
) -> WebResult {
    let target = json_param(p, "Target")?;
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let who = match (bound_to, principal) {
        (Some(t), _) => t,
        (None, Some(p)) => entity_ref(o, &p, "Principal")?,
        (None, None) => return Err(bad("invalid_body", "name the Principal")),
    };
    let user = match who {
        Target::User(u) => u,
        Target::Team(_) => {
            return Err(bad(
                "odata_unsupported",
                "RetrievePrincipalAccess answers for users; a team's access is its members'",
            ));
        }
        _ => {
            return Err(bad(
                "bad_reference",
                "the principal is a systemuser or a team",
            ));
        }
    };
    let subject = call
        .request
        .subject(o, Some(&o.user(user).name))
        .map_err(WebError)?;
    let record = record_of(o, entity_ref(o, &target, "Target")?)?;
    let key = o.record(record).key.to_string();
    call.request
        .may_ask_about_record(o, Some(subject), record, &key)
        .map_err(WebError)?;
    let rights = o.access(subject, record);
    let body = json!({
        "@odata.context": response_context(call, "RetrievePrincipalAccess"),
        "AccessRights": rights.dataverse_names(),
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn privilege_name(o: &Organization, p: Privilege, table: TableId) -> String {
    let name = &o.table(table).name;
    let schema = if name.contains('_') {
        name.clone()
    } else {
        let mut c = name.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    format!("prv{}{schema}", p.verb())
}

async fn user_privileges(call: &Call<'_>, this: Target) -> WebResult {
    let Target::User(user) = this else {
        return Err(bad(
            "odata_unknown",
            "RetrieveUserPrivileges is bound to systemusers",
        ));
    };
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let subject = call
        .request
        .subject(o, Some(&o.user(user).name))
        .map_err(WebError)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for g in o.all_grants(subject) {
        let Some(depth) = g.depth.xml_name() else {
            continue;
        };
        let name = privilege_name(o, g.privilege, g.table);
        let unit = o.unit_guid(g.anchor).to_string();
        if seen.insert((name.clone(), depth, unit.clone())) {
            out.push(json!({
                "Depth": depth,
                "PrivilegeName": name,
                "BusinessUnitId": unit,
                "PrivilegeId": Guid::derived(strata_engine::GuidKind::Privilege, g.table.index() * 8 + g.privilege.index()).to_string(),
            }));
        }
    }
    let u = o.user(subject);
    let mut misc: Vec<&str> = u
        .roles
        .iter()
        .map(|a| a.role)
        .chain(
            u.teams
                .iter()
                .flat_map(|t| o.team(*t).roles.iter().copied()),
        )
        .flat_map(|r| o.role(r).misc.iter().map(String::as_str))
        .collect();
    misc.sort_unstable();
    misc.dedup();
    // A licence caps miscellaneous privileges as it caps the grid (D49).
    misc.retain(|name| o.holds_misc(subject, name));
    for name in misc {
        out.push(json!({
            "Depth": "Global",
            "PrivilegeName": name,
            "BusinessUnitId": o.unit_guid(u.business_unit).to_string(),
        }));
    }
    let body = json!({
        "@odata.context": response_context(call, "RetrieveUserPrivileges"),
        "RolePrivileges": out,
    });
    Ok(json_response(StatusCode::OK, &body))
}

async fn shared_principals(call: &Call<'_>) -> WebResult {
    let p = params(call);
    let target = json_param(p, "Target")?;
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let readers = readers(call, o)?;
    let record = record_of(o, entity_ref(o, &target, "Target")?)?;
    for reader in std::iter::once(readers.0).chain(readers.1) {
        if !o.check(reader, Privilege::Read, record) {
            return Err(records::denied(o, reader, Privilege::Read, record));
        }
    }
    let accesses: Vec<Json> = o
        .record(record)
        .shares
        .iter()
        .filter(|s| !s.mask.is_empty())
        .filter_map(|s| {
            let (kind, guid) = match s.principal {
                strata_engine::Principal::User(u) => ("systemuser", o.user_guid(u)),
                strata_engine::Principal::Team(t) => ("team", o.team_guid(t)),
                strata_engine::Principal::Organization => return None,
            };
            Some(json!({
                "AccessMask": s.mask.dataverse_names(),
                "Principal": {
                    "@odata.type": format!("#Microsoft.Dynamics.CRM.{kind}"),
                    "ownerid": guid.to_string(),
                },
            }))
        })
        .collect();
    let body = json!({
        "@odata.context": response_context(call, "RetrieveSharedPrincipalsAndAccess"),
        "PrincipalAccesses": accesses,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `ReadAccess, WriteAccess` (or the number) as the native API's right names.
fn rights(value: &Json) -> Result<Vec<String>, WebError> {
    let mask = match value {
        Json::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .and_then(AccessMask::from_bits)
            .ok_or_else(|| bad("bad_value", "AccessMask is not a valid AccessRights value"))?,
        Json::String(text) => {
            let mut mask = AccessMask::NONE;
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if part == "None" {
                    continue;
                }
                let verb = part.strip_suffix("Access").unwrap_or(part);
                let p = Privilege::ALL
                    .into_iter()
                    .find(|p| p.verb() == verb)
                    .ok_or_else(|| bad("bad_value", format!("unknown access right `{part}`")))?;
                mask = mask.with(p);
            }
            mask
        }
        _ => {
            return Err(bad(
                "bad_value",
                "AccessMask is text such as \"ReadAccess, WriteAccess\"",
            ));
        }
    };
    Ok(mask.privileges().map(|p| p.name().to_owned()).collect())
}

async fn share(call: &Call<'_>, name: &str) -> WebResult {
    let body = crate::json::strict_value(&call.headers, &call.body)?;
    let op = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let target = body
            .get("Target")
            .ok_or_else(|| bad("invalid_body", format!("{name} needs Target")))?;
        let record = o
            .record(record_of(o, entity_ref(o, target, "Target")?)?)
            .key
            .to_string();
        if name == "RevokeAccess" {
            let revokee = body
                .get("Revokee")
                .ok_or_else(|| bad("invalid_body", "RevokeAccess needs Revokee"))?;
            let principal = entity::principal_name(o, entity_ref(o, revokee, "Revokee")?)?;
            Operation::Revoke {
                actor: None,
                record,
                principal,
            }
        } else {
            let access = body
                .get("PrincipalAccess")
                .ok_or_else(|| bad("invalid_body", format!("{name} needs PrincipalAccess")))?;
            let principal = access
                .get("Principal")
                .ok_or_else(|| bad("invalid_body", "PrincipalAccess needs Principal"))?;
            let principal = entity::principal_name(o, entity_ref(o, principal, "Principal")?)?;
            let rights = rights(
                access
                    .get("AccessMask")
                    .ok_or_else(|| bad("invalid_body", "PrincipalAccess needs AccessMask"))?,
            )?;
            if name == "GrantAccess" {
                Operation::Share {
                    actor: None,
                    record,
                    principal,
                    rights,
                }
            } else {
                Operation::ModifyShare {
                    actor: None,
                    record,
                    principal,
                    rights,
                }
            }
        }
    };
    write(call, vec![op]).await?;
    Ok(no_content())
}

async fn members(call: &Call<'_>, this: Target, add: bool) -> WebResult {
    let Target::Team(team) = this else {
        return Err(bad(
            "odata_unknown",
            "AddMembersTeam and RemoveMembersTeam are bound to teams",
        ));
    };
    let body = crate::json::strict_value(&call.headers, &call.body)?;
    let ops = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let list = body
            .get("Members")
            .and_then(Json::as_array)
            .ok_or_else(|| bad("invalid_body", "the body is {\"Members\": [systemuser, …]}"))?;
        if list.len() > limits::MAX_MULTIPLE {
            return Err(bad(
                "odata_limit",
                format!("more than {} members", limits::MAX_MULTIPLE),
            ));
        }
        let team = o.team(team).name.clone();
        let mut ops = Vec::new();
        for m in list {
            let Target::User(u) = entity_ref(o, m, "Members")? else {
                return Err(bad("bad_reference", "Members are systemusers"));
            };
            let user = o.user(u).name.clone();
            ops.push(if add {
                Operation::AddTeamMember {
                    actor: None,
                    team: team.clone(),
                    user,
                }
            } else {
                Operation::RemoveTeamMember {
                    actor: None,
                    team: team.clone(),
                    user,
                }
            });
        }
        ops
    };
    write(call, ops).await?;
    Ok(no_content())
}

async fn record_team(call: &Call<'_>, this: Target, add: bool) -> WebResult {
    let Target::User(user) = this else {
        return Err(bad(
            "odata_unknown",
            "AddUserToRecordTeam is bound to systemusers",
        ));
    };
    let body = crate::json::strict_value(&call.headers, &call.body)?;
    let (op, record, template) = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let record = record_of(
            o,
            entity_ref(
                o,
                body.get("Record")
                    .ok_or_else(|| bad("invalid_body", "the body needs Record"))?,
                "Record",
            )?,
        )?;
        let template = body
            .get("TeamTemplate")
            .and_then(|t| t.get("teamtemplateid"))
            .and_then(Json::as_str)
            .and_then(|g| g.parse::<Guid>().ok())
            .and_then(|g| o.template_by_guid(g))
            .ok_or_else(|| {
                bad(
                    "bad_reference",
                    "TeamTemplate is {\"teamtemplateid\": \"<guid>\"} of a template",
                )
            })?;
        let (key, template_name, user_name) = (
            o.record(record).key.to_string(),
            o.template(template).name.clone(),
            o.user(user).name.clone(),
        );
        let op = if add {
            Operation::AddAccessTeamMember {
                actor: None,
                record: key,
                template: template_name,
                user: user_name,
            }
        } else {
            Operation::RemoveAccessTeamMember {
                actor: None,
                record: key,
                template: template_name,
                user: user_name,
            }
        };
        (op, record, template)
    };
    write(call, vec![op]).await?;
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let team = o
        .record(record)
        .access_teams
        .iter()
        .find(|(t, _)| *t == template)
        .map(|(_, team)| o.team_guid(*team).to_string());
    let name = if add {
        "AddUserToRecordTeam"
    } else {
        "RemoveUserFromRecordTeam"
    };
    let body = json!({
        "@odata.context": response_context(call, name),
        "AccessTeamId": team,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `CreateMultiple`, `UpdateMultiple`, `UpsertMultiple`: every target in one write that
/// commits whole or not at all.
pub(crate) async fn multiple(
    call: &Call<'_>,
    _set_name: &str,
    set: Set,
    table: TableId,
    name: &str,
) -> WebResult {
    let Set::Records(_) = set else {
        return Err(bad(
            "odata_unsupported",
            format!("{name} is for record tables"),
        ));
    };
    let body = crate::json::strict_value(&call.headers, &call.body)?;
    let targets = body
        .get("Targets")
        .and_then(Json::as_array)
        .ok_or_else(|| {
            bad(
                "invalid_body",
                format!("{name} takes {{\"Targets\": [ … ]}}"),
            )
        })?;
    if targets.is_empty() || targets.len() > limits::MAX_MULTIPLE {
        return Err(bad(
            "odata_limit",
            format!("{name} takes 1 to {} targets", limits::MAX_MULTIPLE),
        ));
    }
    let (ops, keys) = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let id_column = entity::primary_id(o.table(table));
        let mut ops = Vec::new();
        let mut keys = Vec::new();
        let mut fresh = std::collections::HashSet::new();
        for (i, target) in targets.iter().enumerate() {
            let at = |e: WebError| WebError(e.0.at(format!("/Targets/{i}")));
            let b = entity::read_body(o, table, target)
                .and_then(entity::Body::flat)
                .map_err(at)?;
            let existing = b.id.and_then(|g| entity::by_guid(o, set, table, g).ok());
            match (name, existing) {
                ("CreateMultiple", Some(_)) => {
                    return Err(at(bad(
                        "duplicate",
                        format!(
                            "a record with the id {} exists",
                            b.id.map(|g| g.to_string()).unwrap_or_default()
                        ),
                    )));
                }
                ("UpdateMultiple", None) => {
                    return Err(at(WebError(crate::error::ApiError::new(
                        "not_found",
                        format!(
                            "{} With Id = {} Does Not Exist",
                            o.table(table).name,
                            b.id.map_or_else(|| format!("(no {id_column})"), |g| g.to_string())
                        ),
                    ))));
                }
                (_, Some(t)) => {
                    keys.push(b.id.map(|g| g.to_string()).unwrap_or_default());
                    ops.extend(records::update_ops(o, t, b).map_err(at)?);
                }
                (_, None) => {
                    let key = records::new_key(b.id).map_err(at)?;
                    if !fresh.insert(key.clone()) {
                        return Err(at(bad("duplicate", format!("the id {key} is given twice"))));
                    }
                    keys.push(key.clone());
                    ops.push(records::create_op(o, table, b, key).map_err(at)?);
                }
            }
        }
        (ops, keys)
    };
    write(call, ops).await?;
    // UpdateMultiple and UpsertMultiple answer 204 without a body: Dataverse documents that
    // UpsertMultiple does not return its UpsertMultipleResponse.
    if name != "CreateMultiple" {
        return Ok(no_content());
    }
    let body = json!({ "@odata.context": response_context(call, name), "Ids": keys });
    Ok(json_response(StatusCode::OK, &body))
}
