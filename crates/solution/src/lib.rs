//! Dataverse solution roles, read and written (docs/solutions.md).
//!
//! - [`read_roles`]: the roles of one input — an unpacked `Roles/<name>.xml` (root `<Role>`, as
//!   SolutionPackager and `pac solution unpack` write them), a packed `customizations.xml` (only
//!   `/ImportExportXml/Roles/Role` are roles), or a solution `.zip` holding one (content
//!   sniffed, not the file name). Every privilege name is resolved through the engine's
//!   catalogue ([`strata_engine::privilege_names`]); every input is bounded (the `MAX_…`
//!   constants); errors name the file, line, column and value with a stable code.
//! - [`plan`]: the roles against an organisation: the operations (`add_table`, `add_role`,
//!   `rename_role`, `set_role_privileges`) one batch of the application layer applies, and the
//!   report (per role: privileges by level, created / updated / unchanged, skipped).
//! - [`export`]: roles as Dataverse's solution XML, byte-stable.
//!
//! Pure: no IO beyond the bytes the caller hands in.

#![warn(missing_docs)]

mod error;
mod export;
mod plan;
mod read;

pub use error::SolutionError;
pub use export::{
    ExportedFile, customizations_xml, export, role_file_name, role_xml, roles_as_customizations,
};
pub use plan::{ImportOptions, Plan, RoleAction, RolePlan, Skipped, plan};
pub use read::{Level, RolePrivilegeEntry, SolutionRole, read_roles, read_roles_many};

/// Largest input file (XML or zip), in bytes.
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;
/// Most entries a solution zip may list.
pub const MAX_ZIP_ENTRIES: usize = 10_000;
/// Largest uncompressed `customizations.xml` read from a zip (zip bombs stop here).
pub const MAX_UNCOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;
/// Deepest element nesting read.
pub const MAX_ELEMENT_DEPTH: usize = 64;
/// Most privileges one role may list (real System Administrator roles carry about 4,100).
pub const MAX_PRIVILEGES_PER_ROLE: usize = 20_000;
/// Most roles one import may bring.
pub const MAX_ROLES: usize = 5_000;
