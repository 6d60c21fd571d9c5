//! The exact requests the npm `dynamics-web-api` client sends (captured against a logging
//! mock: /work/shared/reference/ecosystem.md §3.3), parsed as the server will parse them, and a
//! batch response read back the way that client reads it (§3.4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_engine::{CompareOp, Filter, Order, Value};
use strata_odata::{
    ApiVersion, Args, BatchPart, BoundaryToken, Method, ParamValue, PartResponse, PathSegment,
    RequestTarget, ResponsePart, Segment, parse_batch, parse_request_target, write_batch_response,
};

const ACCOUNT: &str = "11111111-1111-1111-1111-111111111111";
const USER: &str = "22222222-2222-2222-2222-222222222222";
const TEAM: &str = "33333333-3333-3333-3333-333333333333";
const UUID: &str = "5f3e1c2a-9b7d-4e6f-8a1b-2c3d4e5f6a7b";

fn target(url: &str) -> RequestTarget {
    parse_request_target(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn named(name: &str, args: Option<Args>) -> PathSegment {
    PathSegment::Named(Segment {
        name: name.into(),
        args,
    })
}

fn id(guid: &str) -> Option<Args> {
    Some(Args::Id(guid.into()))
}

fn cmp(column: &str, op: CompareOp, value: Value) -> Filter {
    Filter::Compare {
        column: column.into(),
        op,
        value,
    }
}

#[test]
fn who_am_i() {
    let t = target("/api/data/v9.2/WhoAmI()");
    assert_eq!(t.version, Some(ApiVersion::V9_2));
    assert_eq!(
        t.path.segments,
        vec![named("WhoAmI", Some(Args::Named(vec![])))]
    );
    assert_eq!(t.query, Default::default());
}

#[test]
fn retrieve_multiple_raw_and_form_encoded() {
    let t = target(
        "/api/data/v9.2/accounts?$select=name,accountid&$filter=name%20eq%20%27Contoso%27%20and%20statecode%20eq%200&$top=50&$orderby=name%20desc",
    );
    assert_eq!(t.path.segments, vec![named("accounts", None)]);
    assert_eq!(
        t.query.select,
        Some(vec!["name".to_owned(), "accountid".to_owned()])
    );
    assert_eq!(
        t.query.filter,
        Some(Filter::And(vec![
            cmp("name", CompareOp::Eq, Value::Text("Contoso".into())),
            cmp("statecode", CompareOp::Eq, Value::Int(0)),
        ]))
    );
    assert_eq!(t.query.top, Some(50));
    assert_eq!(
        t.query.order_by,
        vec![Order {
            column: "name".into(),
            descending: true
        }]
    );
    let form = target(
        "/api/data/v9.2/accounts?%24select=name%2Caccountid&%24filter=name+eq+%27Contoso%27",
    );
    assert_eq!(form.query.select, t.query.select);
    assert_eq!(
        form.query.filter,
        Some(cmp("name", CompareOp::Eq, Value::Text("Contoso".into())))
    );
    // The next page: exactly the nextLink the server wrote.
    let next = target(
        "http://127.0.0.1:47111/api/data/v9.2/accounts?$select=name,accountid&$top=50&$skiptoken=k%3D1",
    );
    assert_eq!(next.query.skip_token.as_deref(), Some("k=1"));
}

#[test]
fn counts() {
    let t = target("/api/data/v9.2/accounts/$count");
    assert_eq!(
        t.path.segments,
        vec![named("accounts", None), PathSegment::Count]
    );
    let t = target("/api/data/v9.2/accounts?$filter=statecode%20eq%200&$count=true");
    assert!(t.query.count);
    assert_eq!(
        t.query.filter,
        Some(cmp("statecode", CompareOp::Eq, Value::Int(0)))
    );
}

#[test]
fn expand_with_contains_and_a_date() {
    let t = target(
        "/api/data/v9.2/accounts?$select=name&$filter=contains(name%2C%27Con%27)%20and%20createdon%20ge%202024-01-01T00%3A00%3A00Z&$count=true&$expand=primarycontactid($select=fullname)",
    );
    assert_eq!(t.query.select, Some(vec!["name".to_owned()]));
    assert_eq!(
        t.query.filter,
        Some(Filter::And(vec![
            Filter::Contains {
                column: "name".into(),
                text: "Con".into()
            },
            cmp(
                "createdon",
                CompareOp::Ge,
                Value::Text("2024-01-01T00:00:00Z".into())
            ),
        ]))
    );
    assert!(t.query.count);
    assert_eq!(t.query.expand.len(), 1);
    assert_eq!(t.query.expand[0].property, "primarycontactid");
    assert_eq!(t.query.expand[0].select, Some(vec!["fullname".to_owned()]));
}

#[test]
fn create_retrieve_update_delete() {
    let t = target("/api/data/v9.2/accounts");
    assert_eq!(t.path.segments, vec![named("accounts", None)]);
    let t = target("/api/data/v9.2/accounts?$select=name");
    assert_eq!(t.query.select, Some(vec!["name".to_owned()]));
    let t = target(&format!("/api/data/v9.2/accounts({ACCOUNT})?$select=name"));
    assert_eq!(t.path.segments, vec![named("accounts", id(ACCOUNT))]);
    assert_eq!(t.path.first().and_then(Segment::id), Some(ACCOUNT));
    // The `@odata.bind` value in a create body.
    let bind = target(&format!("/contacts({ACCOUNT})"));
    assert_eq!(bind.version, None);
    assert_eq!(bind.path.segments, vec![named("contacts", id(ACCOUNT))]);
}

#[test]
fn alternate_keys_quoted_or_percent_encoded() {
    let key = Some(Args::Named(vec![(
        "accountnumber".into(),
        ParamValue::Text("A-1".into()),
    )]));
    for url in [
        "/api/data/v9.2/accounts(accountnumber='A-1')?$select=name",
        "/api/data/v9.2/accounts(accountnumber=%27A-1%27)?$select=name",
    ] {
        assert_eq!(
            target(url).path.segments,
            vec![named("accounts", key.clone())]
        );
    }
}

#[test]
fn associate_and_disassociate() {
    let t = target(&format!(
        "/api/data/v9.2/teams({TEAM})/teammembership_association/$ref"
    ));
    assert_eq!(
        t.path.segments,
        vec![
            named("teams", id(TEAM)),
            named("teammembership_association", None),
            PathSegment::Ref
        ]
    );
    // The body's absolute `@odata.id`.
    let related = target(&format!(
        "http://127.0.0.1:47111/api/data/v9.2/systemusers({USER})"
    ));
    assert_eq!(related.path.segments, vec![named("systemusers", id(USER))]);
    let t = target(&format!(
        "/api/data/v9.2/teams({TEAM})/teammembership_association({USER})/$ref"
    ));
    assert_eq!(
        t.path.segments,
        vec![
            named("teams", id(TEAM)),
            named("teammembership_association", id(USER)),
            PathSegment::Ref
        ]
    );
}

#[test]
fn actions_and_functions() {
    let t = target("/api/data/v9.2/GrantAccess");
    assert_eq!(t.path.segments, vec![named("GrantAccess", None)]);
    let t = target(&format!(
        "/api/data/v9.2/systemusers({USER})/Microsoft.Dynamics.CRM.SetBusinessSystemUser"
    ));
    assert_eq!(
        t.path.segments[1],
        named("Microsoft.Dynamics.CRM.SetBusinessSystemUser", None)
    );
    let t = target(&format!(
        "/api/data/v9.2/systemusers({USER})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1={{%22@odata.id%22:%22accounts({ACCOUNT})%22}}"
    ));
    let PathSegment::Named(op) = &t.path.segments[1] else {
        panic!("not named: {:?}", t.path.segments);
    };
    assert_eq!(op.local_name(), "RetrievePrincipalAccess");
    assert_eq!(
        op.args.as_ref().and_then(|a| a.get("Target")),
        Some(&ParamValue::Json(
            serde_json::json!({"@odata.id": format!("accounts({ACCOUNT})")})
        ))
    );
    // The alias's own `@odata.id` is a relative URL.
    let Some(ParamValue::Json(json)) = op.args.as_ref().and_then(|a| a.get("Target")) else {
        panic!("no target");
    };
    let reference = json["@odata.id"].as_str().unwrap();
    assert_eq!(
        target(reference).path.segments,
        vec![named("accounts", id(ACCOUNT))]
    );
    let t = target(&format!(
        "/api/data/v9.2/systemusers({USER})/RetrieveUserPrivileges()"
    ));
    assert_eq!(
        t.path.segments,
        vec![
            named("systemusers", id(USER)),
            named("RetrieveUserPrivileges", Some(Args::Named(vec![])))
        ]
    );
    let t = target(
        "/api/data/v9.2/RetrieveSharedPrincipalsAndAccess(Target=@p1)?@p1=%7B%22@odata.id%22:%22accounts(11111111-1111-1111-1111-111111111111)%22%7D",
    );
    assert!(matches!(
        t.path
            .first()
            .and_then(|s| s.args.as_ref())
            .and_then(|a| a.get("Target")),
        Some(ParamValue::Json(_))
    ));
}

#[test]
fn metadata_paths() {
    assert_eq!(
        target("/api/data/v9.2/$metadata").path.segments,
        vec![PathSegment::Metadata]
    );
    let t = target(
        "/api/data/v9.2/EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName",
    );
    assert_eq!(t.path.segments.len(), 3);
    assert_eq!(t.query.select, Some(vec!["LogicalName".to_owned()]));
}

/// The batch body of §3.3, byte for byte (`startBatch(); create(contacts, contentId 1);
/// retrieveMultiple(accounts, select name, top 1); executeBatch()`).
fn client_batch() -> (String, String) {
    let body = format!(
        "\r\n--dwa_batch_{UUID}\r\n\
         Content-Type: multipart/mixed;boundary=changeset_{UUID}\r\n\r\n\
         --changeset_{UUID}\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\
         Content-ID: 1\r\n\r\n\
         POST http://127.0.0.1:47111/api/data/v9.2/contacts HTTP/1.1\r\n\
         Content-Type: application/json\r\n\r\n\
         {{\"firstname\":\"John\"}}\r\n\r\n\
         --changeset_{UUID}--\r\n\r\n\
         --dwa_batch_{UUID}\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\r\n\
         GET http://127.0.0.1:47111/api/data/v9.2/accounts?$select=name&$top=1 HTTP/1.1\r\n\
         Accept: application/json\r\n\r\n\
         --dwa_batch_{UUID}--\r\n"
    );
    (format!("multipart/mixed;boundary=dwa_batch_{UUID}"), body)
}

#[test]
fn the_clients_batch() {
    let (content_type, body) = client_batch();
    let batch = parse_batch(&content_type, body.as_bytes()).unwrap();
    let [BatchPart::ChangeSet(set), BatchPart::Request(get)] = batch.parts.as_slice() else {
        panic!("{:?}", batch.parts);
    };
    let [create] = set.requests.as_slice() else {
        panic!("{:?}", set.requests);
    };
    assert_eq!(create.content_id.as_deref(), Some("1"));
    assert_eq!(create.method, Method::Post);
    assert_eq!(create.url, "http://127.0.0.1:47111/api/data/v9.2/contacts");
    assert_eq!(create.version, "HTTP/1.1");
    assert_eq!(create.header("Content-Type"), Some("application/json"));
    assert_eq!(create.body, br#"{"firstname":"John"}"#);
    assert_eq!(
        target(&create.url).path.segments,
        vec![named("contacts", None)]
    );
    assert_eq!(get.content_id, None);
    assert_eq!(get.method, Method::Get);
    assert_eq!(get.header("accept"), Some("application/json"));
    assert!(get.body.is_empty());
    let t = target(&get.url);
    assert_eq!(t.query.select, Some(vec!["name".to_owned()]));
    assert_eq!(t.query.top, Some(1));
    // The same body with LF line ends, and with a quoted boundary parameter.
    let lf = body.replace("\r\n", "\n");
    assert_eq!(parse_batch(&content_type, lf.as_bytes()).unwrap(), batch);
    let quoted = format!("multipart/mixed; boundary=\"dwa_batch_{UUID}\"");
    assert_eq!(parse_batch(&quoted, body.as_bytes()).unwrap(), batch);
}

#[test]
fn content_id_references_and_long_filters_in_batches() {
    let body = "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n\
        --c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 100001\r\n\r\n\
        POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"A\"}\r\n\
        --c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 100002\r\n\r\n\
        PUT $100001/primarycontactid/$ref HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"@odata.id\":\"contacts(11111111-1111-1111-1111-111111111111)\"}\r\n\
        --c--\r\n\
        --b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n\
        GET accounts?$filter=name%20eq%20'a'%20or%20name%20eq%20'b' HTTP/1.1\r\n\r\n\
        --b--\r\n";
    let batch = parse_batch("multipart/mixed;boundary=b", body.as_bytes()).unwrap();
    let [BatchPart::ChangeSet(set), BatchPart::Request(get)] = batch.parts.as_slice() else {
        panic!("{:?}", batch.parts);
    };
    let reference = target(&set.requests[1].url);
    assert_eq!(
        reference.path.segments,
        vec![
            PathSegment::ContentId("100001".into()),
            named("primarycontactid", None),
            PathSegment::Ref
        ]
    );
    assert_eq!(set.requests[1].method, Method::Put);
    assert!(matches!(target(&get.url).query.filter, Some(Filter::Or(list)) if list.len() == 2));
}

/// Reads a batch response as `dynamics-web-api`'s `parseBatchResponse` does: the first line is
/// the delimiter; a part containing `--changesetresponse_` is read again after its first
/// line; each part's status comes from its `HTTP/1.1 <code> <text>` line and its JSON from the
/// first `{` to the last `}`. Returns (status, json) per request.
fn client_reads(response: &str) -> Vec<(u16, String)> {
    let line_end = response.find(['\r', '\n']).unwrap();
    let delimiter = &response[..line_end];
    let mut parts: Vec<&str> = response.split(delimiter).collect();
    assert_eq!(parts.remove(0), "");
    assert!(parts.pop().unwrap().starts_with("--"));
    let mut out = Vec::new();
    for part in parts {
        if part.contains("--changesetresponse_") {
            let part = part.trim();
            let first = part.find(['\r', '\n']).unwrap();
            out.extend(client_reads(part[first + 1..].trim()));
            continue;
        }
        let status_at = part.find("HTTP/1.1 ").unwrap();
        let status: u16 = part[status_at + 9..status_at + 12].parse().unwrap();
        let json = match (part.find('{'), part.rfind('}')) {
            (Some(a), Some(b)) => part[a..=b].to_owned(),
            _ => String::new(),
        };
        out.push((status, json));
    }
    out
}

#[test]
fn the_client_reads_our_batch_response() {
    let created = |n: &str| PartResponse {
        content_id: Some(n.into()),
        status: 204,
        headers: vec![(
            "OData-EntityId".into(),
            format!("http://127.0.0.1:47111/api/data/v9.2/contacts({ACCOUNT})"),
        )],
        ..PartResponse::default()
    };
    let listed = PartResponse {
        status: 200,
        headers: vec![(
            "Content-Type".into(),
            "application/json; odata.metadata=minimal".into(),
        )],
        body: br#"{"@odata.context":"x","value":[{"name":"A"}]}"#.to_vec(),
        ..PartResponse::default()
    };
    let failed = PartResponse {
        status: 404,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"error":{"code":"0x80040217","message":"missing"}}"#.to_vec(),
        ..PartResponse::default()
    };
    let written = write_batch_response(
        &[
            ResponsePart::ChangeSet(vec![created("1"), created("2")]),
            ResponsePart::Single(listed),
            ResponsePart::Single(failed),
        ],
        &BoundaryToken::from_seed(7),
    );
    let text = String::from_utf8(written.body).unwrap();
    assert!(text.starts_with("--batchresponse_"));
    assert!(
        written
            .content_type
            .starts_with("multipart/mixed; boundary=batchresponse_")
    );
    assert!(text.starts_with(&format!(
        "--{}\r\n",
        written.content_type.trim_start_matches("multipart/mixed; boundary=")
    )));
    let read = client_reads(&text);
    assert_eq!(
        read,
        vec![
            (204, String::new()),
            (204, String::new()),
            (
                200,
                r#"{"@odata.context":"x","value":[{"name":"A"}]}"#.to_owned()
            ),
            (
                404,
                r#"{"error":{"code":"0x80040217","message":"missing"}}"#.to_owned()
            ),
        ]
    );
    assert_eq!(text.matches("OData-EntityId: ").count(), 2);
    assert_eq!(text.matches("Content-ID: ").count(), 2);
    // Deterministic for a seed.
    let again = write_batch_response(&[], &BoundaryToken::from_seed(7));
    assert_eq!(again.content_type, written.content_type);
}
