//! Privileges, depths (access levels) and access masks, with Dataverse's numeric values.

use std::fmt;

/// One of the eight record privileges.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Privilege {
    /// Create a record (checked against the new record's owner, D1).
    Create,
    /// Open a record.
    Read,
    /// Change a record.
    Write,
    /// Delete a record.
    Delete,
    /// Associate this record with another (set a lookup on it).
    Append,
    /// Have another record associated with this one (be the target of a lookup).
    AppendTo,
    /// Give the record to another owner.
    Assign,
    /// Give another principal access to the record.
    Share,
}

impl Privilege {
    /// Every privilege, in Dataverse's documented order.
    pub const ALL: [Privilege; 8] = [
        Privilege::Create,
        Privilege::Read,
        Privilege::Write,
        Privilege::Delete,
        Privilege::Append,
        Privilege::AppendTo,
        Privilege::Assign,
        Privilege::Share,
    ];

    /// The rights on an existing record, as `RetrievePrincipalAccess` reports them (no Create).
    pub const RECORD_RIGHTS: [Privilege; 7] = [
        Privilege::Read,
        Privilege::Write,
        Privilege::Append,
        Privilege::AppendTo,
        Privilege::Delete,
        Privilege::Share,
        Privilege::Assign,
    ];

    /// Position in [`Privilege::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The scenario-file name (`append_to`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Create => "create",
            Privilege::Read => "read",
            Privilege::Write => "write",
            Privilege::Delete => "delete",
            Privilege::Append => "append",
            Privilege::AppendTo => "append_to",
            Privilege::Assign => "assign",
            Privilege::Share => "share",
        }
    }

    /// Parses the scenario-file name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Privilege> {
        Privilege::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The `AccessRights` flag of this privilege.
    #[must_use]
    pub fn access_bit(self) -> u32 {
        match self {
            Privilege::Read => 0x1,
            Privilege::Write => 0x2,
            Privilege::Append => 0x4,
            Privilege::AppendTo => 0x10,
            Privilege::Create => 0x20,
            Privilege::Delete => 0x1_0000,
            Privilege::Share => 0x4_0000,
            Privilege::Assign => 0x8_0000,
        }
    }

    /// The Dataverse verb used in privilege names (`prvAppendToAccount`).
    #[must_use]
    pub fn verb(self) -> &'static str {
        match self {
            Privilege::Create => "Create",
            Privilege::Read => "Read",
            Privilege::Write => "Write",
            Privilege::Delete => "Delete",
            Privilege::Append => "Append",
            Privilege::AppendTo => "AppendTo",
            Privilege::Assign => "Assign",
            Privilege::Share => "Share",
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The access level of a privilege in a role. Ordered: a larger depth includes the smaller ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub enum Depth {
    /// Not granted.
    #[default]
    None,
    /// Dataverse "User" (Basic): records the user or the user's teams own.
    User,
    /// Dataverse "Business Unit" (Local): records of the user's business unit.
    BusinessUnit,
    /// Dataverse "Parent: Child Business Units" (Deep): the unit and every unit below it.
    ParentChild,
    /// Dataverse "Organization" (Global): every record.
    Organization,
}

impl Depth {
    /// Every depth, smallest first.
    pub const ALL: [Depth; 5] = [
        Depth::None,
        Depth::User,
        Depth::BusinessUnit,
        Depth::ParentChild,
        Depth::Organization,
    ];

    /// The scenario-file name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Depth::None => "none",
            Depth::User => "user",
            Depth::BusinessUnit => "business_unit",
            Depth::ParentChild => "parent_child",
            Depth::Organization => "organization",
        }
    }

    /// Parses a scenario-file name, or its solution-XML synonym (`basic local deep global`,
    /// case-insensitive for the XML names).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Depth> {
        if let Some(d) = Depth::ALL.into_iter().find(|d| d.name() == name) {
            return Some(d);
        }
        match name.to_ascii_lowercase().as_str() {
            "basic" => Some(Depth::User),
            "local" => Some(Depth::BusinessUnit),
            "deep" => Some(Depth::ParentChild),
            "global" => Some(Depth::Organization),
            _ => None,
        }
    }

    /// The solution-XML level name (`Basic`, `Local`, `Deep`, `Global`).
    #[must_use]
    pub fn xml_name(self) -> Option<&'static str> {
        match self {
            Depth::None => None,
            Depth::User => Some("Basic"),
            Depth::BusinessUnit => Some("Local"),
            Depth::ParentChild => Some("Deep"),
            Depth::Organization => Some("Global"),
        }
    }
}

impl fmt::Display for Depth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of rights on a record, with Dataverse's `AccessRights` bit values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessMask(u32);

impl AccessMask {
    /// No rights.
    pub const NONE: AccessMask = AccessMask(0);
    /// Every right but Create: what inherited access (share cascade, reparent) can give (D8).
    pub const INHERITED: AccessMask = AccessMask(851_991);
    /// Read, Write, Append and AppendTo: what hierarchy security gives over direct reports (D3).
    pub const HIERARCHY_DIRECT: AccessMask = AccessMask(0x1 | 0x2 | 0x4 | 0x10);
    /// Read only: what hierarchy security gives over reports further down (D3).
    pub const HIERARCHY_INDIRECT: AccessMask = AccessMask(0x1);
    /// Every valid bit.
    const VALID: u32 = 0x1 | 0x2 | 0x4 | 0x10 | 0x20 | 0x1_0000 | 0x4_0000 | 0x8_0000;

    /// Builds a mask from Dataverse's numeric value; unknown bits are refused.
    #[must_use]
    pub fn from_bits(bits: u32) -> Option<AccessMask> {
        (bits & !Self::VALID == 0).then_some(AccessMask(bits))
    }

    /// The numeric `AccessRights` value.
    #[must_use]
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The mask of these privileges.
    #[must_use]
    pub fn of(privileges: &[Privilege]) -> AccessMask {
        AccessMask(privileges.iter().fold(0, |m, p| m | p.access_bit()))
    }

    /// Whether the mask holds this privilege's right.
    #[must_use]
    pub fn contains(self, privilege: Privilege) -> bool {
        self.0 & privilege.access_bit() != 0
    }

    /// Whether every right of `other` is in this mask.
    #[must_use]
    pub fn covers(self, other: AccessMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// Rights in either mask.
    #[must_use]
    pub fn union(self, other: AccessMask) -> AccessMask {
        AccessMask(self.0 | other.0)
    }

    /// Rights in both masks.
    #[must_use]
    pub fn intersection(self, other: AccessMask) -> AccessMask {
        AccessMask(self.0 & other.0)
    }

    /// Adds one privilege's right.
    #[must_use]
    pub fn with(self, privilege: Privilege) -> AccessMask {
        AccessMask(self.0 | privilege.access_bit())
    }

    /// Whether no right is set.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The privileges in this mask, in [`Privilege::ALL`] order.
    pub fn privileges(self) -> impl Iterator<Item = Privilege> {
        Privilege::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Dataverse's text form: `ReadAccess, WriteAccess` (`None` when empty).
    #[must_use]
    pub fn dataverse_names(self) -> String {
        if self.is_empty() {
            return "None".to_owned();
        }
        let names: Vec<String> = Privilege::RECORD_RIGHTS
            .into_iter()
            .chain([Privilege::Create])
            .filter(|p| self.contains(*p))
            .map(|p| format!("{}Access", p.verb()))
            .collect();
        names.join(", ")
    }
}

impl fmt::Debug for AccessMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.privileges().map(Privilege::name).collect();
        write!(f, "AccessMask({:#x}: {})", self.0, names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_mask_is_every_right_but_create() {
        let all_but_create: Vec<Privilege> = Privilege::RECORD_RIGHTS.to_vec();
        assert_eq!(AccessMask::of(&all_but_create), AccessMask::INHERITED);
        assert!(!AccessMask::INHERITED.contains(Privilege::Create));
    }

    #[test]
    fn access_bits_match_dataverse() {
        assert_eq!(Privilege::Append.access_bit(), 4);
        assert_eq!(Privilege::AppendTo.access_bit(), 16);
        assert_eq!(AccessMask::from_bits(0x8), None);
        assert_eq!(
            AccessMask::of(&[Privilege::Read, Privilege::Write]).dataverse_names(),
            "ReadAccess, WriteAccess"
        );
    }

    #[test]
    fn depth_synonyms() {
        assert_eq!(Depth::from_name("deep"), Some(Depth::ParentChild));
        assert_eq!(Depth::from_name("Global"), Some(Depth::Organization));
        assert_eq!(Depth::from_name("business_unit"), Some(Depth::BusinessUnit));
        assert_eq!(Depth::from_name("everything"), None);
        assert!(Depth::User < Depth::BusinessUnit);
    }
}
