//! Dense internal identifiers: every entity of an organisation is an index into a vector.

macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(u32);

        impl $name {
            /// The position of this entity in its organisation's storage.
            #[must_use]
            pub fn index(self) -> usize {
                self.0 as usize
            }

            /// The raw number, stable for the life of the organisation.
            #[must_use]
            pub fn get(self) -> u32 {
                self.0
            }

            /// The id of a raw number (as [`Self::get`] gave it); an id the organisation never
            /// gave is refused by the lookups that take it only as far as they check bounds,
            /// so take raw numbers from this organisation only.
            #[must_use]
            pub fn from_raw(raw: u32) -> Self {
                Self(raw)
            }

            #[allow(dead_code, reason = "only some ids are built in constants")]
            pub(crate) const fn const_new(raw: u32) -> Self {
                Self(raw)
            }

            pub(crate) fn from_index(index: usize) -> Self {
                // Limits (`crate::limits`) keep every collection far below u32::MAX.
                Self(u32::try_from(index).unwrap_or(u32::MAX))
            }
        }
    };
}

dense_id!(
    /// A business unit (Dataverse `businessunit`).
    BusinessUnitId
);
dense_id!(
    /// A user (Dataverse `systemuser`).
    UserId
);
dense_id!(
    /// A team of any type, including the system-managed access teams of records.
    TeamId
);
dense_id!(
    /// A security role.
    RoleId
);
dense_id!(
    /// A table (Dataverse entity).
    TableId
);
dense_id!(
    /// A position of the position hierarchy.
    PositionId
);
dense_id!(
    /// A one-to-many relationship between two tables.
    RelationshipId
);
dense_id!(
    /// A record of any table.
    RecordId
);
dense_id!(
    /// A column (field) security profile.
    ProfileId
);
dense_id!(
    /// A model-driven app.
    AppId
);
dense_id!(
    /// An access team template.
    TemplateId
);

/// A security principal: who a record is shared with, who owns it, who holds a role.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Principal {
    /// One user.
    User(UserId),
    /// Every member of a team.
    Team(TeamId),
    /// Everyone in the organisation.
    Organization,
}

/// The owner of a record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Owner {
    /// Owned by a user.
    User(UserId),
    /// Owned by an owner or group team.
    Team(TeamId),
    /// Organization-owned and business-owned tables have no owner.
    None,
}

impl Owner {
    /// The owner as a principal, if there is one.
    #[must_use]
    pub fn principal(self) -> Option<Principal> {
        match self {
            Owner::User(u) => Some(Principal::User(u)),
            Owner::Team(t) => Some(Principal::Team(t)),
            Owner::None => None,
        }
    }
}
