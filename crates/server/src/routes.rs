//! The routes of the native API and AuthZEN as one table (`route_table` in lib.rs, a [`Table`]
//! of [`Route`]s): the router is built from it ([`Table::router`]) and the OpenAPI document's
//! paths are generated from it ([`paths`], with utoipa's builder and the `ToSchema` types of
//! `schema.rs`), so a route cannot be served without being documented. `tests/openapi.rs`
//! checks the document against the table and validates a real answer of every route against
//! it; `tests/http.rs` reads the `.route(` calls of lib.rs for its authorization matrix.
//!
//! **Adding a route** is one entry in `route_table` (lib.rs), written as the router's own
//! `.route` calls were:
//!
//! ```text
//! .route(
//!     &format!("{org}/things/{{thing}}"),
//!     get(things::show)
//!         .summary("What a thing is")
//!         .query(&[USER])          // its query parameters, beyond min_revision
//!         .answer::<ThingAnswer>(), // the type the handler builds its 200 answer from
//! )
//! ```
//!
//! with `ThingAnswer` deriving `Serialize` and `utoipa::ToSchema`, with
//! `#[serde(deny_unknown_fields)]` (a closed schema) and its fields in alphabetical order (the
//! bytes `json!` would send); `.body::<ThingBody>()` when the handler reads a body (a handler
//! whose extractors include `Bytes` or `Json` and documents no body fails `tests/openapi.rs`),
//! `.created::<T>()` for a 201, `.no_content()` for a 204, `.errors(&[409])` for error statuses
//! beyond those every route of its kind gives ([`Route::error_statuses`]), `.public()` for a
//! route without credentials. Then add a request to it in `tests/openapi.rs`
//! (`every_route_answers_as_documented` fails on a route no request answered with success, and
//! on an answer that does not match the document).

use std::borrow::Cow;
use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, Paths,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::AppState;
use crate::schema::ErrorAnswer;

/// A query parameter: name, JSON type (`string`, `integer`, `boolean`), description.
pub(crate) type Param = (&'static str, &'static str, &'static str);

/// `user`: the user asked about (a question about another user needs a privilege, D27/D35).
pub(crate) const USER: Param = (
    "user",
    "string",
    "the user asked about (default: the caller); another user's needs prvCheckAccessOfOthers (D27, D35)",
);
pub(crate) const PRIVILEGE: Param = (
    "privilege",
    "string",
    "create read write delete append append_to assign share (default read)",
);
pub(crate) const LIST: [Param; 7] = [
    USER,
    (
        "filter",
        "string",
        "a filter on the table's columns (docs/lists.md)",
    ),
    (
        "orderby",
        "string",
        "columns to order by, each with asc or desc",
    ),
    ("count", "boolean", "also answer how many records match"),
    ("limit", "integer", "page size, 1 to 5000 (default 100)"),
    ("cursor", "string", "the next_cursor of the previous page"),
    (
        "select",
        "string",
        "columns to answer with each record (comma-separated), as the caller sees them",
    ),
];
pub(crate) const AUDIT: [Param; 10] = [
    ("record", "string", "entries about this record"),
    ("user", "string", "entries by this acting user"),
    ("table", "string", "entries about a record of this table"),
    (
        "action",
        "string",
        "entries of this action (`user_access`: a user's access history with `user`)",
    ),
    ("from", "integer", "entries at or after this time (ms)"),
    ("to", "integer", "entries before this time (ms)"),
    (
        "order",
        "string",
        "`asc` (oldest first, the default) or `desc` (newest first)",
    ),
    (
        "after",
        "integer",
        "entries after this sequence number (a page's next_after)",
    ),
    (
        "before",
        "integer",
        "entries before this sequence number (a page's next_before)",
    ),
    ("limit", "integer", "page size, 1 to 5000 (default 100)"),
];
pub(crate) const DRY_RUN: Param = (
    "dry_run",
    "boolean",
    "authorize and apply the batch in memory, answer its changes and access difference, and roll it back: nothing written, no audit, no revision (D54)",
);

/// A schema by name, and how to collect it with the schemas it refers to.
#[derive(Clone, Debug)]
pub(crate) struct SchemaOf {
    name: Cow<'static, str>,
    collect: fn(&mut Vec<(String, RefOr<Schema>)>),
}

fn collect<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

impl SchemaOf {
    fn of<T: ToSchema>() -> SchemaOf {
        SchemaOf {
            name: T::name(),
            collect: collect::<T>,
        }
    }

    fn reference(&self) -> Ref {
        Ref::from_schema_name(self.name.clone())
    }
}

/// What a route answers when it succeeds.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// JSON of this schema, with this status.
    Json(u16, SchemaOf),
    /// JSON of this schema, written in the operation rather than referred to.
    Inline(u16, SchemaOf, fn() -> RefOr<Schema>),
    /// Plain text (Prometheus metrics).
    Text,
    /// A file of this media type (an export, a review, a solution): its bytes, not JSON.
    File(&'static [&'static str]),
    /// Any JSON object (this document).
    Document,
    /// 204, no body.
    NoContent,
}

/// Whether a route needs credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// No credentials (health, metrics, this document).
    Public,
    /// An API key, the root key or a bearer token (`Authorization: Bearer …`).
    Key,
}

/// One route: method, path, handler, and its documentation.
pub(crate) struct Route {
    pub(crate) method: HttpMethod,
    pub(crate) path: String,
    pub(crate) handler: MethodRouter<Arc<AppState>>,
    /// The handler reads a body: its extractors include `Bytes` or `Json` (from its signature).
    pub(crate) reads_body: bool,
    summary: &'static str,
    access: Access,
    query: Vec<Param>,
    body: Option<SchemaOf>,
    /// Media types the body may also be sent as, read as a file (bytes).
    file_body: &'static [&'static str],
    answer: Option<Answer>,
    /// Other answers of the route's own shape, by status (`/readyz`'s 503).
    also: Vec<(u16, SchemaOf)>,
    /// Error statuses beyond those of every route of its kind.
    errors: Vec<u16>,
    /// The route changes its organisation (through the write path): on several nodes it is
    /// forwarded to the organisation's write leader (D150).
    pub(crate) writes: bool,
    /// The largest body the route reads.
    pub(crate) body_bytes: usize,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Route {
    fn new<H, T>(method: HttpMethod, handler: H) -> Route
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let filter = match method {
            HttpMethod::Post => MethodFilter::POST,
            HttpMethod::Put => MethodFilter::PUT,
            HttpMethod::Delete => MethodFilter::DELETE,
            HttpMethod::Patch => MethodFilter::PATCH,
            _ => MethodFilter::GET,
        };
        let extractors = std::any::type_name::<T>();
        Route {
            method,
            path: String::new(),
            handler: axum::routing::on(filter, handler),
            reads_body: extractors.contains("::Bytes") || extractors.contains("Json<"),
            summary: "",
            access: Access::Key,
            query: Vec::new(),
            body: None,
            file_body: &[],
            answer: None,
            also: Vec::new(),
            errors: Vec::new(),
            writes: false,
            body_bytes: crate::limits::MAX_BODY_BYTES,
        }
    }

    /// Marks a route that changes its organisation (see [`Route::writes`]).
    pub(crate) fn writes(mut self) -> Route {
        self.writes = true;
        self
    }

    pub(crate) fn summary(mut self, summary: &'static str) -> Route {
        self.summary = summary;
        self
    }
    pub(crate) fn public(mut self) -> Route {
        self.access = Access::Public;
        self
    }
    pub(crate) fn query(mut self, params: &[Param]) -> Route {
        self.query.extend_from_slice(params);
        self
    }
    pub(crate) fn body<T: ToSchema>(mut self) -> Route {
        self.body = Some(SchemaOf::of::<T>());
        self
    }
    /// The body may also be a file of these media types (its bytes).
    pub(crate) fn file_body(mut self, media: &'static [&'static str]) -> Route {
        self.file_body = media;
        self
    }
    /// The largest body the route reads (instead of the server's default).
    pub(crate) fn body_limit(mut self, bytes: usize) -> Route {
        self.body_bytes = bytes;
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }
    pub(crate) fn answer<T: ToSchema>(mut self) -> Route {
        self.answer = Some(Answer::Json(200, SchemaOf::of::<T>()));
        self
    }
    /// A 200 answer whose schema is written in the operation (its properties visible there).
    pub(crate) fn answer_inline<T: ToSchema>(mut self) -> Route {
        self.answer = Some(Answer::Inline(200, SchemaOf::of::<T>(), T::schema));
        self
    }
    pub(crate) fn created<T: ToSchema>(mut self) -> Route {
        self.answer = Some(Answer::Json(201, SchemaOf::of::<T>()));
        self
    }
    pub(crate) fn no_content(mut self) -> Route {
        self.answer = Some(Answer::NoContent);
        self
    }
    pub(crate) fn answers(mut self, answer: Answer) -> Route {
        self.answer = Some(answer);
        self
    }
    pub(crate) fn also<T: ToSchema>(mut self, status: u16) -> Route {
        self.also.push((status, SchemaOf::of::<T>()));
        self
    }
    pub(crate) fn errors(mut self, statuses: &[u16]) -> Route {
        self.errors.extend_from_slice(statuses);
        self
    }

    /// The error statuses the route can answer: a URI or headers too long (414, 431); with
    /// credentials, their absence (401), permission (403), an unknown organisation or name
    /// (404), a bad query (400), `min_revision` not reached (503), the store (500), and when
    /// it writes (not GET) a full disk (507, `storage_full`); with a body, too large (413) and
    /// not JSON (415).
    pub(crate) fn error_statuses(&self) -> Vec<u16> {
        // Every route: a URI or headers over the limits, refused before routing.
        let mut statuses = vec![414, 431];
        if self.access == Access::Key {
            statuses.extend([400, 401, 403, 404, 500, 503]);
            if self.method != HttpMethod::Get {
                statuses.push(507);
            }
        }
        if self.body.is_some() || self.reads_body {
            statuses.extend([413, 415]);
        }
        statuses.extend(&self.errors);
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }

    /// The route's operation in the document, its schemas collected into `schemas`.
    fn operation(&self, schemas: &mut Vec<(String, RefOr<Schema>)>) -> Operation {
        let mut op = OperationBuilder::new().summary(Some(self.summary));
        for name in path_parameters(&self.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(String::schema())),
            );
        }
        let mut query = self.query.clone();
        if self.access == Access::Key {
            query.push((
                "min_revision",
                "integer",
                "answer once this node has applied this revision (or fail with revision_not_reached)",
            ));
        }
        for (name, kind, description) in query {
            let schema: RefOr<Schema> = match kind {
                "integer" => u64::schema(),
                "boolean" => bool::schema(),
                _ => String::schema(),
            };
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(description))
                    .schema(Some(schema)),
            );
        }
        if self.access == Access::Key {
            op = op
                .parameter(
                    ParameterBuilder::new()
                        .name("MSCRMCallerID")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some("act on behalf of this user (needs prvActOnBehalfOfAnotherUser): every decision must hold for both users, and data is what both may read (D7, D27)"))
                        .schema(Some(String::schema())),
                )
                .security(SecurityRequirement::new("apiKey", Vec::<String>::new()));
        }
        if let Some(body) = &self.body {
            (body.collect)(schemas);
            let mut request = RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body.reference())).build(),
                );
            for media in self.file_body {
                let bytes = utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .content_media_type(*media)
                    .build();
                request = request.content(
                    *media,
                    ContentBuilder::new()
                        .schema(Some(RefOr::T(Schema::Object(bytes))))
                        .build(),
                );
            }
            op = op.request_body(Some(request.build()));
        }
        match &self.answer {
            Some(Answer::Json(status, schema)) => {
                (schema.collect)(schemas);
                op = op.response(
                    status.to_string(),
                    ResponseBuilder::new().description("OK").content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(schema.reference()))
                            .build(),
                    ),
                );
            }
            Some(Answer::Inline(status, schema, inline)) => {
                (schema.collect)(schemas);
                op = op.response(
                    status.to_string(),
                    ResponseBuilder::new().description("OK").content(
                        "application/json",
                        ContentBuilder::new().schema(Some(inline())).build(),
                    ),
                );
            }
            Some(Answer::Text) => {
                op = op.response(
                    "200",
                    ResponseBuilder::new().description("OK").content(
                        "text/plain",
                        ContentBuilder::new().schema(Some(String::schema())).build(),
                    ),
                );
            }
            Some(Answer::File(media)) => {
                let mut response = ResponseBuilder::new().description("OK");
                for media in *media {
                    let bytes = utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .content_media_type(*media)
                        .build();
                    response = response.content(
                        *media,
                        ContentBuilder::new()
                            .schema(Some(RefOr::T(Schema::Object(bytes))))
                            .build(),
                    );
                }
                op = op.response("200", response);
            }
            Some(Answer::Document) => {
                op = op.response(
                    "200",
                    ResponseBuilder::new().description("OK").content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::T(Schema::Object(
                                utoipa::openapi::schema::Object::new(),
                            ))))
                            .build(),
                    ),
                );
            }
            Some(Answer::NoContent) => {
                op = op.response("204", ResponseBuilder::new().description("No content"));
            }
            None => {}
        }
        for (status, schema) in &self.also {
            (schema.collect)(schemas);
            op = op.response(
                status.to_string(),
                ResponseBuilder::new().description("Not ready").content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(schema.reference()))
                        .build(),
                ),
            );
        }
        let errors = self.error_statuses();
        if !errors.is_empty() {
            collect::<ErrorAnswer>(schemas);
        }
        for status in errors {
            let description = axum::http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            op = op.response(
                status.to_string(),
                ResponseBuilder::new().description(description).content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(ErrorAnswer::name())))
                        .build(),
                ),
            );
        }
        op.build()
    }
}

/// A `GET` route to `handler`.
pub(crate) fn get<H: Handler<T, Arc<AppState>>, T: 'static>(handler: H) -> Route {
    Route::new(HttpMethod::Get, handler)
}

/// A `POST` route to `handler`.
pub(crate) fn post<H: Handler<T, Arc<AppState>>, T: 'static>(handler: H) -> Route {
    Route::new(HttpMethod::Post, handler)
}

/// A `PUT` route to `handler`.
pub(crate) fn put<H: Handler<T, Arc<AppState>>, T: 'static>(handler: H) -> Route {
    Route::new(HttpMethod::Put, handler)
}

/// A `DELETE` route to `handler`.
pub(crate) fn delete<H: Handler<T, Arc<AppState>>, T: 'static>(handler: H) -> Route {
    Route::new(HttpMethod::Delete, handler)
}

/// The table of routes (`crate::route_table`).
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) routes: Vec<Route>,
}

impl Table {
    /// Adds `route` at `path`.
    pub(crate) fn route(mut self, path: &str, mut route: Route) -> Table {
        path.clone_into(&mut route.path);
        self.routes.push(route);
        self
    }

    /// The router serving every route of the table (several methods on one path merge).
    pub(crate) fn router(self) -> axum::Router<Arc<AppState>> {
        self.routes
            .into_iter()
            .fold(axum::Router::new(), |router, r| {
                axum::Router::route(router, &r.path, r.handler)
            })
    }
}

/// The `{name}` parameters of a path, in order.
pub(crate) fn path_parameters(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// The paths of the document generated from [`table`], and the schemas they refer to.
pub(crate) fn paths() -> (Paths, Vec<(String, RefOr<Schema>)>) {
    let mut schemas = Vec::new();
    let mut paths = Paths::new();
    for route in crate::route_table().routes {
        let op = route.operation(&mut schemas);
        paths.add_path_operation(&route.path, vec![route.method], op);
    }
    (paths, schemas)
}
