//! Importing Dataverse roles (docs/solutions.md) with a preview: a `Roles/*.xml`, a
//! `customizations.xml` or a solution `.zip` uploaded (multipart, at most
//! [`strata_solution::MAX_FILE_BYTES`], the session's CSRF token checked as `Change` checks it),
//! read and planned by the code `POST …/roles/import` runs (`admin_import::read_file`,
//! `plan_for`, `carry_out`: `strata_solution`'s reader and plan, the batch tried as a dry run
//! as the signed-in user), then applied as that user through the application layer.
//!
//! Between the preview and the apply the roles read from the file stay on the server (D85): one
//! pending import per session, tied to the session's id, user and organisation and to the
//! preview's own random id, for at most [`PENDING_TTL`], all of them together at most
//! [`MAX_PENDING_BYTES`] of uploaded files (the oldest goes first). Applying plans again
//! against the organisation as it is then; when that plan differs from the one previewed the
//! import is not written and the new preview is shown instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use strata_ops::Operation;
use strata_solution::{ImportOptions, Level, Plan, RoleAction, SolutionRole};

use super::roles::dry_run_view;
use super::{Change, Console, error_box, redirect, session};
use crate::AppState;
use crate::admin_import::{Carried, ReadFailure, carry_out, plan_for, read_file};
use crate::error::{ApiError, status_of};

/// The largest file accepted: the API's (`POST …/roles/import`).
pub(crate) const MAX_UPLOAD_BYTES: usize = strata_solution::MAX_FILE_BYTES;

/// The body limit of the upload route: the file and the form's other fields and framing.
pub(crate) const MAX_UPLOAD_BODY: usize = MAX_UPLOAD_BYTES + 64 * 1024;

/// How long a preview may be applied.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// The uploaded bytes every pending import together may stand for.
pub(crate) const MAX_PENDING_BYTES: usize = 128 * 1024 * 1024;

/// An import previewed and not yet applied.
struct Pending {
    /// The preview's random id (the apply form carries it).
    id: String,
    /// The session it belongs to.
    session: String,
    org: String,
    user: String,
    file: String,
    roles: Vec<SolutionRole>,
    create_tables: bool,
    /// The batch the preview showed.
    operations: Vec<Operation>,
    /// The uploaded file's size, counted against [`MAX_PENDING_BYTES`].
    bytes: usize,
    at: Instant,
}

/// The pending imports of every session (D85).
#[derive(Default)]
pub(crate) struct PendingImports {
    inner: Mutex<Vec<Pending>>,
}

impl PendingImports {
    fn lock(&self) -> MutexGuard<'_, Vec<Pending>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `p` as its session's one pending import, dropping expired ones and then the
    /// oldest until every pending import fits in [`MAX_PENDING_BYTES`].
    fn put(&self, p: Pending) {
        let mut all = self.lock();
        all.retain(|q| q.session != p.session && q.at.elapsed() < PENDING_TTL);
        all.push(p);
        all.sort_by_key(|q| q.at);
        while all.iter().map(|q| q.bytes).sum::<usize>() > MAX_PENDING_BYTES && all.len() > 1 {
            all.remove(0);
        }
    }

    /// The session's pending import, when it is the one with this id, for this user of this
    /// organisation, and not expired.
    fn take(&self, session: &str, id: &str, org: &str, user: &str) -> Option<Pending> {
        let mut all = self.lock();
        all.retain(|q| q.at.elapsed() < PENDING_TTL);
        let at = all.iter().position(|q| {
            q.session == session
                && session::same_secret(&q.id, id)
                && q.org == org
                && q.user == user
        })?;
        Some(all.remove(at))
    }

    /// Whether the session has an import pending (for the page).
    fn pending_of(&self, session: &str) -> Option<(String, String)> {
        self.lock()
            .iter()
            .find(|q| q.session == session && q.at.elapsed() < PENDING_TTL)
            .map(|q| (q.id.clone(), q.file.clone()))
    }

    /// Pending imports held (for tests of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The node's pending imports: one store for the process, since entries are found by their
/// session's random id (sessions are per node too).
static PENDING: std::sync::LazyLock<PendingImports> =
    std::sync::LazyLock::new(PendingImports::default);

fn pending_store() -> &'static PendingImports {
    &PENDING
}

/// An upload: the signed-in request (its origin checked as every change's is), the form's
/// fields and the file, with the session's CSRF token checked (D75) as [`Change`] checks it —
/// `Change` reads URL-encoded forms, and a file comes as `multipart/form-data`.
pub(crate) struct Upload {
    console: Console,
    fields: HashMap<String, String>,
    file: Option<(String, Vec<u8>)>,
}

/// Why an upload was refused before it was read.
fn too_large() -> ApiError {
    ApiError::new(
        "payload_too_large",
        format!(
            "the file is larger than {} MiB, the most an import takes",
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ),
    )
    .at("file")
}

impl FromRequest<Arc<AppState>> for Upload {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = Request::from_parts(parts, body);
        let refused = |console: &Console, e: ApiError| console.error("Import roles", &e);
        let mut multipart = match Multipart::from_request(req, state).await {
            Ok(m) => m,
            Err(e) => {
                return Err(refused(
                    &console,
                    ApiError::new(
                        "invalid_body",
                        format!("the upload must be a multipart form: {e}"),
                    ),
                ));
            }
        };
        let mut fields = HashMap::new();
        let mut file = None;
        loop {
            let mut field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(refused(&console, too_large()));
                }
                Err(e) => {
                    return Err(refused(
                        &console,
                        ApiError::new("invalid_body", format!("the upload: {e}")),
                    ));
                }
            };
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                            return Err(refused(&console, too_large()));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(refused(&console, too_large()));
                    }
                    Err(e) => {
                        return Err(refused(
                            &console,
                            ApiError::new("invalid_body", format!("the upload: {e}")),
                        ));
                    }
                }
            }
            if name == "file" {
                let shown = file_name
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or("").to_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "upload".to_owned());
                file = Some((shown, bytes));
            } else if fields.len() < 16 && bytes.len() <= 4096 {
                fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        let presented = fields
            .get("csrf")
            .cloned()
            .or(header_token)
            .unwrap_or_default();
        if !session::same_secret(&presented, &console.csrf) {
            return Err(super::plain_error(&ApiError::forbidden(
                "this change does not carry the session's CSRF token: reload the page and try again",
            )));
        }
        Ok(Upload {
            console,
            fields,
            file,
        })
    }
}

/// The upload form.
fn upload_form(csrf: &str, create_tables: bool) -> Markup {
    html! {
        form.question #upload method="post" action="/console/import/preview" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="file" { "Role file: Roles/*.xml, customizations.xml or a solution .zip (at most " (MAX_UPLOAD_BYTES / (1024 * 1024)) " MiB)" }
                input #file type="file" name="file" accept=".xml,.zip" required;
            }
            div.field {
                input #create_tables type="checkbox" name="create_tables" value="1" checked[create_tables];
                label for="create_tables" { "Create the tables the roles name that the organisation lacks (System Administrators)" }
            }
            button type="submit" { "Preview" }
        }
    }
}

/// `GET /console/import`.
pub(crate) async fn page(c: Console) -> Response {
    let pending = pending_store().pending_of(&c.id).map(|(_, file)| file);
    c.page(
        "Import roles",
        html! {
            p { "Import security roles from a Dataverse solution: see what would be created, updated, left unchanged or skipped, and who would gain or lose access, before anything is written. The same plan as the API's " code { "POST …/roles/import" } "." }
            @if let Some(file) = pending { p.small { "A preview of " strong { (file) } " is pending; uploading again replaces it." } }
            (upload_form(&c.csrf, false))
        },
    )
}

/// A level as Dataverse's role editor names its depth.
fn level_label(level: Level) -> &'static str {
    match level {
        Level::Basic => "User",
        Level::Local => "Business Unit",
        Level::Deep => "Parent: Child",
        Level::Global => "Organization",
    }
}

fn action_cell(action: &RoleAction) -> Markup {
    match action {
        RoleAction::Create => html! { span.gain { "created" } },
        RoleAction::Update {
            matched_by,
            renamed_from,
        } => html! {
            "updated" span.small { " (matched by " (matched_by) @if let Some(from) = renamed_from { ", renamed from " strong { (from) } } ")" }
        },
        RoleAction::Unchanged { matched_by } => {
            html! { "unchanged" span.small { " (matched by " (matched_by) ")" } }
        }
        RoleAction::Skip(reason) => html! { span.loss { "skipped" } span.small { ": " (reason) } },
    }
}

/// The plan: per role its action and privileges by level, the tables.
fn plan_view(plan: &Plan) -> Markup {
    html! {
        table.list #import-plan {
            caption { "Roles in the file" }
            thead { tr {
                th scope="col" { "Role" } th scope="col" { "File" } th scope="col" { "Action" }
                @for l in Level::ALL { th scope="col" { (level_label(l)) } }
                th scope="col" { "Table privileges" } th scope="col" { "Miscellaneous" } th scope="col" { "Skipped" }
            } }
            tbody {
                @for r in &plan.roles {
                    tr data-action=(r.action.name()) {
                        th scope="row" { (r.name) }
                        td { code { (r.file) } }
                        td { (action_cell(&r.action)) }
                        @for n in r.by_level { td { (n) } }
                        td { (r.table_privileges) }
                        td { (r.misc_privileges) }
                        td {
                            @if r.skipped.is_empty() { "0" } @else {
                                details {
                                    summary { (r.skipped.len()) }
                                    ul { @for s in &r.skipped { li { code { (s.privilege) } " (" (s.level.name()) "): " (s.reason) } } }
                                }
                            }
                            @for n in &r.notes { p.small { (n) } }
                        }
                    }
                }
            }
        }
        @if !plan.tables_unknown.is_empty() {
            section #tables-unknown {
                h3 { "Unknown tables" }
                p { "The organisation has no table of these names; their privileges are skipped unless the tables are created:" }
                ul { @for t in &plan.tables_unknown { li { code { (t) } } } }
            }
        }
        @if !plan.tables_created.is_empty() {
            section #tables-created {
                h3 { "Tables created" }
                ul { @for t in &plan.tables_created { li { code { (t) } } } }
            }
        }
        p.small { (plan.operations.len()) " operations in one batch." }
    }
}

/// Plans the roles as the signed-in user and tries the batch; keeps the import pending when it
/// may be applied; renders the preview.
async fn preview(
    c: &Console,
    file: String,
    roles: Vec<SolutionRole>,
    bytes: usize,
    create_tables: bool,
    note: Option<&str>,
) -> Response {
    let options = ImportOptions { create_tables };
    let planned = plan_for(&c.request, &roles, options).await;
    let (actor, plan) = match planned {
        Ok(p) => p,
        Err(e) => return c.error("Import roles: preview", &e),
    };
    let tried = carry_out(&c.state, &c.request, actor, plan.operations.clone(), true).await;
    let id = match session::random_id() {
        Ok(id) => id,
        Err(e) => return c.error("Import roles: preview", &e),
    };
    // A refused preview is not kept; one that changes nothing is, for a preview creating the
    // unknown tables.
    let may_apply = tried.is_ok() && !plan.operations.is_empty();
    if tried.is_ok() {
        pending_store().put(Pending {
            id: id.clone(),
            session: c.id.clone(),
            org: c.request.handle.name.clone(),
            user: c.user.clone(),
            file: file.clone(),
            roles,
            create_tables,
            operations: plan.operations.clone(),
            bytes,
            at: Instant::now(),
        });
    }
    let body = html! {
        @if let Some(n) = note { p.flash.error role="alert" { (n) } }
        p { "Preview of " strong #import-file { (file) } ": nothing is written until you apply it." }
        (plan_view(&plan))
        @match &tried {
            Ok(Carried::Tried(dry)) => { (dry_run_view(dry)) }
            Ok(_) => { p #import-nothing { "Nothing to import: every role is unchanged or skipped." } }
            Err(e) => { h3 { "Refused" } (error_box(e)) }
        }
        @if may_apply {
            form.inline #apply method="post" action="/console/import/apply" {
                input type="hidden" name="csrf" value=(c.csrf);
                input type="hidden" name="preview" value=(id);
                button type="submit" { "Apply the import" }
            }
        }
        @if !plan.tables_unknown.is_empty() && !create_tables && tried.is_ok() {
            form.inline #replan method="post" action="/console/import/replan" {
                input type="hidden" name="csrf" value=(c.csrf);
                input type="hidden" name="preview" value=(id);
                input type="hidden" name="create_tables" value="1";
                button type="submit" { "Preview again, creating the unknown tables" }
            }
        }
        h2 { "Another file" }
        (upload_form(&c.csrf, create_tables))
    };
    let mut r = c.page("Import roles: preview", body);
    if let Err(e) = &tried {
        *r.status_mut() = status_of(e.code);
    }
    r
}

/// A refused file: the reader's error with its place.
fn file_refused(c: &Console, failure: ReadFailure) -> Response {
    let e = match failure {
        ReadFailure::File(e) => e,
        ReadFailure::Failed(e) => return c.error("Import roles", &e),
    };
    let api = ApiError::from(ReadFailure::File(e.clone()));
    let body = html! {
        div.refusal role="alert" #file-refused {
            p { strong { (e.code) } ": " (e.message) }
            p {
                "in " code { (e.file) }
                @if e.line > 0 { ", line " strong.line { (e.line) } ", column " strong.column { (e.column) } }
                @if !e.value.is_empty() { ": " code { (e.value) } }
            }
        }
        (upload_form(&c.csrf, false))
    };
    let mut r = c.page("Import roles", body);
    *r.status_mut() = status_of(api.code);
    r
}

/// `POST /console/import/preview` (multipart): reads the file and shows the preview.
pub(crate) async fn upload(u: Upload) -> Response {
    let c = &u.console;
    let Some((file, bytes)) = u.file else {
        return c.error(
            "Import roles",
            &ApiError::new("invalid_body", "choose a role file to import").at("file"),
        );
    };
    if bytes.is_empty() {
        return c.error(
            "Import roles",
            &ApiError::new("invalid_body", format!("`{file}` is empty")).at("file"),
        );
    }
    let create_tables = u.fields.get("create_tables").is_some_and(|v| v == "1");
    let size = bytes.len();
    match read_file(file.clone(), bytes).await {
        Ok(roles) => preview(c, file, roles, size, create_tables, None).await,
        Err(failure) => file_refused(c, failure),
    }
}

/// The pending import this change names, or the reason it is gone.
fn pending_of(change: &Change) -> Result<Pending, ApiError> {
    let c = &change.console;
    let id = change.field("preview")?;
    pending_store()
        .take(&c.id, id, &c.request.handle.name, &c.user)
        .ok_or_else(|| {
            ApiError::new(
                "not_found",
                "this preview is no longer pending (applied, replaced by another upload, or older than 30 minutes): upload the file again",
            )
        })
}

/// `POST /console/import/replan`: the pending import previewed again with other options.
pub(crate) async fn replan(change: Change) -> Response {
    let p = match pending_of(&change) {
        Ok(p) => p,
        Err(e) => return change.console.error("Import roles", &e),
    };
    let create_tables = change.form.get("create_tables").is_some_and(|v| v == "1");
    preview(
        &change.console,
        p.file,
        p.roles,
        p.bytes,
        create_tables,
        None,
    )
    .await
}

/// `POST /console/import/apply`: plans the pending import again against the organisation as it
/// is now; the same batch as previewed is written as the signed-in user (one batch, through the
/// application layer, audited), a different one is shown as a new preview instead.
pub(crate) async fn apply(change: Change) -> Response {
    let c = &change.console;
    let p = match pending_of(&change) {
        Ok(p) => p,
        Err(e) => return c.error("Import roles", &e),
    };
    let options = ImportOptions {
        create_tables: p.create_tables,
    };
    let (actor, plan) = match plan_for(&c.request, &p.roles, options).await {
        Ok(x) => x,
        Err(e) => return c.error("Import roles", &e),
    };
    if plan.operations != p.operations {
        return preview(
            c,
            p.file,
            p.roles,
            p.bytes,
            p.create_tables,
            Some("The organisation changed since the preview, so the import was not applied: here is what it would do now."),
        )
        .await;
    }
    let count = |name: &str| {
        plan.roles
            .iter()
            .filter(|r| r.action.name() == name)
            .count()
    };
    let summary = format!(
        "Imported {}: {} roles created, {} updated, {} unchanged, {} skipped",
        p.file,
        count("create"),
        count("update"),
        count("unchanged"),
        count("skip"),
    );
    match carry_out(&c.state, &c.request, actor, plan.operations, false).await {
        Ok(Carried::Written { revision }) => {
            c.flash(false, format!("{summary}, at revision {revision}."));
            redirect("/console/audit")
        }
        Ok(_) => {
            c.flash(false, format!("{summary}: nothing to write."));
            redirect("/console/import")
        }
        Err(e) => c.error("Import roles", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(session: &str, bytes: usize) -> Pending {
        Pending {
            id: format!("id-{session}"),
            session: session.to_owned(),
            org: "o".to_owned(),
            user: "u".to_owned(),
            file: "f.xml".to_owned(),
            roles: Vec::new(),
            create_tables: false,
            operations: Vec::new(),
            bytes,
            at: Instant::now(),
        }
    }

    #[test]
    fn pending_imports_are_bounded_and_tied_to_their_session() {
        let store = PendingImports::default();
        store.put(pending("a", 60 * 1024 * 1024));
        store.put(pending("b", 60 * 1024 * 1024));
        assert_eq!(store.len(), 2);
        // A third pushes the total past the bound: the oldest goes.
        store.put(pending("c", 60 * 1024 * 1024));
        assert_eq!(store.len(), 2);
        assert!(store.take("a", "id-a", "o", "u").is_none());
        // Another session, id, user or organisation does not take it.
        assert!(store.take("b", "id-c", "o", "u").is_none());
        assert!(store.take("c", "id-c", "o", "other").is_none());
        assert!(store.take("c", "id-c", "p", "u").is_none());
        assert!(store.take("c", "id-c", "o", "u").is_some());
        assert!(
            store.take("c", "id-c", "o", "u").is_none(),
            "taken once only"
        );
        // A session keeps one pending import: a new upload replaces it.
        store.put(pending("b", 1));
        assert_eq!(store.len(), 1);
    }
}
