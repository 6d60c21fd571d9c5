//! Stable GUIDs for records, users, teams, business units and roles, as Dataverse exposes them
//! (`accountid`, `systemuserid`, `teamid`, …).
//!
//! No GUID is stored for what Strata creates by name: an entity's GUID is *derived* from its
//! kind and its dense id, which a replay of the operation log gives back exactly (ids are
//! creation order; nothing is ever renumbered: deleted records stay as tombstones, and a
//! rolled-back batch truncates back to the ids a node that never saw it would have). Derived
//! GUIDs are RFC 9562 version 8 (vendor-specific) UUIDs with a fixed tag, so they can never equal
//! a client's GUID or one the Web API makes (version 7, [`Guid::time_ordered`]):
//!
//! ```text
//! 53545241-KKKK-8000-8000-IIIIIIIIIIII      "STRA", kind, version 8, variant, index
//! ```
//!
//! A record whose key *is* a GUID in canonical form (lowercase, hyphenated — what the Web API
//! creates when a client names the id or lets the server pick one) has that GUID instead; such a
//! key may not carry the derived tag, so the two kinds never meet (D38 in docs/semantics.md).

use std::fmt;
use std::str::FromStr;

use crate::ids::{BusinessUnitId, RecordId, RoleId, TableId, TeamId, TemplateId, UserId};
use crate::organization::Organization;

/// A 128-bit GUID, shown in canonical form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub u128);

/// What a derived GUID names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuidKind {
    /// A record (users' GUIDs are their `systemuser` records').
    Record,
    /// A team.
    Team,
    /// A business unit.
    BusinessUnit,
    /// A security role.
    Role,
    /// An access team template (`teamtemplateid`).
    Template,
    /// A table (its metadata's `MetadataId`).
    Table,
    /// A column of a table (its attribute metadata's `MetadataId`): index = table × 2^20 + column.
    Attribute,
    /// A privilege on a table (`PrivilegeId`): index = table × 8 + privilege.
    Privilege,
}

const TAG: u128 = 0x5354_5241;
const VERSION_VARIANT: u128 = 0x8000_8000;

impl GuidKind {
    fn code(self) -> u128 {
        match self {
            GuidKind::Record => 0,
            GuidKind::Team => 1,
            GuidKind::BusinessUnit => 2,
            GuidKind::Role => 3,
            GuidKind::Template => 4,
            GuidKind::Table => 5,
            GuidKind::Attribute => 6,
            GuidKind::Privilege => 7,
        }
    }
}

impl Guid {
    /// The derived GUID of an entity of this kind with this dense index.
    pub fn derived(kind: GuidKind, index: usize) -> Guid {
        Guid((TAG << 96) | (kind.code() << 80) | (VERSION_VARIANT << 48) | index as u128)
    }

    /// The kind and index of a derived GUID (`None` for any other GUID).
    pub fn decode(self) -> Option<(GuidKind, usize)> {
        if self.0 >> 96 != TAG || (self.0 >> 48) & 0xffff_ffff != VERSION_VARIANT {
            return None;
        }
        let kind = match (self.0 >> 80) & 0xffff {
            0 => GuidKind::Record,
            1 => GuidKind::Team,
            2 => GuidKind::BusinessUnit,
            3 => GuidKind::Role,
            4 => GuidKind::Template,
            5 => GuidKind::Table,
            6 => GuidKind::Attribute,
            7 => GuidKind::Privilege,
            _ => return None,
        };
        let index = self.0 & 0xffff_ffff_ffff;
        usize::try_from(index).ok().map(|i| (kind, i))
    }

    /// Whether this GUID has the derived tag (whatever its kind).
    pub fn is_derived_form(self) -> bool {
        self.0 >> 96 == TAG && (self.0 >> 48) & 0xffff_ffff == VERSION_VARIANT
    }

    /// Parses the canonical form only (36 characters, lowercase hex, hyphens at 8-13-18-23).
    pub fn parse_canonical(text: &str) -> Option<Guid> {
        let guid = parse(text, false)?;
        Some(guid)
    }

    /// A version 7 GUID (RFC 9562): `ms` (milliseconds since the Unix epoch, 48 bits) first,
    /// then `sequence` (12 bits, which orders GUIDs made in the same millisecond), then 62 bits of
    /// `random`. Their canonical texts sort in the order they were made, so the new records'
    /// keys land at the end of every index on them instead of on random pages (D156). The caller
    /// brings the clock and the randomness.
    pub fn time_ordered(ms: u64, sequence: u16, random: u64) -> Guid {
        let ms = u128::from(ms & 0xffff_ffff_ffff);
        let sequence = u128::from(sequence & 0x0fff);
        let random = u128::from(random & 0x3fff_ffff_ffff_ffff);
        Guid((ms << 80) | (0x7 << 76) | (sequence << 64) | (0x2 << 62) | random)
    }
}

fn parse(text: &str, lenient: bool) -> Option<Guid> {
    let mut s = text;
    if lenient && s.len() == 38 && s.starts_with('{') && s.ends_with('}') {
        s = &s[1..37];
    }
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' if lenient => b - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(Guid(value))
}

impl FromStr for Guid {
    type Err = ();

    /// Parses a GUID in any case, with or without braces (`{…}`), as clients write them.
    fn from_str(text: &str) -> Result<Guid, ()> {
        parse(text, true).ok_or(())
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            ((v >> 80) & 0xffff) as u16,
            ((v >> 64) & 0xffff) as u16,
            ((v >> 48) & 0xffff) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl Organization {
    /// A record's GUID: its key when the key is a canonical GUID, else derived from its id.
    pub fn record_guid(&self, record: RecordId) -> Guid {
        match Guid::parse_canonical(&self.records[record.index()].key) {
            Some(guid) => guid,
            None => Guid::derived(GuidKind::Record, record.index()),
        }
    }

    /// The record with this GUID (deleted records included; the caller decides what a tombstone
    /// means).
    pub fn record_by_guid(&self, guid: Guid) -> Option<RecordId> {
        if let Some((kind, index)) = guid.decode() {
            if kind != GuidKind::Record || index >= self.records.len() {
                return None;
            }
            let id = RecordId::from_index(index);
            // A record whose key is a GUID answers to that GUID only.
            return (Guid::parse_canonical(&self.records[index].key).is_none()).then_some(id);
        }
        self.record_names.get(&self.records, &guid.to_string())
    }

    /// A user's GUID (`systemuserid`): the GUID of the user's `systemuser` record.
    pub fn user_guid(&self, user: UserId) -> Guid {
        self.record_guid(self.users[user.index()].record)
    }

    /// The user with this GUID.
    pub fn user_by_guid(&self, guid: Guid) -> Option<UserId> {
        let record = self.record_by_guid(guid)?;
        if self.records[record.index()].table != crate::organization::SYSTEMUSER {
            return None;
        }
        match self.records[record.index()].owner {
            crate::ids::Owner::User(user) if self.users[user.index()].record == record => {
                Some(user)
            }
            _ => None,
        }
    }

    /// A team's GUID (`teamid`).
    pub fn team_guid(&self, team: TeamId) -> Guid {
        Guid::derived(GuidKind::Team, team.index())
    }

    /// The team with this GUID.
    pub fn team_by_guid(&self, guid: Guid) -> Option<TeamId> {
        match guid.decode() {
            Some((GuidKind::Team, i)) if i < self.teams.len() => Some(TeamId::from_index(i)),
            _ => None,
        }
    }

    /// A business unit's GUID (`businessunitid`).
    pub fn unit_guid(&self, unit: BusinessUnitId) -> Guid {
        Guid::derived(GuidKind::BusinessUnit, unit.index())
    }

    /// The business unit with this GUID.
    pub fn unit_by_guid(&self, guid: Guid) -> Option<BusinessUnitId> {
        match guid.decode() {
            Some((GuidKind::BusinessUnit, i)) if i < self.units.len() => {
                Some(BusinessUnitId::from_index(i))
            }
            _ => None,
        }
    }

    /// A role's GUID (`roleid`).
    pub fn role_guid(&self, role: RoleId) -> Guid {
        Guid::derived(GuidKind::Role, role.index())
    }

    /// The role with this GUID.
    pub fn role_by_guid(&self, guid: Guid) -> Option<RoleId> {
        match guid.decode() {
            Some((GuidKind::Role, i)) if i < self.roles.len() && !self.roles[i].deleted => {
                Some(RoleId::from_index(i))
            }
            _ => None,
        }
    }
}

impl Organization {
    /// An access team template's GUID (`teamtemplateid`).
    pub fn template_guid(&self, template: TemplateId) -> Guid {
        Guid::derived(GuidKind::Template, template.index())
    }

    /// The access team template with this GUID.
    pub fn template_by_guid(&self, guid: Guid) -> Option<TemplateId> {
        match guid.decode() {
            Some((GuidKind::Template, i)) if i < self.templates.len() => {
                Some(TemplateId::from_index(i))
            }
            _ => None,
        }
    }

    /// A table's metadata GUID (`MetadataId`).
    pub fn table_guid(&self, table: TableId) -> Guid {
        Guid::derived(GuidKind::Table, table.index())
    }

    /// The table with this metadata GUID.
    pub fn table_by_guid(&self, guid: Guid) -> Option<TableId> {
        match guid.decode() {
            Some((GuidKind::Table, i)) if i < self.tables.len() => Some(TableId::from_index(i)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_guids_sort_as_text_in_the_order_made() {
        let made = [
            Guid::time_ordered(1_796_600_000_000, 0, u64::MAX),
            Guid::time_ordered(1_796_600_000_000, 1, 0),
            Guid::time_ordered(1_796_600_000_000, 0xfff, 7),
            Guid::time_ordered(1_796_600_000_001, 0, 0),
            Guid::time_ordered(0xffff_ffff_ffff, 0xfff, u64::MAX),
        ];
        let texts: Vec<String> = made.iter().map(Guid::to_string).collect();
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        for (guid, text) in made.iter().zip(&texts) {
            // Version 7, RFC 9562 variant, never of the derived form, and it parses back.
            assert_eq!(&text[14..15], "7", "{text}");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
            assert!(!guid.is_derived_form());
            assert_eq!(guid.decode(), None);
            assert_eq!(Guid::parse_canonical(text), Some(*guid));
        }
        assert_eq!(
            Guid::time_ordered(0x0190_0000_0001, 0x123, 0x3fff_ffff_ffff_ffff).to_string(),
            "01900000-0001-7123-bfff-ffffffffffff"
        );
    }

    #[test]
    fn derived_guids_round_trip_and_print_canonically() {
        let g = Guid::derived(GuidKind::Role, 42);
        assert_eq!(g.to_string(), "53545241-0003-8000-8000-00000000002a");
        assert_eq!(g.decode(), Some((GuidKind::Role, 42)));
        assert_eq!(Guid::parse_canonical(&g.to_string()), Some(g));
        assert_eq!("{53545241-0003-8000-8000-00000000002A}".parse(), Ok(g));
        assert!(Guid::parse_canonical("53545241-0003-8000-8000-00000000002A").is_none());
    }

    #[test]
    fn entities_are_found_by_their_guids() -> Result<(), crate::ModelError> {
        use crate::{NewRecord, Owner, RecordState};
        let mut org = Organization::new();
        let (unit, user, team, record, guid_record) = {
            let mut setup = org.setup();
            let unit = setup.add_business_unit("Root", None)?;
            let user = setup.add_user("alice", unit, true)?;
            let team = setup.add_team("Sales", crate::TeamType::Owner, unit)?;
            let table = setup.add_table("account", None, Vec::new())?;
            let new = |key: &str| NewRecord {
                key: key.to_owned(),
                table,
                owner: Owner::User(user),
                business_unit: None,
                state: RecordState::Active,
                fields: Vec::new(),
            };
            let record = setup.add_record(new("contoso"))?;
            let guid_record = setup.add_record(new("0f8fad5b-d9cb-469f-a165-70867728950e"))?;
            let derived = Guid::derived(GuidKind::Record, 0).to_string();
            assert!(setup.add_record(new(&derived)).is_err());
            (unit, user, team, record, guid_record)
        };
        let g = org.record_guid(record);
        assert_eq!(g, Guid::derived(GuidKind::Record, record.index()));
        assert_eq!(org.record_by_guid(g), Some(record));
        let g2 = org.record_guid(guid_record);
        assert_eq!(g2.to_string(), "0f8fad5b-d9cb-469f-a165-70867728950e");
        assert_eq!(org.record_by_guid(g2), Some(guid_record));
        // The GUID-keyed record does not also answer to a derived GUID.
        let derived = Guid::derived(GuidKind::Record, guid_record.index());
        assert_eq!(org.record_by_guid(derived), None);
        assert_eq!(org.user_by_guid(org.user_guid(user)), Some(user));
        assert_eq!(org.user_by_guid(g), None);
        assert_eq!(org.team_by_guid(org.team_guid(team)), Some(team));
        assert_eq!(org.unit_by_guid(org.unit_guid(unit)), Some(unit));
        assert_eq!(org.unit_by_guid(org.team_guid(team)), None);
        assert_eq!(
            org.record_by_guid(Guid::derived(GuidKind::Record, 999)),
            None
        );
        Ok(())
    }

    #[test]
    fn malformed_text_is_not_a_guid() {
        for bad in [
            "",
            "1234",
            "53545241-0003-8000-8000-00000000002",
            "53545241x0003-8000-8000-00000000002a",
            "g3545241-0003-8000-8000-00000000002a",
            "{53545241-0003-8000-8000-00000000002a",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }
}
