//! The demo's licences (seed 003, docs/semantics.md D48–D50): the catalogue — Professional 4,
//! Enterprise 6, Basic 2 (the seed's Basic use rights on the demo's tables), Essential 1, Team 1
//! — and a licence for every user: Professional for most (over-licensed where Basic would do),
//! Enterprise for the CEO (over-licensed), Basic for a marketer whose role Basic covers, and
//! Basic for two sales representatives whose roles need more (under-licensed: their
//! opportunity and quote writes are capped).

use std::collections::BTreeMap;

use strata_ops::{LicenceOp, Operation};

const FULL: &[&str] = &[
    "create",
    "read",
    "write",
    "delete",
    "append",
    "append_to",
    "assign",
    "share",
];

fn row(privileges: &[&str]) -> BTreeMap<String, String> {
    privileges
        .iter()
        .map(|p| ((*p).to_owned(), "organization".to_owned()))
        .collect()
}

/// Seed 003's Basic licence on the demo's tables: full where Basic = 1, read where the seed's
/// USL column says Read, opportunities read and append.
fn basic() -> LicenceOp {
    let mut tables = BTreeMap::new();
    for t in [
        "account",
        "contact",
        "lead",
        "incident",
        "activitypointer",
        "email",
        "phonecall",
        "task",
    ] {
        tables.insert(t.to_owned(), row(FULL));
    }
    tables.insert(
        "queue".to_owned(),
        row(&["read", "write", "append", "append_to"]),
    );
    tables.insert("opportunity".to_owned(), row(&["read", "append"]));
    for t in [
        "quote",
        "salesorder",
        "pricelevel",
        "product",
        "transactioncurrency",
        // "Read custom application data" = 1.
        "w365_pricelist",
        "w365_product",
        "msdyn_liveworkstream",
        "msdyn_presence",
        "msdyn_cannedmessage",
    ] {
        tables.insert(t.to_owned(), row(&["read"]));
    }
    // Users read the directory and keep their own profile.
    let mut me = row(&["read"]);
    me.insert("write".to_owned(), "user".to_owned());
    tables.insert("systemuser".to_owned(), me);
    // "Write custom entity records" = 1.
    for t in [
        "w365_billingcontract",
        "w365_subscription",
        "w365_invoice",
        "w365_timelog",
        "msdyn_ocliveworkitem",
    ] {
        tables.insert(
            t.to_owned(),
            row(&["create", "read", "write", "append", "append_to"]),
        );
    }
    LicenceOp {
        name: "Basic".to_owned(),
        price: 2,
        default: None,
        tables,
        all_misc: false,
        misc: [
            "prvExportToExcel",
            "prvMailMerge",
            "prvWebMailMerge",
            "prvSyncToOutlook",
            "prvGoOffline",
            "prvUseTabletApp",
        ]
        .map(str::to_owned)
        .to_vec(),
        all_apps: true,
        apps: Vec::new(),
    }
}

fn everything(name: &str, price: u32) -> LicenceOp {
    LicenceOp {
        name: name.to_owned(),
        price,
        default: Some("organization".to_owned()),
        tables: BTreeMap::new(),
        all_misc: true,
        misc: Vec::new(),
        all_apps: true,
        apps: Vec::new(),
    }
}

/// Users holding something other than Professional.
const HOLDERS: &[(&str, &str)] = &[
    ("ceo", "Enterprise"),
    ("rep_apac2", "Basic"),
    ("rep_west2", "Basic"),
    ("marketer2", "Basic"),
];

/// The catalogue and every user's licence (after the users exist).
pub(crate) fn operations(users: impl Iterator<Item = &'static str>) -> Vec<Operation> {
    let mut ops = vec![
        Operation::AddLicence(everything("Professional", 4)),
        Operation::AddLicence(everything("Enterprise", 6)),
        Operation::AddLicence(basic()),
        Operation::AddLicence(LicenceOp {
            name: "Essential".to_owned(),
            price: 1,
            default: None,
            tables: ["w365_timelog", "w365_subscription", "msdyn_ocliveworkitem"]
                .into_iter()
                .map(|t| (t.to_owned(), row(FULL)))
                .collect(),
            all_misc: false,
            misc: Vec::new(),
            all_apps: false,
            apps: Vec::new(),
        }),
        Operation::AddLicence(LicenceOp {
            name: "Team".to_owned(),
            price: 1,
            default: None,
            tables: ["account", "contact", "systemuser"]
                .into_iter()
                .map(|t| (t.to_owned(), row(&["read"])))
                .collect(),
            all_misc: false,
            misc: Vec::new(),
            all_apps: false,
            apps: Vec::new(),
        }),
    ];
    for user in users {
        let licence = HOLDERS
            .iter()
            .find(|(u, _)| *u == user)
            .map_or("Professional", |(_, l)| l);
        ops.push(Operation::SetUserLicence {
            user: user.to_owned(),
            licences: vec![licence.to_owned()],
        });
    }
    ops
}
