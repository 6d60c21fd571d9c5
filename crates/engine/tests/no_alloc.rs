//! `check` and `access` make no heap allocation, whatever path decides (or fails to decide)
//! the answer.
//!
//! The workspace denies `unsafe_code`, but counting allocations needs a global allocator, and
//! `GlobalAlloc` is an `unsafe` trait whose methods are `unsafe fn`s. The only unsafe code
//! here forwards each call unchanged to `std::alloc::System`, with the caller's own
//! guarantees, so the lint is allowed for this test file only.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_engine::{
    AccessMask, Actor, Cascade, CascadeType, DeleteBehavior, Denial, Depth, GrantKind,
    HierarchyModel, HierarchySettings, Inheritance, NewRecord, Organization, Owner, Principal,
    Privilege, RecordId, RecordState, RoleDefinition, Settings, TableId, TeamType, UserId,
};

/// Allocations (alloc, alloc_zeroed, realloc) made by threads while their counting is on.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Counting is per thread, so that the test harness's other threads cannot disturb it.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn count() {
    if counting() {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

struct CountingAllocator;

// SAFETY: every method forwards to `System` with the arguments it received, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches only a
// const-initialised thread-local `Cell` (no allocation, no destructor) and an atomic.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the number of allocations it made on this thread.
fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, ALLOCATIONS.load(Ordering::SeqCst) - before)
}

/// What a case expects of `check`: allowed through a path of this kind, or denied this way.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Allow(GrantKind),
    Disabled,
    Deleted,
    NoPrivilege,
    NoAccessPath,
}

struct Fixture {
    org: Organization,
    cases: Vec<(&'static str, UserId, Privilege, RecordId, Expect)>,
}

fn role(
    name: &str,
    inheritance: Inheritance,
    privileges: Vec<(TableId, Privilege, Depth)>,
) -> RoleDefinition {
    RoleDefinition {
        name: name.to_owned(),
        business_unit: None,
        inheritance,
        system_administrator: false,
        privileges,
        misc: Vec::new(),
    }
}

fn every_privilege(tables: &[TableId], depth: Depth) -> Vec<(TableId, Privilege, Depth)> {
    tables
        .iter()
        .flat_map(|t| Privilege::ALL.into_iter().map(move |p| (*t, p, depth)))
        .collect()
}

fn record(key: &str, table: TableId, owner: Owner) -> NewRecord {
    NewRecord {
        key: key.to_owned(),
        table,
        owner,
        business_unit: None,
        state: RecordState::Active,
        fields: Vec::new(),
    }
}

fn read() -> AccessMask {
    AccessMask::NONE.with(Privilege::Read)
}

/// A small organisation with a path of every kind, and the cases that exercise them.
fn fixture() -> Fixture {
    let mut org = Organization::new();
    let mut s = org.setup();
    s.set_settings(Settings {
        hierarchy: Some(HierarchySettings {
            model: HierarchyModel::Manager,
            depth: 2,
            tables: None,
            managers_must_be_in_same_or_parent_business_unit: true,
        }),
        ..Settings::default()
    })
    .unwrap();

    let root = s.add_business_unit("Root", None).unwrap();
    let sales = s.add_business_unit("Sales", Some(root)).unwrap();
    let east = s.add_business_unit("East", Some(sales)).unwrap();
    let service = s.add_business_unit("Service", Some(root)).unwrap();

    let account = s.add_table("account", None, Vec::new()).unwrap();
    let contact = s.add_table("contact", None, Vec::new()).unwrap();
    let task = s.add_table("task", None, Vec::new()).unwrap();
    // contact → account: parental (the parent's owner and sharees reach the children).
    let parent_account = s
        .add_relationship(
            "account_contacts",
            account,
            contact,
            "parentcustomerid",
            Cascade::PARENTAL,
        )
        .unwrap();
    // task → contact: only shares cascade.
    let regarding = s
        .add_relationship(
            "contact_tasks",
            contact,
            task,
            "regardingobjectid",
            Cascade {
                assign: CascadeType::None,
                share: CascadeType::Cascade,
                unshare: CascadeType::Cascade,
                reparent: CascadeType::None,
                delete: DeleteBehavior::RemoveLink,
            },
        )
        .unwrap();

    let all = [account, contact, task];
    let user_depth = s
        .add_role(role(
            "User depth",
            Inheritance::UserAndTeam,
            every_privilege(&all, Depth::User),
        ))
        .unwrap();
    let unit_read = s
        .add_role(role(
            "Unit read",
            Inheritance::UserAndTeam,
            vec![(account, Privilege::Read, Depth::BusinessUnit)],
        ))
        .unwrap();
    let deep_read = s
        .add_role(role(
            "Deep read",
            Inheritance::UserAndTeam,
            vec![
                (account, Privilege::Read, Depth::ParentChild),
                (task, Privilege::Read, Depth::Organization),
            ],
        ))
        .unwrap();
    let team_only = s
        .add_role(role(
            "Team only",
            Inheritance::TeamOnly,
            every_privilege(&[account], Depth::User),
        ))
        .unwrap();
    let contacts_only = s
        .add_role(role(
            "Contacts only",
            Inheritance::UserAndTeam,
            every_privilege(&[contact], Depth::User),
        ))
        .unwrap();
    let admin_role = s
        .add_role(RoleDefinition {
            system_administrator: true,
            ..role("System Administrator", Inheritance::UserAndTeam, Vec::new())
        })
        .unwrap();

    let mut user = |name: &str, unit, roles: &[_], enabled: bool| {
        let u = s.add_user(name, unit, enabled).unwrap();
        for r in roles {
            s.assign_user_role(u, *r, None).unwrap();
        }
        u
    };
    let admin = user("admin", root, &[admin_role], true);
    let vp = user("vp", root, &[user_depth], true);
    let carol = user("carol", sales, &[user_depth], true);
    let dave = user("dave", sales, &[user_depth, deep_read], true);
    let alice = user("alice", east, &[user_depth], true);
    let bob = user("bob", east, &[user_depth, unit_read], true);
    let erin = user("erin", service, &[user_depth], true);
    let frank = user("frank", service, &[], true);
    let gina = user("gina", service, &[user_depth], false);
    let hank = user("hank", service, &[contacts_only], true);
    let ivan = user("ivan", service, &[user_depth], true);

    // alice → carol → vp; erin → ivan. The vp (Root) does not reach alice (East): with the
    // unit constraint a manager must be in the report's unit or its parent (D24).
    s.set_manager(alice, Some(carol)).unwrap();
    s.set_manager(carol, Some(vp)).unwrap();
    s.set_manager(erin, Some(ivan)).unwrap();

    let team_east = s.add_team("East team", TeamType::Owner, east).unwrap();
    s.add_team_member(team_east, erin);
    let team_ops = s.add_team("Ops", TeamType::Owner, service).unwrap();
    s.add_team_member(team_ops, frank);
    s.assign_team_role(team_ops, team_only).unwrap();

    let acc_alice = s
        .add_record(record("acc-alice", account, Owner::User(alice)))
        .unwrap();
    let acc_deleted = s
        .add_record(record("acc-deleted", account, Owner::User(alice)))
        .unwrap();
    let acc_team = s
        .add_record(record("acc-team", account, Owner::Team(team_east)))
        .unwrap();
    let acc_ops = s
        .add_record(record("acc-ops", account, Owner::Team(team_ops)))
        .unwrap();
    let acc_shared = s
        .add_record(record("acc-shared", account, Owner::User(hank)))
        .unwrap();
    s.share(acc_shared, Principal::User(alice), read()).unwrap();
    s.share(
        acc_shared,
        Principal::Team(team_east),
        AccessMask::NONE.with(Privilege::Write),
    )
    .unwrap();
    let acc_org = s
        .add_record(record("acc-org", account, Owner::User(hank)))
        .unwrap();
    s.share(acc_org, Principal::Organization, read()).unwrap();
    let contact_alice = s
        .add_record(record("contact-alice", contact, Owner::User(ivan)))
        .unwrap();
    s.set_lookup(contact_alice, parent_account, acc_alice)
        .unwrap();
    let contact_shared = s
        .add_record(record("contact-shared", contact, Owner::User(hank)))
        .unwrap();
    s.share(contact_shared, Principal::User(erin), read())
        .unwrap();
    let task_1 = s
        .add_record(record("task-1", task, Owner::User(ivan)))
        .unwrap();
    s.set_lookup(task_1, regarding, contact_shared).unwrap();
    drop(s);
    org.delete_record(Actor::System, acc_deleted).unwrap();

    use Expect::{Allow, Deleted, Disabled, NoAccessPath, NoPrivilege};
    use GrantKind as K;
    use Privilege::{Delete, Read, Write};
    let cases = vec![
        (
            "system administrator",
            admin,
            Read,
            acc_alice,
            Allow(K::SystemAdministrator),
        ),
        ("disabled user", gina, Read, acc_alice, Disabled),
        ("deleted record", alice, Read, acc_deleted, Deleted),
        (
            "no privilege on the table",
            hank,
            Read,
            acc_alice,
            NoPrivilege,
        ),
        ("ownership", alice, Write, acc_alice, Allow(K::Ownership)),
        (
            "team ownership, personal grant",
            erin,
            Write,
            acc_team,
            Allow(K::TeamOwnership),
        ),
        (
            "team ownership, team-only grant",
            frank,
            Read,
            acc_ops,
            Allow(K::TeamOwnership),
        ),
        (
            "role depth: business unit",
            bob,
            Read,
            acc_alice,
            Allow(K::RoleDepth),
        ),
        (
            "role depth: parent-child",
            dave,
            Read,
            acc_alice,
            Allow(K::RoleDepth),
        ),
        (
            "role depth: organization",
            dave,
            Read,
            task_1,
            Allow(K::RoleDepth),
        ),
        (
            "share with the user",
            alice,
            Read,
            acc_shared,
            Allow(K::Share),
        ),
        (
            "share with a team",
            erin,
            Write,
            acc_shared,
            Allow(K::TeamShare),
        ),
        (
            "share with the organisation",
            ivan,
            Read,
            acc_org,
            Allow(K::OrganizationShare),
        ),
        (
            "inherited: parent's owner",
            alice,
            Read,
            contact_alice,
            Allow(K::Inherited),
        ),
        (
            "inherited: parent's sharee",
            erin,
            Read,
            task_1,
            Allow(K::Inherited),
        ),
        (
            "hierarchy: report owns",
            carol,
            Write,
            acc_alice,
            Allow(K::Hierarchy),
        ),
        (
            "hierarchy: report's team owns",
            ivan,
            Write,
            acc_team,
            Allow(K::Hierarchy),
        ),
        (
            "hierarchy: shared with report's team",
            ivan,
            Write,
            acc_shared,
            Allow(K::Hierarchy),
        ),
        (
            "deny: user depth, not the owner",
            alice,
            Read,
            acc_team,
            NoAccessPath,
        ),
        (
            "deny: team-only grant, not the team's",
            frank,
            Read,
            acc_alice,
            NoAccessPath,
        ),
        (
            "deny: shares, none for the user",
            ivan,
            Delete,
            acc_shared,
            NoAccessPath,
        ),
        (
            "deny: lookups walked, none reaches",
            hank,
            Read,
            contact_alice,
            NoAccessPath,
        ),
        (
            "deny: share cascade walked",
            bob,
            Read,
            task_1,
            NoAccessPath,
        ),
        (
            "deny: hierarchy gives no delete",
            carol,
            Delete,
            acc_alice,
            NoAccessPath,
        ),
        (
            "deny: hierarchy unit constraint",
            vp,
            Read,
            acc_alice,
            NoAccessPath,
        ),
    ];
    Fixture { org, cases }
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = allocations_during(|| black_box(Vec::<u64>::with_capacity(black_box(16))));
    drop(v);
    assert!(n >= 1, "the counting allocator counted {n} allocations");
}

#[test]
fn check_and_access_do_not_allocate() {
    let Fixture { org, cases } = fixture();
    let mut covered_allow: Vec<GrantKind> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for (name, user, privilege, record, expect) in &cases {
        let (user, privilege, record) = (*user, *privilege, *record);
        // The expectation, checked with `explain` (which allocates) before counting.
        let decision = org.explain(user, privilege, record);
        let as_expected = match expect {
            Expect::Allow(kind) => decision.allowed && decision.has(*kind),
            Expect::Disabled => decision.denial == Some(Denial::UserDisabled),
            Expect::Deleted => decision.denial == Some(Denial::RecordDeleted),
            Expect::NoPrivilege => decision.denial == Some(Denial::NoPrivilege),
            Expect::NoAccessPath => {
                matches!(decision.denial, Some(Denial::NoAccessPath { .. }))
            }
        };
        assert!(
            as_expected,
            "case `{name}`: expected {expect:?}, explain says {decision:?}"
        );
        if let Expect::Allow(kind) = expect {
            covered_allow.push(*kind);
        }

        let (allowed, n) =
            allocations_during(|| black_box(org.check(black_box(user), privilege, record)));
        assert_eq!(allowed, decision.allowed, "case `{name}`: check disagrees");
        if n > 0 {
            failures.push(format!("check, case `{name}`: {n} allocation(s)"));
        }

        let (mask, n) = allocations_during(|| black_box(org.access(black_box(user), record)));
        assert_eq!(
            mask.contains(privilege),
            decision.allowed,
            "case `{name}`: access disagrees with check"
        );
        if n > 0 {
            failures.push(format!("access, case `{name}`: {n} allocation(s)"));
        }
    }
    // The counter does see the engine's allocations: `explain` builds its paths.
    let (_, user, privilege, record, _) = cases[4];
    let (decision, n) = allocations_during(|| black_box(org.explain(user, privilege, record)));
    assert!(decision.allowed && n > 0, "explain made {n} allocations");
    for kind in GrantKind::ALL {
        assert!(
            covered_allow.contains(&kind),
            "no case is allowed through {}",
            kind.name()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
