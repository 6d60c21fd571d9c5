//! The records of the demo: a handful of named story records that the tour and the tests
//! use (never touched by the generated shares), then generated records from a fixed-seed PRNG.

use serde_json::json;
use strata_ops::{Fields, Operation};

use crate::model::{ACCOUNT_TEAM, fields};
use crate::rng::Rng;

/// The PRNG seed ("STRATA" and a version: change it and every generated record changes).
const SEED: u64 = 0x5354_5241_5441_0001;

const SALES_OWNERS: &[&str] = &[
    "rep_east",
    "rep_east2",
    "rep_east3",
    "rep_west",
    "rep_west2",
    "rep_emea",
    "rep_emea2",
    "rep_apac",
    "rep_apac2",
    "mgr_na",
    "mgr_emea",
    "vp_sales",
];
const SALES_TEAMS: &[&str] = &["team:Key Accounts", "team:Sales EMEA Team"];
const CS_OWNERS: &[&str] = &[
    "cs_rep_east",
    "cs_rep_east2",
    "cs_rep_west",
    "cs_manager_east",
    "cs_manager_west",
    "w365_seller",
];
const LEAD_OWNERS: &[&str] = &[
    "rep_east",
    "rep_east2",
    "rep_east3",
    "rep_west",
    "rep_west2",
    "rep_emea",
    "rep_emea2",
    "rep_apac",
    "rep_apac2",
    "marketer",
    "marketer2",
    "team:Sales EMEA Team",
];
const SERVICE_OWNERS: &[&str] = &[
    "agent",
    "agent",
    "agent2",
    "agent2",
    "agent_t2",
    "svc_manager",
    "team:Tier 1 Support",
];
const ACTIVITY_OWNERS: &[&str] = &[
    "rep_east",
    "rep_east2",
    "rep_west",
    "rep_emea",
    "rep_apac",
    "agent",
    "agent2",
    "marketer",
];
const TIME_LOGGERS: &[&str] = &[
    "cs_rep_east",
    "cs_rep_east2",
    "cs_rep_west",
    "consultant",
    "consultant2",
];
const ACCESS_TEAM_MEMBERS: &[&str] = &[
    "rep_east",
    "rep_east3",
    "rep_west",
    "rep_west2",
    "rep_apac",
    "agent",
    "agent_t2",
];
const AGENTS: &[&str] = &["agent", "agent2", "agent_t2"];

const COMPANY_A: &[&str] = &[
    "Alpine",
    "Bluebird",
    "Cedar",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Maple",
    "Nimbus",
    "Orchid",
    "Pioneer",
    "Quartz",
    "Riverside",
    "Summit",
    "Tidewater",
    "Union",
    "Vertex",
    "Willow",
    "Zenith",
];
const COMPANY_B: &[&str] = &[
    "Analytics",
    "Bikes",
    "Foods",
    "Logistics",
    "Health",
    "Energy",
    "Media",
    "Retail",
    "Systems",
    "Textiles",
    "Travel",
    "Labs",
    "Pharma",
    "Robotics",
    "Outfitters",
];
const COMPANY_C: &[&str] = &["Ltd", "Inc", "GmbH", "LLC", "Group", "Co", "AG", "Pty"];
const FIRST: &[&str] = &[
    "Alex", "Blake", "Casey", "Dana", "Eli", "Frankie", "Gale", "Harper", "Indra", "Jordan", "Kim",
    "Lee", "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Riley", "Sam", "Taylor",
];
const LAST: &[&str] = &[
    "Anders", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Khan", "Lopez", "Meyer", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber",
];
const CITIES: &[&str] = &[
    "Seattle",
    "Boston",
    "New York",
    "Atlanta",
    "Austin",
    "Denver",
    "San Francisco",
    "London",
    "Paris",
    "Munich",
    "Madrid",
    "Sydney",
    "Singapore",
    "Tokyo",
];
const INDUSTRIES: &[&str] = &[
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Financial Services",
    "Technology",
    "Education",
    "Hospitality",
    "Energy",
];
const CONTACT_TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "IT Director",
    "Purchasing Manager",
    "Office Manager",
    "Operations Lead",
    "Procurement Specialist",
];
const STAGES: &[&str] = &["Qualify", "Develop", "Propose", "Close"];
const LEAD_SOURCES: &[&str] = &["Web", "Trade Show", "Partner", "Referral", "Advertisement"];
const PRODUCTS: &[&str] = &[
    "Surface Laptop 7",
    "Surface Pro 11",
    "Surface Hub 3",
    "Dynamics 365 Sales seat",
    "Dynamics 365 Customer Service seat",
    "Premier Support Gold",
    "Onboarding package",
    "Data migration service",
    "Training day",
    "Field engineer visit",
];
const W365_PRODUCTS: &[(&str, i64)] = &[
    ("Microsoft 365 E3", 36),
    ("Microsoft 365 E5", 57),
    ("Microsoft 365 Business Premium", 22),
    ("Teams Phone Standard", 8),
    ("Dynamics 365 Sales Enterprise", 105),
    ("Azure Plan", 0),
    ("Exchange Online Plan 1", 4),
    ("Power BI Pro", 14),
];
const CASE_TITLES: &[&str] = &[
    "Cannot sign in",
    "Invoice question",
    "Password reset",
    "Order not delivered",
    "License assignment",
    "Outage report",
    "Feature request",
    "Billing address change",
];
const CHANNELS: &[&str] = &["Chat", "SMS", "WhatsApp", "Voice", "Email"];
const TASKS: &[&str] = &[
    "Send proposal",
    "Prepare demo",
    "Follow up on quote",
    "Check renewal date",
];
const CALLS: &[&str] = &["Discovery call", "Check-in call", "Escalation call"];
const EMAILS: &[&str] = &["Meeting recap", "Pricing details", "Welcome aboard"];

/// Accounts, contacts, opportunities, incidents and time logs named by the tour and the tests.
const STORY_ACCOUNTS: &[(&str, &str, i64, &str, &str)] = &[
    // acc-0001: rep_east's own account; mgr_na edits it through hierarchy.
    (
        "Contoso Pharmaceuticals",
        "rep_east",
        750_000,
        "Boston",
        "Healthcare",
    ),
    // acc-0002: a peer's account in Sales US East: rep_east reads it, cannot write it.
    (
        "Fabrikam",
        "rep_east2",
        420_000,
        "New York",
        "Manufacturing",
    ),
    // acc-0003: rep_emea's account; vp_sales reads it two levels down.
    (
        "Adventure Works Cycles",
        "rep_emea",
        880_000,
        "London",
        "Retail",
    ),
    // acc-0004: owned by the Key Accounts team.
    (
        "Litware",
        "team:Key Accounts",
        960_000,
        "Atlanta",
        "Technology",
    ),
    // acc-0005: a Work 365 customer of Customer Success East.
    (
        "Northwind Traders",
        "cs_rep_east",
        310_000,
        "Seattle",
        "Retail",
    ),
    // acc-0006: shared with the whole organization (read).
    (
        "Tailspin Toys",
        "rep_west",
        540_000,
        "San Francisco",
        "Retail",
    ),
    // acc-0007: rep_west is on its Account Team.
    (
        "Wide World Importers",
        "rep_east",
        690_000,
        "Baltimore",
        "Logistics",
    ),
    // acc-0008: an ordinary Sales US West account, shared with nobody.
    (
        "Woodgrove Bank",
        "rep_west",
        990_000,
        "Denver",
        "Financial Services",
    ),
];

/// A record that children can point at.
#[derive(Clone, Debug)]
struct Parent {
    id: String,
    owner: &'static str,
}

/// The generated operations, grouped by when they are applied.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// `insert_record` setup operations.
    pub(crate) inserts: Vec<Operation>,
    /// `associate` system actions (lookups).
    pub(crate) links: Vec<Operation>,
    /// `share` and `add_access_team_member` system actions.
    pub(crate) shares: Vec<Operation>,
}

struct Generator {
    rng: Rng,
    out: Records,
}

fn id(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:04}")
}

/// `n × num / den`, at least `min`.
fn scaled(n: usize, num: usize, den: usize, min: usize) -> usize {
    (n.saturating_mul(num) / den.max(1)).max(min)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Generator {
    fn insert(
        &mut self,
        id: &str,
        table: &str,
        owner: Option<&str>,
        inactive: bool,
        fields: Fields,
    ) {
        self.out.inserts.push(Operation::InsertRecord {
            id: id.to_owned(),
            table: table.to_owned(),
            owner: owner.map(str::to_owned),
            business_unit: None,
            state: inactive.then(|| "inactive".to_owned()),
            fields,
        });
    }

    fn link(&mut self, child: &str, lookup: &str, parent: &str) {
        self.out.links.push(Operation::Associate {
            actor: None,
            record: child.to_owned(),
            lookup: lookup.to_owned(),
            parent: parent.to_owned(),
        });
    }

    fn share(&mut self, record: &str, principal: &str, rights: &[&str]) {
        self.out.shares.push(Operation::Share {
            actor: None,
            record: record.to_owned(),
            principal: principal.to_owned(),
            rights: strings(rights),
        });
    }

    fn access_team(&mut self, record: &str, user: &str) {
        self.out.shares.push(Operation::AddAccessTeamMember {
            actor: None,
            record: record.to_owned(),
            template: ACCOUNT_TEAM.to_owned(),
            user: user.to_owned(),
        });
    }

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        self.rng.pick(items, "admin")
    }

    /// Someone from `pool` other than `not`.
    fn other(&mut self, pool: &[&'static str], not: &str) -> &'static str {
        let first = self.pick(pool);
        if first != not {
            return first;
        }
        pool.iter().copied().find(|p| *p != not).unwrap_or(first)
    }

    fn parent(&mut self, list: &[Parent]) -> Option<Parent> {
        list.get(self.rng.below(list.len())).cloned()
    }

    fn company(&mut self) -> String {
        let a = self.pick(COMPANY_A);
        let b = self.pick(COMPANY_B);
        let c = self.pick(COMPANY_C);
        format!("{a} {b} {c}")
    }

    fn person(&mut self) -> (&'static str, &'static str) {
        (self.pick(FIRST), self.pick(LAST))
    }

    fn revenue(&mut self) -> i64 {
        match self.rng.below(100) {
            0..50 => self.rng.between(5, 50) * 10_000,
            50..85 => self.rng.between(50, 99) * 10_000,
            _ => self.rng.between(11, 250) * 100_000,
        }
    }

    fn organization_owned(&mut self) {
        for (key, name) in [
            ("pl-retail", "Retail 2026"),
            ("pl-wholesale", "Wholesale 2026"),
            ("pl-partner", "Partner 2026"),
        ] {
            self.insert(
                key,
                "pricelevel",
                None,
                false,
                fields([("name", json!(name))]),
            );
        }
        for (i, name) in PRODUCTS.iter().enumerate() {
            let price = self.rng.between(2, 400) * 25;
            self.insert(
                &id("prod", i + 1),
                "product",
                None,
                false,
                fields([
                    ("name", json!(name)),
                    ("productnumber", json!(format!("P-{:03}", i + 1))),
                    ("price", json!(price)),
                ]),
            );
        }
        for (code, name) in [
            ("usd", "US Dollar"),
            ("eur", "Euro"),
            ("gbp", "Pound Sterling"),
            ("jpy", "Yen"),
        ] {
            self.insert(
                &format!("cur-{code}"),
                "transactioncurrency",
                None,
                false,
                fields([
                    ("currencyname", json!(name)),
                    ("isocurrencycode", json!(code.to_uppercase())),
                ]),
            );
        }
        for (key, name) in [
            ("w365-pl-2026", "2026 list"),
            ("w365-pl-nce", "NCE promotions"),
        ] {
            self.insert(
                key,
                "w365_pricelist",
                None,
                false,
                fields([("name", json!(name))]),
            );
        }
        for (i, (name, price)) in W365_PRODUCTS.iter().enumerate() {
            self.insert(
                &id("w365-prod", i + 1),
                "w365_product",
                None,
                false,
                fields([("name", json!(name)), ("w365_unitprice", json!(price))]),
            );
        }
        for (key, name) in [("provider-csp", "Microsoft CSP"), ("provider-pax8", "Pax8")] {
            self.insert(
                key,
                "w365_providerconfig",
                None,
                false,
                fields([("name", json!(name))]),
            );
        }
        self.insert(
            "w365-settings",
            "w365_systemsetting",
            None,
            false,
            fields([("name", json!("Billing engine"))]),
        );
        for (key, name) in [
            ("presence-available", "Available"),
            ("presence-busy", "Busy"),
            ("presence-away", "Away"),
            ("presence-dnd", "Do not disturb"),
            ("presence-offline", "Offline"),
        ] {
            self.insert(
                key,
                "msdyn_presence",
                None,
                false,
                fields([("msdyn_name", json!(name))]),
            );
        }
    }

    fn omnichannel_setup(&mut self) {
        for (key, name, source) in [
            ("ws-chat", "Chat", "Live chat"),
            ("ws-sms", "SMS", "SMS"),
            ("ws-voice", "Voice", "Voice"),
        ] {
            self.insert(
                key,
                "msdyn_liveworkstream",
                Some("oc_admin"),
                false,
                fields([
                    ("msdyn_name", json!(name)),
                    ("msdyn_streamsource", json!(source)),
                ]),
            );
        }
        for (key, name) in [
            ("queue-tier1", "Tier 1"),
            ("queue-tier2", "Tier 2"),
            ("queue-billing", "Billing"),
        ] {
            self.insert(
                key,
                "queue",
                Some("oc_admin"),
                false,
                fields([("name", json!(name))]),
            );
        }
        for (i, (title, message)) in [
            (
                "Hello",
                "Hi, thanks for contacting Contoso. How can I help?",
            ),
            ("Hold", "Thanks for waiting, I am checking that for you."),
            ("Transfer", "I am transferring you to a specialist."),
            (
                "Goodbye",
                "Thanks for contacting Contoso. Have a great day!",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            self.insert(
                &id("reply", i + 1),
                "msdyn_cannedmessage",
                Some("svc_manager"),
                false,
                fields([
                    ("msdyn_title", json!(title)),
                    ("msdyn_message", json!(message)),
                ]),
            );
        }
        self.insert(
            "auth-portal",
            "msdyn_authenticationsettings",
            Some("oc_admin"),
            false,
            fields([
                ("msdyn_name", json!("Portal authentication")),
                ("msdyn_authenticationclientsecret", json!("s3cr3t-portal")),
            ]),
        );
    }

    /// Accounts: the story accounts, then generated ones owned by sales users and teams and
    /// by Work 365 customer success users. Returns (sales accounts, customer success accounts).
    fn accounts(&mut self, n: usize) -> (Vec<Parent>, Vec<Parent>) {
        let (mut sales, mut cs) = (Vec::new(), Vec::new());
        for (i, (name, owner, revenue, city, industry)) in STORY_ACCOUNTS.iter().enumerate() {
            let key = id("acc", i + 1);
            self.insert(
                &key,
                "account",
                Some(owner),
                false,
                fields([
                    ("name", json!(name)),
                    ("accountnumber", json!(key.to_uppercase())),
                    ("annualrevenue", json!(revenue)),
                    ("industry", json!(industry)),
                    ("address1_city", json!(city)),
                ]),
            );
            let parent = Parent { id: key, owner };
            if owner.starts_with("cs_") {
                cs.push(parent);
            } else {
                sales.push(parent);
            }
        }
        self.share("acc-0006", "organization", &["read"]);
        self.access_team("acc-0007", "rep_west");
        for i in STORY_ACCOUNTS.len() + 1..=n.max(STORY_ACCOUNTS.len()) {
            let key = id("acc", i);
            let roll = self.rng.below(100);
            let (owner, customer_success) = match roll {
                0..10 => (self.pick(SALES_TEAMS), false),
                10..35 => (self.pick(CS_OWNERS), true),
                _ => (self.pick(SALES_OWNERS), false),
            };
            let revenue = self.revenue();
            let name = self.company();
            let city = self.pick(CITIES);
            let industry = self.pick(INDUSTRIES);
            self.insert(
                &key,
                "account",
                Some(owner),
                false,
                fields([
                    ("name", json!(name)),
                    ("accountnumber", json!(key.to_uppercase())),
                    ("annualrevenue", json!(revenue)),
                    ("industry", json!(industry)),
                    ("address1_city", json!(city)),
                ]),
            );
            // seed 002, "Programmatic Sharing": accounts over $1M go to the Enterprise Sales
            // Team with Read, Write, Append.
            if revenue > 1_000_000 {
                self.share(
                    &key,
                    "team:Enterprise Sales Team",
                    &["read", "write", "append"],
                );
            }
            match self.rng.below(100) {
                0..3 => {
                    let to = self.other(SALES_OWNERS, owner);
                    self.share(&key, to, &["read"]);
                }
                3 => {
                    let to = self.other(SALES_OWNERS, owner);
                    self.share(&key, to, &["read", "write"]);
                }
                4 => self.share(&key, "organization", &["read"]),
                _ => {}
            }
            if self.rng.percent(3) {
                let members = 1 + self.rng.below(2);
                for _ in 0..members {
                    let member = self.other(ACCESS_TEAM_MEMBERS, owner);
                    self.access_team(&key, member);
                }
            }
            let parent = Parent { id: key, owner };
            if customer_success {
                cs.push(parent);
            } else {
                sales.push(parent);
            }
        }
        (sales, cs)
    }

    fn contacts(&mut self, n: usize, accounts: &[Parent]) {
        self.insert(
            "con-0001",
            "contact",
            Some("rep_east2"),
            false,
            fields([
                ("fullname", json!("Pat Chen")),
                ("jobtitle", json!("Chief Procurement Officer")),
                ("emailaddress1", json!("pat.chen@contosopharma.example")),
            ]),
        );
        self.link("con-0001", "parentcustomerid", "acc-0001");
        for i in 2..=n.max(1) {
            let key = id("con", i);
            let Some(parent) = self.parent(accounts) else {
                continue;
            };
            let owner = if self.rng.percent(75) {
                parent.owner
            } else if parent.owner.starts_with("cs_") {
                self.pick(CS_OWNERS)
            } else {
                self.pick(SALES_OWNERS)
            };
            let (first, last) = self.person();
            let title = self.pick(CONTACT_TITLES);
            self.insert(
                &key,
                "contact",
                Some(owner),
                false,
                fields([
                    ("fullname", json!(format!("{first} {last}"))),
                    ("jobtitle", json!(title)),
                    (
                        "emailaddress1",
                        json!(format!("{first}.{last}{i}@example.com").to_lowercase()),
                    ),
                ]),
            );
            self.link(&key, "parentcustomerid", &parent.id);
        }
    }

    fn leads(&mut self, n: usize) {
        for i in 1..=n {
            let key = id("lead", i);
            let owner = self.pick(LEAD_OWNERS);
            let company = self.company();
            let product = self.pick(PRODUCTS);
            let source = self.pick(LEAD_SOURCES);
            let amount = self.rng.between(1, 200) * 1_000;
            let inactive = self.rng.percent(20);
            self.insert(
                &key,
                "lead",
                Some(owner),
                inactive,
                fields([
                    ("subject", json!(format!("Interest in {product}"))),
                    ("companyname", json!(company)),
                    ("leadsource", json!(source)),
                    ("estimatedamount", json!(amount)),
                ]),
            );
        }
    }

    /// Opportunities under sales accounts, quotes under opportunities, orders under quotes.
    fn pipeline(&mut self, n: usize, accounts: &[Parent]) {
        self.insert(
            "opp-0001",
            "opportunity",
            Some("rep_east"),
            false,
            fields([
                ("name", json!("Contoso Pharmaceuticals - 500 laptops")),
                ("estimatedvalue", json!(640_000)),
                ("closeprobability", json!(60)),
                ("stepname", json!("Propose")),
            ]),
        );
        self.link("opp-0001", "parentaccountid", "acc-0001");
        let mut opportunities = vec![Parent {
            id: "opp-0001".to_owned(),
            owner: "rep_east",
        }];
        for i in 2..=n.max(1) {
            let key = id("opp", i);
            let Some(parent) = self.parent(accounts) else {
                continue;
            };
            let owner = if self.rng.percent(70) {
                parent.owner
            } else {
                self.pick(SALES_OWNERS)
            };
            let product = self.pick(PRODUCTS);
            let value = self.rng.between(5, 900) * 1_000;
            let stage = self.rng.below(STAGES.len());
            let inactive = self.rng.percent(25);
            self.insert(
                &key,
                "opportunity",
                Some(owner),
                inactive,
                fields([
                    (
                        "name",
                        json!(format!("{product} for account {}", parent.id)),
                    ),
                    ("estimatedvalue", json!(value)),
                    ("closeprobability", json!(20 + 25 * stage)),
                    (
                        "stepname",
                        json!(STAGES.get(stage).copied().unwrap_or("Qualify")),
                    ),
                ]),
            );
            self.link(&key, "parentaccountid", &parent.id);
            // seed 002, "Manual Sharing": an opportunity shared with a colleague, Read and Write.
            if self.rng.percent(4) {
                let to = self.other(SALES_OWNERS, owner);
                self.share(&key, to, &["read", "write"]);
            }
            opportunities.push(Parent { id: key, owner });
        }
        let mut quotes = Vec::new();
        for i in 1..=scaled(n, 1, 4, 1) {
            let key = id("quo", i);
            let Some(parent) = self.parent(&opportunities) else {
                continue;
            };
            let amount = self.rng.between(5, 500) * 1_000;
            self.insert(
                &key,
                "quote",
                Some(parent.owner),
                false,
                fields([
                    ("name", json!(format!("Quote {}", key.to_uppercase()))),
                    ("totalamount", json!(amount)),
                ]),
            );
            self.link(&key, "opportunityid", &parent.id);
            quotes.push(Parent {
                id: key,
                owner: parent.owner,
            });
        }
        for i in 1..=scaled(n, 1, 8, 1) {
            let key = id("ord", i);
            let Some(parent) = self.parent(&quotes) else {
                continue;
            };
            let amount = self.rng.between(5, 500) * 1_000;
            self.insert(
                &key,
                "salesorder",
                Some(parent.owner),
                false,
                fields([
                    ("name", json!(format!("Order {}", key.to_uppercase()))),
                    ("totalamount", json!(amount)),
                ]),
            );
            self.link(&key, "quoteid", &parent.id);
        }
    }

    fn activities(&mut self, n: usize, accounts: &[Parent]) {
        for (table, prefix, subjects) in [
            ("task", "tsk", TASKS),
            ("phonecall", "phn", CALLS),
            ("email", "eml", EMAILS),
        ] {
            for i in 1..=scaled(n, 1, 2, 1) {
                let key = id(prefix, i);
                let Some(parent) = self.parent(accounts) else {
                    continue;
                };
                let owner = if self.rng.percent(60) {
                    parent.owner
                } else {
                    self.pick(ACTIVITY_OWNERS)
                };
                let subject = self.pick(subjects);
                let inactive = self.rng.percent(50);
                let mut f = fields([("subject", json!(subject))]);
                if table == "phonecall" {
                    let number = self.rng.between(200, 999);
                    f.insert("phonenumber".to_owned(), json!(format!("+1 555 0{number}")));
                }
                if table == "task" {
                    f.insert("prioritycode".to_owned(), json!(self.rng.below(3)));
                }
                self.insert(&key, table, Some(owner), inactive, f);
                self.link(&key, "regardingobjectid", &parent.id);
            }
        }
    }

    /// Cases of the customer service agents, and Omnichannel conversations.
    fn service(&mut self, n: usize, accounts: &[Parent]) {
        self.insert(
            "cas-0001",
            "incident",
            Some("agent"),
            false,
            fields([
                ("title", json!("Cannot sign in to the partner portal")),
                ("ticketnumber", json!("CAS-0001")),
                ("prioritycode", json!(1)),
                ("caseorigincode", json!("Chat")),
            ]),
        );
        self.link("cas-0001", "customerid", "acc-0001");
        let mut cases = vec!["cas-0001".to_owned()];
        for i in 2..=n.max(1) {
            let key = id("cas", i);
            let Some(parent) = self.parent(accounts) else {
                continue;
            };
            let owner = self.pick(SERVICE_OWNERS);
            let title = self.pick(CASE_TITLES);
            let origin = self.pick(CHANNELS);
            let priority = self.rng.below(3);
            let inactive = self.rng.percent(35);
            self.insert(
                &key,
                "incident",
                Some(owner),
                inactive,
                fields([
                    ("title", json!(title)),
                    ("ticketnumber", json!(key.to_uppercase())),
                    ("prioritycode", json!(priority)),
                    ("caseorigincode", json!(origin)),
                ]),
            );
            self.link(&key, "customerid", &parent.id);
            // escalation: shared with the Tier 2 engineer.
            if owner != "agent_t2" && self.rng.percent(3) {
                self.share(&key, "agent_t2", &["read", "write"]);
            }
            cases.push(key);
        }
        for i in 1..=scaled(n, 1, 4, 1) {
            let key = id("conv", i);
            let owner = self.pick(AGENTS);
            let channel = self.pick(CHANNELS);
            let closed = self.rng.percent(70);
            self.insert(
                &key,
                "msdyn_ocliveworkitem",
                Some(owner),
                closed,
                fields([
                    ("msdyn_title", json!(format!("{channel} conversation"))),
                    ("msdyn_channel", json!(channel)),
                    (
                        "statuscode",
                        json!(if closed { "Closed" } else { "Active" }),
                    ),
                ]),
            );
            if self.rng.percent(60)
                && let Some(case) = cases.get(self.rng.below(cases.len())).cloned()
            {
                self.link(&key, "msdyn_issueid", &case);
            }
        }
    }

    /// Work 365: billing contracts of customer success accounts, their subscriptions and
    /// invoices, and time logs.
    fn work365(&mut self, n: usize, accounts: &[Parent]) {
        self.insert(
            "bc-0001",
            "w365_billingcontract",
            Some("cs_rep_east"),
            false,
            fields([
                ("name", json!("Northwind CSP annual")),
                ("w365_billingfrequency", json!("annual")),
            ]),
        );
        self.link("bc-0001", "w365_accountid", "acc-0005");
        let mut contracts = vec![Parent {
            id: "bc-0001".to_owned(),
            owner: "cs_rep_east",
        }];
        for i in 2..=scaled(n, 1, 4, 1) {
            let key = id("bc", i);
            let Some(parent) = self.parent(accounts) else {
                continue;
            };
            let owner = if self.rng.percent(80) {
                parent.owner
            } else {
                self.pick(CS_OWNERS)
            };
            let frequency = if self.rng.percent(60) {
                "monthly"
            } else {
                "annual"
            };
            self.insert(
                &key,
                "w365_billingcontract",
                Some(owner),
                false,
                fields([
                    (
                        "name",
                        json!(format!("CSP {frequency} {}", key.to_uppercase())),
                    ),
                    ("w365_billingfrequency", json!(frequency)),
                ]),
            );
            self.link(&key, "w365_accountid", &parent.id);
            if owner != "w365_seller" && self.rng.percent(3) {
                self.share(&key, "w365_seller", &["read"]);
            }
            contracts.push(Parent { id: key, owner });
        }
        self.insert(
            "sub-0001",
            "w365_subscription",
            Some("cs_rep_east"),
            false,
            fields([
                ("name", json!("Microsoft 365 E3")),
                ("w365_quantity", json!(25)),
            ]),
        );
        self.link("sub-0001", "w365_billingcontractid", "bc-0001");
        self.insert(
            "inv-0001",
            "w365_invoice",
            Some("cs_rep_east"),
            false,
            fields([("name", json!("INV-0001")), ("w365_total", json!(900))]),
        );
        self.link("inv-0001", "w365_billingcontractid", "bc-0001");
        for i in 2..=scaled(n, 1, 2, 1) {
            let key = id("sub", i);
            let Some(parent) = self.parent(&contracts) else {
                continue;
            };
            let (product, _) = W365_PRODUCTS
                .get(self.rng.below(W365_PRODUCTS.len()))
                .copied()
                .unwrap_or(("Microsoft 365 E3", 36));
            let quantity = self.rng.between(1, 300);
            let cancelled = self.rng.percent(10);
            self.insert(
                &key,
                "w365_subscription",
                Some(parent.owner),
                cancelled,
                fields([("name", json!(product)), ("w365_quantity", json!(quantity))]),
            );
            self.link(&key, "w365_billingcontractid", &parent.id);
        }
        for i in 2..=scaled(n, 1, 2, 1) {
            let key = id("inv", i);
            let Some(parent) = self.parent(&contracts) else {
                continue;
            };
            let total = self.rng.between(100, 50_000);
            self.insert(
                &key,
                "w365_invoice",
                Some(parent.owner),
                false,
                fields([
                    ("name", json!(key.to_uppercase())),
                    ("w365_total", json!(total)),
                ]),
            );
            self.link(&key, "w365_billingcontractid", &parent.id);
        }
        // log-0001: submitted by cs_rep_east, waiting for the CS Manager's approval.
        self.insert(
            "log-0001",
            "w365_timelog",
            Some("cs_rep_east"),
            false,
            fields([
                ("w365_hours", json!(3)),
                ("w365_status", json!("submitted")),
            ]),
        );
        self.link("log-0001", "w365_accountid", "acc-0005");
        for i in 2..=n.max(1) {
            let key = id("log", i);
            let Some(parent) = self.parent(accounts) else {
                continue;
            };
            let owner = self.pick(TIME_LOGGERS);
            let hours = self.rng.between(1, 8);
            let mut f = fields([("w365_hours", json!(hours))]);
            let status = match self.rng.below(100) {
                0..25 => "draft",
                25..60 => "submitted",
                _ => {
                    f.insert("w365_approved".to_owned(), json!(true));
                    "approved"
                }
            };
            f.insert("w365_status".to_owned(), json!(status));
            self.insert(&key, "w365_timelog", Some(owner), false, f);
            self.link(&key, "w365_accountid", &parent.id);
        }
    }
}

/// Every record of the demo, `n` per main table (at least the story records).
pub(crate) fn generate(n: usize) -> Records {
    let mut g = Generator {
        rng: Rng::new(SEED),
        out: Records::default(),
    };
    g.organization_owned();
    g.omnichannel_setup();
    let (sales, cs) = g.accounts(n);
    let all: Vec<Parent> = sales.iter().chain(cs.iter()).cloned().collect();
    g.contacts(n, &all);
    g.leads(n);
    g.pipeline(n, &sales);
    g.activities(n, &all);
    g.service(n, &all);
    g.work365(n, &cs);
    g.out
}
