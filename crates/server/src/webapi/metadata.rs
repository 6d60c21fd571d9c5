//! Metadata: the service document, `$metadata` (CSDL XML with entity types, keys, properties
//! and navigation properties), and `EntityDefinitions` with `/Attributes` and the typed casts
//! clients ask for. Every authenticated user may read metadata (as in Dataverse).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value as Json, json};
use strata_engine::{Organization, Ownership, TableId};

use super::entity::{primary_id, primary_name};
use super::path::{Arg, Args, Segment};
use super::{Call, WebError, WebResult, bad, json_response};

/// The service document: every entity set.
pub(crate) async fn service_document(call: &Call<'_>) -> WebResult {
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let mut sets: Vec<Json> = o
        .table_ids()
        .map(|t| {
            let set = o.table(t).entity_set();
            json!({ "name": set, "kind": "EntitySet", "url": set })
        })
        .collect();
    sets.push(json!({ "name": "teamtemplates", "kind": "EntitySet", "url": "teamtemplates" }));
    let body = json!({ "@odata.context": format!("{}$metadata", call.base), "value": sets });
    Ok(json_response(StatusCode::OK, &body))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The attributes of a table as (logical name, attribute type, secured).
fn attributes(o: &Organization, table: TableId) -> Vec<(String, &'static str, bool)> {
    let t = o.table(table);
    let mut out: Vec<(String, &'static str, bool)> =
        vec![(primary_id(t), "Uniqueidentifier", false)];
    for c in &t.columns {
        out.push((c.name.clone(), "String", c.secured));
    }
    for c in o.columns_seen(table) {
        if !out.iter().any(|(n, _, _)| n == c) {
            out.push((c.to_owned(), "String", false));
        }
    }
    out.push(("statecode".into(), "State", false));
    out.push(("statuscode".into(), "Status", false));
    // When and by whom the record was created and last changed (D165).
    out.push(("createdon".into(), "DateTime", false));
    out.push(("modifiedon".into(), "DateTime", false));
    out.push(("createdby".into(), "Lookup", false));
    out.push(("modifiedby".into(), "Lookup", false));
    out.push(("owningbusinessunit".into(), "Lookup", false));
    if t.ownership == Ownership::UserOrTeam {
        out.push(("ownerid".into(), "Owner", false));
        out.push(("owninguser".into(), "Lookup", false));
        out.push(("owningteam".into(), "Lookup", false));
    }
    for r in o.relationship_ids() {
        let rel = o.relationship(r);
        if rel.child == table && !out.iter().any(|(n, _, _)| *n == rel.lookup) {
            out.push((rel.lookup.clone(), "Lookup", false));
        }
    }
    out
}

/// `$metadata`: CSDL XML.
pub(crate) async fn csdl(call: &Call<'_>) -> WebResult {
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n<edmx:DataServices>\n<Schema Namespace=\"Microsoft.Dynamics.CRM\" Alias=\"mscrm\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n",
    );
    for t in o.table_ids() {
        let table = o.table(t);
        let name = xml_escape(&table.name);
        x.push_str(&format!(
            "<EntityType Name=\"{name}\">\n<Key><PropertyRef Name=\"{}\"/></Key>\n",
            xml_escape(&primary_id(table))
        ));
        for (attr, kind, _) in attributes(o, t) {
            let edm = match kind {
                "Uniqueidentifier" => "Edm.Guid",
                "State" | "Status" => "Edm.Int32",
                "DateTime" => "Edm.DateTimeOffset",
                "Lookup" | "Owner" => {
                    x.push_str(&format!(
                        "<Property Name=\"_{}_value\" Type=\"Edm.Guid\"/>\n",
                        xml_escape(&attr)
                    ));
                    continue;
                }
                _ => "Edm.String",
            };
            x.push_str(&format!(
                "<Property Name=\"{}\" Type=\"{edm}\"/>\n",
                xml_escape(&attr)
            ));
        }
        for r in o.relationship_ids() {
            let rel = o.relationship(r);
            if rel.child == t {
                x.push_str(&format!(
                    "<NavigationProperty Name=\"{}\" Type=\"mscrm.{}\" Nullable=\"true\" Partner=\"{}\"><ReferentialConstraint Property=\"_{}_value\" ReferencedProperty=\"{}\"/></NavigationProperty>\n",
                    xml_escape(&rel.lookup),
                    xml_escape(&o.table(rel.parent).name),
                    xml_escape(&rel.name),
                    xml_escape(&rel.lookup),
                    xml_escape(&primary_id(o.table(rel.parent))),
                ));
            }
            if rel.parent == t {
                x.push_str(&format!(
                    "<NavigationProperty Name=\"{}\" Type=\"Collection(mscrm.{})\" Partner=\"{}\"/>\n",
                    xml_escape(&rel.name),
                    xml_escape(&o.table(rel.child).name),
                    xml_escape(&rel.lookup),
                ));
            }
        }
        if table.ownership == Ownership::UserOrTeam {
            x.push_str("<NavigationProperty Name=\"owninguser\" Type=\"mscrm.systemuser\"/>\n<NavigationProperty Name=\"owningteam\" Type=\"mscrm.team\"/>\n");
        }
        x.push_str(
            "<NavigationProperty Name=\"owningbusinessunit\" Type=\"mscrm.businessunit\"/>\n<NavigationProperty Name=\"createdby\" Type=\"mscrm.systemuser\"/>\n<NavigationProperty Name=\"modifiedby\" Type=\"mscrm.systemuser\"/>\n",
        );
        if table.name == "systemuser" {
            x.push_str("<NavigationProperty Name=\"systemuserroles_association\" Type=\"Collection(mscrm.role)\"/>\n<NavigationProperty Name=\"teammembership_association\" Type=\"Collection(mscrm.team)\"/>\n");
        }
        if table.name == "team" {
            x.push_str("<NavigationProperty Name=\"teamroles_association\" Type=\"Collection(mscrm.role)\"/>\n<NavigationProperty Name=\"teammembership_association\" Type=\"Collection(mscrm.systemuser)\"/>\n");
        }
        x.push_str("</EntityType>\n");
    }
    x.push_str("<EntityContainer Name=\"System\">\n");
    for t in o.table_ids() {
        let table = o.table(t);
        x.push_str(&format!(
            "<EntitySet Name=\"{}\" EntityType=\"Microsoft.Dynamics.CRM.{}\"/>\n",
            xml_escape(&table.entity_set()),
            xml_escape(&table.name)
        ));
    }
    x.push_str("<FunctionImport Name=\"WhoAmI\" Function=\"Microsoft.Dynamics.CRM.WhoAmI\"/>\n");
    x.push_str("</EntityContainer>\n</Schema>\n</edmx:DataServices>\n</edmx:Edmx>\n");
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        )],
        x,
    )
        .into_response();
    response
        .headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    Ok(response)
}

fn ownership_type(o: Ownership) -> &'static str {
    match o {
        Ownership::UserOrTeam => "UserOwned",
        Ownership::Organization => "OrganizationOwned",
        Ownership::BusinessUnit => "BusinessOwned",
    }
}

fn schema_name(logical: &str) -> String {
    match logical.split_once('_') {
        Some((prefix, rest)) => {
            let mut c = rest.chars();
            let first = c
                .next()
                .map(|f| f.to_uppercase().collect::<String>())
                .unwrap_or_default();
            format!("{prefix}_{first}{}", c.as_str())
        }
        None => {
            let mut c = logical.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

fn definition(o: &Organization, t: TableId) -> Map<String, Json> {
    let table = o.table(t);
    let mut m = Map::new();
    m.insert("MetadataId".into(), json!(o.table_guid(t).to_string()));
    m.insert("LogicalName".into(), json!(table.name));
    m.insert("SchemaName".into(), json!(schema_name(&table.name)));
    m.insert("EntitySetName".into(), json!(table.entity_set()));
    m.insert("LogicalCollectionName".into(), json!(table.entity_set()));
    m.insert("PrimaryIdAttribute".into(), json!(primary_id(table)));
    m.insert("PrimaryNameAttribute".into(), json!(primary_name(table)));
    m.insert(
        "OwnershipType".into(),
        json!(ownership_type(table.ownership)),
    );
    m.insert("IsCustomEntity".into(), json!(table.name.contains('_')));
    m.insert("ObjectTypeCode".into(), json!(10_000 + t.index()));
    m
}

fn attribute_json(
    o: &Organization,
    t: TableId,
    index: usize,
    attr: &(String, &'static str, bool),
) -> Map<String, Json> {
    let (name, kind, secured) = attr;
    let mut m = Map::new();
    let type_name = match *kind {
        "Uniqueidentifier" => "UniqueIdentifierAttributeMetadata",
        "Lookup" | "Owner" => "LookupAttributeMetadata",
        "State" => "StateAttributeMetadata",
        "Status" => "StatusAttributeMetadata",
        "DateTime" => "DateTimeAttributeMetadata",
        _ => "StringAttributeMetadata",
    };
    m.insert(
        "@odata.type".into(),
        json!(format!("#Microsoft.Dynamics.CRM.{type_name}")),
    );
    m.insert(
        "MetadataId".into(),
        json!(
            strata_engine::Guid::derived(
                strata_engine::GuidKind::Attribute,
                (t.index() << 20) + index
            )
            .to_string()
        ),
    );
    m.insert("LogicalName".into(), json!(name));
    m.insert("SchemaName".into(), json!(schema_name(name)));
    m.insert("EntityLogicalName".into(), json!(o.table(t).name));
    m.insert("AttributeType".into(), json!(kind));
    m.insert("IsSecured".into(), json!(secured));
    m.insert("IsPrimaryId".into(), json!(index == 0));
    m.insert(
        "IsPrimaryName".into(),
        json!(*name == primary_name(o.table(t))),
    );
    m
}

fn select_keys(m: Map<String, Json>, select: Option<&str>) -> Map<String, Json> {
    let Some(select) = select else {
        return m;
    };
    let wanted: Vec<&str> = select.split(',').map(str::trim).collect();
    m.into_iter()
        .filter(|(k, _)| k.starts_with('@') || wanted.contains(&k.as_str()) || k == "MetadataId")
        .collect()
}

/// A `$filter` on metadata: `LogicalName eq 'x'` terms joined by `or` (what clients send).
fn logical_name_filter(text: &str) -> Result<Vec<String>, WebError> {
    let mut names = Vec::new();
    for term in text.split(" or ") {
        let term = term
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        let value = term
            .strip_prefix("LogicalName eq ")
            .or_else(|| term.strip_prefix("LogicalName  eq "))
            .and_then(|v| v.trim().strip_prefix('\''))
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(|| {
                bad(
                    "odata_unsupported",
                    format!("metadata $filter supports `LogicalName eq '…'` joined by `or`, not `{term}`"),
                )
            })?;
        names.push(value.to_owned());
    }
    Ok(names)
}

/// `EntityDefinitions`, `EntityDefinitions(LogicalName='x')` or `(<MetadataId>)`, and
/// `/Attributes` (optionally cast to a type, or keyed by `LogicalName`).
pub(crate) async fn entity_definitions(call: &Call<'_>) -> WebResult {
    if call.method != axum::http::Method::GET {
        return Err(bad("method_not_allowed", "metadata is read only"));
    }
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let segments = call.path.segments.as_slice();
    let Some(Segment::Named { args, .. }) = segments.first() else {
        return Err(bad("odata_unknown", "EntityDefinitions"));
    };
    let table = match args {
        None => None,
        Some(Args::Id(g)) => Some(o.table_by_guid(*g).ok_or_else(|| {
            WebError(crate::error::ApiError::new(
                "not_found",
                format!("no entity with MetadataId {g}"),
            ))
        })?),
        Some(Args::Named(parts)) => match parts.as_slice() {
            [(k, Arg::Value(strata_engine::Value::Text(name)))] if k == "LogicalName" => {
                Some(o.table_id(name).ok_or_else(|| {
                    WebError(crate::error::ApiError::new(
                        "not_found",
                        format!("Could not find entity with LogicalName = '{name}'"),
                    ))
                })?)
            }
            _ => {
                return Err(bad(
                    "odata_syntax",
                    "EntityDefinitions is keyed by LogicalName='…' or its MetadataId",
                ));
            }
        },
        Some(Args::Empty) => return Err(bad("odata_syntax", "an empty key `()`")),
    };
    let select = call.param("$select");
    let base = &call.base;
    match (table, &segments[1..]) {
        (None, []) => {
            let filter = call.param("$filter").map(logical_name_filter).transpose()?;
            let value: Vec<Json> = o
                .table_ids()
                .filter(|t| {
                    filter
                        .as_ref()
                        .is_none_or(|names| names.iter().any(|n| *n == o.table(*t).name))
                })
                .map(|t| Json::Object(select_keys(definition(o, t), select)))
                .collect();
            let body = json!({ "@odata.context": format!("{base}$metadata#EntityDefinitions"), "value": value });
            Ok(json_response(StatusCode::OK, &body))
        }
        (Some(t), []) => {
            let mut m = select_keys(definition(o, t), select);
            if call
                .param("$expand")
                .is_some_and(|e| e.starts_with("Attributes"))
            {
                let attrs: Vec<Json> = attributes(o, t)
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Json::Object(attribute_json(o, t, i, a)))
                    .collect();
                m.insert("Attributes".into(), Json::Array(attrs));
            }
            m.insert(
                "@odata.context".into(),
                json!(format!("{base}$metadata#EntityDefinitions/$entity")),
            );
            Ok(json_response(StatusCode::OK, &Json::Object(m)))
        }
        (Some(t), [Segment::Named { name, args }, rest @ ..]) if name == "Attributes" => {
            let cast = match rest {
                [] => None,
                [Segment::Named { name, args: None }] => Some(name.as_str()),
                _ => {
                    return Err(bad(
                        "odata_unknown",
                        "Resource not found for the segment after Attributes.",
                    ));
                }
            };
            let all = attributes(o, t);
            let mut items: Vec<Map<String, Json>> = all
                .iter()
                .enumerate()
                .map(|(i, a)| attribute_json(o, t, i, a))
                .filter(|m| {
                    cast.is_none_or(|c| {
                        m.get("@odata.type").and_then(Json::as_str)
                            == Some(&format!("#Microsoft.Dynamics.CRM.{c}"))
                    })
                })
                .map(|m| select_keys(m, select))
                .collect();
            if let Some(Args::Named(parts)) = args {
                let [(k, Arg::Value(strata_engine::Value::Text(name)))] = parts.as_slice() else {
                    return Err(bad(
                        "odata_syntax",
                        "Attributes is keyed by LogicalName='…'",
                    ));
                };
                if k != "LogicalName" {
                    return Err(bad(
                        "odata_syntax",
                        "Attributes is keyed by LogicalName='…'",
                    ));
                }
                let mut one = items
                    .into_iter()
                    .find(|m| m.get("LogicalName").and_then(Json::as_str) == Some(name))
                    .ok_or_else(|| {
                        WebError(crate::error::ApiError::new(
                            "not_found",
                            format!("Could not find attribute with LogicalName = '{name}'"),
                        ))
                    })?;
                one.insert(
                    "@odata.context".into(),
                    json!(format!(
                        "{base}$metadata#EntityDefinitions({})/Attributes/$entity",
                        o.table(t).name
                    )),
                );
                return Ok(json_response(StatusCode::OK, &Json::Object(one)));
            }
            // An $expand of OptionSet on a cast with no such attributes is still an answer.
            let value: Vec<Json> = items.drain(..).map(Json::Object).collect();
            let body = json!({
                "@odata.context": format!("{base}$metadata#EntityDefinitions({})/Attributes", o.table(t).name),
                "value": value,
            });
            Ok(json_response(StatusCode::OK, &body))
        }
        _ => Err(bad(
            "odata_unknown",
            "Resource not found for the segment after EntityDefinitions.",
        )),
    }
}
