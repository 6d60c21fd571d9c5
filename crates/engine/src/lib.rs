//! The pure engine of Strata: the Microsoft Dataverse security model in memory.
//!
//! Business units, users, teams, positions, roles with privilege depth, record ownership,
//! sharing (explicit, inherited through relationships, record access teams), hierarchy
//! security, column security and apps; the decisions they give (`check`, `explain`, effective
//! rights, who has access, readable records); and the authorized actions that change them.
//!
//! Architecture invariant: this crate does no IO, has no async runtime, no clock and no
//! serialization; the store, server and CLI are shells around it.

mod actions;
mod apps;
mod check;
mod column_answers;
mod columns;
pub mod date;
mod derive;
mod difference;
mod error;
mod explain;
mod guid;
mod ids;
mod index;
mod journal;
mod licences;
pub mod limits;
mod list;
mod listmap;
mod memory;
mod model;
mod organization;
mod privilege;
pub mod privilege_names;
mod queries;
mod records;
mod review;
mod roles;
mod rules;
mod state;
mod units;

pub use actions::{ACT_ON_BEHALF, Actor, Change, CreateRecord, IDENTITY_COLUMNS, ShareMode};
pub use apps::{AppBlock, AppDiagnosis, AppNeed, MissingNeed, RoleSet, RoleSetError, RoleToAssign};
pub use check::RoleRemedy;
pub use check::{Decision, Denial, GrantKind, GrantPath, HierarchyThrough, Shortfall};
pub use column_answers::{ColumnHolder, ColumnSource, ColumnVerdict};
pub use derive::{AdminSource, Grant, Via};
pub use difference::{
    AccessAfter, AccessDifference, GrantSource, PrivilegeDifference, ReadDifference, TakingAfter,
    UserDifference,
};
pub use error::{ActionError, ModelError};
pub use guid::{Guid, GuidKind};
pub use ids::{
    AppId, BusinessUnitId, Owner, PositionId, Principal, ProfileId, RecordId, RelationshipId,
    RoleId, TableId, TeamId, TemplateId, UserId,
};
pub use index::{ColumnIndexParts, ColumnIndexRef, TableIndexParts, TableIndexRef};
pub use journal::Checkpoint;
pub use licences::{
    Cheapest, Excess, Licence, LicenceCap, LicenceFit, LicenceReport, MAX_LICENCES,
    MAX_USER_LICENCES, Need, NeedCell, Uncovered, UserLicenceReport, ceiling_covers,
};
pub use list::{
    After, CREATED_ON, CompareOp, Fact, Filter, ListError, ListPage, ListQuery, MODIFIED_ON, Order,
    Plan, Referent, STAMP_COLUMNS, STATE_COLUMN, compare_values, stamp_value,
};
pub use memory::MemoryUsage;
pub use model::{
    App, AuditSettings, Cascade, CascadeType, Column, ColumnName, ColumnPermission, DeleteBehavior,
    Deprecation, FieldShare, HierarchyModel, HierarchySettings, Inheritance, Ownership, Position,
    Profile, RareList, Record, RecordState, Relationship, Role, RoleAssignment, Settings, Share,
    Stamps, Table, Team, TeamType, Template, User, Value,
};
pub use organization::{
    BUILT_IN_TABLES, NewRecord, Organization, RESERVED_NAMES, RoleDefinition, Setup, WriteFigures,
    record_names_figures,
};
pub use privilege::{AccessMask, Depth, Privilege};
pub use queries::{AppAccess, ColumnAccess};
pub use records::{Records, RecordsDesign, record_growth_figures};
pub use review::{
    AccessReview, Cell, DEFAULT_INACTIVE_DAYS, MAX_INACTIVE_DAYS, ReviewOptions, ReviewView,
    rfc3339,
};
pub use roles::{
    Assigner, CellSource, DirectHolder, Effective, MAX_DEPRECATION_MESSAGE, MiscCell, RoleCell,
    RoleComparison, RoleHolders, UserCell, UserComparison, UserMisc,
};
pub use rules::{
    Holding, Holdings, RoleRule, RoleRules, RuleError, RuleGuard, Violation, ViolationKind,
};
pub use state::{NameMap, State, StateRef, UnitNode};
pub use units::UnitTree;
