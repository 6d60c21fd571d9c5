//! Speed of single decisions on a large, warm organisation.
//!
//! Builds a generated organisation (1,000 business units in a 5-level tree, 10,000 users,
//! 500 owner teams, 100 roles over 10 tables, 1,000,000 records, 5% of them shared, manager
//! hierarchy security at depth 3) with a fixed-seed PRNG, reports the build time, then times
//! `check` per class of decision (each query verified with `explain`, outside the timed
//! region, to be decided by that path) and `access`.
//!
//! Run with `cargo bench -p strata-engine --bench check`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use strata_engine::{
    AccessMask, BusinessUnitId, Decision, Denial, Depth, GrantKind, HierarchyModel,
    HierarchySettings, Inheritance, NewRecord, Organization, Owner, Principal, Privilege, RecordId,
    RecordState, RoleDefinition, RoleId, Settings, TableId, TeamId, TeamType, UserId,
};

// ----- size of the generated organisation -----

/// Business units per level of the tree (level 0 is the root): 1 + 6 + 36 + 216 + 741.
const UNITS_PER_LEVEL: [usize; 5] = [1, 6, 36, 216, 741];
const USERS: usize = 10_000;
const TEAMS: usize = 500;
const ROLES: usize = 100;
const TABLES: usize = 10;
const RECORDS: usize = 1_000_000;
/// Percentage of records that get explicit shares.
const SHARED_PERCENT: u64 = 5;
const HIERARCHY_DEPTH: u8 = 3;

// ----- measurement -----

/// Calls timed per class.
const CALLS: usize = 200_000;
/// Interleaved rounds the calls of each class are split into.
const ROUNDS: usize = 5;
/// Calls between two readings of the clock.
const BATCH: usize = 32;
/// Distinct queries per class (cycled, in shuffled order, to make up `CALLS`).
const DISTINCT: usize = 20_000;
/// Distinct queries per class of the "hot" measurement (a working set that stays in cache).
const HOT: usize = 256;
/// Candidates examined with `explain` per class before giving up on reaching `DISTINCT`.
const MAX_CANDIDATES: usize = 2_000_000;

const SEED: u64 = 0x5EC0_C0DE_2024_0001;

/// SplitMix64: small, fast, and good enough to generate test data deterministically.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// What the generator knows about the organisation it built (the engine keeps no reverse
/// indexes by owner or unit, so the bench keeps its own to pick meaningful queries).
struct World {
    org: Organization,
    tables: Vec<TableId>,
    /// Children of each unit.
    unit_children: Vec<Vec<BusinessUnitId>>,
    /// Records of each (unit, table): `[unit * TABLES + table]`.
    records_by_unit_table: Vec<Vec<RecordId>>,
    /// Records owned by each user.
    records_by_user: Vec<Vec<RecordId>>,
    /// Records with at least one explicit share.
    shared: Vec<RecordId>,
    /// Every record of the generated tables.
    all_records: Vec<RecordId>,
    users: Vec<UserId>,
    build: Duration,
    phases: Vec<(&'static str, Duration)>,
}

/// Depth of one privilege in a generated role: mostly User and Business Unit.
fn random_depth(rng: &mut Rng) -> Depth {
    match rng.below(100) {
        0..15 => Depth::None,
        15..55 => Depth::User,
        55..80 => Depth::BusinessUnit,
        80..95 => Depth::ParentChild,
        _ => Depth::Organization,
    }
}

/// A share mask: Read, plus each other record right with probability 40%.
fn random_mask(rng: &mut Rng) -> AccessMask {
    let mut mask = AccessMask::NONE.with(Privilege::Read);
    for p in Privilege::RECORD_RIGHTS {
        if rng.chance(40) {
            mask = mask.with(p);
        }
    }
    mask
}

fn build_world(rng: &mut Rng) -> World {
    let started = Instant::now();
    let mut phases = Vec::new();
    let mut phase_start = Instant::now();
    let mut lap = |name: &'static str, phases: &mut Vec<(&'static str, Duration)>| {
        phases.push((name, phase_start.elapsed()));
        phase_start = Instant::now();
    };

    let mut org = Organization::new();
    let mut s = org.setup();
    s.set_settings(Settings {
        hierarchy: Some(HierarchySettings {
            model: HierarchyModel::Manager,
            depth: HIERARCHY_DEPTH,
            tables: None,
            managers_must_be_in_same_or_parent_business_unit: true,
        }),
        ..Settings::default()
    })
    .unwrap();

    // Business units: a 5-level tree, each level's units spread round-robin over the level above.
    let mut units: Vec<BusinessUnitId> = Vec::new();
    let mut unit_children: Vec<Vec<BusinessUnitId>> = Vec::new();
    let mut unit_parent: Vec<Option<BusinessUnitId>> = Vec::new();
    let mut previous_level: Vec<BusinessUnitId> = Vec::new();
    for (level, count) in UNITS_PER_LEVEL.into_iter().enumerate() {
        let mut this_level = Vec::with_capacity(count);
        for i in 0..count {
            let parent = (level > 0).then(|| previous_level[i % previous_level.len()]);
            let id = s
                .add_business_unit(&format!("bu-{level}-{i}"), parent)
                .unwrap();
            assert_eq!(id.index(), units.len());
            units.push(id);
            unit_children.push(Vec::new());
            unit_parent.push(parent);
            if let Some(p) = parent {
                unit_children[p.index()].push(id);
            }
            this_level.push(id);
        }
        previous_level = this_level;
    }

    let tables: Vec<TableId> = (0..TABLES)
        .map(|i| s.add_table(&format!("table{i}"), None, Vec::new()).unwrap())
        .collect();

    // Roles: each over 2..=6 tables, a random depth per privilege; 20% are team-only.
    let mut roles: Vec<RoleId> = Vec::with_capacity(ROLES);
    for i in 0..ROLES {
        let mut role_tables = tables.clone();
        rng.shuffle(&mut role_tables);
        role_tables.truncate(2 + rng.below(5));
        let mut privileges = Vec::new();
        for t in role_tables {
            for p in Privilege::ALL {
                let depth = random_depth(rng);
                if depth > Depth::None {
                    privileges.push((t, p, depth));
                }
            }
        }
        roles.push(
            s.add_role(RoleDefinition {
                name: format!("role-{i}"),
                business_unit: None,
                inheritance: if rng.chance(20) {
                    Inheritance::TeamOnly
                } else {
                    Inheritance::UserAndTeam
                },
                system_administrator: false,
                privileges,
                misc: Vec::new(),
            })
            .unwrap(),
        );
    }
    lap("units, tables, roles", &mut phases);

    // Users: spread uniformly over the units, 1..=3 roles each.
    let mut users = Vec::with_capacity(USERS);
    let mut users_by_unit: Vec<Vec<UserId>> = vec![Vec::new(); units.len()];
    for i in 0..USERS {
        let unit = *rng.pick(&units);
        let user = s.add_user(&format!("user-{i}"), unit, true).unwrap();
        let mut mine: Vec<RoleId> = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let role = *rng.pick(&roles);
            if !mine.contains(&role) {
                mine.push(role);
                s.assign_user_role(user, role, None).unwrap();
            }
        }
        users.push(user);
        users_by_unit[unit.index()].push(user);
    }
    // Managers: in each unit, the first user is the head and reports to the head of the
    // parent unit (when it has one); every other user reports to an earlier user of the unit.
    for (unit, members) in users_by_unit.iter().enumerate() {
        for (k, user) in members.iter().enumerate() {
            let manager = if k == 0 {
                unit_parent[unit].and_then(|p| users_by_unit[p.index()].first().copied())
            } else {
                Some(members[rng.below(k)])
            };
            if manager.is_some() {
                s.set_manager(*user, manager).unwrap();
            }
        }
    }
    lap("users, role assignments, managers", &mut phases);

    // Owner teams: members from any unit; 60% hold 1..=2 roles.
    let mut teams: Vec<TeamId> = Vec::with_capacity(TEAMS);
    let mut team_members: Vec<Vec<UserId>> = Vec::with_capacity(TEAMS);
    for i in 0..TEAMS {
        let unit = *rng.pick(&units);
        let team = s
            .add_team(&format!("team-{i}"), TeamType::Owner, unit)
            .unwrap();
        let mut members = Vec::new();
        for _ in 0..3 + rng.below(38) {
            let user = *rng.pick(&users);
            s.add_team_member(team, user);
            if !members.contains(&user) {
                members.push(user);
            }
        }
        if rng.chance(60) {
            for _ in 0..1 + rng.below(2) {
                let role = *rng.pick(&roles);
                s.assign_team_role(team, role).unwrap();
            }
        }
        teams.push(team);
        team_members.push(members);
    }
    lap("teams, members, team roles", &mut phases);

    // Records: 85% owned by users, 15% by teams, in the owner's unit.
    let mut records_by_unit_table: Vec<Vec<RecordId>> = vec![Vec::new(); units.len() * TABLES];
    let mut records_by_user: Vec<Vec<RecordId>> = vec![Vec::new(); USERS];
    let mut owners: Vec<Owner> = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let table_index = rng.below(TABLES);
        let owner = if rng.chance(85) {
            Owner::User(*rng.pick(&users))
        } else {
            Owner::Team(*rng.pick(&teams))
        };
        let record = s
            .add_record(NewRecord {
                key: format!("rec-{i}"),
                table: tables[table_index],
                owner,
                business_unit: None,
                state: RecordState::Active,
                fields: Vec::new(),
            })
            .unwrap();
        let unit = s.org().record(record).business_unit;
        records_by_unit_table[unit.index() * TABLES + table_index].push(record);
        if let Owner::User(u) = owner {
            records_by_user[u.index()].push(record);
        }
        owners.push(owner);
    }
    lap("records", &mut phases);

    // Shares: 5% of the records; 55% to a user, 35% to a team, 10% to the organisation;
    // a fifth of them get a second share.
    let mut shared = Vec::new();
    let all_records: Vec<RecordId> = tables
        .iter()
        .flat_map(|t| s.org().table_records(*t).iter().copied())
        .collect();
    for record in all_records.iter().copied() {
        if !rng.chance(SHARED_PERCENT) {
            continue;
        }
        let shares = if rng.chance(20) { 2 } else { 1 };
        for _ in 0..shares {
            let principal = match rng.below(100) {
                0..55 => Principal::User(*rng.pick(&users)),
                55..90 => Principal::Team(*rng.pick(&teams)),
                _ => Principal::Organization,
            };
            s.share(record, principal, random_mask(rng)).unwrap();
        }
        shared.push(record);
    }
    lap("shares", &mut phases);

    drop(s); // rebuilds the derived indexes
    lap("derived indexes (setup guard drop)", &mut phases);
    let build = started.elapsed();

    World {
        org,
        tables,
        unit_children,
        records_by_unit_table,
        records_by_user,
        shared,
        all_records,
        users,
        build,
        phases,
    }
}

#[derive(Clone, Copy)]
struct Query {
    user: UserId,
    privilege: Privilege,
    record: RecordId,
}

/// Every grant path of the decision is of one of these kinds.
fn only(decision: &Decision, kinds: &[GrantKind]) -> bool {
    decision.allowed
        && !decision.paths.is_empty()
        && decision.paths.iter().all(|p| kinds.contains(&p.kind()))
}

/// Draws candidates until `DISTINCT` are accepted (or `MAX_CANDIDATES` were tried).
fn collect(
    name: &str,
    rng: &mut Rng,
    org: &Organization,
    mut candidate: impl FnMut(&mut Rng) -> Option<Query>,
    accept: impl Fn(&Decision) -> bool,
) -> Vec<Query> {
    let mut out = Vec::with_capacity(DISTINCT);
    let mut tried = 0usize;
    while out.len() < DISTINCT && tried < MAX_CANDIDATES {
        tried += 1;
        let Some(q) = candidate(rng) else { continue };
        let decision = org.explain(q.user, q.privilege, q.record);
        if accept(&decision) {
            assert_eq!(
                org.check(q.user, q.privilege, q.record),
                decision.allowed,
                "check and explain disagree"
            );
            out.push(q);
        }
    }
    assert!(
        out.len() >= DISTINCT / 10,
        "class `{name}`: only {} queries found in {tried} candidates",
        out.len()
    );
    eprintln!(
        "  {name:<34} {:>6} distinct queries ({tried} candidates examined)",
        out.len()
    );
    out
}

/// A unit in the subtree of `unit`, by a random walk down the tree.
fn unit_below(world: &World, rng: &mut Rng, unit: BusinessUnitId) -> BusinessUnitId {
    let mut cur = unit;
    loop {
        let children = &world.unit_children[cur.index()];
        if children.is_empty() || rng.below(children.len() + 1) == 0 {
            return cur;
        }
        cur = *rng.pick(children);
    }
}

fn random_record_right(rng: &mut Rng) -> Privilege {
    *rng.pick(&Privilege::RECORD_RIGHTS)
}

/// (a) allowed by role depth: a grant at Business Unit depth or more, and a record in its reach.
fn role_depth_allow(world: &World, rng: &mut Rng) -> Vec<Query> {
    let org = &world.org;
    collect(
        "role depth, allow",
        rng,
        org,
        |rng| {
            let user = *rng.pick(&world.users);
            let grants: Vec<_> = org
                .all_grants(user)
                .iter()
                .filter(|g| g.depth >= Depth::BusinessUnit && g.privilege != Privilege::Create)
                .collect();
            if grants.is_empty() {
                return None;
            }
            let grant = *rng.pick(&grants);
            let table_index = world.tables.iter().position(|t| *t == grant.table)?;
            let record = if grant.depth == Depth::Organization {
                *rng.pick(org.table_records(grant.table))
            } else {
                let unit = if grant.depth == Depth::ParentChild {
                    unit_below(world, rng, grant.anchor)
                } else {
                    grant.anchor
                };
                let list = &world.records_by_unit_table[unit.index() * TABLES + table_index];
                if list.is_empty() {
                    return None;
                }
                *rng.pick(list)
            };
            Some(Query {
                user,
                privilege: grant.privilege,
                record,
            })
        },
        |d| only(d, &[GrantKind::RoleDepth]),
    )
}

/// (a) denied although the privilege is held: no depth (nor any other path) reaches.
fn role_depth_deny(world: &World, rng: &mut Rng) -> Vec<Query> {
    let org = &world.org;
    collect(
        "role depth, deny (no access path)",
        rng,
        org,
        |rng| {
            Some(Query {
                user: *rng.pick(&world.users),
                privilege: random_record_right(rng),
                record: *rng.pick(&world.all_records),
            })
        },
        |d| !d.allowed && matches!(d.denial, Some(Denial::NoAccessPath { .. })),
    )
}

/// Denied by the privilege check: no role gives the privilege on the table.
fn no_privilege_deny(world: &World, rng: &mut Rng) -> Vec<Query> {
    let org = &world.org;
    collect(
        "privilege check, deny",
        rng,
        org,
        |rng| {
            Some(Query {
                user: *rng.pick(&world.users),
                privilege: random_record_right(rng),
                record: *rng.pick(&world.all_records),
            })
        },
        |d| !d.allowed && d.denial == Some(Denial::NoPrivilege),
    )
}

/// (b) allowed only by a share with the user or a team of the user.
fn share_allow(world: &World, rng: &mut Rng) -> Vec<Query> {
    let org = &world.org;
    collect(
        "share (user or team), allow",
        rng,
        org,
        |rng| {
            let record = *rng.pick(&world.shared);
            let share = *rng.pick(&org.record(record).shares);
            let user = match share.principal {
                Principal::User(u) => u,
                Principal::Team(t) => *rng.pick(&org.team(t).members),
                Principal::Organization => return None,
            };
            let rights: Vec<Privilege> = share
                .mask
                .privileges()
                .filter(|p| *p != Privilege::Create)
                .collect();
            Some(Query {
                user,
                privilege: *rng.pick(&rights),
                record,
            })
        },
        |d| only(d, &[GrantKind::Share, GrantKind::TeamShare]),
    )
}

/// (c) allowed only by hierarchy security: a manager over a record a report owns.
fn hierarchy_allow(world: &World, rng: &mut Rng) -> Vec<Query> {
    let org = &world.org;
    let managers: Vec<UserId> = world
        .users
        .iter()
        .copied()
        .filter(|u| !org.hierarchy_reports(*u).is_empty())
        .collect();
    collect(
        "hierarchy (manager over report), allow",
        rng,
        org,
        |rng| {
            let manager = *rng.pick(&managers);
            let (report, level) = *rng.pick(org.hierarchy_reports(manager));
            let owned = &world.records_by_user[report.index()];
            if owned.is_empty() {
                return None;
            }
            let privilege = if level == 1 {
                *rng.pick(&[
                    Privilege::Read,
                    Privilege::Write,
                    Privilege::Append,
                    Privilege::AppendTo,
                ])
            } else {
                Privilege::Read
            };
            Some(Query {
                user: manager,
                privilege,
                record: *rng.pick(owned),
            })
        },
        |d| only(d, &[GrantKind::Hierarchy]),
    )
}

/// Uniformly random (user, record right, record): what an unbiased caller would ask.
fn random_queries(world: &World, rng: &mut Rng) -> Vec<Query> {
    let org = &world.org;
    collect(
        "random (user, right, record)",
        rng,
        org,
        |rng| {
            Some(Query {
                user: *rng.pick(&world.users),
                privilege: random_record_right(rng),
                record: *rng.pick(&world.all_records),
            })
        },
        |_| true,
    )
}

struct Row {
    class: &'static str,
    calls: usize,
    median: f64,
    p99: f64,
    mean: f64,
    /// Lowest and highest median of the rounds.
    round_medians: (f64, f64),
}

fn median_of(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// Times `calls` calls of `f` over the queries (cycled in shuffled order) after one untimed
/// pass over them, reading the clock every `BATCH` calls; returns the per-call nanoseconds
/// of each batch.
fn time_round<F: Fn(&Query) -> u32>(
    queries: &[Query],
    calls: usize,
    rng: &mut Rng,
    f: F,
) -> Vec<f64> {
    let mut order: Vec<Query> = Vec::with_capacity(calls + queries.len());
    while order.len() < calls {
        let mut pass = queries.to_vec();
        rng.shuffle(&mut pass);
        order.extend(pass);
    }
    order.truncate(calls);
    for q in queries {
        black_box(f(black_box(q)));
    }
    let mut per_call: Vec<f64> = Vec::with_capacity(calls / BATCH);
    for batch in order.chunks_exact(BATCH) {
        let start = Instant::now();
        for q in batch {
            black_box(f(black_box(q)));
        }
        let elapsed = start.elapsed();
        per_call.push(elapsed.as_nanos() as f64 / BATCH as f64);
    }
    per_call
}

/// Measures every class in `ROUNDS` interleaved rounds of `CALLS / ROUNDS` calls, so that a
/// burst of noise on the machine spreads over the classes instead of landing on one.
fn measure_all(
    org: &Organization,
    classes: &[(&'static str, &[Query], bool)],
    distinct: usize,
    rng: &mut Rng,
) -> Vec<Row> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); classes.len()];
    let mut round_medians: Vec<Vec<f64>> = vec![Vec::new(); classes.len()];
    for _ in 0..ROUNDS {
        for (i, (_, queries, access)) in classes.iter().enumerate() {
            let queries = &queries[..distinct.min(queries.len())];
            let mut round = if *access {
                time_round(queries, CALLS / ROUNDS, rng, |q| {
                    org.access(q.user, q.record).bits()
                })
            } else {
                time_round(queries, CALLS / ROUNDS, rng, |q| {
                    u32::from(org.check(q.user, q.privilege, q.record))
                })
            };
            samples[i].extend_from_slice(&round);
            round.sort_by(f64::total_cmp);
            round_medians[i].push(median_of(&round));
        }
    }
    classes
        .iter()
        .zip(samples)
        .zip(round_medians)
        .map(|(((class, _, _), mut per_call), medians)| {
            let mean = per_call.iter().sum::<f64>() / per_call.len() as f64;
            per_call.sort_by(f64::total_cmp);
            let p99 = per_call[(per_call.len() * 99 / 100).min(per_call.len() - 1)];
            Row {
                class,
                calls: per_call.len() * BATCH,
                median: median_of(&per_call),
                p99,
                mean,
                round_medians: (
                    medians.iter().copied().fold(f64::INFINITY, f64::min),
                    medians.iter().copied().fold(0.0, f64::max),
                ),
            }
        })
        .collect()
}

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs the binary without it:
    // then only check that it starts, not the minutes-long measurement.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("check bench: run with `cargo bench -p strata-engine --bench check`");
        return;
    }
    let total = Instant::now();
    let mut rng = Rng(SEED);
    eprintln!("building the organisation…");
    let world = build_world(&mut rng);
    let org = &world.org;
    let links: usize = world
        .users
        .iter()
        .map(|u| org.hierarchy_reports(*u).len())
        .sum();
    println!();
    println!(
        "organisation: {} business units, {} users, {} teams, {} roles, {} tables (+4 built-in), \
         {} records ({} shared), hierarchy: manager, depth {HIERARCHY_DEPTH} ({links} manager→report links)",
        org.units().len(),
        world.users.len(),
        org.team_ids().count(),
        org.role_ids().count(),
        world.tables.len(),
        org.record_count(),
        world.shared.len(),
    );
    println!(
        "build time: {:.2} s (peak RSS {} MiB)",
        world.build.as_secs_f64(),
        peak_rss_mib().map_or_else(|| "?".to_owned(), |m| m.to_string())
    );
    for (name, d) in &world.phases {
        println!("  {name:<38} {:>8.3} s", d.as_secs_f64());
    }
    println!(
        "sizes: Record {} B, User {} B, Grant {} B; {} grants in all",
        std::mem::size_of::<strata_engine::Record>(),
        std::mem::size_of::<strata_engine::User>(),
        std::mem::size_of::<strata_engine::Grant>(),
        world
            .users
            .iter()
            .map(|u| org.all_grants(*u).len())
            .sum::<usize>()
    );

    eprintln!("choosing queries (verified with explain)…");
    let allow = role_depth_allow(&world, &mut rng);
    let deny = role_depth_deny(&world, &mut rng);
    let no_privilege = no_privilege_deny(&world, &mut rng);
    let share = share_allow(&world, &mut rng);
    let hierarchy = hierarchy_allow(&world, &mut rng);
    let random = random_queries(&world, &mut rng);
    let mut role_depth_mixed: Vec<Query> = allow
        .iter()
        .zip(&deny)
        .flat_map(|(a, d)| [*a, *d])
        .collect();
    rng.shuffle(&mut role_depth_mixed);
    let mut access_pairs: Vec<Query> = [&allow, &deny, &share, &hierarchy]
        .into_iter()
        .flat_map(|v| v.iter().take(DISTINCT / 4).copied())
        .collect();
    rng.shuffle(&mut access_pairs);

    let classes: [(&'static str, &[Query], bool); 9] = [
        ("(a) role depth, allow", &allow, false),
        ("(a) role depth, deny (no path)", &deny, false),
        ("(a) role depth, allow+deny mix", &role_depth_mixed, false),
        ("(b) share (user / team), allow", &share, false),
        ("(c) hierarchy, allow", &hierarchy, false),
        ("    privilege check, deny", &no_privilege, false),
        ("    random (user, right, record)", &random, false),
        ("(d) access (effective rights)", &access_pairs, true),
        ("    access, random pairs", &random, true),
    ];
    for (distinct, what) in [
        (
            DISTINCT,
            "spread: the queries touch records, users and grants all over the organisation",
        ),
        (
            HOT,
            "hot: the same few queries again and again, their data stays in L1/L2",
        ),
    ] {
        eprintln!("measuring ({distinct} distinct queries per class)…");
        let rows = measure_all(org, &classes, distinct, &mut rng);
        println!();
        println!(
            "per-call latency, {distinct} distinct queries per class ({what}); \
             clock read every {BATCH} calls; {ROUNDS} interleaved rounds"
        );
        println!(
            "| {:<34} | {:>7} | {:>10} | {:>10} | {:>10} | {:>17} |",
            "class", "calls", "median ns", "p99 ns", "mean ns", "round medians ns"
        );
        println!(
            "|{:-<36}|{:->9}|{:->12}|{:->12}|{:->12}|{:->19}|",
            "", "", "", "", "", ""
        );
        for r in &rows {
            println!(
                "| {:<34} | {:>7} | {:>10.1} | {:>10.1} | {:>10.1} | {:>17} |",
                r.class,
                r.calls,
                r.median,
                r.p99,
                r.mean,
                format!("{:.0}–{:.0}", r.round_medians.0, r.round_medians.1)
            );
        }
    }
    list_section(&world, &mut rng);
    println!();
    println!("total bench time: {:.1} s", total.elapsed().as_secs_f64());
}

/// Readable records of one table for sampled users: the record index (a union of bitmaps)
/// against one `check` per record, and the size of the answers.
fn list_section(world: &World, rng: &mut Rng) {
    let org = &world.org;
    let table = world.tables[0];
    let per_table = org.table_records(table).len();
    let mut index_ms = Vec::new();
    let mut checks_ms = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..20 {
        let user = world.users[rng.below(world.users.len())];
        let start = Instant::now();
        let set = std::hint::black_box(org.readable_set(user, table));
        index_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let list = std::hint::black_box(org.list_readable_by_checks(user, table));
        checks_ms.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(
            set.len() as usize,
            list.len(),
            "the index and the checks disagree"
        );
        sizes.push(set.len());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    sizes.sort_unstable();
    println!();
    println!(
        "readable records of one table ({per_table} records), 20 random users; readable per user: median {}, max {}",
        sizes[sizes.len() / 2],
        sizes[sizes.len() - 1]
    );
    println!("| method | median ms | max ms |");
    println!("|---|---:|---:|");
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (im, cm) = (median(&mut index_ms), median(&mut checks_ms));
    println!(
        "| record index (bitmaps, exact count) | {im:.2} | {:.2} |",
        max(&index_ms)
    );
    println!(
        "| one check per record | {cm:.2} | {:.2} |",
        max(&checks_ms)
    );
}
