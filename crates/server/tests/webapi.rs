//! The Dataverse Web API (`/api/data/v9.2/`, issue 10) against a real server over TCP: every
//! route's happy path and response shape, every bad input as a Dataverse error, the route
//! authorization matrix (401 without credentials, 403 `0x80040220` without the privilege, with
//! nothing written), impersonation through `MSCRMCallerID`, questions about other users (D27),
//! the audit of Web API writes, and a differential test against the native API on the demo
//! organisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Client, Fixture, Response, SALES_RECORDS, SUPPORT_RECORDS, alice_readable};
use serde_json::{Value, json};

use common::web::{BAD_QUERY, DENIED, INVALID, LIMIT, NO_RESOURCE, NOT_FOUND, V, api};

/// The fixture's organisation with what the Web API tests need besides: a `contact` table that
/// `account.primarycontactid` looks up, contacts in Sales (`con1`, alice's, the lookup of
/// `a001`) and Support (`con2`, carol's, the lookup of `a002`), an owner team in Sales, an
/// access team template on accounts, audrey in the team, a share of `a010` to bob, and
/// `nobody`, a Sales user without any role.
struct Web {
    f: Fixture,
    nobody: String,
}

impl Web {
    fn new() -> Web {
        let f = Fixture::new();
        let rep = json!({
            "account": {"create": "user", "read": "business_unit", "write": "user", "delete": "user",
                "append": "user", "append_to": "user", "assign": "user", "share": "user"},
            "contact": {"create": "user", "read": "business_unit", "write": "user", "delete": "user",
                "append": "user", "append_to": "user"}
        });
        f.root().write(
            &f.org,
            &json!([
                {"op": "add_table", "name": "contact", "columns": [{"name": "fullname"}, {"name": "emailaddress1"}]},
                {"op": "add_relationship", "name": "account_primary_contact", "parent": "contact",
                 "child": "account", "lookup": "primarycontactid", "behavior": "referential"},
                {"op": "set_role_privileges", "role": "Rep", "privileges": rep},
                {"op": "insert_record", "id": "con1", "table": "contact", "owner": "alice",
                 "fields": {"fullname": "Con One", "emailaddress1": "one@example.com"}},
                {"op": "insert_record", "id": "con2", "table": "contact", "owner": "carol",
                 "fields": {"fullname": "Con Two"}},
                {"op": "associate", "record": "a001", "lookup": "primarycontactid", "parent": "con1"},
                {"op": "associate", "record": "a002", "lookup": "primarycontactid", "parent": "con2"},
                {"op": "add_team", "name": "Sales Team", "type": "owner", "business_unit": "Sales"},
                {"op": "add_role", "name": "Contact Reader", "privileges": {"contact": {"read": "organization"}}},
                {"op": "assign_role", "principal": "team:Sales Team", "role": "Contact Reader"},
                {"op": "add_template", "name": "Account Team", "table": "account", "rights": ["read", "write"]},
                {"op": "add_team_member", "team": "Sales Team", "user": "audrey"},
                {"op": "share", "record": "a010", "principal": "bob", "rights": ["read"]},
                {"op": "add_user", "name": "nobody", "business_unit": "Sales"}
            ]),
        );
        let nobody = f.as_(&f.keys.admin).key_for(&f.org, "nobody");
        Web { f, nobody }
    }

    fn admin(&self) -> Client {
        self.f.as_(&self.f.keys.admin)
    }

    fn alice(&self) -> Client {
        self.f.as_(&self.f.keys.alice)
    }

    fn bob(&self) -> Client {
        self.f.as_(&self.f.keys.bob)
    }

    fn carol(&self) -> Client {
        self.f.as_(&self.f.keys.carol)
    }

    /// The service root as the server writes it in links: `http://127.0.0.1:port/api/data/v9.2/`.
    fn base(&self) -> String {
        format!("http://{}{V}", self.f.server.addr)
    }

    /// A record's GUID, from the native API.
    fn guid(&self, key: &str) -> String {
        native_guid(&self.f.root(), &self.f.org, key)
    }

    /// Every user's GUID by name, from the `systemusers` entity set (read by the administrator).
    fn users(&self) -> BTreeMap<String, String> {
        let page = self
            .admin()
            .get(&api("systemusers?$select=domainname"))
            .expect(200);
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["domainname"].as_str().unwrap().to_owned(),
                    u["systemuserid"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The organisation's revision, from the native API.
    fn revision(&self) -> u64 {
        self.f.root().revision(&self.f.org)
    }
}

fn native_guid(root: &Client, org: &str, key: &str) -> String {
    let r = root
        .get(&format!("/api/v1/orgs/{org}/records/{key}?user=admin"))
        .expect(200);
    r["guid"].as_str().unwrap().to_owned()
}

/// The caller's `systemuserid`, from `WhoAmI`.
fn user_id(c: &Client) -> String {
    c.get(&api("WhoAmI()")).expect(200)["UserId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn get_with(c: &Client, path: &str, headers: &[(&str, &str)]) -> Response {
    c.raw("GET", path, headers, b"")
}

fn json_request(
    c: &Client,
    method: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Response {
    let mut h = vec![("Content-Type", "application/json; charset=utf-8")];
    h.extend_from_slice(headers);
    c.raw(method, path, &h, body.to_string().as_bytes())
}

fn patch(c: &Client, path: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
    json_request(c, "PATCH", path, body, headers)
}

/// Asserts a Dataverse error: the status, `error.code`, Strata's code beside it, and words the
/// message must hold. Returns the message.
#[track_caller]
fn web_error(r: &Response, status: u16, code: &str, strata: &str, words: &[&str]) -> String {
    let e = r.expect_error(status, code);
    assert_eq!(e["strata_code"], json!(strata), "{e}");
    let message = e["message"].as_str().unwrap().to_owned();
    for w in words {
        assert!(message.contains(w), "message {message:?} lacks {w:?}");
    }
    if status == 401 {
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{e}");
    }
    message
}

/// Asserts a 204 with an empty body.
#[track_caller]
fn no_content(r: &Response) {
    assert_eq!(r.status, 204, "unexpected status; body: {}", r.brief());
    assert!(r.body.is_empty(), "a 204 with a body: {}", r.brief());
}

/// The GUID at the end of an `OData-EntityId`, checked to be absolute under `base` + `set`.
#[track_caller]
fn entity_id(r: &Response, base: &str, set: &str) -> String {
    let id = r
        .header("odata-entityid")
        .unwrap_or_else(|| panic!("no OData-EntityId: {}", r.brief()));
    let prefix = format!("{base}{set}(");
    let guid = id
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("OData-EntityId `{id}` is not `{prefix}<guid>)`"));
    assert!(is_guid(guid), "`{guid}` is not a GUID");
    guid.to_owned()
}

fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}

/// Follows `@odata.nextLink` from `first` (each link checked to be absolute under `base`),
/// sending `headers` with every page. Returns every item and the number of pages.
fn all_pages(c: &Client, base: &str, first: &str, headers: &[(&str, &str)]) -> (Vec<Value>, usize) {
    let origin = base.strip_suffix(V).unwrap();
    let mut items = Vec::new();
    let mut path = first.to_owned();
    for pages in 1..=10_000 {
        let page = get_with(c, &path, headers).expect(200);
        items.extend(page["value"].as_array().unwrap().iter().cloned());
        match page["@odata.nextLink"].as_str() {
            None => return (items, pages),
            Some(next) => {
                assert!(
                    next.starts_with(base),
                    "next link `{next}` is not under {base}"
                );
                path = next[origin.len()..].to_owned();
            }
        }
    }
    panic!("more than 10,000 pages from {first}");
}

fn strings(items: &[Value], column: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            i[column]
                .as_str()
                .unwrap_or_else(|| panic!("no `{column}` in {i}"))
                .to_owned()
        })
        .collect()
}

/// A function parameter alias as dynamics-web-api writes it: raw braces, quotes as `%22`.
fn alias(json: &str) -> String {
    json.replace('"', "%22")
}

// ---------------------------------------------------------------------------------------------
// Metadata and WhoAmI
// ---------------------------------------------------------------------------------------------

#[test]
fn service_document_metadata_and_entity_definitions() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let doc = alice.get(V).expect(200);
    assert_eq!(doc["@odata.context"], json!(format!("{base}$metadata")));
    let sets: BTreeSet<String> = strings(doc["value"].as_array().unwrap(), "name")
        .into_iter()
        .collect();
    for set in [
        "accounts",
        "contacts",
        "systemusers",
        "teams",
        "businessunits",
        "roles",
        "teamtemplates",
    ] {
        assert!(sets.contains(set), "{set} not in {sets:?}");
    }
    // v9.0 and v9.1 answer too; other versions are unknown resources.
    for version in ["v9.0", "v9.1"] {
        alice
            .get(&format!("/api/data/{version}/WhoAmI()"))
            .expect(200);
    }
    web_error(
        &alice.get("/api/data/v8.2/WhoAmI()"),
        404,
        NO_RESOURCE,
        "unknown_route",
        &["v8.2"],
    );

    let csdl = alice.get(&api("$metadata"));
    assert_eq!(csdl.status, 200);
    assert!(
        csdl.header("content-type")
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = csdl.text();
    for needle in [
        "<EntityType Name=\"account\">",
        "<PropertyRef Name=\"accountid\"/>",
        "<Property Name=\"creditlimit\" Type=\"Edm.String\"/>",
        "<Property Name=\"_primarycontactid_value\" Type=\"Edm.Guid\"/>",
        "<NavigationProperty Name=\"primarycontactid\" Type=\"mscrm.contact\"",
        "<EntitySet Name=\"accounts\" EntityType=\"Microsoft.Dynamics.CRM.account\"/>",
        "<EntitySet Name=\"contacts\" EntityType=\"Microsoft.Dynamics.CRM.contact\"/>",
    ] {
        assert!(xml.contains(needle), "$metadata lacks {needle}");
    }

    let def = alice
        .get(&api("EntityDefinitions(LogicalName='account')"))
        .expect(200);
    assert_eq!(
        def["@odata.context"],
        json!(format!("{base}$metadata#EntityDefinitions/$entity"))
    );
    assert_eq!(def["LogicalName"], json!("account"));
    assert_eq!(def["EntitySetName"], json!("accounts"));
    assert_eq!(def["PrimaryIdAttribute"], json!("accountid"));
    assert_eq!(def["PrimaryNameAttribute"], json!("name"));
    assert_eq!(def["OwnershipType"], json!("UserOwned"));
    let by_id = alice
        .get(&api(&format!(
            "EntityDefinitions({})",
            def["MetadataId"].as_str().unwrap()
        )))
        .expect(200);
    assert_eq!(by_id["LogicalName"], json!("account"));
    let selected = alice
        .get(&api(
            "EntityDefinitions(LogicalName='contact')?$select=LogicalName,EntitySetName",
        ))
        .expect(200);
    assert_eq!(selected["EntitySetName"], json!("contacts"));
    assert!(selected.get("PrimaryIdAttribute").is_none(), "{selected}");
    let filtered = alice
        .get(&api(
            "EntityDefinitions?$select=LogicalName&$filter=LogicalName%20eq%20'contact'%20or%20LogicalName%20eq%20'account'",
        ))
        .expect(200);
    let names: BTreeSet<String> = strings(filtered["value"].as_array().unwrap(), "LogicalName")
        .into_iter()
        .collect();
    assert_eq!(names, BTreeSet::from(["account".into(), "contact".into()]));

    let attributes = alice
        .get(&api("EntityDefinitions(LogicalName='account')/Attributes"))
        .expect(200);
    assert_eq!(
        attributes["@odata.context"],
        json!(format!(
            "{base}$metadata#EntityDefinitions(account)/Attributes"
        ))
    );
    let all = attributes["value"].as_array().unwrap();
    let credit = all
        .iter()
        .find(|a| a["LogicalName"] == "creditlimit")
        .unwrap();
    assert_eq!(credit["IsSecured"], json!(true));
    let lookups = alice
        .get(&api(
            "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.LookupAttributeMetadata",
        ))
        .expect(200);
    let lookups = lookups["value"].as_array().unwrap();
    assert!(
        lookups
            .iter()
            .all(|a| a["@odata.type"] == "#Microsoft.Dynamics.CRM.LookupAttributeMetadata")
    );
    let lookup_names = strings(lookups, "LogicalName");
    assert!(lookup_names.contains(&"primarycontactid".to_owned()));
    assert!(lookup_names.contains(&"ownerid".to_owned()));
    let one = alice
        .get(&api(
            "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')",
        ))
        .expect(200);
    assert_eq!(one["IsPrimaryName"], json!(true));
    web_error(
        &alice.get(&api("EntityDefinitions(LogicalName='nope')")),
        404,
        NOT_FOUND,
        "not_found",
        &["nope"],
    );
    // Metadata is read only.
    web_error(
        &alice.post(&api("$metadata"), &json!({})),
        405,
        INVALID,
        "method_not_allowed",
        &["read only"],
    );
}

#[test]
fn who_am_i_names_the_caller_its_unit_and_organization() {
    let w = Web::new();
    let base = w.base();
    let alice = w.alice();
    let me = alice.get(&api("WhoAmI()")).expect(200);
    assert_eq!(
        me["@odata.context"],
        json!(format!(
            "{base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
        ))
    );
    let users = w.users();
    assert_eq!(me["UserId"].as_str(), Some(users["alice"].as_str()));
    let admin = w.admin();
    let units = admin.get(&api("businessunits?$select=name")).expect(200);
    let sales = units["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Sales")
        .unwrap();
    assert_eq!(me["BusinessUnitId"], sales["businessunitid"]);
    let user = admin
        .get(&api(&format!(
            "systemusers({})?$select=domainname,_businessunitid_value",
            me["UserId"].as_str().unwrap()
        )))
        .expect(200);
    assert_eq!(user["domainname"], json!("alice"));
    assert_eq!(user["_businessunitid_value"], me["BusinessUnitId"]);
    // Everyone of the organisation is in the same one.
    let bob = w.bob().get(&api("WhoAmI()")).expect(200);
    assert!(is_guid(me["OrganizationId"].as_str().unwrap()));
    assert_eq!(bob["OrganizationId"], me["OrganizationId"]);
    assert_ne!(bob["UserId"], me["UserId"]);
    // A function is called with GET.
    web_error(
        &alice.post(&api("WhoAmI()"), &json!({})),
        405,
        INVALID,
        "method_not_allowed",
        &["GET"],
    );
    // The root key is not a user.
    let root = w.f.root().raw(
        "GET",
        &api("WhoAmI()"),
        &[("X-Strata-Organization", "contoso")],
        b"",
    );
    web_error(&root, 400, INVALID, "bad_actor", &["root key"]);
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

#[test]
fn lists_page_through_absolute_next_links_built_from_the_host() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let prefer = [("Prefer", "odata.maxpagesize=40")];
    let first = get_with(&alice, &api("accounts?$select=name&$orderby=name"), &prefer);
    let page = first.expect(200);
    assert_eq!(
        first.header("preference-applied"),
        Some("odata.maxpagesize=40")
    );
    assert!(
        first
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(first.header("odata-version"), Some("4.0"));
    // X-Forwarded-Host and -Proto are not trusted unless the server is told to
    // (`--trust-forwarded-headers`): a client cannot make it hand out links to another host.
    let forwarded = get_with(
        &alice,
        &api("accounts?$select=name"),
        &[
            ("Prefer", "odata.maxpagesize=2"),
            ("X-Forwarded-Host", "attacker.example"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .expect(200);
    assert!(
        forwarded["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&base),
        "{forwarded}"
    );
    assert_eq!(
        page["@odata.context"],
        json!(format!("{base}$metadata#accounts(name)"))
    );
    let value = page["value"].as_array().unwrap();
    assert_eq!(value.len(), 40);
    for item in value {
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["@odata.etag", "accountid", "name"]),
            "{item}"
        );
        assert!(item["@odata.etag"].as_str().unwrap().starts_with("W/\""));
        assert!(is_guid(item["accountid"].as_str().unwrap()));
    }
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&format!("{base}accounts?")), "{next}");
    assert!(next.contains("$skiptoken="), "{next}");

    // Every page with the preference: 152 records in pages of 40, in order, each once.
    let (items, pages) = all_pages(
        &alice,
        &base,
        &api("accounts?$select=name&$orderby=name"),
        &prefer,
    );
    assert_eq!(pages, 4);
    let names = strings(&items, "name");
    let mut expected: Vec<String> = common::alice_readable()
        .iter()
        .map(|k| format!("Contoso {k}"))
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    // A client that sends the next link without the preference gets the rest in one page.
    let (rest, pages) = all_pages(&alice, &base, &next[base.len() - V.len()..], &[]);
    assert_eq!((rest.len(), pages), (expected.len() - 40, 1));
    assert_eq!(strings(&rest, "name"), expected[40..]);

    // Preferences comma-joined without spaces, as dynamics-web-api sends them.
    let joined = get_with(
        &alice,
        &api("accounts?$select=_ownerid_value"),
        &[(
            "Prefer",
            "odata.maxpagesize=3,odata.include-annotations=\"*\"",
        )],
    )
    .expect(200);
    assert_eq!(joined["value"].as_array().unwrap().len(), 3);
    assert_eq!(
        joined["value"][0]["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        json!("systemuser")
    );
    // The links follow the Host the client used (another spelling of this server).
    let other = get_with(
        &alice,
        &api("accounts?$select=name"),
        &[
            ("Prefer", "odata.maxpagesize=5"),
            ("Host", "localhost:4711"),
        ],
    )
    .expect(200);
    assert_eq!(
        other["@odata.context"],
        json!("http://localhost:4711/api/data/v9.2/$metadata#accounts(name)")
    );
    assert!(
        other["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:4711/api/data/v9.2/accounts?")
    );
}

#[test]
fn top_holds_across_next_links() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let all = alice
        .get(&api("accounts?$select=name&$orderby=name%20desc"))
        .expect(200);
    let all = strings(all["value"].as_array().unwrap(), "name");
    assert_eq!(all.len(), SALES_RECORDS + 2);
    let (items, pages) = all_pages(
        &alice,
        &base,
        &api("accounts?$select=name&$orderby=name%20desc&$top=7"),
        &[("Prefer", "odata.maxpagesize=3")],
    );
    assert_eq!(pages, 3);
    assert_eq!(strings(&items, "name"), all[..7]);
    // A $top the first page holds: no next link.
    let page = get_with(
        &alice,
        &api("accounts?$top=2"),
        &[("Prefer", "odata.maxpagesize=3")],
    )
    .expect(200);
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert!(page.get("@odata.nextLink").is_none(), "{page}");
    // The count of records returned so far is part of the signed token: lowering it to get
    // past $top is a tampered token.
    let first = get_with(
        &alice,
        &api("accounts?$select=name&$orderby=name%20desc&$top=7"),
        &[("Prefer", "odata.maxpagesize=3")],
    )
    .expect(200);
    let next = first["@odata.nextLink"].as_str().unwrap();
    let path = &next[base.len() - V.len()..];
    assert!(path.contains("$skiptoken=3."), "{path}");
    web_error(
        &alice.get(&path.replace("$skiptoken=3.", "$skiptoken=0.")),
        400,
        INVALID,
        "bad_cursor",
        &[],
    );
    // $top=0 returns nothing.
    let page = alice.get(&api("accounts?$top=0")).expect(200);
    assert_eq!(page["value"], json!([]));
}

#[test]
fn counts_as_text_and_in_lists() {
    let w = Web::new();
    let (alice, bob, carol) = (w.alice(), w.bob(), w.carol());
    for (client, n) in [
        (&alice, SALES_RECORDS + 2),
        (&bob, SALES_RECORDS + 1),
        (&carol, common::SUPPORT_RECORDS + 1),
    ] {
        let r = client.get(&api("accounts/$count"));
        assert_eq!(r.status, 200, "{}", r.brief());
        assert!(
            r.header("content-type").unwrap().starts_with("text/plain"),
            "{:?}",
            r.headers
        );
        assert_eq!(r.text(), n.to_string());
        let page = get_with(
            client,
            &api("accounts?$select=name&$count=true"),
            &[("Prefer", "odata.maxpagesize=10")],
        )
        .expect(200);
        assert_eq!(page["@odata.count"], json!(n));
        assert_eq!(page["value"].as_array().unwrap().len(), 10);
    }
    let page = alice
        .get(&api("accounts?$count=true&$filter=contains(name,'a14')"))
        .expect(200);
    assert_eq!(page["@odata.count"], json!(10));
    // /$count with a $filter counts what it matches.
    let r = alice.get(&api("accounts/$count?$filter=contains(name,'a14')"));
    assert_eq!((r.status, r.text()), (200, "10".to_owned()));
    web_error(
        &alice.get(&api("accounts/$count?$filter=nope%20eq%201")),
        400,
        BAD_QUERY,
        "unknown_column",
        &["nope"],
    );
    let page = alice.get(&api("accounts?$top=1")).expect(200);
    assert!(page.get("@odata.count").is_none(), "{page}");
}

#[test]
fn form_encoded_queries_read_as_raw_ones() {
    let w = Web::new();
    let alice = w.alice();
    let raw = alice
        .get(&api(
            "accounts?$select=name,accountid&$filter=name%20eq%20%27Contoso%20a001%27",
        ))
        .expect(200);
    let form = alice
        .get(&api(
            "accounts?%24select=name%2Caccountid&%24filter=name+eq+%27Contoso+a001%27",
        ))
        .expect(200);
    assert_eq!(raw["value"].as_array().unwrap().len(), 1);
    assert_eq!(raw, form);
    assert_eq!(raw["value"][0]["accountid"], json!(w.guid("a001")));
}

/// The accounts a filter selects for a client, by name without "Contoso ".
fn filtered_names(c: &Client, query: &str) -> BTreeSet<String> {
    let page = c
        .get(&api(&format!("accounts?$select=name&$filter={query}")))
        .expect(200);
    strings(page["value"].as_array().unwrap(), "name")
        .into_iter()
        .map(|n| n.trim_start_matches("Contoso ").to_owned())
        .collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

#[test]
fn filters_in_endswith_and_the_other_functions() {
    let w = Web::new();
    let alice = w.alice();
    let names = |query: &str| filtered_names(&alice, query);
    // In, raw brackets and encoded ones; c001 is Support's and not alice's to read.
    let in_ = "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['Contoso%20a001','Contoso%20a002','Contoso%20c001'])";
    assert_eq!(names(in_), set(&["a001", "a002"]));
    assert_eq!(
        names(&in_.replace('[', "%5B").replace(']', "%5D")),
        set(&["a001", "a002"])
    );
    let nines: Vec<String> = (0..15).map(|i| format!("a{:03}", i * 10 + 9)).collect();
    assert_eq!(
        names("endswith(name,'9')"),
        nines.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(names("startswith(name,'Contoso%20b')"), set(&["b1"]));
    assert_eq!(
        names("contains(name,'a14')%20and%20not%20endswith(name,'0')").len(),
        9
    );
    assert_eq!(
        names("name%20eq%20'Contoso%20s1'%20or%20name%20eq%20'Contoso%20c001'"),
        set(&["s1"])
    );
    // The record's state, as the client's own example filters it (`statecode eq 0`): every
    // fixture account is active.
    assert_eq!(
        names("name%20eq%20'Contoso%20s1'%20and%20statecode%20eq%200"),
        set(&["s1"])
    );
    assert!(names("statecode%20eq%201").is_empty());
    alice
        .get(&api(
            "accounts?$select=name&$orderby=statecode%20desc,name&$top=2",
        ))
        .expect(200);
    // A secured column alice cannot read matches nothing (bob, in Credit Viewers, finds it),
    // and orders nothing.
    let counted = |c: &Client, filter: &str| {
        c.get(&api(&format!(
            "accounts?$count=true&$top=1&$filter={filter}"
        )))
        .expect(200)["@odata.count"]
            .clone()
    };
    assert_eq!(counted(&alice, "creditlimit%20ge%201000"), json!(0));
    assert_eq!(
        counted(&w.bob(), "creditlimit%20ge%201000"),
        json!(SALES_RECORDS)
    );
    let ordered = |dir: &str| {
        alice
            .get(&api(&format!(
                "accounts?$select=name&$top=5&$orderby=creditlimit%20{dir},name"
            )))
            .expect(200)["value"]
            .clone()
    };
    assert_eq!(ordered("asc"), ordered("desc"));
    // A quote inside a literal is doubled.
    assert_eq!(names("name%20eq%20'O''Brien'"), set(&[]));
}

/// Percent-encodes a query value as `encodeURIComponent` does.
fn uri_component(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Decodes `%XX` escapes, as `decodeURIComponent` does.
fn uri_decoded(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn fetch_xml(c: &Client, set: &str, xml: &str, headers: &[(&str, &str)]) -> Response {
    get_with(
        c,
        &api(&format!("{set}?fetchXml={}", uri_component(xml))),
        headers,
    )
}

/// The next page's FetchXML as dynamics-web-api writes it from a page's paging cookie: the
/// cookie's `pagingcookie` decoded twice, XML-escaped into `paging-cookie`, the page moved on.
fn next_fetch(template: &str, page: &Value) -> Option<String> {
    let cookie = page["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"].as_str()?;
    let decoded = uri_decoded(&uri_decoded(cookie));
    let start = decoded.find("pagingcookie=\"")? + "pagingcookie=\"".len();
    let inner = &decoded[start..decoded.find("</cookie>")? + "</cookie>".len()];
    let number: u32 = decoded["<cookie pagenumber=\"".len()..]
        .split('"')
        .next()?
        .parse()
        .ok()?;
    let escaped = inner
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    Some(template.replace(
        "<fetch ",
        &format!("<fetch page=\"{number}\" paging-cookie=\"{escaped}\" "),
    ))
}

/// D162: FetchXML lists the table as the caller reads it, with `$filter`'s semantics (a
/// secured column the caller may not read matches nothing), and pages through paging cookies
/// as Dataverse's clients follow them, or by page number.
#[test]
fn fetch_xml_lists_as_the_caller_and_pages_by_cookie() {
    let w = Web::new();
    let alice = w.alice();
    let names = |c: &Client, xml: &str| -> BTreeSet<String> {
        let page = fetch_xml(c, "accounts", xml, &[]).expect(200);
        strings(page["value"].as_array().unwrap(), "name")
            .into_iter()
            .map(|n| n.trim_start_matches("Contoso ").to_owned())
            .collect()
    };
    let one = |condition: &str| {
        format!(
            "<fetch><entity name='account'><attribute name='name'/><filter>{condition}</filter></entity></fetch>"
        )
    };
    // The same records as the same $filter; a record alice may not read is never listed.
    assert_eq!(
        names(
            &alice,
            &one("<condition attribute='name' operator='like' value='Contoso a14%'/>")
        ),
        filtered_names(&alice, "startswith(name,'Contoso%20a14')")
    );
    assert!(
        names(
            &alice,
            &one("<condition attribute='name' operator='eq' value='Contoso c001'/>")
        )
        .is_empty()
    );
    assert_eq!(
        names(
            &alice,
            &one(
                "<condition attribute='name' operator='in'><value>Contoso a001</value><value>Contoso c001</value><value>Contoso s1</value></condition>"
            )
        ),
        set(&["a001", "s1"])
    );
    // Numbers compare as numbers; a secured column alice may not read matches nothing.
    let credit = one(
        "<condition attribute='creditlimit' operator='between'><value>1003</value><value>1005</value></condition>",
    );
    assert_eq!(names(&w.bob(), &credit), set(&["a003", "a004", "a005"]));
    assert!(names(&alice, &credit).is_empty());
    // The caller's own records (`eq-userid`), and by owner GUID in braces, uppercase.
    let mine = names(
        &alice,
        &one("<condition attribute='ownerid' operator='eq-userid'/>"),
    );
    let alice_id = user_id(&alice);
    assert_eq!(mine.len(), SALES_RECORDS);
    assert_eq!(
        mine,
        names(
            &alice,
            &one(&format!(
                "<condition attribute='ownerid' operator='eq' value='{{{}}}'/>",
                alice_id.to_uppercase()
            ))
        )
    );
    // Attributes are the page's columns, a lookup by its logical name as `_x_value`.
    let page = fetch_xml(&alice, "accounts", "<fetch top='1'><entity name='account'><attribute name='name'/><attribute name='primarycontactid'/><filter><condition attribute='name' operator='eq' value='Contoso a001'/></filter></entity></fetch>", &[]).expect(200);
    let item = &page["value"][0];
    assert_eq!(item["name"], json!("Contoso a001"));
    assert_eq!(item["_primarycontactid_value"], json!(w.guid("con1")));
    assert!(item.get("creditlimit").is_none(), "{item}");
    assert!(
        page["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#accounts(name,_primarycontactid_value)")
    );

    // Pages of 7 through the cookies, as dynamics-web-api's fetchAll follows them.
    let template = "<fetch count='7' returntotalrecordcount='true'><entity name='account'><attribute name='name'/><order attribute='name' descending='true'/></entity></fetch>";
    let prefer = [(
        "Prefer",
        "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\"",
    )];
    let mut xml = template.to_owned();
    let mut walked = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = fetch_xml(&alice, "accounts", &xml, &prefer).expect(200);
        assert_eq!(
            page["@Microsoft.Dynamics.CRM.totalrecordcount"],
            json!(alice_readable().len())
        );
        assert!(page.get("@odata.nextLink").is_none());
        walked.extend(strings(page["value"].as_array().unwrap(), "name"));
        pages.push(page.clone());
        match next_fetch(template, &page) {
            Some(next) => {
                assert_eq!(page["@Microsoft.Dynamics.CRM.morerecords"], json!(true));
                xml = next;
            }
            None => {
                assert_eq!(page["@Microsoft.Dynamics.CRM.morerecords"], json!(false));
                break;
            }
        }
        assert!(pages.len() < 100, "the cookies never end");
    }
    let mut expected: Vec<String> = alice_readable()
        .iter()
        .map(|k| format!("Contoso {k}"))
        .collect();
    expected.sort();
    expected.reverse();
    assert_eq!(walked, expected);
    assert_eq!(pages.len(), expected.len().div_ceil(7));
    // Page 3 without its cookie (simple paging) is the same page.
    let third = fetch_xml(
        &alice,
        "accounts",
        &template.replace("<fetch ", "<fetch page='3' "),
        &[],
    )
    .expect(200);
    assert_eq!(third["value"], pages[2]["value"]);
    assert!(
        third.get("@Microsoft.Dynamics.CRM.morerecords").is_none(),
        "annotations only when asked"
    );
    // Past the last page: empty.
    let past = fetch_xml(
        &alice,
        "accounts",
        &template.replace("<fetch ", "<fetch page='40' "),
        &prefer,
    )
    .expect(200);
    assert_eq!(past["value"], json!([]));
    assert_eq!(past["@Microsoft.Dynamics.CRM.morerecords"], json!(false));
    // A cookie is signed for its query and its reader: bob's page 2 from alice's cookie, or a
    // cookie edited, is refused; another page's cookie is ignored, as Dataverse ignores it.
    let second = next_fetch(template, &pages[0]).unwrap();
    fetch_xml(&w.bob(), "accounts", &second, &prefer).expect_error(400, INVALID);
    let edited = second.replacen("after=&quot;", "after=&quot;00", 1);
    fetch_xml(&alice, "accounts", &edited, &prefer).expect_error(400, INVALID);
    let skipped = second.replacen("page=\"2\"", "page=\"3\"", 1);
    assert_eq!(
        fetch_xml(&alice, "accounts", &skipped, &[]).expect(200)["value"],
        pages[2]["value"]
    );

    // Links: an inner link keeps the records whose related record the caller reads and the
    // link's filter matches (a002's contact is carol's, which alice may not read); its columns
    // come as `alias_x002e_column`, as Dataverse names them; an outer link keeps every record.
    let linked = |c: &Client, link: &str| -> BTreeMap<String, Value> {
        let xml = format!(
            "<fetch><entity name='account'><attribute name='name'/><filter><condition attribute='name' operator='in'><value>Contoso a001</value><value>Contoso a002</value><value>Contoso a003</value></condition></filter>{link}</entity></fetch>"
        );
        let page = fetch_xml(c, "accounts", &xml, &[]).expect(200);
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["name"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("Contoso ")
                        .to_owned(),
                    i.clone(),
                )
            })
            .collect()
    };
    let inner = "<link-entity name='contact' from='contactid' to='primarycontactid' alias='pc'><attribute name='fullname'/></link-entity>";
    // Without a filter of the entity's own too (the link alone picks the records).
    let alone = fetch_xml(
        &alice,
        "accounts",
        &format!("<fetch><entity name='account'><attribute name='name'/>{inner}</entity></fetch>"),
        &[],
    )
    .expect(200);
    assert_eq!(
        strings(alone["value"].as_array().unwrap(), "name"),
        ["Contoso a001"]
    );
    assert_eq!(alone["value"][0]["pc_x002e_fullname"], json!("Con One"));
    let alone = fetch_xml(&w.admin(), "accounts", &format!("<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>{inner}</entity></fetch>"), &[]).expect(200);
    assert_eq!(
        strings(alone["value"].as_array().unwrap(), "name"),
        ["Contoso a001", "Contoso a002"]
    );
    let mine = linked(&alice, inner);
    assert_eq!(mine.keys().collect::<Vec<_>>(), ["a001"]);
    assert_eq!(mine["a001"]["pc_x002e_fullname"], json!("Con One"));
    let all = linked(&w.admin(), inner);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a001", "a002"]);
    assert_eq!(all["a002"]["pc_x002e_fullname"], json!("Con Two"));
    let filtered = "<link-entity name='contact' to='primarycontactid'><filter><condition attribute='fullname' operator='eq' value='Con Two'/></filter></link-entity>";
    let two = linked(&w.admin(), filtered);
    assert_eq!(two.keys().collect::<Vec<_>>(), ["a002"]);
    assert!(
        two["a002"].get("contact1_x002e_fullname").is_none(),
        "no attributes asked: {}",
        two["a002"]
    );
    assert!(linked(&alice, filtered).is_empty());
    let outer = linked(
        &alice,
        &inner.replace("alias='pc'", "alias='pc' link-type='outer'"),
    );
    assert_eq!(outer.keys().collect::<Vec<_>>(), ["a001", "a002", "a003"]);
    assert_eq!(outer["a001"]["pc_x002e_fullname"], json!("Con One"));
    assert!(
        outer["a002"].get("pc_x002e_fullname").is_none(),
        "{}",
        outer["a002"]
    );
    for (link, status, code, strata, words) in [
        (
            "<link-entity name='systemuser' to='primarycontactid'/>",
            400,
            BAD_QUERY,
            "odata_syntax",
            &["leads to `contact`"][..],
        ),
        (
            "<link-entity name='contact' from='parentcustomerid' to='accountid'/>",
            400,
            BAD_QUERY,
            "odata_syntax",
            &["`parentcustomerid` is not a lookup of `contact`"][..],
        ),
        (
            "<link-entity name='systemuser' from='systemuserid' to='ownerid'/>",
            400,
            INVALID,
            "odata_unsupported",
            &["owners"][..],
        ),
        (
            "<link-entity name='contact' to='nope'/>",
            400,
            BAD_QUERY,
            "unknown_column",
            &["nope"][..],
        ),
        (
            "<link-entity name='contact' from='fullname' to='primarycontactid'/>",
            400,
            INVALID,
            "odata_unsupported",
            &["contactid"][..],
        ),
        (
            "<link-entity name='contact' to='primarycontactid'><attribute name='nope'/></link-entity>",
            400,
            BAD_QUERY,
            "unknown_column",
            &["nope"][..],
        ),
        (
            "<link-entity name='contact' to='primarycontactid'><link-entity name='account' to='parentcustomerid'/></link-entity>",
            400,
            INVALID,
            "odata_unsupported",
            &["inside another"][..],
        ),
    ] {
        let xml = format!("<fetch><entity name='account'>{link}</entity></fetch>");
        web_error(
            &fetch_xml(&alice, "accounts", &xml, &[]),
            status,
            code,
            strata,
            words,
        );
    }

    // Refused: another table's entity, what is not answered, beside $ options, elsewhere.
    let r = fetch_xml(
        &alice,
        "accounts",
        "<fetch><entity name='contact'/></fetch>",
        &[],
    );
    web_error(&r, 400, BAD_QUERY, "odata_syntax", &["contact", "account"]);
    let r = fetch_xml(
        &alice,
        "accounts",
        "<fetch><entity name='account'><attribute name='nope'/></entity></fetch>",
        &[],
    );
    web_error(&r, 400, BAD_QUERY, "unknown_column", &["nope"]);
    let r = fetch_xml(
        &alice,
        "accounts",
        "<fetch><entity name='account'><filter><condition attribute='nope' operator='eq' value='1'/></filter></entity></fetch>",
        &[],
    );
    web_error(&r, 400, BAD_QUERY, "unknown_column", &["nope"]);
    let r = fetch_xml(
        &alice,
        "accounts",
        "<fetch count='5000' page='11'><entity name='account'/></fetch>",
        &[],
    );
    web_error(&r, 400, LIMIT, "odata_limit", &["paging-cookie"]);
    let r = get_with(
        &alice,
        &api(&format!(
            "accounts?$select=name&fetchXml={}",
            uri_component(template)
        )),
        &[],
    );
    web_error(&r, 400, BAD_QUERY, "odata_syntax", &["$select", "fetchXml"]);
    let r = fetch_xml(&alice, "teams", "<fetch><entity name='team'/></fetch>", &[]);
    web_error(&r, 400, INVALID, "odata_unsupported", &["fetchXml"]);
    let r = fetch_xml(&w.f.as_(&w.nobody), "accounts", template, &[]);
    web_error(&r, 403, DENIED, "denied", &["Read"]);
    let r = fetch_xml(&alice, "accounts", "<fetch><entity name='account'>", &[]);
    web_error(&r, 400, BAD_QUERY, "odata_syntax", &["fetchXml"]);
}

/// D162: links that only filter (`exists`, `in`, `any`, `not any`), many-to-one and one-to-many
/// (`to` the entity's key, `from` the related table's lookup): a related record counts only when
/// the caller reads it and the link's filter matches.
#[test]
fn fetch_xml_links_that_only_filter() {
    let w = Web::new();
    w.f.root().write(
        &w.f.org,
        &json!([
            {"op": "insert_record", "id": "con3", "table": "contact", "owner": "alice",
             "fields": {"fullname": "Con Three"}},
            {"op": "insert_record", "id": "con4", "table": "contact", "owner": "alice",
             "fields": {"fullname": "Con Four"}},
            {"op": "associate", "record": "c001", "lookup": "primarycontactid", "parent": "con3"}
        ]),
    );
    let audrey = w.f.as_(&w.f.keys.audrey);
    let contacts = |c: &Client, link: &str| -> BTreeSet<String> {
        let xml = format!(
            "<fetch><entity name='contact'><attribute name='fullname'/>{link}</entity></fetch>"
        );
        let page = fetch_xml(c, "contacts", &xml, &[]).expect(200);
        strings(page["value"].as_array().unwrap(), "fullname")
            .into_iter()
            .collect()
    };
    let accounts_of = |kind: &str, filter: &str| {
        format!(
            "<link-entity name='account' from='primarycontactid' to='contactid' link-type='{kind}'>{filter}</link-entity>"
        )
    };
    // con3's only account (c001, Support) is one alice may not read: for her it has none.
    assert_eq!(
        contacts(&w.alice(), &accounts_of("exists", "")),
        set(&["Con One"])
    );
    assert_eq!(
        contacts(&w.alice(), &accounts_of("any", "")),
        set(&["Con One"])
    );
    assert_eq!(
        contacts(&w.alice(), &accounts_of("not any", "")),
        set(&["Con Three", "Con Four"])
    );
    assert_eq!(
        contacts(&audrey, &accounts_of("in", "")),
        set(&["Con One", "Con Two", "Con Three"])
    );
    assert_eq!(
        contacts(&audrey, &accounts_of("not any", "")),
        set(&["Con Four"])
    );
    let named = "<filter><condition attribute='name' operator='eq' value='Contoso a002'/></filter>";
    assert_eq!(
        contacts(&audrey, &accounts_of("exists", named)),
        set(&["Con Two"])
    );
    assert!(contacts(&w.alice(), &accounts_of("exists", named)).is_empty());
    // Many-to-one: the accounts whose primary contact alice does not read (or have none).
    let page = fetch_xml(
        &w.alice(),
        "accounts",
        "<fetch><entity name='account'><attribute name='name'/><link-entity name='contact' from='contactid' to='primarycontactid' link-type='not any'/></entity></fetch>",
        &[],
    )
    .expect(200);
    let listed = strings(page["value"].as_array().unwrap(), "name");
    assert_eq!(listed.len(), alice_readable().len() - 1);
    assert!(!listed.contains(&"Contoso a001".to_owned()));
    assert!(listed.contains(&"Contoso a002".to_owned()));
    // Refused by name: a one-to-many link that would give a row per related record, columns
    // on a link that only filters, a `from` that is not the related table's lookup.
    web_error(
        &fetch_xml(
            &w.alice(),
            "contacts",
            "<fetch><entity name='contact'><link-entity name='account' from='primarycontactid' to='contactid'/></entity></fetch>",
            &[],
        ),
        400,
        INVALID,
        "odata_unsupported",
        &["exists"],
    );
    web_error(
        &fetch_xml(
            &w.alice(),
            "contacts",
            "<fetch><entity name='contact'><link-entity name='account' from='primarycontactid' to='contactid' link-type='exists'><attribute name='name'/></link-entity></entity></fetch>",
            &[],
        ),
        400,
        BAD_QUERY,
        "odata_syntax",
        &["only filters"],
    );
    web_error(
        &fetch_xml(
            &w.alice(),
            "contacts",
            "<fetch><entity name='contact'><link-entity name='account' from='name' to='contactid' link-type='exists'/></entity></fetch>",
            &[],
        ),
        400,
        BAD_QUERY,
        "odata_syntax",
        &["`name` is not a lookup"],
    );
}

/// A date `days` from today (UTC), as `YYYY-MM-DD`.
fn day(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    strata_odata::date::Date::from_days(i64::try_from(now / 86_400).unwrap() + days).to_string()
}

/// Seconds since the Unix epoch of an RFC 3339 time to the second (`2026-12-07T22:30:00Z`).
fn epoch_seconds(text: &str) -> i64 {
    assert_eq!(text.len(), 20, "`{text}` is not to the second, in UTC");
    let date = strata_odata::date::Date::parse(&text[..10]).unwrap();
    let part = |at: usize| text[at..at + 2].parse::<i64>().unwrap();
    date.days() * 86_400 + part(11) * 3_600 + part(14) * 60 + part(17)
}

/// D165: every record keeps when and by whom it was created and last changed — `createdon`,
/// `modifiedon`, `_createdby_value`, `_modifiedby_value` — set by the server (the acting user,
/// the one acted for when impersonating; null for the system), never by a body; and lists filter
/// and order by them.
#[test]
fn records_keep_when_and_by_whom_they_were_created_and_changed() {
    let w = Web::new();
    let users = w.users();
    let (alice, admin) = (w.alice(), w.admin());
    // A second after the fixture's records, so that ours is the newest by createdon.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let started = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let created = json_request(
        &alice,
        "POST",
        &api("accounts"),
        &json!({"name": "Stamped", "createdon": "2001-01-01T00:00:00Z"}),
        &[],
    );
    assert_eq!(created.status, 204, "{}", created.brief());
    let id = entity_id(&created, &w.base(), "accounts");
    let path = api(&format!("accounts({id})"));
    let formatted = [("Prefer", "odata.include-annotations=\"*\"")];
    // Formatted values name users to a reader who may read them: the administrator.
    let first = get_with(&admin, &path, &formatted).expect(200);
    let createdon = first["createdon"].as_str().unwrap().to_owned();
    let at = epoch_seconds(&createdon);
    assert!((started - 1..=started + 120).contains(&at), "{first}");
    assert_eq!(first["modifiedon"], json!(createdon), "{first}");
    for writer in ["_createdby_value", "_modifiedby_value"] {
        assert_eq!(first[writer], json!(users["alice"]), "{first}");
        assert_eq!(
            first[format!("{writer}@Microsoft.Dynamics.CRM.lookuplogicalname")],
            json!("systemuser")
        );
        assert_eq!(
            first[format!("{writer}@OData.Community.Display.V1.FormattedValue")],
            json!("alice")
        );
    }
    // Records the system inserted (setup) have no creating user.
    let a001 = get_with(&alice, &api(&format!("accounts({})", w.guid("a001"))), &[]).expect(200);
    assert_eq!(a001["_createdby_value"], Value::Null, "{a001}");
    assert!(epoch_seconds(a001["createdon"].as_str().unwrap()) <= at);

    // A change a second later: modifiedon moves, the writer is the administrator acting for
    // alice (MSCRMCallerID), createdon and createdby stay, and a body's stamps are ignored.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let as_alice = [("MSCRMCallerID", users["alice"].as_str())];
    no_content(&patch(
        &admin,
        &path,
        &json!({"name": "Stamped again", "modifiedon": "2001-01-01T00:00:00Z",
                "_createdby_value": users["bob"]}),
        &as_alice,
    ));
    let second = get_with(&alice, &path, &[]).expect(200);
    assert_eq!(second["createdon"], json!(createdon));
    assert!(
        epoch_seconds(second["modifiedon"].as_str().unwrap()) > at,
        "{second}"
    );
    assert_eq!(second["_createdby_value"], json!(users["alice"]));
    assert_eq!(second["_modifiedby_value"], json!(users["alice"]));
    // The administrator as itself; then a share, which is no change of the record.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    no_content(&patch(
        &admin,
        &path,
        &json!({"name": "Stamped thrice"}),
        &[],
    ));
    let third = get_with(&alice, &path, &[]).expect(200);
    assert_eq!(third["_modifiedby_value"], json!(users["admin"]));
    let modifiedon = third["modifiedon"].as_str().unwrap().to_owned();
    assert!(modifiedon.as_str() > second["modifiedon"].as_str().unwrap());
    let grant = json!({
        "Target": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": id},
        "PrincipalAccess": {"Principal": {"@odata.type": "Microsoft.Dynamics.CRM.systemuser",
            "systemuserid": users["bob"]}, "AccessMask": "ReadAccess"}
    });
    no_content(&alice.post(&api("GrantAccess"), &grant));
    w.bob().get(&path).expect(200);
    assert_eq!(
        get_with(&alice, &path, &[]).expect(200)["modifiedon"],
        json!(modifiedon)
    );

    // Lists filter and order by them: synchronising by modifiedon, by writer, newest first.
    let names = |query: &str| -> Vec<String> {
        let query = query.replace(' ', "%20");
        let page = alice
            .get(&api(&format!("accounts?$select=name&{query}")))
            .expect(200);
        strings(page["value"].as_array().unwrap(), "name")
    };
    assert_eq!(
        names(&format!("$filter=modifiedon gt {createdon}")),
        ["Stamped thrice"]
    );
    assert_eq!(
        names(&format!("$filter=_modifiedby_value eq {}", users["admin"])),
        ["Stamped thrice"]
    );
    assert_eq!(
        names(&format!("$filter=_createdby_value eq {}", users["alice"])),
        ["Stamped thrice"]
    );
    assert_eq!(names("$orderby=createdon desc&$top=1"), ["Stamped thrice"]);
    assert!(names("$filter=_createdby_value eq null").len() > 1);
    let selected = alice
        .get(&api(&format!(
            "accounts({id})?$select=createdon,_modifiedby_value"
        )))
        .expect(200);
    let mut keys: Vec<&str> = selected
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "@odata.context",
            "@odata.etag",
            "_modifiedby_value",
            "accountid",
            "createdon"
        ],
        "{selected}"
    );
    // The writers as navigation properties, expanded as the reader may read users.
    let expanded = admin
        .get(&api(&format!(
            "accounts({id})?$select=name&$expand=createdby($select=fullname),modifiedby($select=fullname)"
        )))
        .expect(200);
    assert_eq!(
        expanded["createdby"]["systemuserid"],
        json!(users["alice"]),
        "{expanded}"
    );
    assert_eq!(
        expanded["createdby"]["fullname"],
        json!("alice"),
        "{expanded}"
    );
    assert_eq!(
        expanded["modifiedby"]["fullname"],
        json!("admin"),
        "{expanded}"
    );
    // FetchXML: `createdby` is the lookup, the date operators apply to `createdon`.
    let page = fetch_xml(
        &alice,
        "accounts",
        "<fetch><entity name='account'><attribute name='name'/><attribute name='createdby'/><attribute name='modifiedon'/><filter><condition attribute='createdon' operator='last-seven-days'/><condition attribute='createdby' operator='eq-userid'/></filter></entity></fetch>",
        &[],
    )
    .expect(200);
    let rows = page["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["_createdby_value"], json!(users["alice"]));
    assert_eq!(rows[0]["modifiedon"], json!(modifiedon));

    // The names are the system's: a native write naming one is refused, nothing written.
    let before = w.revision();
    let refused = w.f.root().post(
        &format!("/api/v1/orgs/{}/operations", w.f.org),
        &json!([{"op": "create", "as": "alice", "table": "account", "id": "forged",
                 "fields": {"name": "Forged", "createdon": "2001-01-01T00:00:00Z"}}]),
    );
    assert_eq!(refused.status, 400, "{}", refused.brief());
    assert!(
        refused.text().contains("system_column"),
        "{}",
        refused.brief()
    );
    assert_eq!(w.revision(), before);
}

/// D164: FetchXML's date operators keep the records whose ISO 8601 value falls in the days they
/// name, counted from today (UTC); aggregates group such values by their parts.
#[test]
fn fetch_xml_date_operators_and_date_groupings() {
    let w = Web::new();
    w.f.root().write(
        &w.f.org,
        &json!([{"op": "add_columns", "table": "account", "columns": [{"name": "closedate"}]}]),
    );
    let alice = w.alice();
    for (key, value) in [
        ("a001", format!("{}T09:30:00Z", day(0))),
        ("a002", format!("{}T23:59:59Z", day(-1))),
        ("a003", day(-40)),
        ("a004", "next spring".to_owned()),
    ] {
        let r = patch(
            &alice,
            &api(&format!("accounts({})", w.guid(key))),
            &json!({ "closedate": value }),
            &[],
        );
        assert_eq!(r.status, 204, "{}", r.brief());
    }
    let closing = |operator: &str, value: &str| -> BTreeSet<String> {
        let value = if value.is_empty() {
            String::new()
        } else {
            format!(" value='{value}'")
        };
        let xml = format!(
            "<fetch><entity name='account'><attribute name='name'/><filter><condition attribute='closedate' operator='{operator}'{value}/></filter></entity></fetch>"
        );
        let page = fetch_xml(&alice, "accounts", &xml, &[]).expect(200);
        strings(page["value"].as_array().unwrap(), "name")
            .into_iter()
            .map(|n| n.trim_start_matches("Contoso ").to_owned())
            .collect()
    };
    assert_eq!(closing("today", ""), set(&["a001"]));
    assert_eq!(closing("yesterday", ""), set(&["a002"]));
    assert_eq!(closing("last-x-days", "2"), set(&["a001", "a002"]));
    assert_eq!(closing("last-seven-days", ""), set(&["a001", "a002"]));
    assert_eq!(closing("olderthan-x-days", "30"), set(&["a003"]));
    assert_eq!(closing("on", &day(-40)), set(&["a003"]));
    // A value that is no date is in no range of days.
    assert_eq!(closing("on-or-after", &day(-1)), set(&["a001", "a002"]));
    assert_eq!(closing("not-on", &day(0)), set(&["a002", "a003"]));
    assert_eq!(closing("on-or-before", &day(-1)), set(&["a002", "a003"]));
    assert!(closing("tomorrow", "").is_empty());
    // $filter's date query functions keep the same days.
    assert_eq!(
        filtered_names(
            &alice,
            "Microsoft.Dynamics.CRM.Today(PropertyName=%27closedate%27)"
        ),
        set(&["a001"])
    );
    assert_eq!(
        filtered_names(
            &alice,
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName=%27closedate%27,PropertyValue=2)"
        ),
        closing("last-x-days", "2")
    );
    assert_eq!(
        filtered_names(
            &alice,
            &format!(
                "Microsoft.Dynamics.CRM.OnOrBefore(PropertyName=%27closedate%27,PropertyValue={})",
                day(-1)
            )
        ),
        set(&["a002", "a003"])
    );
    // Grouped by day: one row a day; a value that is no date is refused by name.
    let by_day = "<fetch aggregate='true'><entity name='account'><attribute name='accountid' aggregate='count' alias='n'/><attribute name='closedate' groupby='true' dategrouping='day' alias='day'/>{filter}</entity></fetch>";
    let page = fetch_xml(
        &alice,
        "accounts",
        &by_day.replace("{filter}", "<filter><condition attribute='closedate' operator='last-x-months' value='3'/></filter>"),
        &[],
    )
    .expect(200);
    let rows = page["value"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{page}");
    assert!(rows.iter().all(|r| r["n"] == json!(1)), "{page}");
    web_error(
        &fetch_xml(
            &alice,
            "accounts",
            &by_day.replace(
                "{filter}",
                "<filter><condition attribute='closedate' operator='not-null'/></filter>",
            ),
            &[],
        ),
        400,
        INVALID,
        "bad_value",
        &["closedate", &w.guid("a004"), "date"],
    );
}

fn applied(c: &Client, query: &str) -> Response {
    c.get(&api(&format!("accounts?$apply={}", uri_component(query))))
}

/// D163: `$apply` and FetchXML aggregates count, sum and group the records the caller reads,
/// each column as the caller sees it (a secured column is null: not summed, not counted);
/// past the record limit the answer is Dataverse's AggregateQueryRecordLimit error.
#[test]
fn aggregates_count_sum_and_group_as_the_caller_reads() {
    let w = Web::new();
    let (alice, bob) = (w.alice(), w.bob());
    let users = w.users();
    let count = |c: &Client, query: &str| applied(c, query).expect(200)["value"][0]["n"].clone();
    assert_eq!(
        count(&alice, "aggregate($count as n)"),
        json!(alice_readable().len())
    );
    assert_eq!(
        count(&w.carol(), "aggregate($count as n)"),
        json!(SUPPORT_RECORDS + 1)
    );
    assert_eq!(
        count(
            &alice,
            "filter(startswith(name,'Contoso a14'))/aggregate($count as n)"
        ),
        json!(10)
    );
    // Grouped by owner: the caller's readable records only, each owner's GUID.
    let page = applied(&alice, "groupby((_ownerid_value),aggregate($count as n))").expect(200);
    assert!(
        page["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#accounts(_ownerid_value,n)"),
        "{page}"
    );
    let by_owner: BTreeMap<String, Value> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["_ownerid_value"].as_str().unwrap().to_owned(),
                row["n"].clone(),
            )
        })
        .collect();
    let expected: BTreeMap<String, Value> = [("alice", SALES_RECORDS), ("bob", 1), ("carol", 1)]
        .into_iter()
        .map(|(u, n)| (users[u].clone(), json!(n)))
        .collect();
    assert_eq!(by_owner, expected);
    // Ordered by the count, the first row only.
    let top = alice
        .get(&api(&format!(
            "accounts?$apply={}&$orderby=n%20desc&$top=1",
            uri_component("groupby((_ownerid_value),aggregate($count as n))")
        )))
        .expect(200);
    assert_eq!(
        top["value"],
        json!([{"@odata.id": null, "_ownerid_value": users["alice"], "n": SALES_RECORDS}])
    );
    // The secured column: bob (a credit viewer) sums it, alice sees nothing to sum.
    let measures = "aggregate(creditlimit with sum as total,creditlimit with min as least,creditlimit with max as most,creditlimit with average as mean,creditlimit with countdistinct as kinds)";
    let sum: usize = (0..SALES_RECORDS).map(|i| 1000 + i).sum();
    let row = applied(&bob, measures).expect(200)["value"][0].clone();
    assert_eq!(row["total"], json!(sum));
    assert_eq!(
        (row["least"].clone(), row["most"].clone()),
        (json!(1000), json!(1000 + SALES_RECORDS - 1))
    );
    assert_eq!(row["mean"], json!(sum as f64 / SALES_RECORDS as f64));
    assert_eq!(row["kinds"], json!(SALES_RECORDS));
    let row = applied(&alice, measures).expect(200)["value"][0].clone();
    assert_eq!(
        row,
        json!({"@odata.id": null, "total": null, "least": null, "most": null, "mean": null, "kinds": 0})
    );

    // FetchXML: the same counts, grouped by owner and ordered by alias.
    let page = fetch_xml(
        &alice,
        "accounts",
        "<fetch aggregate='true'><entity name='account'><attribute name='accountid' aggregate='count' alias='n'/><attribute name='ownerid' groupby='true' alias='owner'/><order alias='n' descending='true'/></entity></fetch>",
        &[],
    )
    .expect(200);
    assert_eq!(
        page["value"][0],
        json!({"owner": users["alice"], "n": SALES_RECORDS})
    );
    assert_eq!(page["value"].as_array().unwrap().len(), 3);
    let page = fetch_xml(
        &bob,
        "accounts",
        "<fetch aggregate='true'><entity name='account'><attribute name='creditlimit' aggregate='countcolumn' alias='values'/><attribute name='creditlimit' aggregate='countcolumn' distinct='true' alias='kinds'/><attribute name='creditlimit' aggregate='sum' alias='total'/></entity></fetch>",
        &[],
    )
    .expect(200);
    assert_eq!(
        page["value"],
        json!([{"values": SALES_RECORDS, "kinds": SALES_RECORDS, "total": sum}])
    );
    // An inner link narrows the records aggregated, as the caller reads the related records.
    let linked = "<fetch aggregate='true'><entity name='account'><attribute name='accountid' aggregate='count' alias='n'/><link-entity name='contact' from='contactid' to='primarycontactid'><filter><condition attribute='fullname' operator='like' value='Con%'/></filter></link-entity></entity></fetch>";
    assert_eq!(
        fetch_xml(&alice, "accounts", linked, &[]).expect(200)["value"],
        json!([{"n": 1}])
    );
    let audrey = w.f.as_(&w.f.keys.audrey);
    assert_eq!(
        fetch_xml(&audrey, "accounts", linked, &[]).expect(200)["value"],
        json!([{"n": 2}])
    );
    web_error(
        &fetch_xml(&w.carol(), "accounts", linked, &[]),
        403,
        DENIED,
        "denied",
        &["contact"],
    );
    // Past the limit: AggregateQueryRecordLimit.
    web_error(
        &fetch_xml(
            &alice,
            "accounts",
            "<fetch aggregate='true' aggregatelimit='100'><entity name='account'><attribute name='accountid' aggregate='count' alias='n'/></entity></fetch>",
            &[],
        ),
        400,
        "0x8004e023",
        "aggregate_limit",
        &["AggregateQueryRecordLimit", "100"],
    );

    // Refusals, each named; nothing is answered as another query.
    web_error(
        &applied(&bob, "aggregate(name with sum as total)"),
        400,
        INVALID,
        "bad_value",
        &["name", "sum takes numbers"],
    );
    web_error(
        &applied(&alice, "aggregate(nothing with sum as total)"),
        400,
        BAD_QUERY,
        "unknown_column",
        &["nothing"],
    );
    web_error(
        &applied(&alice, "compute(name as x)"),
        400,
        INVALID,
        "odata_unsupported",
        &["compute"],
    );
    web_error(
        &applied(&alice, "groupby(name)"),
        400,
        BAD_QUERY,
        "odata_syntax",
        &["parentheses"],
    );
    web_error(
        &alice.get(&api(
            "accounts?$apply=aggregate($count%20as%20n)&$filter=name%20eq%20'x'",
        )),
        400,
        INVALID,
        "odata_unsupported",
        &["$filter", "$apply"],
    );
    web_error(
        &alice.get(&api(
            "accounts?$apply=aggregate($count%20as%20n)&$orderby=name",
        )),
        400,
        BAD_QUERY,
        "bad_order",
        &["name"],
    );
    let a001 = w.guid("a001");
    web_error(
        &alice.get(&api(&format!(
            "accounts({a001})?$apply=aggregate($count%20as%20n)"
        ))),
        400,
        INVALID,
        "odata_unsupported",
        &["$apply"],
    );
    web_error(
        &w.f.as_(&w.nobody)
            .get(&api("accounts?$apply=aggregate($count%20as%20n)")),
        403,
        DENIED,
        "denied",
        &[],
    );
}

#[test]
fn filters_on_ids_owners_units_and_lookups_by_guid() {
    let w = Web::new();
    let alice = w.alice();
    let names = |query: &str| filtered_names(&alice, query);
    let (a001, a002, con1) = (w.guid("a001"), w.guid("a002"), w.guid("con1"));
    // The primary id, alone, negated and in a list; a GUID of another table or of nothing
    // matches no record.
    assert_eq!(names(&format!("accountid%20eq%20{a001}")), set(&["a001"]));
    assert_eq!(
        names(&format!(
            "Microsoft.Dynamics.CRM.In(PropertyName='accountid',PropertyValues=['{a001}','{a002}'])"
        )),
        set(&["a001", "a002"])
    );
    assert!(names(&format!("accountid%20eq%20{con1}")).is_empty());
    assert!(names("accountid%20eq%2000000000-0000-0000-0000-000000000001").is_empty());
    // A lookup, by the parent's GUID and by null.
    assert_eq!(
        names(&format!("_primarycontactid_value%20eq%20{con1}")),
        set(&["a001"])
    );
    let with_contact = names("_primarycontactid_value%20ne%20null");
    assert_eq!(with_contact, set(&["a001", "a002"]));
    let all = names("statecode%20eq%200");
    let without = names("_primarycontactid_value%20eq%20null");
    assert_eq!(without.len() + 2, all.len());
    // The owner: alice's own accounts, as her WhoAmI names her; her unit's.
    let me = user_id(&alice);
    let mine = names(&format!("_ownerid_value%20eq%20{me}"));
    assert!(mine.contains("a001") && !mine.is_empty() && mine.len() < all.len());
    assert_eq!(names(&format!("_owninguser_value%20eq%20{me}")), mine);
    let unit = alice.get(&api("WhoAmI()")).expect(200)["BusinessUnitId"]
        .as_str()
        .unwrap()
        .to_owned();
    // s1 belongs to a unit below alice's: her unit's records are the others.
    let in_unit = names(&format!("_owningbusinessunit_value%20eq%20{unit}"));
    assert!(
        in_unit.contains("a001") && !in_unit.contains("s1"),
        "{in_unit:?}"
    );
    assert_eq!(in_unit.len() + 1, all.len());
    assert_eq!(
        names(&format!(
            "_ownerid_value%20eq%20{me}%20and%20not%20_primarycontactid_value%20eq%20null"
        )),
        mine.intersection(&with_contact).cloned().collect()
    );
    // statuscode 1 is active, 2 inactive.
    assert_eq!(names("statuscode%20eq%201"), all);
    assert!(names("statuscode%20eq%202").is_empty());
    // What a GUID column cannot be asked: named, with a stable code.
    for (query, words) in [
        ("contains(_ownerid_value,'a')", "_ownerid_value"),
        (
            "accountid%20gt%2000000000-0000-0000-0000-000000000001",
            "accountid",
        ),
        ("_primarycontactid_value%20eq%20'x'", "not a GUID"),
        ("_owninguser_value%20eq%20null", "_owninguser_value"),
        ("statuscode%20gt%201", "statuscode"),
    ] {
        let r = alice.get(&api(&format!("accounts?$filter={query}")));
        let body = r.text();
        assert_eq!(r.status, 400, "{query}: {body}");
        assert!(body.contains(words), "{query}: {body}");
    }
}

#[test]
fn list_items_are_the_records_as_a_retrieve_answers_them() {
    // A list writes its page straight into the body; a retrieve builds a JSON object: the
    // two must agree on every record, column security, lookups and annotations included.
    let w = Web::new();
    let annotations = ("Prefer", "odata.include-annotations=\"*\"");
    for (c, query) in [
        (w.alice(), "accounts?$top=40&$orderby=name"),
        (w.bob(), "accounts?$top=40"),
        (
            w.alice(),
            "accounts?$top=40&$select=name,creditlimit,_primarycontactid_value,statecode",
        ),
        (w.admin(), "contacts"),
    ] {
        for headers in [vec![], vec![annotations]] {
            let page = get_with(&c, &api(query), &headers).expect(200);
            let items = page["value"].as_array().unwrap();
            assert!(!items.is_empty(), "{query}");
            let (set, select) = match query.split_once("$select=") {
                Some((_, s)) => (query.split('?').next().unwrap(), format!("?$select={s}")),
                None => (query.split('?').next().unwrap(), String::new()),
            };
            let id = if set == "accounts" {
                "accountid"
            } else {
                "contactid"
            };
            for item in items {
                let guid = item[id].as_str().unwrap();
                let mut one =
                    get_with(&c, &api(&format!("{set}({guid}){select}")), &headers).expect(200);
                one.as_object_mut().unwrap().remove("@odata.context");
                assert_eq!(&one, item, "{query} {headers:?}");
            }
        }
    }
}

#[test]
fn expand_a_lookup_with_nested_select() {
    let w = Web::new();
    let alice = w.alice();
    let con1 = w.guid("con1");
    let page = alice
        .get(&api(
            "accounts?$select=name,_primarycontactid_value&$filter=startswith(name,'Contoso%20a00')&$orderby=name&$expand=primarycontactid($select=fullname)",
        ))
        .expect(200);
    let items = page["value"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    let a001 = &items[1];
    assert_eq!(a001["name"], json!("Contoso a001"));
    assert_eq!(a001["_primarycontactid_value"], json!(con1));
    let contact = a001["primarycontactid"].as_object().unwrap();
    assert_eq!(contact["fullname"], json!("Con One"));
    assert_eq!(contact["contactid"], json!(con1));
    assert!(!contact.contains_key("emailaddress1"), "{contact:?}");
    // a002's contact is Support's: alice cannot read it, and it is null.
    assert_eq!(items[2]["primarycontactid"], Value::Null);
    // Without a lookup: null.
    assert_eq!(items[0]["primarycontactid"], Value::Null);
    // Next links keep the filter, the order and the nested options.
    let (paged, pages) = all_pages(
        &alice,
        &w.base(),
        &api(
            "accounts?$select=name,_primarycontactid_value&$filter=startswith(name,'Contoso%20a00')&$orderby=name&$expand=primarycontactid($select=fullname)",
        ),
        &[("Prefer", "odata.maxpagesize=3")],
    );
    assert_eq!(pages, 4);
    assert_eq!(&paged, items);
    // On a retrieve, with two nested columns.
    let one = alice
        .get(&api(&format!(
            "accounts({})?$select=name&$expand=primarycontactid($select=fullname,emailaddress1)",
            w.guid("a001")
        )))
        .expect(200);
    assert_eq!(
        one["primarycontactid"]["emailaddress1"],
        json!("one@example.com")
    );
    // The owner, expanded by the administrator (who reads users).
    let owned = w
        .admin()
        .get(&api(&format!(
            "accounts({})?$select=name&$expand=ownerid($select=domainname)",
            w.guid("a001")
        )))
        .expect(200);
    assert_eq!(owned["ownerid"]["domainname"], json!("alice"));
}

/// Contact `cx` ("Con X") with three related accounts through `primarycontactid`: `ax1` ("Ax
/// One", credit limit 5,000) and `ax3` ("Ax Three", 10) alice's (Sales), `ax2` ("Ax Two")
/// carol's (Support). The credit limit is a secured column alice may not read.
fn contact_with_three_accounts(w: &Web) {
    w.f.root().write(
        &w.f.org,
        &json!([
            {"op": "insert_record", "id": "cx", "table": "contact", "owner": "alice", "fields": {"fullname": "Con X"}},
            {"op": "insert_record", "id": "ax1", "table": "account", "owner": "alice", "fields": {"name": "Ax One", "creditlimit": 5000}},
            {"op": "insert_record", "id": "ax2", "table": "account", "owner": "carol", "fields": {"name": "Ax Two"}},
            {"op": "insert_record", "id": "ax3", "table": "account", "owner": "alice", "fields": {"name": "Ax Three", "creditlimit": 10}},
            {"op": "associate", "record": "ax1", "lookup": "primarycontactid", "parent": "cx"},
            {"op": "associate", "record": "ax2", "lookup": "primarycontactid", "parent": "cx"},
            {"op": "associate", "record": "ax3", "lookup": "primarycontactid", "parent": "cx"}
        ]),
    );
}

/// The `name` of each record of a JSON array.
fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A collection-valued `$expand` (D148): a record's related records through a one-to-many
/// relationship, only those the reader may read, with a nested `$select` and `$top`, on a
/// retrieve and in a list.
#[test]
fn expand_a_collection_of_related_records() {
    let w = Web::new();
    contact_with_three_accounts(&w);
    w.f.root().write(
        &w.f.org,
        &json!([{"op": "insert_record", "id": "cy", "table": "contact", "owner": "alice", "fields": {"fullname": "Con Y"}}]),
    );
    let cx = w.guid("cx");
    let path = api(&format!(
        "contacts({cx})?$select=fullname&$expand=account_primary_contact($select=name)"
    ));
    // Alice reads Sales' accounts: not carol's (Support).
    let mine = w.alice().get(&path).expect(200);
    assert_eq!(
        names(&mine["account_primary_contact"]),
        ["Ax One", "Ax Three"]
    );
    let first = &mine["account_primary_contact"][0];
    assert!(first["accountid"].is_string(), "{first}");
    assert!(first.get("_ownerid_value").is_none(), "{first}");
    let all = w.admin().get(&path).expect(200);
    assert_eq!(
        names(&all["account_primary_contact"]),
        ["Ax One", "Ax Two", "Ax Three"]
    );
    assert!(all.get("account_primary_contact@odata.nextLink").is_none());
    let top = w
        .admin()
        .get(&api(&format!(
            "contacts({cx})?$expand=account_primary_contact($select=name;$top=2)"
        )))
        .expect(200);
    assert_eq!(names(&top["account_primary_contact"]), ["Ax One", "Ax Two"]);
    // In a list, with a single-valued item beside it.
    let page = w
        .alice()
        .get(&api(
            "contacts?$select=fullname&$filter=fullname%20eq%20'Con%20X'&$expand=account_primary_contact($select=name),ownerid",
        ))
        .expect(200);
    assert_eq!(
        names(&page["value"][0]["account_primary_contact"]),
        ["Ax One", "Ax Three"]
    );
    // Support's contact: its account; a contact without related accounts: an empty array.
    let expanded = |key: &str| {
        w.admin()
            .get(&api(&format!(
                "contacts({})?$expand=account_primary_contact($select=name)",
                w.guid(key)
            )))
            .expect(200)["account_primary_contact"]
            .clone()
    };
    assert_eq!(names(&expanded("con2")), ["Contoso a002"]);
    assert_eq!(expanded("cy"), json!([]));
    // $top is a collection's, from 1 to 5,000.
    web_error(
        &w.admin().get(&api(&format!(
            "accounts({})?$expand=primarycontactid($top=2)",
            w.guid("a001")
        ))),
        400,
        BAD_QUERY,
        "odata_syntax",
        &["primarycontactid", "$top"],
    );
    web_error(
        &w.admin().get(&api(&format!(
            "contacts({cx})?$expand=account_primary_contact($top=0)"
        ))),
        400,
        LIMIT,
        "odata_limit",
        &["$top"],
    );
}

/// Nested `$expand`, and `$filter` and `$orderby` inside a collection-valued one (D159): each
/// level read as the reader, every option checked against its table before a record is read.
#[test]
fn nested_expand_and_options_inside_a_collection() {
    let w = Web::new();
    contact_with_three_accounts(&w);
    let cx = w.guid("cx");
    let related = |c: &Client, options: &str| {
        c.get(&api(&format!(
            "contacts({cx})?$select=fullname&$expand=account_primary_contact({options})"
        )))
        .expect(200)["account_primary_contact"]
            .clone()
    };
    // $filter inside a collection: what the reader may read and the filter keeps.
    let filter = "$select=name;$filter=startswith(name,'Ax%20T')";
    assert_eq!(names(&related(&w.admin(), filter)), ["Ax Two", "Ax Three"]);
    assert_eq!(names(&related(&w.alice(), filter)), ["Ax Three"]);
    // A secured column alice may not read is null to her: her filter on it keeps nothing.
    let secured = "$select=name;$filter=creditlimit%20ge%20100";
    assert_eq!(names(&related(&w.admin(), secured)), ["Ax One"]);
    assert_eq!(names(&related(&w.alice(), secured)), Vec::<String>::new());
    // $orderby inside a collection, with $top.
    let ordered = "$select=name;$orderby=name%20desc";
    assert_eq!(
        names(&related(&w.admin(), ordered)),
        ["Ax Two", "Ax Three", "Ax One"]
    );
    assert_eq!(
        names(&related(&w.admin(), &format!("{ordered};$top=2"))),
        ["Ax Two", "Ax Three"]
    );
    // A nested $expand inside a collection: each related account's contact.
    let nested = related(
        &w.alice(),
        "$select=name;$orderby=name;$expand=primarycontactid($select=fullname)",
    );
    assert_eq!(names(&nested), ["Ax One", "Ax Three"]);
    assert_eq!(nested[0]["primarycontactid"]["fullname"], "Con X");
    // A nested $expand inside a lookup: the contact's owning user, as the reader sees it.
    let account = w
        .admin()
        .get(&api(&format!(
            "accounts({})?$select=name&$expand=primarycontactid($select=fullname;$expand=owninguser($select=domainname))",
            w.guid("ax1")
        )))
        .expect(200);
    let owner = &account["primarycontactid"]["owninguser"];
    assert!(owner["domainname"].is_string(), "{account}");
    // In a list too; the owning user is null to alice, who may not read users, and read by
    // the administrator.
    let list = |c: &Client| {
        c.get(&api(
            "contacts?$select=fullname&$filter=fullname%20eq%20'Con%20X'&$expand=account_primary_contact($select=name;$filter=name%20ne%20'Ax%20One';$expand=owninguser($select=domainname))",
        ))
        .expect(200)["value"][0]["account_primary_contact"]
            .clone()
    };
    let accounts = list(&w.alice());
    assert_eq!(names(&accounts), ["Ax Three"]);
    assert!(accounts[0]["owninguser"].is_null(), "{accounts}");
    let accounts = list(&w.admin());
    assert_eq!(names(&accounts), ["Ax Two", "Ax Three"]);
    assert!(
        accounts[1]["owninguser"]["domainname"].is_string(),
        "{accounts}"
    );
    // Checked before any record is read, against the table each level reaches.
    let refused =
        |c: &Client, path: &str, status: u16, code: &str, strata: &str, words: &[&str]| {
            web_error(&c.get(&api(path)), status, code, strata, words);
        };
    let admin = w.admin();
    refused(
        &admin,
        &format!("contacts({cx})?$expand=account_primary_contact($filter=nope%20eq%201)"),
        400,
        BAD_QUERY,
        "unknown_column",
        &["nope", "account"],
    );
    refused(
        &admin,
        &format!("contacts({cx})?$expand=account_primary_contact($orderby=nope)"),
        400,
        BAD_QUERY,
        "unknown_column",
        &["nope", "account"],
    );
    refused(
        &admin,
        &format!("contacts({cx})?$expand=account_primary_contact($expand=nope)"),
        400,
        BAD_QUERY,
        "unknown_column",
        &["nope", "account"],
    );
    refused(
        &admin,
        "accounts?$expand=primarycontactid($filter=fullname%20eq%20'x')",
        400,
        BAD_QUERY,
        "odata_syntax",
        &["primarycontactid", "$filter", "collection-valued"],
    );
    refused(
        &admin,
        "accounts?$expand=ownerid($expand=businessunitid)",
        400,
        INVALID,
        "odata_unsupported",
        &["ownerid", "owninguser"],
    );
    refused(
        &admin,
        "accounts?$expand=primarycontactid($expand=account_primary_contact($expand=primarycontactid))",
        400,
        LIMIT,
        "odata_limit",
        &["2 levels"],
    );
    // An empty page still checks its $expand.
    refused(
        &admin,
        "accounts?$filter=name%20eq%20'none'&$expand=primarycontactid($expand=nope)",
        400,
        BAD_QUERY,
        "unknown_column",
        &["nope", "contact"],
    );
}

/// A user's business unit and manager are navigation properties of `systemusers`, and a user's
/// `fullname` a column, as in Dataverse: `owninguser($expand=businessunitid)` answers.
#[test]
fn a_users_unit_and_manager_expand_as_in_dataverse() {
    let w = Web::new();
    w.f.root().write(
        &w.f.org,
        &json!([{"op": "set_manager", "user": "alice", "manager": "bob"}]),
    );
    let users = w.users();
    let alice = w
        .admin()
        .get(&api(&format!(
            "systemusers({})?$select=fullname&$expand=businessunitid($select=name),parentsystemuserid($select=fullname,domainname)",
            users["alice"]
        )))
        .expect(200);
    assert_eq!(alice["fullname"], "alice", "{alice}");
    assert!(alice["businessunitid"]["name"].is_string(), "{alice}");
    assert_eq!(alice["parentsystemuserid"]["domainname"], "bob", "{alice}");
    // Under a record's owning user, in a list; bob has no manager: null.
    let page = w
        .admin()
        .get(&api(
            "accounts?$select=name&$filter=name%20ne%20null&$top=3&$expand=owninguser($select=fullname;$expand=businessunitid($select=name),parentsystemuserid($select=fullname))",
        ))
        .expect(200);
    let first = &page["value"][0]["owninguser"];
    assert!(first["fullname"].is_string(), "{page}");
    assert!(first["businessunitid"]["name"].is_string(), "{page}");
    assert!(first.get("parentsystemuserid").is_some(), "{page}");
    // A unit, team or role is read with its `$select`, alone or in its set.
    let units = w
        .admin()
        .get(&api("businessunits?$select=name"))
        .expect(200);
    let unit = &units["value"][0];
    assert!(
        unit["name"].is_string() && unit["businessunitid"].is_string(),
        "{units}"
    );
    assert!(unit.get("_parentbusinessunitid_value").is_none(), "{units}");
    let id = unit["businessunitid"].as_str().unwrap();
    let one = w
        .admin()
        .get(&api(&format!("businessunits({id})?$select=name")))
        .expect(200);
    assert_eq!(one["name"], unit["name"], "{one}");
    assert!(one.get("_parentbusinessunitid_value").is_none(), "{one}");
    let teams = w.admin().get(&api("teams?$select=name")).expect(200);
    assert!(teams["value"][0].get("teamtype").is_none(), "{teams}");
    // In pages of `odata.maxpagesize`, the same entities in the same order; `$top` across pages.
    let base = w.base();
    let whole = w.admin().get(&api("roles?$select=name")).expect(200);
    let (paged, pages) = all_pages(
        &w.admin(),
        &base,
        &api("roles?$select=name"),
        &[("Prefer", "odata.maxpagesize=2")],
    );
    assert_eq!(&Value::Array(paged), &whole["value"]);
    let n = whole["value"].as_array().unwrap().len();
    assert_eq!(pages, n.div_ceil(2), "{whole}");
    let (three, _) = all_pages(
        &w.admin(),
        &base,
        &api("roles?$select=name&$top=3"),
        &[("Prefer", "odata.maxpagesize=2")],
    );
    assert_eq!(three.len(), 3.min(n));
    // `$top` holds on them, `$count` counts them all.
    let two = w
        .admin()
        .get(&api("businessunits?$top=2&$count=true"))
        .expect(200);
    assert_eq!(two["value"].as_array().unwrap().len(), 2, "{two}");
    assert_eq!(
        two["@odata.count"],
        units["value"].as_array().unwrap().len(),
        "{two}"
    );
    // The unit leads nowhere further; a user's full name is selected, not filtered on.
    web_error(
        &w.admin().get(&api(
            "systemusers?$expand=businessunitid($expand=parentbusinessunitid)",
        )),
        400,
        INVALID,
        "odata_unsupported",
        &["businessunitid"],
    );
    web_error(
        &w.admin()
            .get(&api("systemusers?$filter=fullname%20eq%20'alice'")),
        400,
        INVALID,
        "odata_unsupported",
        &["fullname"],
    );
}

/// A conditional retrieve: `If-None-Match` with the record's ETag is 304 and no body while
/// the record is unchanged, 200 once it changed; a reader who may not read it is refused first.
#[test]
fn a_conditional_retrieve_is_304_while_unchanged() {
    let w = Web::new();
    let one = api(&format!("accounts({})?$select=name", w.guid("a001")));
    let first = w.alice().get(&one).expect(200);
    let tag = first["@odata.etag"].as_str().unwrap().to_owned();
    let same = get_with(&w.alice(), &one, &[("If-None-Match", &tag)]);
    assert_eq!(same.status, 304, "{}", same.brief());
    assert!(same.body.is_empty(), "{}", same.brief());
    let other = get_with(&w.alice(), &one, &[("If-None-Match", "W/\"1\"")]);
    assert_eq!(other.status, 200, "{}", other.brief());
    let refused = get_with(&w.carol(), &one, &[("If-None-Match", &tag)]);
    assert_eq!(refused.status, 403, "{}", refused.brief());
    no_content(&patch(
        &w.alice(),
        &api(&format!("accounts({})", w.guid("a001"))),
        &json!({"name": "Changed"}),
        &[],
    ));
    let changed = get_with(&w.alice(), &one, &[("If-None-Match", &tag)]);
    assert_eq!(changed.status, 200, "{}", changed.brief());
    assert_eq!(changed.json()["name"], "Changed");
}

/// `GET <set>(key)/<navigation property>`: the related records as a list with the request's
/// options, the related entity (204 when none), a user's roles and a team's members — each
/// read as the caller, from an entity the caller may read.
#[test]
fn navigation_properties_read_as_paths() {
    let w = Web::new();
    contact_with_three_accounts(&w);
    let cx = w.guid("cx");
    let related = |c: &Client, options: &str| {
        c.get(&api(&format!(
            "contacts({cx})/account_primary_contact?$select=name&$orderby=name{options}"
        )))
        .expect(200)
    };
    assert_eq!(
        names(&related(&w.admin(), "")["value"]),
        ["Ax One", "Ax Three", "Ax Two"]
    );
    assert_eq!(
        names(&related(&w.alice(), "")["value"]),
        ["Ax One", "Ax Three"]
    );
    // The request's own $filter and $top hold, and $count counts the related records.
    let page = related(
        &w.admin(),
        "&$filter=startswith(name,'Ax%20T')&$top=1&$count=true",
    );
    assert_eq!(names(&page["value"]), ["Ax Three"], "{page}");
    assert_eq!(page["@odata.count"], 2, "{page}");
    // Their filter stands on its own: one that would escape the path's parentheses is refused.
    web_error(
        &w.admin().get(&api(&format!(
            "contacts({cx})/account_primary_contact?$filter=name%20eq%20'x')%20or%20(name%20ne%20null"
        ))),
        400,
        BAD_QUERY,
        "odata_syntax",
        &[],
    );
    // A lookup: the related record with its $select; none is 204.
    let contact = w
        .alice()
        .get(&api(&format!(
            "accounts({})/primarycontactid?$select=fullname",
            w.guid("ax1")
        )))
        .expect(200);
    assert_eq!(contact["fullname"], "Con X", "{contact}");
    assert!(contact.get("emailaddress1").is_none(), "{contact}");
    let none = w.alice().get(&api(&format!(
        "accounts({})/primarycontactid",
        w.guid("a003")
    )));
    assert_eq!(none.status, 204, "{}", none.brief());
    let owner = w
        .admin()
        .get(&api(&format!(
            "accounts({})/owninguser?$select=fullname",
            w.guid("ax2")
        )))
        .expect(200);
    assert_eq!(owner["fullname"], "carol", "{owner}");
    // A user's roles and teams, a team's members.
    let users = w.users();
    let roles = w
        .admin()
        .get(&api(&format!(
            "systemusers({})/systemuserroles_association?$select=name",
            users["alice"]
        )))
        .expect(200);
    assert_eq!(names(&roles["value"]), ["Rep"], "{roles}");
    let teams = w
        .admin()
        .get(&api(&format!(
            "systemusers({})/teammembership_association?$select=name",
            users["audrey"]
        )))
        .expect(200);
    assert_eq!(names(&teams["value"]), ["Sales Team"], "{teams}");
    let team = teams["value"][0]["teamid"].as_str().unwrap().to_owned();
    let members = w
        .admin()
        .get(&api(&format!(
            "teams({team})/teammembership_association?$select=domainname"
        )))
        .expect(200);
    assert_eq!(members["value"][0]["domainname"], "audrey", "{members}");
    let team_roles = w
        .admin()
        .get(&api(&format!(
            "teams({team})/teamroles_association?$select=name"
        )))
        .expect(200);
    assert_eq!(
        names(&team_roles["value"]),
        ["Contact Reader"],
        "{team_roles}"
    );
    // A column's value, as the reader sees it: a secured one she may not read is null (204).
    let value = |c: &Client, key: &str, column: &str| {
        c.get(&api(&format!("accounts({})/{column}", w.guid(key))))
    };
    let name = value(&w.alice(), "ax1", "name").expect(200);
    assert_eq!(name["value"], "Ax One", "{name}");
    assert!(
        name["@odata.context"].as_str().unwrap().ends_with("/name"),
        "{name}"
    );
    assert_eq!(
        value(&w.admin(), "ax1", "creditlimit").expect(200)["value"],
        5000
    );
    let secured = value(&w.alice(), "ax1", "creditlimit");
    assert_eq!(secured.status, 204, "{}", secured.brief());
    web_error(
        &value(&w.alice(), "ax2", "name"),
        403,
        DENIED,
        "denied",
        &[],
    );
    // Its raw value (`$value`): text, a number as JSON writes it; null and a secured column
    // she may not read are 204; an entity she may not read is refused.
    let raw = value(&w.alice(), "ax1", "name/$value");
    assert_eq!((raw.status, raw.text()), (200, "Ax One".to_owned()));
    assert!(
        raw.header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{}",
        raw.brief()
    );
    assert_eq!(
        value(&w.admin(), "ax1", "creditlimit/$value").text(),
        "5000"
    );
    assert_eq!(value(&w.alice(), "ax1", "creditlimit/$value").status, 204);
    web_error(
        &value(&w.alice(), "ax2", "name/$value"),
        403,
        DENIED,
        "denied",
        &[],
    );
    web_error(
        &value(&w.admin(), "ax1", "nope/$value"),
        404,
        NO_RESOURCE,
        "odata_unknown",
        &["nope"],
    );
    // What these lists do not take is refused, never ignored.
    for (path, code) in [
        (
            format!("teams({team})/teamroles_association?$skip=1"),
            "odata_unsupported",
        ),
        (
            format!("teams({team})/teamroles_association?$expand=x"),
            "odata_unsupported",
        ),
        (
            "teams?$expand=teamroles_association".to_owned(),
            "odata_unsupported",
        ),
        (
            format!("teams({team})/teamroles_association?$filter=name%20eq%20'x'"),
            "odata_unsupported",
        ),
    ] {
        web_error(&w.admin().get(&api(&path)), 400, INVALID, code, &["$"]);
    }
    // From an entity the caller may not read: refused, nothing about what it leads to told.
    web_error(
        &w.carol().get(&api(&format!(
            "accounts({})/primarycontactid",
            w.guid("a001")
        ))),
        403,
        DENIED,
        "denied",
        &[],
    );
    web_error(
        &w.carol().get(&api(&format!(
            "accounts({})/contact_customer_accounts",
            w.guid("a001")
        ))),
        403,
        DENIED,
        "denied",
        &[],
    );
    web_error(
        &w.admin().get(&api(&format!("contacts({cx})/nope"))),
        404,
        NO_RESOURCE,
        "odata_unknown",
        &["nope"],
    );
}

/// Past 5,000 related records, a collection-valued `$expand` with its own `$filter`,
/// `$orderby` and nested `$expand` links to the related list with the same options (D148, D159),
/// and that list pages to the rest of them.
#[test]
fn an_expanded_collection_past_its_bound_links_to_the_rest_with_its_options() {
    let w = Web::new();
    const MANY: usize = 5_002;
    let mut ops = vec![
        json!({"op": "insert_record", "id": "cz", "table": "contact", "owner": "alice", "fields": {"fullname": "Con Z"}}),
    ];
    for i in 0..MANY {
        ops.push(json!({"op": "insert_record", "id": format!("bz{i}"), "table": "account", "owner": "alice", "fields": {"name": format!("Bulk {i:05}")}}));
        ops.push(json!({"op": "associate", "record": format!("bz{i}"), "lookup": "primarycontactid", "parent": "cz"}));
    }
    for batch in ops.chunks(5_000) {
        w.f.root().write(&w.f.org, &json!(batch));
    }
    let base = w.base();
    let record = w
        .admin()
        .get(&api(&format!(
            "contacts({})?$select=fullname&$expand=account_primary_contact($select=name;$filter=name%20ne%20@skip;$orderby=name%20desc;$expand=primarycontactid($select=fullname))&@skip='Bulk%2000000'",
            w.guid("cz")
        )))
        .expect(200);
    let first = record["account_primary_contact"].as_array().unwrap();
    assert_eq!(first.len(), 5_000);
    assert_eq!(first[0]["name"], "Bulk 05001");
    assert_eq!(first[4_999]["name"], "Bulk 00002");
    assert_eq!(first[0]["primarycontactid"]["fullname"], "Con Z");
    let link = record["account_primary_contact@odata.nextLink"]
        .as_str()
        .unwrap();
    assert!(link.starts_with(&base), "{link}");
    let (items, _) = all_pages(&w.admin(), &base, &link[base.len() - V.len()..], &[]);
    // The related list: the 5,001 the filter keeps, in the same order, each expanded.
    assert_eq!(items.len(), MANY - 1, "{link}");
    assert_eq!(items[0]["name"], "Bulk 05001");
    assert_eq!(items[MANY - 2]["name"], "Bulk 00001");
    assert!(
        items
            .iter()
            .all(|a| a["primarycontactid"]["fullname"] == "Con Z")
    );
}

/// Formatted values (D147): with `Prefer: odata.include-annotations` naming them (or `*`), a
/// lookup carries the related entity's name and the state its label — only where the reader may
/// read the related entity; without the preference, none.
#[test]
fn formatted_values_name_what_the_reader_may_read() {
    let w = Web::new();
    let alice = w.alice();
    const F: &str = "@OData.Community.Display.V1.FormattedValue";
    let query = api(
        "accounts?$select=name,_primarycontactid_value,_ownerid_value,statecode&$filter=startswith(name,'Contoso%20a00')&$orderby=name",
    );
    let page = get_with(&alice,
            &query,
            &[(
                "Prefer",
                "odata.maxpagesize=50,odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\"",
            )],
        )
        .expect(200);
    let items = page["value"].as_array().unwrap();
    let a001 = &items[1];
    assert_eq!(
        a001[format!("_primarycontactid_value{F}")],
        json!("Con One"),
        "{a001}"
    );
    assert_eq!(
        a001["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        json!("contact")
    );
    assert_eq!(a001[format!("statecode{F}")], json!("Active"));
    // Alice may not read users (her role reads accounts and contacts): no owner's name.
    assert!(a001.get(format!("_ownerid_value{F}")).is_none(), "{a001}");
    // a002's contact is Support's: alice may not read it, so no name (the GUID stays).
    let a002 = items[2].as_object().unwrap();
    assert!(a002["_primarycontactid_value"].is_string(), "{a002:?}");
    assert!(
        !a002.contains_key(&format!("_primarycontactid_value{F}")),
        "{a002:?}"
    );
    // `*` asks for every annotation; none without the preference, or for another one only.
    let annotated =
        |c: &Client, prefer: &str| get_with(c, &query, &[("Prefer", prefer)]).expect(200);
    let all = annotated(&alice, "odata.include-annotations=\"*\"");
    assert_eq!(
        all["value"][1][format!("_primarycontactid_value{F}")],
        json!("Con One")
    );
    let plain = alice.get(&query).expect(200);
    assert!(
        !plain["value"][1]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("@OData.") || k.contains("@Microsoft.")),
        "{plain}"
    );
    let logical = annotated(
        &alice,
        "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"",
    );
    assert!(
        !logical["value"][1]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with(F)),
        "{logical}"
    );
    // The administrator reads Support's contact: its name is there.
    let admin = annotated(&w.admin(), "odata.include-annotations=\"*\"");
    assert_eq!(
        admin["value"][2][format!("_primarycontactid_value{F}")],
        json!("Con Two")
    );
    assert_eq!(
        admin["value"][1][format!("_ownerid_value{F}")],
        json!("alice")
    );
}

// ---------------------------------------------------------------------------------------------
// Retrieve and writes
// ---------------------------------------------------------------------------------------------

#[test]
fn retrieve_by_id_and_by_alternate_key() {
    let w = Web::new();
    let (alice, bob) = (w.alice(), w.bob());
    let base = w.base();
    let a001 = w.guid("a001");
    let r = alice.get(&api(&format!("accounts({a001})")));
    let body = r.expect(200);
    assert_eq!(
        body["@odata.context"],
        json!(format!("{base}$metadata#accounts/$entity"))
    );
    assert_eq!(body["accountid"], json!(a001));
    assert_eq!(body["name"], json!("Contoso a001"));
    assert_eq!(body["statecode"], json!(0));
    assert_eq!(body["_ownerid_value"], json!(user_id(&alice)));
    assert_eq!(
        body["creditlimit"],
        Value::Null,
        "a secured column alice cannot read"
    );
    assert_eq!(r.header("etag"), body["@odata.etag"].as_str());
    let upper = alice
        .get(&api(&format!("accounts({})", a001.to_uppercase())))
        .expect(200);
    assert_eq!(upper["accountid"], json!(a001));
    let as_bob = bob.get(&api(&format!("accounts({a001})"))).expect(200);
    assert_eq!(as_bob["creditlimit"], json!(1001));
    let selected = alice
        .get(&api(&format!("accounts({a001})?$select=name")))
        .expect(200);
    assert_eq!(
        selected["@odata.context"],
        json!(format!("{base}$metadata#accounts(name)/$entity"))
    );
    assert!(selected.get("statecode").is_none(), "{selected}");
    // Lookup annotations on request.
    let annotated = get_with(
        &alice,
        &api(&format!("accounts({a001})?$select=_ownerid_value")),
        &[("Prefer", "odata.include-annotations=\"*\"")],
    )
    .expect(200);
    assert_eq!(
        annotated["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        json!("systemuser")
    );
    // An alternate key, raw and encoded.
    for path in [
        "accounts(name='Contoso%20a001')?$select=name",
        "accounts(name=%27Contoso%20a001%27)?$select=name",
    ] {
        let by_key = alice.get(&api(path)).expect(200);
        assert_eq!(by_key["accountid"], json!(a001), "{path}");
    }
    web_error(
        &alice.get(&api("accounts(name='Contoso%20zzz')")),
        404,
        NOT_FOUND,
        "not_found",
        &["zzz"],
    );
    // A GUID no record has, one of another table, and a record alice may not read.
    let missing = "00000000-0000-4000-8000-000000000001";
    web_error(
        &alice.get(&api(&format!("accounts({missing})"))),
        404,
        NOT_FOUND,
        "not_found",
        &[missing, "Does Not Exist"],
    );
    web_error(
        &alice.get(&api(&format!("accounts({})", w.guid("con1")))),
        404,
        NOT_FOUND,
        "not_found",
        &[],
    );
    web_error(
        &alice.get(&api(&format!("accounts({})", w.guid("c001")))),
        403,
        DENIED,
        "denied",
        &[],
    );
    // Users, teams and units by their GUIDs.
    let admin = w.admin();
    let users = w.users();
    let bob_record = admin
        .get(&api(&format!("systemusers({})", users["bob"])))
        .expect(200);
    assert_eq!(bob_record["domainname"], json!("bob"));
    let team = admin.get(&api("teams(name='Sales%20Team')")).expect(200);
    let again = admin
        .get(&api(&format!(
            "teams({})",
            team["teamid"].as_str().unwrap()
        )))
        .expect(200);
    assert_eq!(again["name"], json!("Sales Team"));
}

#[test]
fn create_update_and_delete_answer_as_dataverse_does() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let con1 = w.guid("con1");
    let r = alice.post(
        &api("accounts"),
        &json!({"name": "Web One", "primarycontactid@odata.bind": format!("/contacts({con1})")}),
    );
    no_content(&r);
    let id = entity_id(&r, &base, "accounts");
    let created = alice.get(&api(&format!("accounts({id})"))).expect(200);
    assert_eq!(created["name"], json!("Web One"));
    assert_eq!(created["_primarycontactid_value"], json!(con1));
    assert_eq!(created["_ownerid_value"], json!(user_id(&alice)));
    // The same record on the native API, under its GUID.
    let native =
        w.f.root()
            .get(&w.f.url(&format!("/records/{id}?user=alice")))
            .expect(200);
    assert_eq!(native["guid"], json!(id));
    assert_eq!(native["owner"], json!("alice"));

    // With the representation: 201 and the entity.
    let r = alice.post_with(
        &api("accounts?$select=name"),
        &json!({"name": "Web Two"}),
        &[("Prefer", "return=representation")],
    );
    let two = r.expect(201);
    assert_eq!(
        two["@odata.context"],
        json!(format!("{base}$metadata#accounts(name)/$entity"))
    );
    assert_eq!(two["name"], json!("Web Two"));
    assert_eq!(
        two["accountid"].as_str().unwrap(),
        entity_id(&r, &base, "accounts")
    );
    // A client-chosen id; the same id again is a duplicate.
    let chosen = "3b7c1a52-9f7e-4c11-9a55-0d4c3c2b1a01";
    let r = alice.post(
        &api("accounts"),
        &json!({"accountid": chosen, "name": "Web Three"}),
    );
    no_content(&r);
    assert_eq!(entity_id(&r, &base, "accounts"), chosen);
    let before = w.revision();
    web_error(
        &alice.post(
            &api("accounts"),
            &json!({"accountid": chosen, "name": "Again"}),
        ),
        409,
        "0x80040237",
        "duplicate",
        &[chosen],
    );
    assert_eq!(w.revision(), before);

    // Update, as dynamics-web-api sends it (If-Match: *).
    let path = api(&format!("accounts({id})"));
    let r = patch(
        &alice,
        &path,
        &json!({"name": "Web One b"}),
        &[("If-Match", "*")],
    );
    no_content(&r);
    assert_eq!(entity_id(&r, &base, "accounts"), id);
    let updated = alice.get(&path).expect(200);
    assert_eq!(updated["name"], json!("Web One b"));
    assert_ne!(updated["@odata.etag"], created["@odata.etag"]);
    // An old ETag: 412, nothing written; the current one: written.
    let before = w.revision();
    let stale = created["@odata.etag"].as_str().unwrap();
    web_error(
        &patch(
            &alice,
            &path,
            &json!({"name": "lost"}),
            &[("If-Match", stale)],
        ),
        412,
        "0x80060882",
        "precondition_failed",
        &[],
    );
    assert_eq!(w.revision(), before);
    let current = updated["@odata.etag"].as_str().unwrap();
    let r = patch(
        &alice,
        &path,
        &json!({"name": "Web One c", "primarycontactid@odata.bind": null}),
        &[("If-Match", current), ("Prefer", "return=representation")],
    );
    let c = r.expect(200);
    assert_eq!(c["name"], json!("Web One c"));
    assert_eq!(c["_primarycontactid_value"], Value::Null);
    // Delete: an old ETag is refused, then it goes, and then it is not found.
    let before = w.revision();
    let r = alice.raw("DELETE", &path, &[("If-Match", current)], b"");
    web_error(&r, 412, "0x80060882", "precondition_failed", &[]);
    assert_eq!(w.revision(), before);
    no_content(&alice.delete(&path));
    web_error(&alice.get(&path), 404, NOT_FOUND, "not_found", &[&id]);
    web_error(&alice.delete(&path), 404, NOT_FOUND, "not_found", &[&id]);
}

/// Deep insert (D146): a create's body holds related records — a lookup's record
/// (`primarycontactid: {…}`), created first, and a one-to-many relationship's records
/// (`account_primary_contact: [{…}]`), created after with their lookup set — all in one write as
/// the caller, or nothing. A related record that fails is named by its place in the body; the
/// levels and the records are bounded; an update takes no related records.
#[test]
fn deep_insert_creates_related_records_in_one_write() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    // A lookup's record.
    let r = alice.post(
        &api("accounts"),
        &json!({"name": "Deep One", "primarycontactid": {"fullname": "Deep Contact", "emailaddress1": "deep@example.com"}}),
    );
    no_content(&r);
    let account = entity_id(&r, &base, "accounts");
    let a = alice
        .get(&api(&format!(
            "accounts({account})?$expand=primarycontactid($select=fullname)"
        )))
        .expect(200);
    assert_eq!(a["name"], json!("Deep One"));
    assert_eq!(a["primarycontactid"]["fullname"], json!("Deep Contact"));
    let contact = a["_primarycontactid_value"].as_str().unwrap().to_owned();
    let c = alice.get(&api(&format!("contacts({contact})"))).expect(200);
    assert_eq!(c["emailaddress1"], json!("deep@example.com"));
    assert_eq!(c["_ownerid_value"], json!(user_id(&alice)));
    // A relationship's records, and a lookup's record inside one of them (two levels).
    let r = alice.post(
        &api("contacts"),
        &json!({"fullname": "Parent Contact", "account_primary_contact": [
            {"name": "Child A"},
            {"name": "Child B", "accountid": "3b7c1a52-9f7e-4c11-9a55-0d4c3c2b1a77"}
        ]}),
    );
    no_content(&r);
    let parent = entity_id(&r, &base, "contacts");
    let children = alice
        .get(&api(&format!(
            "accounts?$select=name&$filter=_primarycontactid_value%20eq%20{parent}&$orderby=name"
        )))
        .expect(200);
    assert_eq!(
        strings(children["value"].as_array().unwrap(), "name"),
        ["Child A", "Child B"]
    );
    assert_eq!(
        children["value"][1]["accountid"],
        json!("3b7c1a52-9f7e-4c11-9a55-0d4c3c2b1a77")
    );
    // Every record's creation is audited, as alice (the fixture audits accounts).
    let audit =
        w.f.root()
            .get(&w.f.url("/audit?action=create&table=account&limit=10"))
            .expect(200);
    let created: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["user"] == json!("alice"))
        .filter_map(|e| e["detail"]["fields"]["name"].as_str())
        .collect();
    for name in ["Deep One", "Child A", "Child B"] {
        assert!(created.contains(&name), "{name}: {audit}");
    }

    // A related record that fails refuses the whole create, naming its place; nothing written.
    let before = w.revision();
    let r = alice.post(
        &api("contacts"),
        &json!({"fullname": "Nope", "account_primary_contact": [{"name": "ok"}, {"name": "bad", "nope": 1}]}),
    );
    let e = web_error(&r, 400, BAD_QUERY, "unknown_column", &["nope"]);
    let body = r.json();
    assert!(
        body.to_string().contains("/account_primary_contact/1"),
        "{e}: {body}"
    );
    // A user who may create accounts but not contacts.
    let nobody = w.f.as_(&w.nobody);
    let r = nobody.post(
        &api("accounts"),
        &json!({"name": "x", "primarycontactid": {"fullname": "y"}}),
    );
    assert_eq!(r.status, 403, "{}", r.brief());
    // The same lookup bound and given as a record.
    let con1 = w.guid("con1");
    web_error(
        &alice.post(
            &api("accounts"),
            &json!({"name": "x", "primarycontactid@odata.bind": format!("/contacts({con1})"), "primarycontactid": {"fullname": "y"}}),
        ),
        400,
        INVALID,
        "bad_value",
        &["primarycontactid", "twice"],
    );
    // Limits: levels and records.
    let mut deep = json!({"fullname": "bottom"});
    for level in 0..12 {
        deep = if level % 2 == 0 {
            json!({"name": format!("a{level}"), "primarycontactid": deep})
        } else {
            json!({"fullname": format!("c{level}"), "account_primary_contact": [deep]})
        };
    }
    web_error(
        &alice.post(&api("contacts"), &deep),
        400,
        LIMIT,
        "odata_limit",
        &["10 levels"],
    );
    let many: Vec<Value> = (0..1_000)
        .map(|i| json!({"name": format!("m{i}")}))
        .collect();
    web_error(
        &alice.post(
            &api("contacts"),
            &json!({"fullname": "many", "account_primary_contact": many}),
        ),
        400,
        LIMIT,
        "odata_limit",
        &["1000 records"],
    );
    // An update takes no related records.
    web_error(
        &patch(
            &alice,
            &api(&format!("accounts({account})")),
            &json!({"primarycontactid": {"fullname": "z"}}),
            &[("If-Match", "*")],
        ),
        400,
        INVALID,
        "bad_value",
        &["primarycontactid", "deep insert"],
    );
    assert_eq!(w.revision(), before);
}

#[test]
fn upsert_creates_only_without_if_match() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let missing = "6f1d2c3b-4a59-4e68-8f7a-9b0c1d2e3f40";
    let path = api(&format!("accounts({missing})"));
    // If-Match: * (an update, as dynamics-web-api's update() sends): 404, nothing created.
    let before = w.revision();
    web_error(
        &patch(
            &alice,
            &path,
            &json!({"name": "Upserted"}),
            &[("If-Match", "*")],
        ),
        404,
        NOT_FOUND,
        "not_found",
        &[missing],
    );
    assert_eq!(w.revision(), before);
    web_error(&alice.get(&path), 404, NOT_FOUND, "not_found", &[]);
    // Without it: created under the URL's id.
    let r = patch(&alice, &path, &json!({"name": "Upserted"}), &[]);
    assert!(
        r.status == 204 || r.status == 201,
        "{} {}",
        r.status,
        r.brief()
    );
    assert_eq!(entity_id(&r, &base, "accounts"), missing);
    assert!(w.revision() > before);
    assert_eq!(alice.get(&path).expect(200)["name"], json!("Upserted"));
    // Again: an update.
    no_content(&patch(
        &alice,
        &path,
        &json!({"name": "Upserted again"}),
        &[],
    ));
    assert_eq!(
        alice.get(&path).expect(200)["name"],
        json!("Upserted again")
    );
    // If-None-Match: * (create only) on a record that exists: 412, nothing written.
    let before = w.revision();
    web_error(
        &patch(
            &alice,
            &path,
            &json!({"name": "no"}),
            &[("If-None-Match", "*")],
        ),
        412,
        "0x80060882",
        "precondition_failed",
        &[],
    );
    assert_eq!(w.revision(), before);
    assert_eq!(
        alice.get(&path).expect(200)["name"],
        json!("Upserted again")
    );
    // … and on one that does not: created.
    let fresh = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let r = patch(
        &alice,
        &api(&format!("accounts({fresh})")),
        &json!({"name": "Create only"}),
        &[("If-None-Match", "*")],
    );
    assert!(r.status == 204 || r.status == 201, "{}", r.brief());
    assert_eq!(entity_id(&r, &base, "accounts"), fresh);
    // An upsert by alternate key creates the record with the key's value.
    let by_key = api("accounts(name='Alt%20Key')");
    web_error(
        &patch(&alice, &by_key, &json!({}), &[("If-Match", "*")]),
        404,
        NOT_FOUND,
        "not_found",
        &[],
    );
    let r = patch(&alice, &by_key, &json!({}), &[]);
    assert!(r.status == 204 || r.status == 201, "{}", r.brief());
    let id = entity_id(&r, &base, "accounts");
    let created = alice.get(&by_key).expect(200);
    assert_eq!(created["accountid"], json!(id));
    assert_eq!(created["name"], json!("Alt Key"));
    no_content(&patch(
        &alice,
        &by_key,
        &json!({"name": "Alt Key"}),
        &[("If-Match", "*")],
    ));
    no_content(&alice.delete(&by_key));
    web_error(&alice.get(&by_key), 404, NOT_FOUND, "not_found", &[]);
    // A record alice may not write: refused, nothing written.
    let before = w.revision();
    web_error(
        &patch(
            &alice,
            &api(&format!("accounts({})", w.guid("c001"))),
            &json!({"name": "mine now"}),
            &[],
        ),
        403,
        DENIED,
        "denied",
        &[],
    );
    assert_eq!(w.revision(), before);
}

// ---------------------------------------------------------------------------------------------
// Messages and $ref
// ---------------------------------------------------------------------------------------------

/// `systemusers(<user>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)`, as
/// dynamics-web-api sends it.
fn principal_access(c: &Client, user: &str, set: &str, record: &str) -> Response {
    c.get(&api(&format!(
        "systemusers({user})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1={}",
        alias(&format!(r#"{{"@odata.id":"{set}({record})"}}"#))
    )))
}

#[test]
fn access_messages_answer_and_change_access() {
    let w = Web::new();
    let base = w.base();
    let (alice, carol) = (w.alice(), w.carol());
    let users = w.users();
    let a001 = w.guid("a001");
    // RetrievePrincipalAccess about oneself, bound and unbound, equals the native answer.
    let bound = principal_access(&alice, &users["alice"], "accounts", &a001).expect(200);
    assert_eq!(
        bound["@odata.context"],
        json!(format!(
            "{base}$metadata#Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse"
        ))
    );
    let native = alice.get(&w.f.url("/records/a001/access")).expect(200);
    assert_eq!(bound["AccessRights"], native["AccessRights"]);
    assert!(
        bound["AccessRights"]
            .as_str()
            .unwrap()
            .contains("ShareAccess")
    );
    let unbound = alice
        .get(&api(&format!(
            "RetrievePrincipalAccess(Target=@t,Principal=@p)?@t={}&@p={}",
            alias(&format!(r#"{{"@odata.id":"accounts({a001})"}}"#)),
            alias(&format!(
                r#"{{"@odata.type":"Microsoft.Dynamics.CRM.systemuser","systemuserid":"{}"}}"#,
                users["alice"]
            ))
        )))
        .expect(200);
    assert_eq!(unbound["AccessRights"], native["AccessRights"]);
    // RetrieveUserPrivileges about oneself.
    let privileges = alice
        .get(&api(&format!(
            "systemusers({})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
            users["alice"]
        )))
        .expect(200);
    let held: BTreeMap<String, String> = privileges["RolePrivileges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PrivilegeName"].as_str().unwrap().to_owned(),
                p["Depth"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        held.get("prvReadAccount").map(String::as_str),
        Some("Local")
    );
    assert_eq!(
        held.get("prvCreateAccount").map(String::as_str),
        Some("Basic")
    );
    assert!(!held.contains_key("prvDeleteContact") || held["prvDeleteContact"] == "Basic");

    // GrantAccess: carol (Support) reads and writes a001 through the share.
    let account = json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": a001});
    let carol_ref =
        json!({"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": users["carol"]});
    let a001_path = api(&format!("accounts({a001})"));
    web_error(&carol.get(&a001_path), 403, DENIED, "denied", &[]);
    let grant = json!({"Target": account, "PrincipalAccess": {"Principal": carol_ref, "AccessMask": "ReadAccess, WriteAccess"}});
    no_content(&alice.post(&api("GrantAccess"), &grant));
    carol.get(&a001_path).expect(200);
    let rights = carol.get(&w.f.url("/records/a001/access")).expect(200);
    assert_eq!(rights["AccessRights"], json!("ReadAccess, WriteAccess"));
    let shared = |c: &Client| {
        c.get(&api(&format!(
            "RetrieveSharedPrincipalsAndAccess(Target=@tid)?@tid={}",
            alias(&format!(r#"{{"@odata.id":"accounts({a001})"}}"#))
        )))
        .expect(200)
    };
    let s = shared(&alice);
    assert_eq!(
        s["@odata.context"],
        json!(format!(
            "{base}$metadata#Microsoft.Dynamics.CRM.RetrieveSharedPrincipalsAndAccessResponse"
        ))
    );
    assert_eq!(
        s["PrincipalAccesses"],
        json!([{"AccessMask": "ReadAccess, WriteAccess", "Principal": {
            "@odata.type": "#Microsoft.Dynamics.CRM.systemuser", "ownerid": users["carol"]}}])
    );
    // ModifyAccess replaces the rights; a number is an AccessRights mask too (1 = Read).
    let modify =
        json!({"Target": account, "PrincipalAccess": {"Principal": carol_ref, "AccessMask": 1}});
    no_content(&alice.post(&api("ModifyAccess"), &modify));
    assert_eq!(
        shared(&alice)["PrincipalAccesses"][0]["AccessMask"],
        json!("ReadAccess")
    );
    // RevokeAccess.
    no_content(&alice.post(
        &api("RevokeAccess"),
        &json!({"Target": account, "Revokee": carol_ref}),
    ));
    web_error(&carol.get(&a001_path), 403, DENIED, "denied", &[]);
    assert_eq!(shared(&alice)["PrincipalAccesses"], json!([]));
}

#[test]
fn team_membership_through_messages_and_ref() {
    let w = Web::new();
    let base = w.base();
    let (admin, bob) = (w.admin(), w.bob());
    let users = w.users();
    let team = admin.get(&api("teams(name='Sales%20Team')")).expect(200)["teamid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The team holds Contact Reader: a member reads con2 (Support's).
    let con2 = api(&format!("contacts({})", w.guid("con2")));
    web_error(&bob.get(&con2), 403, DENIED, "denied", &[]);
    let members = json!({"Members": [{"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": users["bob"]}]});
    no_content(&admin.post(
        &api(&format!(
            "teams({team})/Microsoft.Dynamics.CRM.AddMembersTeam"
        )),
        &members,
    ));
    bob.get(&con2).expect(200);
    no_content(&admin.post(
        &api(&format!(
            "teams({team})/Microsoft.Dynamics.CRM.RemoveMembersTeam"
        )),
        &members,
    ));
    web_error(&bob.get(&con2), 403, DENIED, "denied", &[]);
    // The same through $ref, with the absolute @odata.id clients send.
    no_content(&admin.post(
        &api(&format!("teams({team})/teammembership_association/$ref")),
        &json!({"@odata.id": format!("{base}systemusers({})", users["bob"])}),
    ));
    bob.get(&con2).expect(200);
    no_content(&admin.delete(&api(&format!(
        "teams({team})/teammembership_association({})/$ref",
        users["bob"]
    ))));
    web_error(&bob.get(&con2), 403, DENIED, "denied", &[]);
    // DELETE …/$ref?$id=<entity URL>, the other spelling of a disassociate.
    no_content(&admin.post(
        &api(&format!("teams({team})/teammembership_association/$ref")),
        &json!({"@odata.id": format!("{base}systemusers({})", users["bob"])}),
    ));
    bob.get(&con2).expect(200);
    no_content(&admin.delete(&api(&format!(
        "teams({team})/teammembership_association/$ref?$id={base}systemusers({})",
        users["bob"]
    ))));
    web_error(&bob.get(&con2), 403, DENIED, "denied", &[]);
}

#[test]
fn users_are_updated_through_systemusers() {
    let w = Web::new();
    let (admin, alice) = (w.admin(), w.alice());
    let users = w.users();
    let bob = api(&format!("systemusers({})", users["bob"]));
    no_content(&patch(
        &admin,
        &bob,
        &json!({"jobtitle": "Lead"}),
        &[("If-Match", "*")],
    ));
    let read = admin
        .get(&format!("{bob}?$select=jobtitle,domainname"))
        .expect(200);
    assert_eq!(read["jobtitle"], json!("Lead"));
    assert_eq!(read["domainname"], json!("bob"));
    // Moving a user to another unit, by binding businessunitid.
    let units = admin.get(&api("businessunits?$select=name")).expect(200);
    let support = units["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Support")
        .unwrap()["businessunitid"]
        .as_str()
        .unwrap()
        .to_owned();
    no_content(&patch(
        &admin,
        &bob,
        &json!({"businessunitid@odata.bind": format!("/businessunits({support})")}),
        &[("If-Match", "*")],
    ));
    let moved = admin
        .get(&format!("{bob}?$select=_businessunitid_value"))
        .expect(200);
    assert_eq!(moved["_businessunitid_value"], json!(support));
    // alice may not change another user, and nothing is written.
    let before = w.revision();
    web_error(
        &patch(
            &alice,
            &bob,
            &json!({"jobtitle": "Nobody"}),
            &[("If-Match", "*")],
        ),
        403,
        DENIED,
        "denied",
        &[],
    );
    assert_eq!(w.revision(), before);
    // Users are not created or deleted through the Web API.
    web_error(
        &admin.post(&api("systemusers"), &json!({"domainname": "new"})),
        400,
        INVALID,
        "odata_unsupported",
        &["systemuser"],
    );
    web_error(&admin.delete(&bob), 400, INVALID, "odata_unsupported", &[]);
}

#[test]
fn record_teams_and_lookups_through_messages_and_ref() {
    let w = Web::new();
    let base = w.base();
    let (admin, alice, carol) = (w.admin(), w.alice(), w.carol());
    let users = w.users();
    let a001 = w.guid("a001");
    let a001_path = api(&format!("accounts({a001})"));
    let templates = admin.get(&api("teamtemplates")).expect(200);
    let template = templates["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["teamtemplatename"] == "Account Team")
        .unwrap()["teamtemplateid"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({
        "Record": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": a001},
        "TeamTemplate": {"teamtemplateid": template}
    });
    web_error(&carol.get(&a001_path), 403, DENIED, "denied", &[]);
    // (Adding a user to a record's team needs Read on that user: the administrator does it.)
    let added = admin
        .post(
            &api(&format!(
                "systemusers({})/Microsoft.Dynamics.CRM.AddUserToRecordTeam",
                users["carol"]
            )),
            &body,
        )
        .expect(200);
    assert_eq!(
        added["@odata.context"],
        json!(format!(
            "{base}$metadata#Microsoft.Dynamics.CRM.AddUserToRecordTeamResponse"
        ))
    );
    assert!(is_guid(added["AccessTeamId"].as_str().unwrap()), "{added}");
    carol.get(&a001_path).expect(200);
    admin
        .post(
            &api(&format!(
                "systemusers({})/Microsoft.Dynamics.CRM.RemoveUserFromRecordTeam",
                users["carol"]
            )),
            &body,
        )
        .expect(200);
    web_error(&carol.get(&a001_path), 403, DENIED, "denied", &[]);

    // A single-valued lookup: PUT and DELETE …/primarycontactid/$ref.
    let a003 = api(&format!("accounts({})", w.guid("a003")));
    let con1 = w.guid("con1");
    no_content(&json_request(
        &alice,
        "PUT",
        &format!("{a003}/primarycontactid/$ref"),
        &json!({"@odata.id": format!("{base}contacts({con1})")}),
        &[],
    ));
    assert_eq!(
        alice.get(&a003).expect(200)["_primarycontactid_value"],
        json!(con1)
    );
    no_content(&alice.delete(&format!("{a003}/primarycontactid/$ref")));
    assert_eq!(
        alice.get(&a003).expect(200)["_primarycontactid_value"],
        Value::Null
    );
    // The collection side: contacts(con1)/account_primary_contact/$ref adds a child account.
    no_content(&alice.post(
        &api(&format!("contacts({con1})/account_primary_contact/$ref")),
        &json!({"@odata.id": format!("{base}accounts({})", w.guid("a004"))}),
    ));
    let a004 = alice
        .get(&api(&format!("accounts({})", w.guid("a004"))))
        .expect(200);
    assert_eq!(a004["_primarycontactid_value"], json!(con1));
}

#[test]
fn create_update_and_upsert_multiple() {
    let w = Web::new();
    let base = w.base();
    let alice = w.alice();
    let targets: Vec<Value> = (0..3)
        .map(|i| json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "name": format!("Multi {i}")}))
        .collect();
    let created = alice
        .post(
            &api("accounts/Microsoft.Dynamics.CRM.CreateMultiple"),
            &json!({"Targets": targets}),
        )
        .expect(200);
    assert_eq!(
        created["@odata.context"],
        json!(format!(
            "{base}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
        ))
    );
    let ids: Vec<String> = created["Ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    for (i, id) in ids.iter().enumerate() {
        let r = alice.get(&api(&format!("accounts({id})"))).expect(200);
        assert_eq!(r["name"], json!(format!("Multi {i}")));
    }
    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": id, "name": format!("Updated {id}")}))
        .collect();
    no_content(&alice.post(
        &api("accounts/Microsoft.Dynamics.CRM.UpdateMultiple"),
        &json!({"Targets": updates}),
    ));
    for id in &ids {
        let r = alice.get(&api(&format!("accounts({id})"))).expect(200);
        assert_eq!(r["name"], json!(format!("Updated {id}")));
    }
    // UpsertMultiple: one update, one create; Dataverse answers 204 without a body.
    let fresh = "5d4c3b2a-1f0e-4d9c-8b7a-695847362514";
    no_content(&alice.post(
        &api("accounts/Microsoft.Dynamics.CRM.UpsertMultiple"),
        &json!({"Targets": [
            {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[0], "name": "Upserted 0"},
            {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": fresh, "name": "Upserted new"}
        ]}),
    ));
    assert_eq!(
        alice
            .get(&api(&format!("accounts({})", ids[0])))
            .expect(200)["name"],
        json!("Upserted 0")
    );
    assert_eq!(
        alice.get(&api(&format!("accounts({fresh})"))).expect(200)["name"],
        json!("Upserted new")
    );
    // All or nothing: one target alice may not write refuses the whole request.
    let before = w.revision();
    let c001 = w.guid("c001");
    web_error(
        &alice.post(
            &api("accounts/Microsoft.Dynamics.CRM.UpdateMultiple"),
            &json!({"Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[1], "name": "not this"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": c001, "name": "nor this"}
            ]}),
        ),
        403,
        DENIED,
        "denied",
        &[],
    );
    assert_eq!(w.revision(), before);
    assert_eq!(
        alice
            .get(&api(&format!("accounts({})", ids[1])))
            .expect(200)["name"],
        json!(format!("Updated {}", ids[1]))
    );
    // A target that does not exist, named by its position.
    let missing = "00000000-0000-4000-8000-00000000beef";
    web_error(
        &alice.post(
            &api("accounts/Microsoft.Dynamics.CRM.UpdateMultiple"),
            &json!({"Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[1], "name": "x"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": missing, "name": "y"}
            ]}),
        ),
        404,
        NOT_FOUND,
        "not_found",
        &[missing, "/Targets/1"],
    );
    assert_eq!(w.revision(), before);
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// One bad request and the error it must get.
struct Bad {
    what: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    status: u16,
    code: &'static str,
    strata: &'static str,
    words: Vec<String>,
}

fn bad(
    what: &'static str,
    path: String,
    status: u16,
    code: &'static str,
    strata: &'static str,
    words: &[&str],
) -> Bad {
    Bad {
        what,
        method: "GET",
        path,
        headers: Vec::new(),
        body: None,
        status,
        code,
        strata,
        words: words.iter().map(|w| (*w).to_owned()).collect(),
    }
}

impl Bad {
    fn send(&self, c: &Client) -> Response {
        let mut headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if self.body.is_some() && !headers.iter().any(|(k, _)| *k == "Content-Type") {
            headers.push(("Content-Type", "application/json"));
        }
        c.raw(
            self.method,
            &self.path,
            &headers,
            self.body.as_deref().unwrap_or_default().as_bytes(),
        )
    }

    fn with(mut self, method: &'static str, body: &str) -> Bad {
        self.method = method;
        self.body = Some(body.to_owned());
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Bad {
        self.headers.push((name, value.to_owned()));
        self
    }
}

#[test]
fn bad_input_is_a_dataverse_error_naming_the_problem() {
    let w = Web::new();
    let alice = w.alice();
    let users = w.users();
    let a001 = w.guid("a001");
    let con1 = w.guid("con1");
    let one = api(&format!("accounts({a001})"));
    let cases = vec![
        bad("unknown entity set", api("nopes"), 404, NO_RESOURCE, "odata_unknown", &["nopes"]),
        bad("unknown entity set, keyed", api(&format!("nopes({a001})")), 404, NO_RESOURCE, "odata_unknown", &["nopes"]),
        bad("entity sets are case-sensitive", api("Accounts"), 404, NO_RESOURCE, "odata_unknown", &["Accounts"]),
        bad("unknown column in $select", api("accounts?$select=name,nope"), 400, BAD_QUERY, "unknown_column", &["nope", "Microsoft.Dynamics.CRM.account"]),
        bad("unknown column in $select of a retrieve", format!("{one}?$select=Name"), 400, BAD_QUERY, "unknown_column", &["Name"]),
        bad("unknown column in $filter", api("accounts?$filter=nope%20eq%201"), 400, BAD_QUERY, "unknown_column", &["nope"]),
        bad("unknown column in $orderby", api("accounts?$orderby=nope%20desc"), 400, BAD_QUERY, "unknown_column", &["nope"]),
        bad("unknown navigation property in $expand", api("accounts?$expand=nope"), 400, BAD_QUERY, "unknown_column", &["nope"]),
        bad("unknown navigation property in $expand of a retrieve", format!("{one}?$expand=nope"), 400, BAD_QUERY, "unknown_column", &["nope"]),
        bad("unknown column in a nested $select", format!("{one}?$expand=primarycontactid($select=nope)"), 400, BAD_QUERY, "unknown_column", &["nope", "contact"]),
        bad("unknown segment after an entity", format!("{one}/nope"), 404, NO_RESOURCE, "odata_unknown", &["nope"]),
        bad("unknown unbound function", api("Nope()"), 404, NO_RESOURCE, "odata_unknown", &["Nope"]),
        bad("unknown bound function", api(&format!("systemusers({})/Microsoft.Dynamics.CRM.Nope()", users["alice"])), 404, NO_RESOURCE, "odata_unknown", &["Nope"]),
        bad("unknown $-segment", api("accounts/$nope!"), 404, NO_RESOURCE, "odata_unknown", &["$nope!"]),
        bad("unknown $ option", api("accounts?$nope=1"), 400, BAD_QUERY, "odata_syntax", &["$nope"]),
        bad("$skip", api("accounts?$skip=10"), 400, INVALID, "odata_unsupported", &["$skip"]),
        bad("a FetchXML query on a retrieve", format!("{one}?fetchXml=%3Cfetch%3E%3Centity%20name%3D%22account%22%2F%3E%3C%2Ffetch%3E"), 400, INVALID, "odata_unsupported", &["fetchXml"]),
        bad("a saved query", format!("{one}?savedQuery={a001}"), 400, INVALID, "odata_unsupported", &["savedQuery"]),
        bad("a query option twice", api("accounts?$top=1&$top=2"), 400, BAD_QUERY, "odata_syntax", &["$top"]),
        bad("$top not a number", api("accounts?$top=ten"), 400, BAD_QUERY, "odata_syntax", &["ten"]),
        bad("$top negative", api("accounts?$top=-1"), 400, BAD_QUERY, "odata_syntax", &["-1"]),
        bad("$count not a boolean", api("accounts?$count=yes"), 400, BAD_QUERY, "odata_syntax", &["yes"]),
        bad("malformed $filter", api("accounts?$filter=name%20eqq%20'x'"), 400, BAD_QUERY, "odata_syntax", &["eqq", "at character 5"]),
        bad("unterminated literal", api("accounts?$filter=name%20eq%20'x"), 400, BAD_QUERY, "odata_syntax", &["unterminated", "at character"]),
        bad("unknown $filter function", api("accounts?$filter=nope(name,'x')"), 400, BAD_QUERY, "odata_syntax", &["nope"]),
        bad("malformed $orderby", api("accounts?$orderby=name%20sideways"), 400, BAD_QUERY, "bad_order", &["sideways"]),
        bad("a key that is neither a GUID nor name=value", api("accounts(not-a-guid)"), 400, BAD_QUERY, "odata_syntax", &["not-a-guid"]),
        bad("an unterminated key", api("accounts(name='x)"), 400, BAD_QUERY, "odata_syntax", &["unterminated"]),
        bad("a malformed %-escape", api("accounts?$filter=name%20eq%20%ZZ"), 400, BAD_QUERY, "odata_syntax", &["escape"]),
        bad("page size 0", api("accounts"), 400, INVALID, "bad_page_size", &["odata.maxpagesize", "5000"]).header("Prefer", "odata.maxpagesize=0"),
        bad("page size past 5000", api("accounts"), 400, INVALID, "bad_page_size", &["odata.maxpagesize", "5000"]).header("Prefer", "odata.maxpagesize=5001"),
        bad("page size not a number", api("accounts"), 400, INVALID, "bad_page_size", &["many"]).header("Prefer", "odata.maxpagesize=many"),
        bad("a tampered $skiptoken", api("accounts?$skiptoken=3.AAAA.BBBB"), 400, INVALID, "bad_cursor", &["AAAA.BBBB"]),
        bad("a $skiptoken that is not one", api("accounts?$skiptoken=zzz"), 400, INVALID, "bad_cursor", &["skiptoken"]),
        bad("a body that is not JSON", api("accounts"), 400, INVALID, "malformed_json", &[]).with("POST", "{\"name\": "),
        bad("a body that is not an object", api("accounts"), 400, INVALID, "invalid_body", &["object"]).with("POST", "[1]"),
        bad("a body with a key twice", api("accounts"), 400, INVALID, "invalid_body", &["name"]).with("POST", r#"{"name":"a","name":"b"}"#),
        bad("a body that is not declared JSON", api("accounts"), 415, INVALID, "unsupported_media_type", &[]).with("POST", r#"{"name":"a"}"#).header("Content-Type", "text/plain"),
        bad("@odata.bind to a wrong entity type", api("accounts"), 400, INVALID, "bad_reference", &["primarycontactid", "contact"]).with("POST", &json!({"name": "x", "primarycontactid@odata.bind": format!("/accounts({a001})")}).to_string()),
        bad("@odata.bind that is not a reference", api("accounts"), 400, INVALID, "bad_reference", &["primarycontactid"]).with("POST", &json!({"name": "x", "primarycontactid@odata.bind": 7}).to_string()),
        bad("@odata.bind of an unknown navigation property", api("accounts"), 400, BAD_QUERY, "unknown_column", &["nope"]).with("POST", &json!({"name": "x", "nope@odata.bind": format!("/contacts({con1})")}).to_string()),
        bad("@odata.bind to a record that does not exist", api("accounts"), 404, NOT_FOUND, "not_found", &["00000000-0000-4000-8000-000000000009"]).with("POST", &json!({"name": "x", "primarycontactid@odata.bind": "/contacts(00000000-0000-4000-8000-000000000009)"}).to_string()),
        bad("a read-only lookup value", api("accounts"), 400, INVALID, "bad_value", &["_primarycontactid_value", "@odata.bind"]).with("POST", &json!({"_primarycontactid_value": con1}).to_string()),
        bad("an object for a column", api("accounts"), 400, INVALID, "bad_value", &["`name`", "single-valued navigation property"]).with("POST", &json!({"name": {"fullname": "x"}}).to_string()),
        bad("an array for a column", api("accounts"), 400, INVALID, "bad_value", &["`name`", "collection-valued navigation property"]).with("POST", &json!({"name": [{"fullname": "x"}]}).to_string()),
        bad("a PATCH body that is not JSON", one.clone(), 400, INVALID, "malformed_json", &[]).with("PATCH", "nope"),
        bad("GrantAccess without a Target", api("GrantAccess"), 400, INVALID, "invalid_body", &["Target"]).with("POST", "{}"),
        bad("GrantAccess with an unknown right", api("GrantAccess"), 400, INVALID, "bad_value", &["FlyAccess"]).with("POST", &json!({"Target": {"@odata.id": format!("accounts({a001})")}, "PrincipalAccess": {"Principal": {"@odata.id": format!("systemusers({})", users["bob"])}, "AccessMask": "FlyAccess"}}).to_string()),
        bad("RetrievePrincipalAccess without a Target", api(&format!("systemusers({})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess()", users["alice"])), 400, INVALID, "invalid_body", &["Target"]),
        bad("a parameter alias without a value", api(&format!("systemusers({})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p9)", users["alice"])), 400, BAD_QUERY, "odata_syntax", &["@p9"]),
        bad("CreateMultiple without Targets", api("accounts/Microsoft.Dynamics.CRM.CreateMultiple"), 400, INVALID, "invalid_body", &["Targets"]).with("POST", "{}"),
        bad("a list is read with GET", api("accounts/$count"), 405, INVALID, "method_not_allowed", &["POST"]).with("POST", "{}"),
    ];
    let before = w.revision();
    let mut failures = Vec::new();
    for case in &cases {
        let r = case.send(&alice);
        let error = r.json()["error"].clone();
        let message = error["message"].as_str().unwrap_or_default();
        let right = r.status == case.status
            && error["code"] == json!(case.code)
            && error["strata_code"] == json!(case.strata)
            && r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
            && case.words.iter().all(|w| message.contains(w.as_str()));
        if !right {
            failures.push(format!(
                "{}: {} {} answered {}: {}\n  wanted {} {} {} with {:?}",
                case.what,
                case.method,
                case.path,
                r.status,
                r.brief(),
                case.status,
                case.code,
                case.strata,
                case.words
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(w.revision(), before, "a refused request wrote");

    // A $skiptoken is bound to its query and its reader.
    let page = get_with(
        &alice,
        &api("accounts?$select=name"),
        &[("Prefer", "odata.maxpagesize=2")],
    )
    .expect(200);
    let next = page["@odata.nextLink"].as_str().unwrap();
    let path = &next[w.base().len() - V.len()..];
    get_with(&alice, path, &[("Prefer", "odata.maxpagesize=2")]).expect(200);
    web_error(&w.bob().get(path), 400, INVALID, "bad_cursor", &[]);
    web_error(
        &alice.get(&path.replace("$select=name", "$select=name&$filter=name%20ne%20'x'")),
        400,
        INVALID,
        "bad_cursor",
        &[],
    );
    // One character of the signature changed (to another hexadecimal digit: not merely
    // its case, which hexadecimal ignores).
    let token_at = path.find("$skiptoken=").unwrap() + "$skiptoken=".len() + 3;
    let mut tampered = path.to_owned();
    let c = tampered.as_bytes()[token_at];
    assert!(c.is_ascii_hexdigit(), "{path}");
    tampered.replace_range(token_at..=token_at, if c == b'0' { "1" } else { "0" });
    web_error(&alice.get(&tampered), 400, INVALID, "bad_cursor", &[]);

    // Deep nesting is refused, and the server lives.
    let deep = format!("{}name%20eq%20'x'{}", "(".repeat(1_000), ")".repeat(1_000));
    let r = alice.get(&api(&format!("accounts?$filter={deep}")));
    assert_eq!(r.status, 400, "{}", r.brief());
    let nots = format!("{}name%20eq%20'x'", "not%20".repeat(1_000));
    let r = alice.get(&api(&format!("accounts?$filter={nots}")));
    assert_eq!(r.status, 400, "{}", r.brief());
    let deep_json = format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000));
    let r = alice.post_bytes(&api("accounts"), deep_json.as_bytes());
    assert_eq!(r.status, 400, "{}", r.brief());
    w.f.server.client(None).get("/healthz").expect(200);
    alice.get(&one).expect(200);
}

// ---------------------------------------------------------------------------------------------
// The authorization matrix
// ---------------------------------------------------------------------------------------------

/// One Web API route, with what a request to it sends.
struct Route {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    headers: Vec<(&'static str, &'static str)>,
    /// Whether the route writes (then the organisation's revision must not move when refused).
    writes: bool,
}

impl Route {
    fn send(&self, c: &Client) -> Response {
        match &self.body {
            Some(b) => json_request(c, self.method, &self.path, b, &self.headers),
            None => c.raw(self.method, &self.path, &self.headers, b""),
        }
    }
}

/// Every Web API route, on records and users `nobody` may not touch.
fn routes(w: &Web) -> Vec<Route> {
    let users = w.users();
    let base = w.base();
    let a001 = w.guid("a001");
    let con1 = w.guid("con1");
    let team = w
        .admin()
        .get(&api("teams(name='Sales%20Team')"))
        .expect(200)["teamid"]
        .as_str()
        .unwrap()
        .to_owned();
    let template = w.admin().get(&api("teamtemplates")).expect(200)["value"][0]["teamtemplateid"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": a001});
    // a010 is shared with bob; audrey is in the team.
    let shared =
        json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": w.guid("a010")});
    let bob =
        json!({"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": users["bob"]});
    let audrey = json!({"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": users["audrey"]});
    let one = api(&format!("accounts({a001})"));
    let route = |name, method, path: String, body: Option<Value>, writes| Route {
        name,
        method,
        path,
        body,
        headers: Vec::new(),
        writes,
    };
    let mut out = vec![
        route("list", "GET", api("accounts?$select=name"), None, false),
        route("count", "GET", api("accounts/$count"), None, false),
        route("retrieve", "GET", one.clone(), None, false),
        route(
            "retrieve by alternate key",
            "GET",
            api("accounts(name='Contoso%20a001')"),
            None,
            false,
        ),
        route(
            "create",
            "POST",
            api("accounts"),
            Some(json!({"name": "refused"})),
            true,
        ),
        route(
            "upsert (create)",
            "PATCH",
            api("accounts(7e57ab1e-0000-4000-8000-000000000001)"),
            Some(json!({"name": "refused"})),
            true,
        ),
        route(
            "upsert (update)",
            "PATCH",
            one.clone(),
            Some(json!({"name": "refused"})),
            true,
        ),
        route("delete", "DELETE", one.clone(), None, true),
        route(
            "RetrievePrincipalAccess about another user",
            "GET",
            api(&format!(
                "systemusers({})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1={}",
                users["bob"],
                alias(&format!(r#"{{"@odata.id":"accounts({a001})"}}"#))
            )),
            None,
            false,
        ),
        route(
            "RetrieveUserPrivileges about another user",
            "GET",
            api(&format!(
                "systemusers({})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
                users["bob"]
            )),
            None,
            false,
        ),
        route(
            "RetrieveSharedPrincipalsAndAccess",
            "GET",
            api(&format!(
                "RetrieveSharedPrincipalsAndAccess(Target=@p1)?@p1={}",
                alias(&format!(r#"{{"@odata.id":"accounts({a001})"}}"#))
            )),
            None,
            false,
        ),
        route(
            "GrantAccess",
            "POST",
            api("GrantAccess"),
            Some(
                json!({"Target": account, "PrincipalAccess": {"Principal": bob, "AccessMask": "ReadAccess"}}),
            ),
            true,
        ),
        route(
            "ModifyAccess",
            "POST",
            api("ModifyAccess"),
            Some(
                json!({"Target": shared, "PrincipalAccess": {"Principal": bob, "AccessMask": "ReadAccess, WriteAccess"}}),
            ),
            true,
        ),
        route(
            "RevokeAccess",
            "POST",
            api("RevokeAccess"),
            Some(json!({"Target": shared, "Revokee": bob})),
            true,
        ),
        route(
            "AddMembersTeam",
            "POST",
            api(&format!(
                "teams({team})/Microsoft.Dynamics.CRM.AddMembersTeam"
            )),
            Some(json!({"Members": [bob]})),
            true,
        ),
        route(
            "RemoveMembersTeam",
            "POST",
            api(&format!(
                "teams({team})/Microsoft.Dynamics.CRM.RemoveMembersTeam"
            )),
            Some(json!({"Members": [audrey]})),
            true,
        ),
        route(
            "AddUserToRecordTeam",
            "POST",
            api(&format!(
                "systemusers({})/Microsoft.Dynamics.CRM.AddUserToRecordTeam",
                users["bob"]
            )),
            Some(json!({"Record": account, "TeamTemplate": {"teamtemplateid": template}})),
            true,
        ),
        route(
            "RemoveUserFromRecordTeam",
            "POST",
            api(&format!(
                "systemusers({})/Microsoft.Dynamics.CRM.RemoveUserFromRecordTeam",
                users["bob"]
            )),
            Some(json!({"Record": account, "TeamTemplate": {"teamtemplateid": template}})),
            true,
        ),
        route(
            "CreateMultiple",
            "POST",
            api("accounts/Microsoft.Dynamics.CRM.CreateMultiple"),
            Some(json!({"Targets": [{"name": "refused"}]})),
            true,
        ),
        route(
            "UpdateMultiple",
            "POST",
            api("accounts/Microsoft.Dynamics.CRM.UpdateMultiple"),
            Some(json!({"Targets": [{"accountid": a001, "name": "refused"}]})),
            true,
        ),
        route(
            "UpsertMultiple",
            "POST",
            api("accounts/Microsoft.Dynamics.CRM.UpsertMultiple"),
            Some(json!({"Targets": [{"accountid": a001, "name": "refused"}]})),
            true,
        ),
        route(
            "associate (collection $ref)",
            "POST",
            api(&format!("teams({team})/teammembership_association/$ref")),
            Some(json!({"@odata.id": format!("{base}systemusers({})", users["bob"])})),
            true,
        ),
        route(
            "disassociate (collection $ref)",
            "DELETE",
            api(&format!(
                "teams({team})/teammembership_association({})/$ref",
                users["audrey"]
            )),
            None,
            true,
        ),
        route(
            "associate (single-valued $ref)",
            "PUT",
            format!("{one}/primarycontactid/$ref"),
            Some(json!({"@odata.id": format!("{base}contacts({con1})")})),
            true,
        ),
        route(
            "disassociate (single-valued $ref)",
            "DELETE",
            format!("{one}/primarycontactid/$ref"),
            None,
            true,
        ),
    ];
    // Routes that are not refused for want of a privilege (metadata, oneself), but need credentials.
    for (name, path) in [
        ("service document", V.to_owned()),
        ("$metadata", api("$metadata")),
        (
            "EntityDefinitions",
            api("EntityDefinitions(LogicalName='account')/Attributes"),
        ),
        ("WhoAmI", api("WhoAmI()")),
    ] {
        out.push(route(name, "GET", path, None, false));
    }
    out.push(route("$batch", "POST", api("$batch"), None, true));
    if let Some(b) = out.last_mut() {
        b.headers = vec![("Content-Type", "multipart/mixed;boundary=batch_x")];
    }
    out
}

#[test]
fn every_route_refuses_a_caller_without_credentials() {
    let w = Web::new();
    let before = w.revision();
    let anonymous = w.f.server.client(None);
    let unknown = w.f.server.client(Some("no-such-key-0123456789abcdef"));
    for route in routes(&w) {
        for (who, client) in [("no credentials", &anonymous), ("an unknown key", &unknown)] {
            let r = route.send(client);
            assert_eq!(r.status, 401, "{} with {who}: {}", route.name, r.brief());
            web_error(&r, 401, "0x80040326", "unauthenticated", &[]);
        }
    }
    // A disabled user's key: refused too (403, the user is disabled).
    let erin = w.f.as_(&w.f.keys.erin);
    web_error(
        &erin.get(&api("WhoAmI()")),
        403,
        DENIED,
        "user_disabled",
        &["erin"],
    );
    assert_eq!(w.revision(), before);
}

#[test]
fn every_data_route_refuses_a_user_without_the_privilege_and_writes_nothing() {
    let w = Web::new();
    let nobody = w.f.as_(&w.nobody);
    for route in routes(&w) {
        if matches!(
            route.name,
            "service document" | "$metadata" | "EntityDefinitions" | "WhoAmI" | "$batch"
        ) {
            // Metadata and WhoAmI are every user's (as in Dataverse).
            if route.name != "$batch" {
                let r = route.send(&nobody);
                assert_eq!(r.status, 200, "{}: {}", route.name, r.brief());
            }
            continue;
        }
        let before = w.revision();
        let r = route.send(&nobody);
        if r.status != 403 {
            panic!(
                "{}: {} {} answered {}: {}",
                route.name,
                route.method,
                route.path,
                r.status,
                r.brief()
            );
        }
        web_error(
            &r,
            403,
            DENIED,
            r.json()["error"]["strata_code"].as_str().unwrap(),
            &[],
        );
        if route.writes {
            assert_eq!(w.revision(), before, "{} wrote", route.name);
        }
    }
    // About oneself, the access questions are allowed.
    let me = user_id(&nobody);
    let answer = principal_access(&nobody, &me, "accounts", &w.guid("a001")).expect(200);
    assert_eq!(answer["AccessRights"], json!("None"));
    let privileges = nobody
        .get(&api(&format!(
            "systemusers({me})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
        )))
        .expect(200);
    assert_eq!(privileges["RolePrivileges"], json!([]));
}

#[test]
fn a_user_with_the_privilege_is_refused_records_beyond_its_depth() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let users = w.users();
    let c001 = w.guid("c001");
    let con2 = w.guid("con2");
    let one = api(&format!("accounts({c001})"));
    let account = json!({"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": c001});
    let bob =
        json!({"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": users["bob"]});
    let cases: Vec<(&str, &str, String, Option<Value>)> = vec![
        ("retrieve", "GET", one.clone(), None),
        ("update", "PATCH", one.clone(), Some(json!({"name": "x"}))),
        ("delete", "DELETE", one.clone(), None),
        (
            "share",
            "POST",
            api("GrantAccess"),
            Some(
                json!({"Target": account, "PrincipalAccess": {"Principal": bob, "AccessMask": "ReadAccess"}}),
            ),
        ),
        (
            "shared principals",
            "GET",
            api(&format!(
                "RetrieveSharedPrincipalsAndAccess(Target=@p1)?@p1={}",
                alias(&format!(r#"{{"@odata.id":"accounts({c001})"}}"#))
            )),
            None,
        ),
        (
            "lookup to an unreadable contact",
            "PATCH",
            api(&format!("accounts({})", w.guid("a005"))),
            Some(json!({"primarycontactid@odata.bind": format!("/contacts({con2})")})),
        ),
        (
            "$ref to an unreadable contact",
            "PUT",
            api(&format!(
                "accounts({})/primarycontactid/$ref",
                w.guid("a005")
            )),
            Some(json!({"@odata.id": format!("{base}contacts({con2})")})),
        ),
        (
            "team membership",
            "POST",
            api(&format!(
                "teams({})/teammembership_association/$ref",
                w.admin()
                    .get(&api("teams(name='Sales%20Team')"))
                    .expect(200)["teamid"]
                    .as_str()
                    .unwrap()
            )),
            Some(json!({"@odata.id": format!("{base}systemusers({})", users["bob"])})),
        ),
        (
            "create for another owner",
            "POST",
            api("accounts"),
            Some(
                json!({"name": "x", "ownerid@odata.bind": format!("/systemusers({})", users["carol"])}),
            ),
        ),
    ];
    for (what, method, path, body) in cases {
        let before = w.revision();
        let r = match &body {
            Some(b) => json_request(&alice, method, &path, b, &[]),
            None => alice.raw(method, &path, &[], b""),
        };
        assert_eq!(r.status, 403, "{what}: {}", r.brief());
        assert_eq!(r.json()["error"]["code"], json!(DENIED), "{what}");
        assert_eq!(w.revision(), before, "{what} wrote");
    }
}

// ---------------------------------------------------------------------------------------------
// Impersonation and questions about others (D27)
// ---------------------------------------------------------------------------------------------

#[test]
fn impersonation_through_mscrmcallerid() {
    let w = Web::new();
    let base = w.base();
    let users = w.users();
    let carol = w.carol();
    let a001 = api(&format!("accounts({})", w.guid("a001")));
    let c001 = api(&format!("accounts({})", w.guid("c001")));
    let as_bob = [("MSCRMCallerID", users["bob"].as_str())];
    // Without prvActOnBehalfOfAnotherUser: refused.
    web_error(
        &get_with(&carol, &a001, &as_bob),
        403,
        DENIED,
        "denied",
        &["prvActOnBehalfOfAnotherUser"],
    );
    let before = w.revision();
    web_error(
        &json_request(
            &carol,
            "POST",
            &api("accounts"),
            &json!({"name": "as bob"}),
            &as_bob,
        ),
        403,
        DENIED,
        "denied",
        &[],
    );
    assert_eq!(w.revision(), before);
    w.f.root().write(
        &w.f.org,
        &json!([
            {"op": "add_role", "name": "Impersonator", "misc": ["prvActOnBehalfOfAnotherUser"],
             "privileges": {"account": {"read": "organization", "create": "organization"}}},
            {"op": "assign_role", "principal": "carol", "role": "Impersonator"}
        ]),
    );
    // WhoAmI answers for the impersonated user.
    let who = get_with(&carol, &api("WhoAmI()"), &as_bob).expect(200);
    assert_eq!(who["UserId"], json!(users["bob"]));
    // Reads are what both read: bob reads creditlimit, carol does not; c001 is not bob's.
    let r = get_with(&carol, &a001, &as_bob).expect(200);
    assert_eq!(r["creditlimit"], Value::Null);
    assert_eq!(w.bob().get(&a001).expect(200)["creditlimit"], json!(1001));
    web_error(
        &get_with(&carol, &c001, &as_bob),
        403,
        DENIED,
        "denied",
        &[],
    );
    let (items, _) = all_pages(
        &carol,
        &base,
        &api("accounts?$select=name"),
        &[as_bob[0], ("Prefer", "odata.maxpagesize=50")],
    );
    let mut expected = common::alice_readable();
    expected.remove("s1");
    let names: BTreeSet<String> = strings(&items, "name")
        .into_iter()
        .map(|n| n.trim_start_matches("Contoso ").to_owned())
        .collect();
    assert_eq!(names, expected);
    let count = get_with(&carol, &api("accounts/$count"), &as_bob);
    assert_eq!(count.text(), (SALES_RECORDS + 1).to_string());
    // A write on behalf of bob is bob's record, audited with both names.
    let r = json_request(
        &carol,
        "POST",
        &api("accounts"),
        &json!({"name": "as bob"}),
        &as_bob,
    );
    no_content(&r);
    let id = entity_id(&r, &base, "accounts");
    let created = w.bob().get(&api(&format!("accounts({id})"))).expect(200);
    assert_eq!(created["_ownerid_value"], json!(users["bob"]));
    let audit = w.admin().get(&w.f.url("/audit?limit=5000")).expect(200);
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "create" && e["record"] == json!(id))
        .unwrap_or_else(|| panic!("no audit entry for {id}"));
    assert_eq!(entry["user"], json!("bob"), "{entry}");
    assert_eq!(entry["impersonator"], json!("carol"), "{entry}");
    // By name too (Strata's own clients), and the unknown and the disabled.
    get_with(&carol, &a001, &[("MSCRMCallerID", "bob")]).expect(200);
    web_error(
        &get_with(
            &carol,
            &a001,
            &[("MSCRMCallerID", "00000000-0000-4000-8000-0000000000aa")],
        ),
        404,
        NOT_FOUND,
        "not_found",
        &["MSCRMCallerID"],
    );
    web_error(
        &get_with(&carol, &a001, &[("MSCRMCallerID", users["erin"].as_str())]),
        403,
        DENIED,
        "user_disabled",
        &[],
    );
    // Another caller without the privilege is still refused.
    let as_carol = [("MSCRMCallerID", users["carol"].as_str())];
    web_error(
        &get_with(&w.alice(), &c001, &as_carol),
        403,
        DENIED,
        "denied",
        &["prvActOnBehalfOfAnotherUser"],
    );
    // Naming oneself is no impersonation.
    let own = [("MSCRMCallerID", users["alice"].as_str())];
    get_with(&w.alice(), &a001, &own).expect(200);
}

#[test]
fn questions_about_other_users_need_check_access_of_others() {
    let w = Web::new();
    let users = w.users();
    let (alice, audrey) = (w.alice(), w.f.as_(&w.f.keys.audrey));
    let a001 = w.guid("a001");
    // alice about bob: refused, bound, unbound and for privileges.
    web_error(
        &principal_access(&alice, &users["bob"], "accounts", &a001),
        403,
        DENIED,
        "denied",
        &[],
    );
    web_error(
        &alice.get(&api(&format!(
            "RetrievePrincipalAccess(Target=@t,Principal=@p)?@t={}&@p={}",
            alias(&format!(r#"{{"@odata.id":"accounts({a001})"}}"#)),
            alias(&format!(
                r#"{{"@odata.id":"systemusers({})"}}"#,
                users["bob"]
            ))
        ))),
        403,
        DENIED,
        "denied",
        &[],
    );
    let privileges_of = |c: &Client, user: &str| {
        c.get(&api(&format!(
            "systemusers({user})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
        )))
    };
    web_error(
        &privileges_of(&alice, &users["bob"]),
        403,
        DENIED,
        "denied",
        &[],
    );
    // About herself: allowed.
    principal_access(&alice, &users["alice"], "accounts", &a001).expect(200);
    privileges_of(&alice, &users["alice"]).expect(200);
    // audrey holds prvCheckAccessOfOthers and reads users: her answers equal the native API's.
    for (user, key) in [
        ("bob", "a001"),
        ("carol", "a001"),
        ("carol", "c001"),
        ("alice", "s1"),
    ] {
        let web = principal_access(&audrey, &users[user], "accounts", &w.guid(key)).expect(200);
        let native = audrey
            .get(&w.f.url(&format!("/records/{key}/access?user={user}")))
            .expect(200);
        assert_eq!(
            web["AccessRights"], native["AccessRights"],
            "{user} on {key}"
        );
    }
    let bobs = privileges_of(&audrey, &users["bob"]).expect(200);
    assert!(
        bobs["RolePrivileges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["PrivilegeName"] == "prvWriteAccount"),
        "{bobs}"
    );
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

#[test]
fn web_api_writes_are_audited_like_native_ones() {
    let w = Web::new();
    let base = w.base();
    let (alice, admin) = (w.alice(), w.admin());
    let users = w.users();
    let r = alice.post(&api("accounts"), &json!({"name": "Audited"}));
    no_content(&r);
    let id = entity_id(&r, &base, "accounts");
    let path = api(&format!("accounts({id})"));
    no_content(&patch(
        &alice,
        &path,
        &json!({"name": "Audited b"}),
        &[("If-Match", "*")],
    ));
    no_content(&alice.post(
        &api("GrantAccess"),
        &json!({"Target": {"@odata.id": format!("accounts({id})")},
            "PrincipalAccess": {"Principal": {"@odata.id": format!("systemusers({})", users["bob"])}, "AccessMask": "ReadAccess"}}),
    ));
    no_content(&alice.delete(&path));
    let audit = admin.get(&w.f.url("/audit?limit=5000")).expect(200);
    let entries: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["record"] == json!(id))
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["create", "update", "share", "delete"],
        "{entries:?}"
    );
    for e in &entries {
        assert_eq!(e["user"], json!("alice"), "{e}");
        assert_eq!(e["table"], json!("account"), "{e}");
    }
    assert_eq!(entries[0]["detail"]["fields"]["name"], json!("Audited"));
    assert_eq!(
        entries[1]["detail"]["name"],
        json!({"old": "Audited", "new": "Audited b"})
    );
    // The same write through the native API gives the same entry.
    let native =
        json!({"op": "create", "table": "account", "id": "n1", "fields": {"name": "Audited"}});
    alice.write(&w.f.org, &native);
    let audit = admin.get(&w.f.url("/audit?limit=5000")).expect(200);
    let n1 = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["record"] == "n1")
        .unwrap();
    assert_eq!(n1["action"], entries[0]["action"]);
    assert_eq!(n1["user"], entries[0]["user"]);
    assert_eq!(n1["detail"], entries[0]["detail"]);
}

// ---------------------------------------------------------------------------------------------
// Differential: the Web API and the native API on the demo organisation
// ---------------------------------------------------------------------------------------------

#[test]
fn lists_and_access_equal_the_native_api_on_the_demo_organization() {
    let db = common::Db::new();
    let server = common::Server::start(&db.path);
    let root = server.root();
    let org = "demo";
    root.post("/api/v1/orgs", &json!({"name": org})).expect(201);
    // The demo's role rules come last, in a batch of their own: added over the assignments
    // that break them, they are reported, not refused (D46); inside the same batch they would
    // bind its assignments (D45).
    let (rules, ops): (Vec<_>, Vec<_>) = strata_demo::operations(40)
        .into_iter()
        .partition(|op| matches!(op, strata_ops::Operation::AddRoleRule { .. }));
    root.write(org, &serde_json::to_value(ops).unwrap());
    root.write(org, &serde_json::to_value(rules).unwrap());
    let admin_key = root.key_for(org, strata_demo::ADMIN);
    let admin = server.client(Some(&admin_key));
    let base = format!("http://{}{V}", server.addr);
    let tables = ["account", "contact", "opportunity", "incident", "product"];
    let mut sets = BTreeMap::new();
    for t in tables {
        let def = admin
            .get(&api(&format!(
                "EntityDefinitions(LogicalName='{t}')?$select=EntitySetName,PrimaryIdAttribute"
            )))
            .expect(200);
        sets.insert(
            t,
            (
                def["EntitySetName"].as_str().unwrap().to_owned(),
                def["PrimaryIdAttribute"].as_str().unwrap().to_owned(),
            ),
        );
    }
    let mut guids: BTreeMap<String, String> = BTreeMap::new();
    let mut guid_of = |key: &str| -> String {
        guids
            .entry(key.to_owned())
            .or_insert_with(|| native_guid(&root, org, key))
            .clone()
    };
    let native_list = |c: &Client, table: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => format!("/api/v1/orgs/{org}/tables/{table}/records?limit=97"),
                Some(c) => format!("/api/v1/orgs/{org}/tables/{table}/records?limit=97&cursor={c}"),
            };
            let page = c.get(&path).expect(200);
            out.extend(
                page["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    };
    let (mut lists, mut refused, mut compared) = (0, 0, 0);
    for user in [
        "rep_east",
        "mgr_na",
        "vp_sales",
        "rep_emea",
        "clerk",
        "hr_manager",
        "ceo",
    ] {
        let key = root.key_for(org, user);
        let client = server.client(Some(&key));
        let me = user_id(&client);
        for t in tables {
            let (set, id_column) = &sets[t];
            let native = native_list(&client, t);
            let query = api(&format!("{set}?$select={id_column}"));
            let prefer = [("Prefer", "odata.maxpagesize=23")];
            let first = get_with(&client, &query, &prefer);
            if first.status == 403 {
                // No Read privilege on the table: Dataverse refuses, the native API lists nothing.
                assert_eq!(first.json()["error"]["code"], json!(DENIED));
                assert!(
                    native.is_empty(),
                    "{user} on {t}: refused, yet native lists {native:?}"
                );
                refused += 1;
            } else {
                let (items, _) = all_pages(&client, &base, &query, &prefer);
                let ids = strings(&items, id_column);
                let web: BTreeSet<String> = ids.iter().cloned().collect();
                assert_eq!(web.len(), ids.len(), "{user} on {t}: a record listed twice");
                let expected: BTreeSet<String> = native.iter().map(|k| guid_of(k)).collect();
                assert_eq!(web, expected, "{user} lists {t}");
                let count = client.get(&api(&format!("{set}/$count")));
                assert_eq!(count.text(), native.len().to_string(), "{user} counts {t}");
                lists += 1;
            }
            // RetrievePrincipalAccess equals the native access, on records read and not.
            let all = native_list(&admin, t);
            for k in all.iter().step_by(3) {
                let g = guid_of(k);
                let web = principal_access(&client, &me, set, &g).expect(200);
                let native = client
                    .get(&format!("/api/v1/orgs/{org}/records/{k}/access"))
                    .expect(200);
                assert_eq!(web["AccessRights"], native["AccessRights"], "{user} on {k}");
                compared += 1;
            }
        }
    }
    println!(
        "{lists} lists equal, {refused} refused, {compared} access answers equal; {} records' GUIDs read",
        guids.len()
    );
    assert!(
        lists >= 20 && refused >= 1,
        "{lists} lists, {refused} refused"
    );
    assert!(compared > 300, "only {compared} access answers compared");
}
