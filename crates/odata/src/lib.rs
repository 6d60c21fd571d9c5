//! The Dataverse Web API's request language, parsed: what clients such as `dynamics-web-api`
//! send under `/api/data/v9.x/`. Pure: no HTTP, no async, no IO; the server maps the results
//! (and the errors' [`ODataError::code`] / [`BatchError::code`]) onto its handlers.
//!
//! - [`path`]: the resource path into typed segments ([`ResourcePath`]); [`split_url`] splits
//!   absolute, rooted and relative URLs.
//! - [`query`]: the query string (raw or form-encoded) into [`QueryOptions`], `$filter` into
//!   the engine's [`strata_engine::Filter`] ([`parse_filter`]).
//! - [`fetch`]: FetchXML (`?fetchXml=`) into a [`Fetch`]: one table's list ([`parse_fetch`]).
//! - [`apply`]: `$apply` into an [`Aggregation`] (FetchXML's `aggregate="true"` reads into the
//!   same), answered over the records the readers may read ([`parse_apply`]).
//! - [`batch`]: `$batch` bodies into requests and change sets ([`parse_batch`]), and the
//!   response body ([`write_batch_response`]).
//!
//! Every input is bounded by an explicit limit (the `MAX_…` constants below), refused with an
//! error that names it, never a crash or a deep recursion.

#![warn(missing_docs)]

pub mod apply;
pub mod batch;
mod error;
pub mod fetch;
pub mod filter;
mod lex;
pub mod path;
pub mod query;

use std::collections::BTreeMap;

pub use apply::{Aggregation, Apply, parse_apply};
pub use batch::{
    Batch, BatchError, BatchPart, BatchRequest, BoundaryToken, ChangeSet, Method, PartResponse,
    ResponsePart, WrittenBatch, multipart_boundary, parse_batch, reason_phrase,
    write_batch_response,
};
pub use error::ODataError;
pub use fetch::{Fetch, FetchContext, LinkKind, parse_fetch};
pub use filter::{parse_filter, parse_filter_on};
pub use lex::ParamValue;
pub use path::{
    ApiVersion, Args, NAMESPACE, PathSegment, ResourcePath, Segment, ServiceUrl, parse_path,
    split_url,
};
pub use query::{Expand, QueryOptions, parse_expand_option, parse_query};
/// Calendar dates of the date operators and groupings (the engine's).
pub use strata_engine::date;
/// The filter limits are the native list filter's (`strata_ops`), so both languages accept
/// the same work: characters, nesting of parentheses and `not`, comparisons, values in one
/// `In`, and order columns.
pub use strata_ops::{
    MAX_FILTER_CHARS, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_IN_VALUES, MAX_ORDER_COLUMNS,
};

/// Parameter aliases of a query (`@p1=…`), by name with the `@`.
pub type Aliases = BTreeMap<String, ParamValue>;

/// The longest query string, in bytes (before decoding).
pub const MAX_QUERY_BYTES: usize = 32 * 1024;
/// The longest resource path, in bytes (before decoding).
pub const MAX_PATH_BYTES: usize = 8 * 1024;
/// The most segments in a resource path.
pub const MAX_PATH_SEGMENTS: usize = 16;
/// The most named values in one segment's parentheses (alternate key columns or function
/// parameters).
pub const MAX_SEGMENT_PARAMS: usize = 32;
/// The most columns in a `$select`.
pub const MAX_SELECT_COLUMNS: usize = 500;
/// The most navigation properties in a `$expand`, nested ones included.
pub const MAX_EXPAND_ITEMS: usize = 10;
/// The deepest `$expand` (a nested `$expand` inside a `$expand` is level 2).
pub const MAX_EXPAND_DEPTH: usize = 2;
/// The largest `$top`: Dataverse's largest page.
pub const MAX_TOP: u32 = 5_000;
/// The largest `$batch` body, in bytes.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// The most requests in a `$batch`, change sets included.
pub const MAX_BATCH_REQUESTS: usize = 1_000;
/// The most requests in one change set.
pub const MAX_CHANGE_SET_REQUESTS: usize = 1_000;
/// The most headers in one batch part or one batch request.
pub const MAX_PART_HEADERS: usize = 100;

/// A request's target: the URL's version, resource path and query options.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestTarget {
    /// The version, when the URL carries one (absolute or rooted URLs).
    pub version: Option<ApiVersion>,
    /// The resource path.
    pub path: ResourcePath,
    /// The query options.
    pub query: QueryOptions,
}

/// Parses a whole URL as found in a request line or a `$batch` part: absolute
/// (`http://host/api/data/v9.2/accounts?$top=1`), rooted (`/api/data/v9.2/…`) or relative to
/// the service root (`accounts?$top=1`, `$1`). The query is parsed first so that the path's
/// parameter aliases resolve.
pub fn parse_request_target(url: &str) -> Result<RequestTarget, ODataError> {
    let split = split_url(url)?;
    let query = parse_query(split.query)?;
    let path = parse_path(split.path, &query.aliases)?;
    Ok(RequestTarget {
        version: split.version,
        path,
        query,
    })
}
