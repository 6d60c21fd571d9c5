//! The demo's licences (seed 003, docs/semantics.md D48–D50): the catalogue — Professional 4,
//! Enterprise 6, Basic 2 (the seed's Basic use rights on the demo's tables), Essential 1, Team 1
//! — and a licence for every user: Professional for most (over-licensed where Basic would do),
//! Enterprise for the CEO (over-licensed), Basic for a marketer whose role Basic covers, and
//! Basic for two sales representatives whose roles need more (under-licensed: their
//! opportunity and quote writes are capped).

use strata_ops::Operation;

/// Users holding something other than Professional.
const HOLDERS: &[(&str, &str)] = &[
    ("ceo", "Enterprise"),
    ("rep_apac2", "Basic"),
    ("rep_west2", "Basic"),
    ("marketer2", "Basic"),
];

/// The catalogue and every user's licence (after the users exist).
pub(crate) fn operations(users: impl Iterator<Item = &'static str>) -> Vec<Operation> {
    // The catalogue is the licences pack (`packs/licences.yaml`).
    let mut ops = strata_scenario::pack::licence_ops(&crate::model::pack("licences"));
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
