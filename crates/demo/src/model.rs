//! The security model of the demo: units, tables, relationships, roles, users, teams, column
//! security, apps, hierarchy and audit settings. Everything here is fixed; the records are in
//! `records.rs`.

use std::collections::BTreeMap;

use serde_json::json;
use strata_ops::{ColumnOp, Fields, HierarchyOp, Operation, PermissionOp, SettingsOp};

/// The unit tree: seed 002's Contoso tree, plus a Customer Success branch and Professional
/// Services for the Work 365 teams of seed 000 (the units the Work 365 scenarios use).
const UNITS: &[(&str, Option<&str>)] = &[
    ("Contoso", None),
    ("Sales", Some("Contoso")),
    ("Sales North America", Some("Sales")),
    ("Sales US East", Some("Sales North America")),
    ("Sales US West", Some("Sales North America")),
    ("Sales EMEA", Some("Sales")),
    ("Sales APAC", Some("Sales")),
    ("Service", Some("Contoso")),
    ("Service Tier 1", Some("Service")),
    ("Service Tier 2", Some("Service")),
    ("Professional Services", Some("Service")),
    ("Marketing", Some("Contoso")),
    ("Marketing Campaigns", Some("Marketing")),
    ("Customer Success", Some("Contoso")),
    ("Customer Success East", Some("Customer Success")),
    ("Customer Success West", Some("Customer Success")),
];

/// Tables: (name, organization-owned, columns; a trailing `*` marks a secured column).
/// Dataverse logical names: `salesorder` is Order, `pricelevel` Price List,
/// `transactioncurrency` Currency, `activitypointer` Activity, `incident` Case.
const TABLES: &[(&str, bool, &[&str])] = &[
    ("systemuser", false, &["jobtitle", "annualincome*"]),
    // seed 002, Sales
    (
        "account",
        false,
        &[
            "name",
            "accountnumber",
            "annualrevenue",
            "industry",
            "address1_city",
        ],
    ),
    ("contact", false, &["fullname", "jobtitle", "emailaddress1"]),
    (
        "lead",
        false,
        &["subject", "companyname", "leadsource", "estimatedamount"],
    ),
    (
        "opportunity",
        false,
        &["name", "estimatedvalue", "closeprobability", "stepname"],
    ),
    ("quote", false, &["name", "totalamount"]),
    ("salesorder", false, &["name", "totalamount"]),
    ("activitypointer", false, &["subject"]),
    ("email", false, &["subject"]),
    ("phonecall", false, &["subject", "phonenumber"]),
    ("task", false, &["subject", "prioritycode"]),
    ("pricelevel", true, &["name"]),
    ("product", true, &["name", "productnumber", "price"]),
    (
        "transactioncurrency",
        true,
        &["currencyname", "isocurrencycode"],
    ),
    // The products' tables come from their packs (`packs/`, `products()`).
];

/// Relationships: (name, parent, child, lookup, behavior).
const RELATIONSHIPS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "contact_customer_accounts",
        "account",
        "contact",
        "parentcustomerid",
        "parental",
    ),
    (
        "opportunity_parent_account",
        "account",
        "opportunity",
        "parentaccountid",
        "parental",
    ),
    (
        "opportunity_quotes",
        "opportunity",
        "quote",
        "opportunityid",
        "parental",
    ),
    (
        "quote_orders",
        "quote",
        "salesorder",
        "quoteid",
        "referential",
    ),
    (
        "account_tasks",
        "account",
        "task",
        "regardingobjectid",
        "parental",
    ),
    (
        "account_phonecalls",
        "account",
        "phonecall",
        "regardingobjectid",
        "parental",
    ),
    (
        "account_emails",
        "account",
        "email",
        "regardingobjectid",
        "parental",
    ),
    // The products' relationships come from their packs.
];

/// The System Administrator role's name.
pub(crate) const SYSTEM_ADMINISTRATOR: &str = "System Administrator";

/// Roles: (name, grid). A grid line is `table privilege,privilege=depth ...`; `*` is all eight
/// privileges. The grids follow the seeds as the scenario files under
/// `tests/scenarios/seeds/` read them.
const ROLES: &[(&str, &str)] = &[
    // seed 002, "Creating Custom Roles", exactly as listed (no Append/AppendTo, no customization).
    (
        "Sales Representative",
        "account read=business_unit write,create=user
         contact read=business_unit write,create=user
         lead read=business_unit write,delete,create=user
         opportunity read=business_unit write,delete,create=user
         quote read,write,create=user
         salesorder read=user
         activitypointer read=business_unit write,create=user
         email read=business_unit write,create=user
         phonecall read=business_unit write,create=user
         task read=business_unit write,create=user
         pricelevel read=organization
         product read=organization
         transactioncurrency read=organization",
    ),
    // seed 002, "Role Composition Pattern".
    (
        "Employee Base",
        "account read=organization
         contact read=organization
         product read=organization
         activitypointer read=business_unit
         email read=business_unit
         phonecall write=user
         task write=user",
    ),
    (
        "Sales Team Member",
        "lead create,read,write,delete=user
         opportunity create,read,write,delete=business_unit
         quote create,read,write=user",
    ),
    // seed 002, "Sales Manager Add-On": Opportunity Read/Write elevated to Parent:Child, Assign
    // on Leads/Opportunities, Share on Accounts.
    (
        "Sales Manager",
        "opportunity read,write,assign=parent_child
         lead assign=parent_child
         account share=organization",
    ),
    // seed 002, "Field-Level Security" needs someone to read user records at all.
    (
        "Employee Directory",
        "systemuser read=organization write=user",
    ),
    ("HR Staff", "systemuser read,write=organization"),
    ("Team Administrator", "team read,write=organization"),
    // The products' roles (Customer Service Workspace, Omnichannel, Work 365) come from
    // their packs, in that order.
];

/// A user of the demo.
struct UserSpec {
    name: &'static str,
    unit: &'static str,
    roles: &'static [&'static str],
    manager: Option<&'static str>,
    title: &'static str,
    /// Annual income (the secured `systemuser.annualincome`); 0 = not set.
    salary: i64,
}

const DIRECTORY: &str = "Employee Directory";
const REP: &str = "Sales Representative";
const CSR: &str = "Customer Service Representative";

const USERS: &[UserSpec] = &[
    UserSpec {
        name: crate::ADMIN,
        unit: "Contoso",
        roles: &[SYSTEM_ADMINISTRATOR],
        manager: None,
        title: "System Administrator",
        salary: 0,
    },
    UserSpec {
        name: "ceo",
        unit: "Contoso",
        roles: &[REP, "Sales Manager", DIRECTORY],
        manager: None,
        title: "Chief Executive Officer",
        salary: 310_000,
    },
    UserSpec {
        name: "hr_manager",
        unit: "Contoso",
        roles: &["HR Staff"],
        manager: Some("hr_director"),
        title: "HR Manager",
        salary: 112_000,
    },
    UserSpec {
        name: "hr_director",
        unit: "Contoso",
        roles: &["HR Staff", "Team Administrator"],
        manager: Some("ceo"),
        title: "HR Director",
        salary: 158_000,
    },
    // Sales: CEO > VP Sales > Sales Manager NA > reps (seed 002, "Hierarchy Security").
    UserSpec {
        name: "vp_sales",
        unit: "Sales",
        roles: &[REP, "Sales Manager", DIRECTORY],
        manager: Some("ceo"),
        title: "VP Sales",
        salary: 205_000,
    },
    UserSpec {
        name: "mgr_na",
        unit: "Sales North America",
        roles: &[REP, "Sales Manager", DIRECTORY],
        manager: Some("vp_sales"),
        title: "Sales Manager - North America",
        salary: 142_000,
    },
    UserSpec {
        name: "clerk",
        unit: "Sales North America",
        roles: &[DIRECTORY],
        manager: Some("mgr_na"),
        title: "Order Desk Clerk",
        salary: 48_000,
    },
    UserSpec {
        name: "rep_east",
        unit: "Sales US East",
        roles: &[REP, DIRECTORY],
        manager: Some("mgr_na"),
        title: "Sales Representative",
        salary: 72_000,
    },
    UserSpec {
        name: "rep_east2",
        unit: "Sales US East",
        roles: &[REP, DIRECTORY],
        manager: Some("mgr_na"),
        title: "Sales Representative",
        salary: 68_500,
    },
    UserSpec {
        name: "rep_east3",
        unit: "Sales US East",
        roles: &[REP, DIRECTORY],
        manager: Some("mgr_na"),
        title: "Key Account Representative",
        salary: 81_000,
    },
    UserSpec {
        name: "rep_west",
        unit: "Sales US West",
        roles: &[REP, DIRECTORY],
        manager: Some("mgr_na"),
        title: "Sales Representative",
        salary: 70_000,
    },
    UserSpec {
        name: "rep_west2",
        unit: "Sales US West",
        roles: &[REP, DIRECTORY],
        manager: Some("mgr_na"),
        title: "Enterprise Sales Representative",
        salary: 88_000,
    },
    UserSpec {
        name: "mgr_emea",
        unit: "Sales EMEA",
        roles: &[
            "Employee Base",
            "Sales Team Member",
            "Sales Manager",
            DIRECTORY,
        ],
        manager: Some("vp_sales"),
        title: "Sales Manager - EMEA",
        salary: 139_000,
    },
    UserSpec {
        name: "rep_emea",
        unit: "Sales EMEA",
        roles: &["Employee Base", "Sales Team Member", DIRECTORY],
        manager: Some("mgr_emea"),
        title: "Sales Representative",
        salary: 66_000,
    },
    UserSpec {
        name: "rep_emea2",
        unit: "Sales EMEA",
        roles: &["Employee Base", "Sales Team Member", DIRECTORY],
        manager: Some("mgr_emea"),
        title: "Sales Representative",
        salary: 64_000,
    },
    UserSpec {
        name: "rep_apac",
        unit: "Sales APAC",
        roles: &[REP, DIRECTORY],
        manager: Some("vp_sales"),
        title: "Sales Representative",
        salary: 69_000,
    },
    UserSpec {
        name: "rep_apac2",
        unit: "Sales APAC",
        roles: &[REP, DIRECTORY],
        manager: Some("vp_sales"),
        title: "Sales Representative",
        salary: 67_000,
    },
    // Service: Customer Service Workspace and Omnichannel (seeds 001, 004).
    UserSpec {
        name: "vp_service",
        unit: "Service",
        roles: &[
            "Basic User",
            CSR,
            "Omnichannel supervisor",
            "App Profile User",
            DIRECTORY,
        ],
        manager: Some("ceo"),
        title: "VP Service",
        salary: 188_000,
    },
    UserSpec {
        name: "svc_manager",
        unit: "Service Tier 1",
        roles: &[
            "Basic User",
            CSR,
            "Omnichannel supervisor",
            "App Profile User",
            DIRECTORY,
        ],
        manager: Some("vp_service"),
        title: "Service Manager",
        salary: 118_000,
    },
    UserSpec {
        name: "agent",
        unit: "Service Tier 1",
        roles: &[
            "Basic User",
            "Omnichannel agent",
            CSR,
            "App Profile User",
            DIRECTORY,
        ],
        manager: Some("svc_manager"),
        title: "Customer Service Agent",
        salary: 52_000,
    },
    UserSpec {
        name: "agent2",
        unit: "Service Tier 1",
        roles: &[
            "Basic User",
            "Omnichannel agent",
            CSR,
            "App Profile User",
            DIRECTORY,
        ],
        manager: Some("svc_manager"),
        title: "Customer Service Agent",
        salary: 51_000,
    },
    UserSpec {
        name: "agent_t2",
        unit: "Service Tier 2",
        roles: &[
            "Basic User",
            "Omnichannel agent",
            CSR,
            "App Profile User",
            DIRECTORY,
        ],
        manager: Some("vp_service"),
        title: "Escalation Engineer",
        salary: 74_000,
    },
    // seed 001: Basic User and Omnichannel administrator, and still no workspace.
    UserSpec {
        name: "stuck_user",
        unit: "Service Tier 1",
        roles: &["Basic User", "Omnichannel administrator"],
        manager: Some("svc_manager"),
        title: "Omnichannel Administrator",
        salary: 83_000,
    },
    UserSpec {
        name: "oc_admin",
        unit: "Service",
        roles: &[
            "Basic User",
            "Omnichannel administrator",
            "App Profile User",
            DIRECTORY,
        ],
        manager: Some("vp_service"),
        title: "Omnichannel Administrator",
        salary: 91_000,
    },
    UserSpec {
        name: "consultant",
        unit: "Professional Services",
        roles: &["Work 365 Service", DIRECTORY],
        manager: Some("vp_service"),
        title: "Consultant",
        salary: 95_000,
    },
    UserSpec {
        name: "consultant2",
        unit: "Professional Services",
        roles: &["Work 365 Service", DIRECTORY],
        manager: Some("vp_service"),
        title: "Consultant",
        salary: 92_000,
    },
    // Marketing.
    UserSpec {
        name: "marketer",
        unit: "Marketing",
        roles: &["Employee Base", DIRECTORY],
        manager: Some("ceo"),
        title: "Marketing Manager",
        salary: 97_000,
    },
    UserSpec {
        name: "marketer2",
        unit: "Marketing Campaigns",
        roles: &["Employee Base", DIRECTORY],
        manager: Some("marketer"),
        title: "Campaign Specialist",
        salary: 61_000,
    },
    // Work 365 (seed 000).
    UserSpec {
        name: "w365_admin",
        unit: "Customer Success",
        roles: &["Work 365 Admin", DIRECTORY],
        manager: Some("ceo"),
        title: "Work 365 Operations Lead",
        salary: 126_000,
    },
    UserSpec {
        name: "cs_manager_east",
        unit: "Customer Success East",
        roles: &["Work 365 CS Manager", DIRECTORY],
        manager: Some("w365_admin"),
        title: "Customer Success Manager",
        salary: 109_000,
    },
    UserSpec {
        name: "cs_rep_east",
        unit: "Customer Success East",
        roles: &["Work 365 CS Representative", DIRECTORY],
        manager: Some("cs_manager_east"),
        title: "Customer Success Representative",
        salary: 63_000,
    },
    UserSpec {
        name: "cs_rep_east2",
        unit: "Customer Success East",
        roles: &["Work 365 CS Representative", DIRECTORY],
        manager: Some("cs_manager_east"),
        title: "Renewal Specialist",
        salary: 61_500,
    },
    UserSpec {
        name: "cs_support",
        unit: "Customer Success East",
        roles: &["Work 365 Customer Service", DIRECTORY],
        manager: Some("cs_manager_east"),
        title: "Help Desk Agent",
        salary: 47_000,
    },
    UserSpec {
        name: "legacy_user",
        unit: "Customer Success East",
        roles: &["Work365 User (Deprecated)"],
        manager: Some("cs_manager_east"),
        title: "Account Manager",
        salary: 58_000,
    },
    UserSpec {
        name: "cs_manager_west",
        unit: "Customer Success West",
        roles: &["Work 365 CS Manager", DIRECTORY],
        manager: Some("w365_admin"),
        title: "Customer Success Manager",
        salary: 107_000,
    },
    UserSpec {
        name: "cs_rep_west",
        unit: "Customer Success West",
        roles: &["Work 365 CS Representative", DIRECTORY],
        manager: Some("cs_manager_west"),
        title: "Customer Success Representative",
        salary: 62_000,
    },
    UserSpec {
        name: "w365_seller",
        unit: "Customer Success West",
        roles: &["Work 365 Sales", DIRECTORY],
        manager: Some("cs_manager_west"),
        title: "Partner Account Manager",
        salary: 84_000,
    },
];

/// A team: (name, type, unit, roles, members).
type TeamSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// Teams.
const TEAMS: &[TeamSpec] = &[
    // seed 002, "Owner Teams": Sales EMEA Team with the Sales Team Member role.
    (
        "Sales EMEA Team",
        "owner",
        "Sales EMEA",
        &["Sales Team Member"],
        &["mgr_emea", "rep_emea", "rep_emea2"],
    ),
    // Regional accounts owned together; members use their own roles on the team's records.
    (
        "Key Accounts",
        "owner",
        "Sales US East",
        &[],
        &["rep_east3", "rep_west"],
    ),
    // Shared support queue.
    (
        "Tier 1 Support",
        "owner",
        "Service Tier 1",
        &[CSR],
        &["svc_manager", "agent", "agent2"],
    ),
    // seed 002, "Programmatic Sharing": accounts over $1M are shared with this team.
    (
        "Enterprise Sales Team",
        "owner",
        "Sales",
        &[],
        &["mgr_na", "mgr_emea", "rep_west2", "rep_apac"],
    ),
    // seed 002, "Manager Salary View" members.
    (
        "Department Managers",
        "owner",
        "Contoso",
        &[],
        &[
            "mgr_na",
            "mgr_emea",
            "svc_manager",
            "cs_manager_east",
            "cs_manager_west",
        ],
    ),
];

/// The access team template on accounts (seed 002, "Team Templates").
pub(crate) const ACCOUNT_TEAM: &str = "Account Team";

/// A column permission: (table, column, read, update, create).
type ColumnGrant = (&'static str, &'static str, bool, bool, bool);

/// Field security profiles: (name, members, column permissions). The products' profiles come
/// from their packs, with the members of [`PACK_PROFILE_MEMBERS`].
const PROFILES: &[(&str, &[&str], &[ColumnGrant])] = &[
    (
        "HR Salary Access",
        &["hr_manager", "hr_director"],
        &[("systemuser", "annualincome", true, true, true)],
    ),
    (
        "Manager Salary View",
        &["team:Department Managers"],
        &[("systemuser", "annualincome", true, false, false)],
    ),
];

/// The members the demo gives the packs' column security profiles.
const PACK_PROFILE_MEMBERS: &[(&str, &[&str])] = &[
    (
        "Time Log Approvers",
        &["w365_admin", "cs_manager_east", "cs_manager_west"],
    ),
    (
        "Time Log Viewers",
        &[
            "cs_rep_east",
            "cs_rep_east2",
            "cs_rep_west",
            "consultant",
            "consultant2",
        ],
    ),
    ("Omnichannel Channel Secrets", &["oc_admin"]),
];

/// The packs of the demo's products, in the order their parts are added: the Customer Service
/// Workspace (seed 001), Omnichannel for Customer Service (seed 004), Work 365 (seed 000).
const PRODUCTS: [&str; 3] = ["customer-service-workspace", "omnichannel", "work365"];

/// A built-in pack, parsed (the packs' own tests hold them to parse; an empty pack here would
/// fail the demo's tests).
pub(crate) fn pack(name: &str) -> strata_scenario::Scenario {
    strata_scenario::pack::built_in(name)
        .and_then(|text| strata_scenario::pack::parse(text).ok())
        .unwrap_or_default()
}

fn products() -> Vec<strata_scenario::Scenario> {
    PRODUCTS.iter().map(|name| pack(name)).collect()
}

/// Tables with hierarchy security (seed 002: Account, Contact, Opportunity, Lead, Case).
const HIERARCHY_TABLES: &[&str] = &["account", "contact", "opportunity", "lead", "incident"];

/// Audited tables.
const AUDITED: &[&str] = &[
    "systemuser",
    "account",
    "contact",
    "lead",
    "opportunity",
    "quote",
    "salesorder",
    "incident",
    "w365_billingcontract",
    "w365_subscription",
    "w365_invoice",
    "w365_timelog",
];

const ALL_PRIVILEGES: [&str; 8] = [
    "create",
    "read",
    "write",
    "delete",
    "append",
    "append_to",
    "assign",
    "share",
];

/// Parses a role grid (see [`ROLES`]). A malformed word gives a privilege or depth name that
/// applying the operation refuses, so mistakes cannot pass silently.
fn grid(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(table) = words.next() else {
            continue;
        };
        let entry = out.entry(table.to_owned()).or_default();
        for word in words {
            let (privileges, depth) = word.split_once('=').unwrap_or((word, ""));
            for p in privileges.split(',') {
                if p == "*" {
                    for all in ALL_PRIVILEGES {
                        entry.insert(all.to_owned(), depth.to_owned());
                    }
                } else {
                    entry.insert(p.to_owned(), depth.to_owned());
                }
            }
        }
    }
    out
}

/// Column values from pairs.
pub(crate) fn fields<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> Fields {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn user_names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The setup operations of the model (before any record).
pub(crate) fn setup() -> Vec<Operation> {
    let mut ops = Vec::new();
    for (name, parent) in UNITS {
        ops.push(Operation::AddBusinessUnit {
            name: (*name).to_owned(),
            parent: parent.map(str::to_owned),
        });
    }
    for (name, org_owned, columns) in TABLES {
        ops.push(Operation::AddTable {
            name: (*name).to_owned(),
            ownership: org_owned.then(|| "organization".to_owned()),
            columns: columns
                .iter()
                .map(|c| ColumnOp {
                    name: c.trim_end_matches('*').to_owned(),
                    secured: c.ends_with('*'),
                })
                .collect(),
            entity_set: None,
        });
    }
    let products = products();
    let mut declared: Vec<&str> = TABLES.iter().map(|(name, _, _)| *name).collect();
    for p in &products {
        for t in &p.tables {
            if !declared.contains(&t.name.as_str()) {
                declared.push(&t.name);
                ops.push(strata_scenario::pack::table_op(t));
            }
        }
    }
    for (name, parent, child, lookup, behavior) in RELATIONSHIPS {
        ops.push(Operation::AddRelationship {
            name: (*name).to_owned(),
            parent: (*parent).to_owned(),
            child: (*child).to_owned(),
            lookup: (*lookup).to_owned(),
            behavior: (*behavior).to_owned(),
            cascade: None,
        });
    }
    for p in &products {
        ops.extend(
            p.relationships
                .iter()
                .map(strata_scenario::pack::relationship_op),
        );
    }
    ops.push(Operation::Settings(SettingsOp {
        hierarchy: Some(HierarchyOp {
            model: "manager".to_owned(),
            depth: 3,
            tables: Some(user_names(HIERARCHY_TABLES)),
            managers_must_be_in_same_or_parent_business_unit: true,
        }),
        ..SettingsOp::default()
    }));
    ops.push(Operation::SetAudit {
        enabled: true,
        retention_days: 90,
        user_access: true,
        tables: user_names(AUDITED),
        columns_off: Vec::new(),
    });
    ops.push(Operation::AddRole {
        name: SYSTEM_ADMINISTRATOR.to_owned(),
        business_unit: None,
        inheritance: None,
        system_administrator: true,
        privileges: BTreeMap::new(),
        misc: Vec::new(),
    });
    for (name, text) in ROLES {
        ops.push(Operation::AddRole {
            name: (*name).to_owned(),
            business_unit: None,
            inheritance: None,
            system_administrator: false,
            privileges: grid(text),
            misc: Vec::new(),
        });
    }
    for p in &products {
        ops.extend(p.roles.iter().map(strata_scenario::pack::role_op));
    }
    for u in USERS {
        ops.push(Operation::AddUser {
            name: u.name.to_owned(),
            business_unit: Some(u.unit.to_owned()),
            enabled: true,
        });
        let mut f = fields([("jobtitle", json!(u.title))]);
        if u.salary > 0 {
            f.insert("annualincome".to_owned(), json!(u.salary));
        }
        ops.push(Operation::SetUserFields {
            user: u.name.to_owned(),
            fields: f,
        });
    }
    for (name, kind, unit, _, _) in TEAMS {
        ops.push(Operation::AddTeam {
            name: (*name).to_owned(),
            kind: Some((*kind).to_owned()),
            business_unit: Some((*unit).to_owned()),
        });
    }
    ops.push(Operation::AddTemplate {
        name: ACCOUNT_TEAM.to_owned(),
        table: "account".to_owned(),
        rights: user_names(&["read", "write", "append"]),
    });
    for (name, members, permissions) in PROFILES {
        ops.push(Operation::AddProfile {
            name: (*name).to_owned(),
            members: user_names(members),
            permissions: permissions
                .iter()
                .map(|(table, column, read, update, create)| PermissionOp {
                    table: (*table).to_owned(),
                    column: (*column).to_owned(),
                    read: *read,
                    update: *update,
                    create: *create,
                })
                .collect(),
        });
    }
    // Time Log approval (seed 000), then the Omnichannel secrets (seed 004).
    for name in ["work365", "omnichannel"] {
        for p in &pack(name).profiles {
            let members = PACK_PROFILE_MEMBERS
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or_else(Vec::new, |(_, m)| user_names(m));
            ops.push(strata_scenario::pack::profile_op(p, members));
        }
    }
    for p in &products {
        for a in &p.apps {
            ops.extend(strata_scenario::pack::app_ops(a));
        }
    }
    ops
}

/// The system actions of the model: role assignments, team membership, managers.
/// The role rules of seeds 000 and 004 (D45–D47), added after the assignments: holders who
/// break them are reported by the violations report (D46), as on a live organisation that
/// starts enforcing them (`stuck_user` holds Omnichannel administrator without System
/// Administrator; the Work 365 users hold no CRM role). And the deprecated Work 365 role.
pub(crate) fn role_rules() -> Vec<Operation> {
    let (omnichannel, work365) = (pack("omnichannel"), pack("work365"));
    let mut ops = strata_scenario::pack::rule_ops(&omnichannel);
    // Seed 000's deprecated role: still held (legacy_user), no longer assignable.
    ops.extend(
        work365
            .roles
            .iter()
            .filter_map(strata_scenario::pack::deprecation_op),
    );
    // "To assign Work 365 roles, an individual must already have the necessary CRM role."
    ops.extend(strata_scenario::pack::rule_ops(&work365));
    ops
}

pub(crate) fn actions() -> Vec<Operation> {
    let mut ops = Vec::new();
    for u in USERS {
        for role in u.roles {
            ops.push(Operation::AssignRole {
                actor: None,
                principal: u.name.to_owned(),
                role: (*role).to_owned(),
                business_unit: None,
            });
        }
    }
    for (name, _, _, roles, members) in TEAMS {
        for role in *roles {
            ops.push(Operation::AssignRole {
                actor: None,
                principal: format!("team:{name}"),
                role: (*role).to_owned(),
                business_unit: None,
            });
        }
        for member in *members {
            ops.push(Operation::AddTeamMember {
                actor: None,
                team: (*name).to_owned(),
                user: (*member).to_owned(),
            });
        }
    }
    for u in USERS {
        if let Some(manager) = u.manager {
            ops.push(Operation::SetManager {
                actor: None,
                user: u.name.to_owned(),
                manager: Some(manager.to_owned()),
            });
        }
    }
    ops
}

/// Every demo user's name (for the licences, `licences.rs`).
pub(crate) fn users() -> impl Iterator<Item = &'static str> {
    USERS.iter().map(|u| u.name)
}
