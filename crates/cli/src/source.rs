//! Where a command's organisation is: for questions a scenario file, a database or a server
//! ([`Source`]); for writes a database file (as `--as USER` or the system) or a server
//! ([`WriteTarget`]). One way to reach each, shared by the commands.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use serde_json::Value;
use strata_app::{Actor, DryRun, OrgHandle, Written, run_as};
use strata_engine::Organization;
use strata_ops::Operation;
use strata_store::Store;

use crate::args::{Source, WriteTarget};
use crate::question_cmd::organisation;
use crate::remote::{encode, remote};
use crate::server_cmd;

/// An organisation on a server, reached with an API key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Server<'a> {
    pub(crate) url: &'a str,
    pub(crate) org: &'a str,
    pub(crate) key: &'a str,
}

impl Server<'_> {
    /// A request to `/api/v1/orgs/{org}{rest}`.
    pub(crate) fn send(
        &self,
        method: &str,
        rest: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        remote(
            self.url,
            self.key,
            method,
            &format!("/api/v1/orgs/{}{rest}", encode(self.org)),
            body,
        )
    }

    /// `GET /api/v1/orgs/{org}{rest}`.
    pub(crate) fn get(&self, rest: &str) -> anyhow::Result<Value> {
        self.send("GET", rest, None)
    }
}

impl Source {
    /// The server, when the source is one (--server with --org and --key).
    pub(crate) fn server(&self) -> Option<Server<'_>> {
        match (&self.server, &self.org, &self.key) {
            (Some(url), Some(org), Some(key)) => Some(Server { url, org, key }),
            _ => None,
        }
    }

    /// The answer at `rest` from the server, or computed by `local` from the scenario's or the
    /// database's organisation: the same JSON either way.
    pub(crate) fn answer(
        &self,
        rest: &str,
        local: impl FnOnce(&Organization) -> anyhow::Result<Value>,
    ) -> anyhow::Result<Value> {
        match self.server() {
            Some(server) => server.get(rest),
            None => local(&organisation(self)?),
        }
    }
}

/// Where a write goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Place<'a> {
    /// A database file's organisation, as this user or (None) the system.
    Local { db: &'a Path, user: Option<&'a str> },
    /// A server's organisation, as the key's user.
    Server(Server<'a>),
}

impl WriteTarget {
    /// The database or the server named; an error when neither is given in full.
    pub(crate) fn place(&self) -> anyhow::Result<Place<'_>> {
        match (&self.db, &self.server, &self.key) {
            (Some(db), None, _) => Ok(Place::Local {
                db,
                user: self.user.as_deref(),
            }),
            (None, Some(url), Some(key)) => Ok(Place::Server(Server {
                url,
                org: &self.org,
                key,
            })),
            _ => bail!("give --db FILE, or --server URL with --key KEY"),
        }
    }
}

/// An organisation of a database file opened on the application layer's write path (audited,
/// as the server writes), and who acts: a user (an unknown name is `unknown_user`, never the
/// system) or the system.
pub(crate) struct LocalOrg {
    store: Arc<dyn Store>,
    handle: Arc<OrgHandle>,
    actor: Actor,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for LocalOrg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalOrg")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl LocalOrg {
    pub(crate) fn open(db: &Path, org: &str, user: Option<&str>) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = server_cmd::open_existing_store(db)?;
        let registry = strata_app::Registry::load(store.as_ref(), None).map_err(|e| anyhow!(e))?;
        let handle = registry.get(org).map_err(|e| anyhow!(e))?;
        let actor = match user {
            None => Actor::System,
            Some(name) => {
                Actor::user_of(&handle.read_blocking().org, name).map_err(|e| anyhow!(e))?
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            store,
            handle,
            actor,
            runtime,
        })
    }

    /// The operations as the acting user's own actions (unchanged for the system).
    pub(crate) fn as_actor(&self, ops: Vec<Operation>) -> Vec<Operation> {
        match self.actor.user() {
            None => ops,
            Some(name) => ops.into_iter().map(|op| run_as(op, name)).collect(),
        }
    }

    /// An answer computed from the organisation as it is now.
    pub(crate) fn read<T>(&self, work: impl FnOnce(&Organization) -> T) -> T {
        work(&self.handle.read_blocking().org)
    }

    /// The organisation's revision now.
    pub(crate) fn revision(&self) -> u64 {
        self.handle.read_blocking().revision
    }

    /// Writes the batch, atomically.
    pub(crate) fn write(self, ops: Vec<Operation>) -> anyhow::Result<Written> {
        self.runtime
            .block_on(self.handle.write(self.store, ops, self.actor))
            .map_err(|e| anyhow!(e))
    }

    /// Tries the batch and writes nothing. The operator of the database sees every user's
    /// difference.
    pub(crate) fn dry_run(self, ops: Vec<Operation>) -> anyhow::Result<DryRun> {
        self.runtime
            .block_on(
                self.handle
                    .dry_run(self.store, ops, self.actor, Arc::new(|_, _| true)),
            )
            .map_err(|e| anyhow!(e))
    }
}
