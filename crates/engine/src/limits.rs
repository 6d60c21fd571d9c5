//! Explicit limits. Each is enforced with an error that names it, never with a crash or a silent cut.

/// Deepest business unit tree: the root is at depth 0.
pub const MAX_BUSINESS_UNIT_DEPTH: usize = 64;
/// Deepest position tree.
pub const MAX_POSITION_DEPTH: usize = 64;
/// Most levels below a manager that hierarchy security may reach.
pub const MAX_HIERARCHY_DEPTH: u8 = 16;
/// Longest chain of parental lookups followed for inherited access.
pub const MAX_PARENT_CHAIN: usize = 32;
/// Longest name of any entity, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Most entities of one kind (units, users, teams, roles, records…) in one organisation.
pub const MAX_ENTITIES: usize = 50_000_000;
/// Most table privileges one app may declare it needs (D51).
pub const MAX_APP_NEEDS: usize = 127;
/// Most branches the smallest-role-set search explores before it answers with the best set
/// found so far, marked not proven smallest (D51).
pub const MAX_ROLE_SET_SEARCH: u64 = 2_000_000;
