//! The demo organisation of Strata, built from the five seed documents.
//!
//! - **Contoso** (seed 002, the security model guide): the unit tree Contoso → Sales (Sales North
//!   America → Sales US East, Sales US West; Sales EMEA; Sales APAC), Service (Service Tier 1,
//!   Service Tier 2), Marketing (Marketing Campaigns); the Sales Representative role exactly as
//!   the guide lists it, Employee Base / Sales Team Member / Sales Manager composition, the
//!   CEO → VP Sales → Sales Manager NA → reps manager chain with hierarchy security (manager
//!   model, depth 3, on account, contact, opportunity, lead and case), owner teams, the
//!   "Account Team" access team template, shares to users, teams and the organization, and
//!   `systemuser.annualincome` behind the "HR Salary Access" and "Manager Salary View" profiles.
//! - **Work 365** (seed 000): billing contracts, subscriptions, invoices, time logs (approval
//!   is the secured `w365_approved` column), pricing and provider configuration, the seven
//!   Work 365 roles, in a Customer Success branch and Professional Services.
//! - **Customer Service Workspace / Omnichannel** (seeds 001, 004): cases, the Omnichannel
//!   roles, the app, `stuck_user` (Basic User + Omnichannel administrator, no app) and `agent`.
//!
//! A few named records carry the stories of the [`tour`] (`acc-0001` … `acc-0008`, `con-0001`,
//! `opp-0001`, `cas-0001`, `bc-0001`, `sub-0001`, `inv-0001`, `log-0001`); the rest are
//! generated from a fixed-seed PRNG, so [`operations`] gives the same list on every run.

pub mod generate;
mod licences;
mod model;
mod records;
mod rng;

use strata_engine::Organization;
use strata_ops::{OpError, Operation};

/// The demo's System Administrator user.
pub const ADMIN: &str = "admin";

/// The default number of records of each main table (accounts, contacts, leads,
/// opportunities, cases, time logs); the other tables are scaled from it. About 3,900 records
/// in all.
pub const DEFAULT_RECORDS_PER_TABLE: usize = 400;

/// The demo organisation as operations, to apply in order to `Organization::new()`.
///
/// `records_per_table` is the number of records of each main table (accounts, contacts,
/// leads, opportunities, cases, time logs; at least the named story records); quotes,
/// billing contracts and conversations get a quarter of it, activities, subscriptions and
/// invoices half, orders an eighth. Setup operations come first (units, tables, roles,
/// users, teams, profiles, apps, records), then system actions (role assignments, team
/// members, managers, lookups, shares, access team members).
#[must_use]
pub fn operations(records_per_table: usize) -> Vec<Operation> {
    let records = records::generate(records_per_table);
    let mut ops = model::setup();
    ops.extend(records.inserts);
    ops.extend(model::actions());
    ops.extend(licences::operations(model::users()));
    ops.extend(model::role_rules());
    ops.extend(records.links);
    ops.extend(records.shares);
    ops
}

/// The demo organisation, applied.
///
/// # Errors
///
/// The index and refusal of an operation that does not apply (a defect of the demo).
pub fn organization(records_per_table: usize) -> Result<Organization, (usize, OpError)> {
    let mut org = Organization::new();
    strata_ops::apply_all(&mut org, &operations(records_per_table))?;
    Ok(org)
}

/// Example questions to print when the demo starts: (question, command). `explain` and
/// `who-has-access` are CLI subcommands; app access and reading a record as someone else
/// (`GET path as USER`: impersonation with `MSCRMCallerID`) are HTTP requests (the
/// organisation is assumed to be named `demo`).
#[must_use]
pub fn tour() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "why can't rep_east write acc-0002, a peer's account in the same unit?",
            "explain --user rep_east --privilege write --record acc-0002",
        ),
        (
            "how can mgr_na edit acc-0001, an account of rep_east?",
            "explain --user mgr_na --privilege write --record acc-0001",
        ),
        (
            "how does vp_sales see acc-0003, owned two levels down in Sales EMEA?",
            "explain --user vp_sales --privilege read --record acc-0003",
        ),
        (
            "why can't vp_sales see acc-0001, though rep_east reports to mgr_na who reports to vp_sales?",
            "explain --user vp_sales --privilege read --record acc-0001",
        ),
        (
            "why can rep_east edit con-0001, a contact owned by rep_east2?",
            "explain --user rep_east --privilege write --record con-0001",
        ),
        (
            "how does rep_west, in Sales US West, get write access to acc-0007?",
            "explain --user rep_west --privilege write --record acc-0007",
        ),
        (
            "why can't the Work 365 Customer Service user cs_support change billing contract bc-0001?",
            "explain --user cs_support --privilege write --record bc-0001",
        ),
        (
            "who can change time log log-0001 (approving it also needs the Time Log Approvers profile)?",
            "who-has-access --record log-0001 --privilege write",
        ),
        (
            "why can't stuck_user open the Customer Service Workspace when agent can?",
            "GET /api/v1/orgs/demo/apps/Customer%20Service%20Workspace/access?user=stuck_user",
        ),
        (
            "what does the clerk see of rep_east's salary (systemuser.annualincome), read as the clerk by impersonation?",
            "GET /api/v1/orgs/demo/records/rep_east as clerk",
        ),
        (
            "how do rep_east's and rep_west's effective permissions differ, cell by cell, and from which role?",
            "GET /api/v1/orgs/demo/users/rep_east/compare/rep_west",
        ),
        (
            "who still holds the deprecated Work365 User role that must move to its successors?",
            "GET /api/v1/orgs/demo/roles/Work365%20User%20(Deprecated)/holders",
        ),
        (
            "which roles would let stuck_user open the Customer Service Workspace and work its cases?",
            "GET /api/v1/orgs/demo/apps/Customer%20Service%20Workspace/roles-needed?user=stuck_user",
        ),
        (
            "who breaks a role rule (Omnichannel administrator requires System Administrator; a Work 365 role needs a CRM role)?",
            "GET /api/v1/orgs/demo/rules/violations",
        ),
        (
            "what do the licences cost today, against the cheapest mix that covers everyone's roles?",
            "GET /api/v1/orgs/demo/licences/report",
        ),
        (
            "which licence does rep_apac2 need, and what does the current one cap?",
            "GET /api/v1/orgs/demo/licences/users/rep_apac2",
        ),
        (
            "who can read the Omnichannel authentication client secret, and through which profile?",
            "GET /api/v1/orgs/demo/tables/msdyn_authenticationsettings/columns/msdyn_authenticationclientsecret/access",
        ),
    ]
}
