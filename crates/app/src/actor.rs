//! Who acts in a write: resolved once by the caller (the server's request opening, the CLI's
//! `--as`) and passed to the write path, which authorizes and audits by it.

use strata_engine::Organization;
use strata_ops::Operation;

use crate::AppError;

/// The actor written in the audit for the server's root key (a user name never begins with
/// `#`).
pub const ROOT_ACTOR: &str = "#root";

/// The actor written in the audit for the `strata` command working on a database directly
/// (organisation create, the demo build, the generator's load, `apply` without `--as`).
pub const SYSTEM_ACTOR: &str = "#system";

/// The acting principal of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The server's root key: hosting administration and the system (audited as `#root`).
    /// Setup operations are not authorized; actions run as the user their `as` names.
    Root,
    /// The `strata` command on a database file or URL (audited as `#system`): the system, as
    /// for the root key.
    System,
    /// A user of the organisation: setup operations are authorized for them; actions run as
    /// them.
    User(String),
    /// `impersonator` acts on behalf of `user` (D7): every decision must hold for both.
    OnBehalf {
        /// The user the write acts as.
        user: String,
        /// The calling user.
        impersonator: String,
    },
}

impl Actor {
    /// A user of `org` by name: `unknown_user` when there is none (never the system).
    ///
    /// # Errors
    ///
    /// `unknown_user`.
    pub fn user_of(org: &Organization, name: &str) -> Result<Actor, AppError> {
        match org.user_id(name) {
            Some(_) => Ok(Actor::User(name.to_owned())),
            None => Err(AppError::new(
                "unknown_user",
                format!(
                    "unknown user `{name}`: an acting user must exist (it is never taken as the system)"
                ),
            )),
        }
    }

    /// The user the write acts as (`None` for the root key and the system).
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        match self {
            Actor::Root | Actor::System => None,
            Actor::User(u) | Actor::OnBehalf { user: u, .. } => Some(u),
        }
    }

    /// The impersonating caller, when there is one.
    #[must_use]
    pub fn impersonator(&self) -> Option<&str> {
        match self {
            Actor::OnBehalf { impersonator, .. } => Some(impersonator),
            _ => None,
        }
    }

    /// The name written in the audit when no user acts: `#root` or `#system`.
    #[must_use]
    pub fn system_name(&self) -> &'static str {
        match self {
            Actor::System => SYSTEM_ACTOR,
            _ => ROOT_ACTOR,
        }
    }

    /// The name the audit gives the actor of `op`: its `as` user, the acting user, or the
    /// system's name.
    #[must_use]
    pub fn audited<'a>(&'a self, op: &'a Operation) -> &'a str {
        op.actor().or(self.user()).unwrap_or(self.system_name())
    }
}

/// An action run as `name` (a user's actions run as that user, whatever `as` says: it may only
/// repeat the name); setup operations are unchanged.
#[must_use]
pub fn run_as(op: Operation, name: &str) -> Operation {
    if op.is_setup() {
        return op;
    }
    let mut op = op;
    if let Some(slot) = op.actor_mut() {
        *slot = Some(name.to_owned());
    }
    op
}
