//! FetchXML (`GET /<set>?fetchXml=…`), the subset one table's list answers (D162).
//!
//! ```xml
//! <fetch count="50" page="2" paging-cookie="…" returntotalrecordcount="true">
//!   <entity name="account">
//!     <attribute name="name"/>
//!     <attribute name="primarycontactid"/>
//!     <filter type="and">
//!       <condition attribute="name" operator="like" value="Contoso%"/>
//!       <condition attribute="ownerid" operator="eq-userid"/>
//!       <filter type="or">
//!         <condition attribute="statecode" operator="eq" value="0"/>
//!         <condition attribute="telephone1" operator="in"><value>555-0100</value><value>555-0101</value></condition>
//!       </filter>
//!     </filter>
//!     <order attribute="name" descending="true"/>
//!   </entity>
//! </fetch>
//! ```
//!
//! Read: `fetch` (`top`, `count`, `page`, `paging-cookie`, `returntotalrecordcount`; `version`,
//! `mapping`, `output-format`, `no-lock`, `latematerialize`, `useraworderby`, `options` and
//! `datasource` change nothing here), one `entity` with `attribute`, `all-attributes`,
//! `order`, `filter` (`and`/`or`, nested) and `condition` (with `value` elements for `in`,
//! `not-in`, `between`, `not-between`), and `link-entity` elements directly inside it (`inner`
//! or `outer`, with their own `attribute`, `all-attributes` and `filter`; `exists`, `in`, `any`
//! and `not any`, which only filter: [`Link`]). Refused as
//! not supported (`UnsupportedOption`, named): nested links and the other link types,
//! aggregates, `distinct="true"`, attribute aliases, conditions on another entity or against
//! another column, and the operators `condition` does not list. Anything else is a syntax
//! error naming the element or attribute and its position. No DTD is read (no entity can be
//! declared); every limit is the `$filter`'s or `$select`'s, links counted in.
//!
//! A lookup is named in FetchXML by its logical name (`primarycontactid`, `ownerid`): it
//! becomes the Web API's `_<name>_value`, as `$filter` and `$select` name it, for the server
//! to map. Values are text in FetchXML: a GUID (braces allowed) becomes lowercase text as in
//! `$filter`; a number or `true`/`false` matches a record holding the number or boolean as
//! well as one holding the same text (columns are not typed: D162); any other value is text.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use strata_engine::{CompareOp, Filter, Order, Value};

use crate::apply::{Aggregation, DatePart, Function, Group, MAX_AGGREGATE_RECORDS, Measure};
use crate::date::{Date, Days};
use crate::{
    MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_IN_VALUES, MAX_ORDER_COLUMNS, MAX_SELECT_COLUMNS,
    MAX_TOP, ODataError,
};

/// The part name in errors.
const PART: &str = "fetchXml";

/// The longest FetchXML, in bytes.
pub const MAX_FETCH_BYTES: usize = 16 * 1024;

/// The most records simple paging (a `page` without the paging cookie of the page before it)
/// reaches: `page × count`, as Dataverse limits it.
pub const MAX_SIMPLE_PAGING_RECORDS: u64 = 50_000;

/// The most `link-entity` elements.
pub const MAX_LINKS: usize = 4;

/// How a link joins its records to the entity's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkKind {
    /// `inner`: only the records whose related record is read and matches the link's filter.
    #[default]
    Inner,
    /// `outer`: the records whatever their related record.
    Outer,
    /// `exists`, `in`, `any`: the records that have a related record the readers read and the
    /// link's filter matches; the link only filters (no attributes, one row a record).
    Exists,
    /// `not any`: the records that have none.
    NotAny,
}

/// A `link-entity` of the fetch's entity, for the server to check: many-to-one (`to` the
/// entity's lookup, `from` the linked table's key) or one-to-many (`to` the entity's key,
/// `from` the linked table's lookup of it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// The linked table's logical name.
    pub name: String,
    /// `from`: the linked table's attribute (its key, or its lookup of the entity), as given.
    pub from: String,
    /// `to`: the entity's attribute (a lookup's logical name, or its key), as given.
    pub to: String,
    /// `link-type`.
    pub kind: LinkKind,
    /// `alias`, or the linked table's name and a number (`contact1`, the first link to
    /// `contact`): the prefix of its columns in the answer (`contact1_x002e_fullname`).
    pub alias: String,
    /// Its `attribute` elements, as the Web API names them (empty: none; `None`:
    /// `all-attributes`).
    pub attributes: Option<Vec<String>>,
    /// Its `filter` elements.
    pub filter: Option<Filter>,
}

/// A FetchXML query of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fetch {
    /// The `entity` element's `name`: the table's logical name.
    pub entity: String,
    /// The `attribute` elements' names as the Web API names them (`None`: every column, for
    /// `all-attributes` or no `attribute` at all).
    pub attributes: Option<Vec<String>>,
    /// The `filter` elements, as the engine's filter.
    pub filter: Option<Filter>,
    /// The `order` elements.
    pub order: Vec<Order>,
    /// The `link-entity` elements.
    pub links: Vec<Link>,
    /// `top`: at most this many records, no paging.
    pub top: Option<u32>,
    /// `count`: the page's size.
    pub count: Option<u32>,
    /// `page`: which page (from 1).
    pub page: Option<u32>,
    /// `paging-cookie`, as given (XML-unescaped).
    pub paging_cookie: Option<String>,
    /// `returntotalrecordcount="true"`.
    pub total_record_count: bool,
    /// `aggregate="true"`: the records grouped and aggregated instead (D163); its attributes
    /// and orders are here, not in [`Fetch::attributes`] and [`Fetch::order`].
    pub aggregation: Option<Aggregation>,
    /// `aggregatelimit`: the most records the aggregate reads (at most
    /// [`MAX_AGGREGATE_RECORDS`]).
    pub aggregate_limit: Option<u32>,
}

/// What the parser needs to know of the table and the caller.
pub struct FetchContext<'a> {
    /// Whether an attribute of a table (the entity's or a link's, by logical name) is one of
    /// its lookups (`ownerid`, `primarycontactid`): the Web API names it `_<name>_value`.
    pub is_lookup: &'a dyn Fn(&str, &str) -> bool,
    /// The acting user's GUID (`eq-userid`, `ne-userid`).
    pub user: &'a str,
    /// The acting user's business unit's GUID (`eq-businessid`, `ne-businessid`).
    pub business_unit: &'a str,
    /// Today (the date operators: `today`, `last-x-days`, `this-month`, …; D164).
    pub today: Date,
}

impl std::fmt::Debug for FetchContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchContext")
            .field("user", &self.user)
            .field("business_unit", &self.business_unit)
            .field("today", &self.today)
            .finish_non_exhaustive()
    }
}

/// An element being read, with what it has gathered.
enum Open {
    Fetch,
    Entity,
    /// A `link-entity`: its index in [`Fetch::links`].
    Link(usize),
    /// A filter: `or` when `true`, and the conditions and filters inside it.
    Filter(bool, Vec<Filter>),
    /// A condition waiting for its `value` elements.
    Condition(Condition),
    /// A `value` element's text.
    Value(String),
    /// An element with nothing inside (`attribute`, `all-attributes`, `order`).
    Leaf,
}

struct Condition {
    at: usize,
    attribute: String,
    operator: String,
    values: Vec<String>,
}

struct Parser<'c, 'x> {
    cx: &'c FetchContext<'c>,
    reader: Reader<&'x [u8]>,
    fetch: Fetch,
    entity_seen: bool,
    all_attributes: bool,
    /// Comparisons so far, against [`MAX_FILTER_TERMS`].
    terms: usize,
    /// Filters open, against [`MAX_FILTER_DEPTH`].
    depth: usize,
}

/// Parses FetchXML (already percent-decoded from the query string).
pub fn parse_fetch(xml: &str, cx: &FetchContext<'_>) -> Result<Fetch, ODataError> {
    if xml.len() > MAX_FETCH_BYTES {
        return Err(ODataError::limit(
            PART,
            MAX_FETCH_BYTES,
            format!("the FetchXML is longer than {MAX_FETCH_BYTES} bytes"),
        ));
    }
    let mut reader = Reader::from_str(xml);
    // Text is kept whole: `a &amp; b` comes as three events (text, reference, text).
    reader.config_mut().trim_text(false);
    let mut p = Parser {
        cx,
        reader,
        fetch: Fetch::default(),
        entity_seen: false,
        all_attributes: false,
        terms: 0,
        depth: 0,
    };
    p.read()?;
    if !p.entity_seen {
        return Err(ODataError::syntax(PART, 0, "no `entity` element"));
    }
    if p.all_attributes {
        p.fetch.attributes = None;
    }
    if let Some(a) = &p.fetch.aggregation {
        if a.groups.is_empty() && a.measures.is_empty() {
            return Err(ODataError::syntax(
                PART,
                0,
                "an aggregate names its groups or aggregates as `attribute` elements",
            ));
        }
        let aliases = a.aliases();
        if let Some((alias, _)) = a.order.iter().find(|(o, _)| !aliases.contains(&o.as_str())) {
            return Err(ODataError::syntax(
                PART,
                0,
                format!("the order's alias `{alias}` names no attribute of the aggregate"),
            ));
        }
    }
    Ok(p.fetch)
}

impl Parser<'_, '_> {
    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    fn read(&mut self) -> Result<(), ODataError> {
        let mut stack: Vec<Open> = Vec::new();
        let mut root_done = false;
        loop {
            let at = self.position();
            let event = self.reader.read_event().map_err(|e| {
                let at = usize::try_from(self.reader.error_position()).unwrap_or(at);
                ODataError::syntax(PART, at, format!("malformed XML: {e}"))
            })?;
            match event {
                Event::Start(e) | Event::Empty(e) if root_done => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        format!("`{name}` after the `fetch` element"),
                    ));
                }
                Event::Start(e) => {
                    let open = self.open(&e, stack.last(), at)?;
                    stack.push(open);
                }
                Event::Empty(e) => {
                    let open = self.open(&e, stack.last(), at)?;
                    root_done |= self.close(open, &mut stack)?;
                }
                Event::End(_) => {
                    if let Some(open) = stack.pop() {
                        root_done |= self.close(open, &mut stack)?;
                    }
                }
                Event::Text(t) => {
                    let text = t.decode().map_err(|e| {
                        ODataError::syntax(PART, at, format!("malformed text: {e}"))
                    })?;
                    self.text(&mut stack, &text, at)?;
                }
                Event::CData(t) => {
                    let text = t.decode().map_err(|e| {
                        ODataError::syntax(PART, at, format!("malformed text: {e}"))
                    })?;
                    self.text(&mut stack, &text, at)?;
                }
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => match r.as_ref() {
                            b"lt" => "<".to_owned(),
                            b"gt" => ">".to_owned(),
                            b"amp" => "&".to_owned(),
                            b"apos" => "'".to_owned(),
                            b"quot" => "\"".to_owned(),
                            other => {
                                return Err(ODataError::syntax(
                                    PART,
                                    at,
                                    format!(
                                        "unknown entity `&{};`",
                                        String::from_utf8_lossy(other)
                                    ),
                                ));
                            }
                        },
                        Err(e) => {
                            return Err(ODataError::syntax(
                                PART,
                                at,
                                format!("malformed character reference: {e}"),
                            ));
                        }
                    };
                    self.text(&mut stack, &text, at)?;
                }
                Event::DocType(_) => {
                    return Err(ODataError::syntax(PART, at, "a DTD is not accepted"));
                }
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if !root_done {
            return Err(ODataError::syntax(
                PART,
                self.position(),
                "the `fetch` element is not closed (or missing)",
            ));
        }
        Ok(())
    }

    /// Text inside an element: only a `value` holds any.
    fn text(&self, stack: &mut [Open], text: &str, at: usize) -> Result<(), ODataError> {
        match stack.last_mut() {
            Some(Open::Value(v)) => {
                v.push_str(text);
                Ok(())
            }
            _ if text.trim().is_empty() => Ok(()),
            None => Err(ODataError::syntax(
                PART,
                at,
                "text outside the `fetch` element",
            )),
            _ => Err(ODataError::syntax(
                PART,
                at,
                "text outside a `value` element",
            )),
        }
    }

    /// Reads an element's start: where it may be, and its attributes.
    fn open(
        &mut self,
        e: &BytesStart<'_>,
        parent: Option<&Open>,
        at: usize,
    ) -> Result<Open, ODataError> {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let attrs = attributes(e, at)?;
        let get = |key: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let only = |allowed: &[&str], ignored: &[&str]| -> Result<(), ODataError> {
            for (k, _) in &attrs {
                if !allowed.contains(&k.as_str()) && !ignored.contains(&k.as_str()) {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        format!("the `{name}` element has no attribute `{k}`"),
                    ));
                }
            }
            Ok(())
        };
        let misplaced = || {
            ODataError::syntax(
                PART,
                at,
                format!("the `{name}` element is not expected here"),
            )
        };
        match (name.as_str(), parent) {
            ("fetch", None) => {
                only(
                    &[
                        "top",
                        "count",
                        "page",
                        "paging-cookie",
                        "returntotalrecordcount",
                        "distinct",
                        "aggregate",
                        "aggregatelimit",
                    ],
                    &[
                        "version",
                        "mapping",
                        "output-format",
                        "no-lock",
                        "latematerialize",
                        "useraworderby",
                        "options",
                        "datasource",
                    ],
                )?;
                if boolean(get("distinct"), "distinct", at)? {
                    return Err(unsupported("distinct=\"true\""));
                }
                if boolean(get("aggregate"), "aggregate", at)? {
                    self.fetch.aggregation = Some(Aggregation::default());
                }
                let number = |key: &str, max: u32| -> Result<Option<u32>, ODataError> {
                    get(key)
                        .map(|v| match v.trim().parse::<u32>() {
                            Ok(n) if (1..=max).contains(&n) => Ok(n),
                            _ => Err(ODataError::syntax(
                                PART,
                                at,
                                format!("`{key}` is a whole number from 1 to {max}, not `{v}`"),
                            )),
                        })
                        .transpose()
                };
                self.fetch.top = number("top", MAX_TOP)?;
                self.fetch.count = number("count", MAX_TOP)?;
                self.fetch.page = number("page", u32::MAX)?;
                let limit = u32::try_from(MAX_AGGREGATE_RECORDS).unwrap_or(u32::MAX);
                self.fetch.aggregate_limit = number("aggregatelimit", limit)?;
                if self.fetch.aggregation.is_some() && self.fetch.page.is_some_and(|p| p > 1) {
                    return Err(unsupported("paging an aggregate (`page` past 1)"));
                }
                if self.fetch.top.is_some()
                    && (self.fetch.count.is_some() || self.fetch.page.is_some())
                {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        "`top` cannot be given with `count` or `page`: page with `count` and `page`",
                    ));
                }
                self.fetch.paging_cookie = get("paging-cookie")
                    .filter(|c| !c.trim().is_empty())
                    .map(str::to_owned);
                self.fetch.total_record_count =
                    boolean(get("returntotalrecordcount"), "returntotalrecordcount", at)?;
                Ok(Open::Fetch)
            }
            ("entity", Some(Open::Fetch)) => {
                only(&["name"], &["enableprefiltering", "prefilterparametername"])?;
                if self.entity_seen {
                    return Err(ODataError::syntax(PART, at, "a second `entity` element"));
                }
                self.entity_seen = true;
                self.fetch.entity = get("name")
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        ODataError::syntax(PART, at, "the `entity` element has no `name`")
                    })?
                    .to_owned();
                Ok(Open::Entity)
            }
            ("link-entity", Some(Open::Entity)) => {
                only(
                    &["name", "from", "to", "link-type", "alias"],
                    &[
                        "visible",
                        "intersect",
                        "enableprefiltering",
                        "prefilterparametername",
                    ],
                )?;
                let kind = match get("link-type") {
                    None | Some("inner") => LinkKind::Inner,
                    Some("outer") => LinkKind::Outer,
                    Some("exists" | "in" | "any") => LinkKind::Exists,
                    Some("not any") => LinkKind::NotAny,
                    Some(other) => {
                        return Err(unsupported(&format!("the link type `{other}`")));
                    }
                };
                if self.fetch.links.len() == MAX_LINKS {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("more than {MAX_LINKS} `link-entity` elements"),
                    ));
                }
                let name = required(get("name"), "link-entity", "name", at)?.to_owned();
                let alias = match get("alias").filter(|a| !a.is_empty()) {
                    Some(a) if a.contains(['.', '"', '@']) || a.len() > 64 => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            format!("the alias `{a}` is not a plain name"),
                        ));
                    }
                    Some(a) => a.to_owned(),
                    None => format!(
                        "{name}{}",
                        self.fetch.links.iter().filter(|l| l.name == name).count() + 1
                    ),
                };
                if self.fetch.links.iter().any(|l| l.alias == alias) {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        format!("two links are named `{alias}`"),
                    ));
                }
                self.fetch.links.push(Link {
                    from: get("from").unwrap_or_default().to_owned(),
                    to: required(get("to"), "link-entity", "to", at)?.to_owned(),
                    kind,
                    alias,
                    attributes: Some(Vec::new()),
                    filter: None,
                    name,
                });
                Ok(Open::Link(self.fetch.links.len() - 1))
            }
            ("link-entity", Some(Open::Link(_))) => {
                Err(unsupported("a link-entity inside another"))
            }
            ("order", Some(Open::Link(_))) => Err(unsupported("an order inside a link-entity")),
            ("attribute" | "all-attributes", Some(Open::Link(_)))
                if self.fetch.aggregation.is_some() =>
            {
                Err(unsupported("a linked table's column in an aggregate"))
            }
            ("attribute", Some(Open::Entity)) if self.fetch.aggregation.is_some() => {
                self.aggregate_attribute(&attrs, at)?;
                Ok(Open::Leaf)
            }
            ("all-attributes", Some(Open::Entity)) if self.fetch.aggregation.is_some() => {
                Err(ODataError::syntax(
                    PART,
                    at,
                    "an aggregate's attributes each group or aggregate: `all-attributes` cannot be one",
                ))
            }
            ("order", Some(Open::Entity)) if self.fetch.aggregation.is_some() => {
                only(&["alias", "descending", "attribute"], &[])?;
                let alias = match (get("alias"), get("attribute")) {
                    (Some(alias), None) => alias.to_owned(),
                    _ => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            "an aggregate is ordered by an attribute's `alias`",
                        ));
                    }
                };
                let descending = boolean(get("descending"), "descending", at)?;
                if let Some(a) = &mut self.fetch.aggregation {
                    if a.order.len() == MAX_ORDER_COLUMNS {
                        return Err(ODataError::limit(
                            PART,
                            at,
                            format!("more than {MAX_ORDER_COLUMNS} `order` elements"),
                        ));
                    }
                    a.order.push((alias, descending));
                }
                Ok(Open::Leaf)
            }
            ("attribute" | "all-attributes", Some(Open::Link(i)))
                if matches!(
                    self.fetch.links[*i].kind,
                    LinkKind::Exists | LinkKind::NotAny
                ) =>
            {
                Err(ODataError::syntax(
                    PART,
                    at,
                    "a link of type exists, in, any or not any only filters: it has no attributes",
                ))
            }
            ("attribute", Some(Open::Link(i))) => {
                let i = *i;
                for feature in ["alias", "aggregate", "groupby", "dategrouping", "distinct"] {
                    if get(feature).is_some() {
                        return Err(unsupported(&format!("an attribute's `{feature}`")));
                    }
                }
                only(&["name"], &["build", "addedby", "usertimezone"])?;
                let table = self.fetch.links[i].name.clone();
                let column =
                    self.column_of(&table, required(get("name"), "attribute", "name", at)?);
                if self.attribute_count() == MAX_SELECT_COLUMNS {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("more than {MAX_SELECT_COLUMNS} `attribute` elements"),
                    ));
                }
                if let Some(list) = &mut self.fetch.links[i].attributes
                    && !list.contains(&column)
                {
                    list.push(column);
                }
                Ok(Open::Leaf)
            }
            ("all-attributes", Some(Open::Link(i))) => {
                only(&[], &[])?;
                self.fetch.links[*i].attributes = None;
                Ok(Open::Leaf)
            }
            ("attribute", Some(Open::Entity)) => {
                for feature in ["alias", "aggregate", "groupby", "dategrouping", "distinct"] {
                    if get(feature).is_some() {
                        return Err(unsupported(&format!("an attribute's `{feature}`")));
                    }
                }
                only(&["name"], &["build", "addedby", "usertimezone"])?;
                let column = self.column(required(get("name"), "attribute", "name", at)?);
                let count = self.attribute_count();
                let list = self.fetch.attributes.get_or_insert_with(Vec::new);
                if !list.contains(&column) {
                    if count == MAX_SELECT_COLUMNS {
                        return Err(ODataError::limit(
                            PART,
                            at,
                            format!("more than {MAX_SELECT_COLUMNS} `attribute` elements"),
                        ));
                    }
                    list.push(column);
                }
                Ok(Open::Leaf)
            }
            ("all-attributes", Some(Open::Entity)) => {
                only(&[], &[])?;
                self.all_attributes = true;
                Ok(Open::Leaf)
            }
            ("order", Some(Open::Entity)) => {
                only(&["attribute", "descending"], &[])?;
                if self.fetch.order.len() == MAX_ORDER_COLUMNS {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("more than {MAX_ORDER_COLUMNS} `order` elements"),
                    ));
                }
                let column = self.column(required(get("attribute"), "order", "attribute", at)?);
                let descending = boolean(get("descending"), "descending", at)?;
                self.fetch.order.push(Order { column, descending });
                Ok(Open::Leaf)
            }
            ("filter", Some(Open::Entity | Open::Link(_) | Open::Filter(..))) => {
                only(
                    &["type"],
                    &[
                        "hint",
                        "isquickfindfields",
                        "overridequickfindrecordlimitenabled",
                        "overridequickfindrecordlimitdisabled",
                        "bypassquickfind",
                    ],
                )?;
                self.depth += 1;
                if self.depth > MAX_FILTER_DEPTH {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("filters nested more than {MAX_FILTER_DEPTH} deep"),
                    ));
                }
                let or = match get("type") {
                    None | Some("and") => false,
                    Some("or") => true,
                    Some(other) => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            format!("a filter's `type` is `and` or `or`, not `{other}`"),
                        ));
                    }
                };
                Ok(Open::Filter(or, Vec::new()))
            }
            ("condition", Some(Open::Filter(..))) => {
                for feature in ["entityname", "valueof"] {
                    if get(feature).is_some_and(|v| !v.is_empty()) {
                        return Err(unsupported(&format!("a condition's `{feature}`")));
                    }
                }
                only(
                    &["attribute", "operator", "value"],
                    &["uiname", "uitype", "entityname", "valueof"],
                )?;
                Ok(Open::Condition(Condition {
                    at,
                    attribute: required(get("attribute"), "condition", "attribute", at)?.to_owned(),
                    operator: required(get("operator"), "condition", "operator", at)?.to_owned(),
                    values: get("value").map(|v| vec![v.to_owned()]).unwrap_or_default(),
                }))
            }
            ("value", Some(Open::Condition(c))) => {
                only(&[], &[])?;
                if c.values.len() >= MAX_IN_VALUES {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("more than {MAX_IN_VALUES} values in one condition"),
                    ));
                }
                Ok(Open::Value(String::new()))
            }
            ("link-entity", _) => Err(unsupported("a link-entity outside the entity")),
            _ => Err(misplaced()),
        }
    }

    /// Ends an element, folding what it gathered into its parent; `true` when it is the root.
    fn close(&mut self, open: Open, stack: &mut [Open]) -> Result<bool, ODataError> {
        match open {
            Open::Fetch => return Ok(true),
            Open::Entity | Open::Leaf | Open::Link(_) => {}
            Open::Value(text) => {
                if let Some(Open::Condition(c)) = stack.last_mut() {
                    c.values.push(text);
                }
            }
            Open::Condition(c) => {
                let table = table_of(stack, &self.fetch);
                let filter = self.condition(c, &table)?;
                if let Some(Open::Filter(_, list)) = stack.last_mut() {
                    list.push(filter);
                }
            }
            Open::Filter(or, mut list) => {
                self.depth -= 1;
                let filter = match list.len() {
                    0 => None,
                    1 => list.pop(),
                    _ if or => Some(Filter::Or(list)),
                    _ => Some(Filter::And(list)),
                };
                if let Some(filter) = filter {
                    match stack.last_mut() {
                        Some(Open::Filter(_, list)) => list.push(filter),
                        Some(Open::Link(i)) => {
                            let link = &mut self.fetch.links[*i];
                            link.filter = Some(joined(link.filter.take(), filter));
                        }
                        _ => self.fetch.filter = Some(joined(self.fetch.filter.take(), filter)),
                    }
                }
            }
        }
        Ok(false)
    }

    /// An `attribute` of an aggregate: a group (`groupby="true"`, with its `dategrouping`) or an
    /// aggregate (`aggregate="count|countcolumn|sum|avg|min|max"`, `distinct` for
    /// `countcolumn`), each with its `alias` (a group's defaults to its attribute's name).
    fn aggregate_attribute(
        &mut self,
        attrs: &[(String, String)],
        at: usize,
    ) -> Result<(), ODataError> {
        let get = |key: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        for (k, _) in attrs {
            let known = [
                "name",
                "alias",
                "aggregate",
                "groupby",
                "dategrouping",
                "distinct",
                "build",
                "addedby",
                "usertimezone",
            ];
            if !known.contains(&k.as_str()) {
                return Err(ODataError::syntax(
                    PART,
                    at,
                    format!("the `attribute` element has no attribute `{k}`"),
                ));
            }
        }
        let name = required(get("name"), "attribute", "name", at)?;
        let column = self.column(name);
        let groupby = boolean(get("groupby"), "groupby", at)?;
        let distinct = boolean(get("distinct"), "distinct", at)?;
        let Some(aggregation) = self.fetch.aggregation.as_mut() else {
            return Ok(());
        };
        match (groupby, get("aggregate")) {
            (true, None) => {
                if distinct {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        "`distinct` is for a `countcolumn` aggregate",
                    ));
                }
                let date = get("dategrouping")
                    .map(|d| match d {
                        "day" => Ok(DatePart::Day),
                        "week" => Ok(DatePart::Week),
                        "month" => Ok(DatePart::Month),
                        "quarter" => Ok(DatePart::Quarter),
                        "year" => Ok(DatePart::Year),
                        "fiscal-period" | "fiscal-year" => {
                            Err(unsupported(&format!("the date grouping `{d}`")))
                        }
                        other => Err(ODataError::syntax(
                            PART,
                            at,
                            format!(
                                "`{other}` is not a date grouping: day, week, month, quarter or year"
                            ),
                        )),
                    })
                    .transpose()?;
                let alias = get("alias").unwrap_or(name).to_owned();
                aggregation.push_group(
                    Group {
                        column,
                        alias,
                        date,
                    },
                    PART,
                    at,
                )
            }
            (false, Some(function)) => {
                if get("dategrouping").is_some() {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        "`dategrouping` is for a `groupby` attribute",
                    ));
                }
                let function = match (function, distinct) {
                    ("count", false) => Function::Count,
                    ("countcolumn", false) => Function::CountValues,
                    ("countcolumn", true) => Function::CountDistinct,
                    ("sum", false) => Function::Sum,
                    ("avg", false) => Function::Average,
                    ("min", false) => Function::Min,
                    ("max", false) => Function::Max,
                    (f @ ("count" | "sum" | "avg" | "min" | "max"), true) => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            format!("`distinct` is for a `countcolumn` aggregate, not `{f}`"),
                        ));
                    }
                    (other, _) => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            format!(
                                "`{other}` is not an aggregate: count, countcolumn, sum, avg, min or max"
                            ),
                        ));
                    }
                };
                let alias = get("alias").ok_or_else(|| {
                    ODataError::syntax(PART, at, "an aggregate attribute needs an `alias`")
                })?;
                aggregation.push_measure(
                    Measure {
                        function,
                        column: (function != Function::Count).then_some(column),
                        alias: alias.to_owned(),
                    },
                    PART,
                    at,
                )
            }
            (true, Some(_)) => Err(ODataError::syntax(
                PART,
                at,
                "an attribute either groups (`groupby`) or aggregates (`aggregate`), not both",
            )),
            (false, None) => Err(ODataError::syntax(
                PART,
                at,
                format!(
                    "`{name}` neither groups nor aggregates: in an aggregate every attribute has `groupby=\"true\"` or `aggregate`"
                ),
            )),
        }
    }

    /// An attribute of the entity, as the Web API names it.
    fn column(&self, name: &str) -> String {
        self.column_of(&self.fetch.entity, name)
    }

    /// An attribute of `table`, as the Web API names it.
    fn column_of(&self, table: &str, name: &str) -> String {
        if (self.cx.is_lookup)(table, name) {
            format!("_{name}_value")
        } else {
            name.to_owned()
        }
    }

    /// The `attribute` elements so far, the entity's and its links'.
    fn attribute_count(&self) -> usize {
        self.fetch.attributes.as_ref().map_or(0, Vec::len)
            + self
                .fetch
                .links
                .iter()
                .map(|l| l.attributes.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
    }

    fn count_terms(&mut self, n: usize, at: usize) -> Result<(), ODataError> {
        self.terms += n;
        if self.terms > MAX_FILTER_TERMS {
            return Err(ODataError::limit(
                PART,
                at,
                format!("more than {MAX_FILTER_TERMS} comparisons"),
            ));
        }
        Ok(())
    }

    /// A condition of `table`'s attribute as the engine's filter.
    fn condition(&mut self, c: Condition, table: &str) -> Result<Filter, ODataError> {
        let at = c.at;
        let column = self.column_of(table, &c.attribute);
        let operator = c.operator.as_str();
        let values = &c.values;
        let one = |what: &str| -> Result<&str, ODataError> {
            match values.as_slice() {
                [v] => Ok(v.as_str()),
                _ => Err(ODataError::syntax(
                    PART,
                    at,
                    format!(
                        "the `{what}` operator takes one value, given {}",
                        values.len()
                    ),
                )),
            }
        };
        let none = |what: &str| -> Result<(), ODataError> {
            if values.is_empty() {
                Ok(())
            } else {
                Err(ODataError::syntax(
                    PART,
                    at,
                    format!("the `{what}` operator takes no value"),
                ))
            }
        };
        let compare = |op: CompareOp, v: &str| Filter::Compare {
            column: column.clone(),
            op,
            value: typed(v).swap_remove(0),
        };
        let filter = match operator {
            "eq" | "ne" | "neq" => {
                let v = one(operator)?;
                let forms = typed(v);
                self.count_terms(forms.len(), at)?;
                let op = if operator == "eq" {
                    CompareOp::Eq
                } else {
                    CompareOp::Ne
                };
                let mut list: Vec<Filter> = forms
                    .into_iter()
                    .map(|value| Filter::Compare {
                        column: column.clone(),
                        op,
                        value,
                    })
                    .collect();
                match (list.len(), op) {
                    (1, _) => list.swap_remove(0),
                    (_, CompareOp::Eq) => Filter::Or(list),
                    _ => Filter::And(list),
                }
            }
            "gt" | "ge" | "lt" | "le" => {
                let v = one(operator)?;
                self.count_terms(1, at)?;
                let op = match operator {
                    "gt" => CompareOp::Gt,
                    "ge" => CompareOp::Ge,
                    "lt" => CompareOp::Lt,
                    _ => CompareOp::Le,
                };
                compare(op, v)
            }
            "null" | "not-null" => {
                none(operator)?;
                self.count_terms(1, at)?;
                Filter::Compare {
                    column,
                    op: if operator == "null" {
                        CompareOp::Eq
                    } else {
                        CompareOp::Ne
                    },
                    value: Value::Null,
                }
            }
            "like" | "not-like" => {
                let pattern = one(operator)?;
                self.count_terms(1, at)?;
                let f = like(&column, pattern).ok_or_else(|| {
                    unsupported(&format!(
                        "the pattern `{pattern}` (`like` takes `text`, `text%`, `%text` or `%text%`)"
                    ))
                })?;
                negated(operator == "not-like", f)
            }
            "begins-with" | "not-begin-with" | "ends-with" | "not-end-with" => {
                let text = one(operator)?.to_owned();
                self.count_terms(1, at)?;
                let column = column.clone();
                let f = if operator.contains("begin") {
                    Filter::StartsWith { column, text }
                } else {
                    Filter::EndsWith { column, text }
                };
                negated(operator.starts_with("not-"), f)
            }
            "in" | "not-in" => {
                if values.is_empty() {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        format!("the `{operator}` operator takes `value` elements"),
                    ));
                }
                let list: Vec<Value> = values.iter().flat_map(|v| typed(v)).collect();
                if list.len() > MAX_IN_VALUES {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("more than {MAX_IN_VALUES} values in one condition"),
                    ));
                }
                self.count_terms(list.len(), at)?;
                negated(
                    operator == "not-in",
                    Filter::In {
                        column,
                        values: list,
                    },
                )
            }
            "between" | "not-between" => {
                let [low, high] = values.as_slice() else {
                    return Err(ODataError::syntax(
                        PART,
                        at,
                        format!("the `{operator}` operator takes two `value` elements"),
                    ));
                };
                self.count_terms(2, at)?;
                negated(
                    operator == "not-between",
                    Filter::And(vec![
                        compare(CompareOp::Ge, low),
                        compare(CompareOp::Le, high),
                    ]),
                )
            }
            "eq-userid" | "ne-userid" | "eq-businessid" | "ne-businessid" => {
                none(operator)?;
                self.count_terms(1, at)?;
                let guid = if operator.ends_with("userid") {
                    self.cx.user
                } else {
                    self.cx.business_unit
                };
                Filter::Compare {
                    column,
                    op: if operator.starts_with("eq") {
                        CompareOp::Eq
                    } else {
                        CompareOp::Ne
                    },
                    value: Value::Text(guid.to_owned()),
                }
            }
            other => {
                let value = match values.as_slice() {
                    [] => None,
                    [v] => Some(v.as_str()),
                    _ => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            format!("the `{other}` operator takes at most one value"),
                        ));
                    }
                };
                match Days::of(other, value, self.cx.today)
                    .map_err(|m| ODataError::syntax(PART, at, m))?
                {
                    Some(days) => {
                        self.count_terms(days.terms(), at)?;
                        days.filter(&column)
                    }
                    None => {
                        return Err(unsupported(&format!("the condition operator `{other}`")));
                    }
                }
            }
        };
        Ok(filter)
    }
}

/// The table a condition inside `stack` is about: the innermost link's, else the entity's.
fn table_of(stack: &[Open], fetch: &Fetch) -> String {
    stack
        .iter()
        .rev()
        .find_map(|o| match o {
            Open::Link(i) => fetch.links.get(*i).map(|l| l.name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| fetch.entity.clone())
}

/// `before` and `filter`, both holding.
fn joined(before: Option<Filter>, filter: Filter) -> Filter {
    match before {
        None => filter,
        Some(Filter::And(mut all)) => {
            all.push(filter);
            Filter::And(all)
        }
        Some(before) => Filter::And(vec![before, filter]),
    }
}

/// The attributes of an element, unescaped, each once.
fn attributes(e: &BytesStart<'_>, at: usize) -> Result<Vec<(String, String)>, ODataError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in e.attributes() {
        let a =
            a.map_err(|err| ODataError::syntax(PART, at, format!("malformed attribute: {err}")))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| {
                ODataError::syntax(PART, at, format!("malformed attribute `{key}`: {err}"))
            })?
            .into_owned();
        if out.iter().any(|(k, _)| *k == key) {
            return Err(ODataError::syntax(
                PART,
                at,
                format!("the attribute `{key}` is given twice"),
            ));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn required<'v>(
    value: Option<&'v str>,
    element: &str,
    key: &str,
    at: usize,
) -> Result<&'v str, ODataError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        ODataError::syntax(PART, at, format!("the `{element}` element has no `{key}`"))
    })
}

/// `true`/`false` (also `1`/`0`); absent is false.
fn boolean(value: Option<&str>, key: &str, at: usize) -> Result<bool, ODataError> {
    match value.map(str::trim) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ODataError::syntax(
            PART,
            at,
            format!("`{key}` is `true` or `false`, not `{other}`"),
        )),
    }
}

fn unsupported(what: &str) -> ODataError {
    ODataError::UnsupportedOption {
        name: format!("fetchXml: {what}"),
    }
}

fn negated(not: bool, f: Filter) -> Filter {
    if not { Filter::Not(Box::new(f)) } else { f }
}

/// A FetchXML value as the values a record may hold for it: a GUID (braces allowed) as
/// lowercase text; a number or boolean as itself, then as the text given; anything else as
/// text. Never empty.
fn typed(v: &str) -> Vec<Value> {
    let trimmed = v.trim();
    let bare = trimmed
        .strip_prefix('{')
        .and_then(|g| g.strip_suffix('}'))
        .unwrap_or(trimmed);
    if is_guid(bare) {
        return vec![Value::Text(bare.to_ascii_lowercase())];
    }
    let text = Value::Text(v.to_owned());
    if let Ok(n) = trimmed.parse::<i64>() {
        return vec![Value::Int(n), text];
    }
    if trimmed.contains(|c: char| c.is_ascii_digit())
        && let Ok(x) = trimmed.parse::<f64>()
        && x.is_finite()
    {
        return vec![Value::Float(x), text];
    }
    match trimmed {
        "true" => vec![Value::Bool(true), text],
        "false" => vec![Value::Bool(false), text],
        _ => vec![text],
    }
}

fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `like` with `%` only at the ends: equality, starts with, ends with, contains. `None` for a
/// pattern with `%` inside, `_` or `[` (wildcards this service does not read).
fn like(column: &str, pattern: &str) -> Option<Filter> {
    let starts = pattern.starts_with('%');
    let inner = pattern.strip_prefix('%').unwrap_or(pattern);
    let ends = inner.ends_with('%') && !inner.is_empty();
    let inner = if ends {
        &inner[..inner.len() - 1]
    } else {
        inner
    };
    if inner.contains(['%', '_', '[']) {
        return None;
    }
    let column = column.to_owned();
    let text = inner.to_owned();
    Some(match (starts, ends) {
        (false, false) => Filter::Compare {
            column,
            op: CompareOp::Eq,
            value: Value::Text(text),
        },
        (false, true) => Filter::StartsWith { column, text },
        (true, false) => Filter::EndsWith { column, text },
        (true, true) => Filter::Contains { column, text },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx_parse(xml: &str) -> Result<Fetch, ODataError> {
        let lookups = |table: &str, n: &str| {
            matches!(n, "ownerid" | "owningbusinessunit")
                || (table == "account" && n == "primarycontactid")
                || (table == "contact" && n == "parentcustomerid")
        };
        parse_fetch(
            xml,
            &FetchContext {
                is_lookup: &lookups,
                user: "00000000-0000-0000-0000-0000000000aa",
                business_unit: "00000000-0000-0000-0000-0000000000bb",
                // A Monday.
                today: Date {
                    year: 2026,
                    month: 12,
                    day: 7,
                },
            },
        )
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn a_whole_query_reads() -> Result<(), ODataError> {
        let f = cx_parse(
            r#"<fetch version="1.0" mapping="logical" count="50" page="2" paging-cookie="&lt;cookie page=&quot;1&quot;&gt;&lt;/cookie&gt;" returntotalrecordcount="true">
              <entity name="account">
                <attribute name="name"/>
                <attribute name="primarycontactid"/>
                <attribute name="name"/>
                <filter type="and">
                  <condition attribute="name" operator="like" value="Contoso%"/>
                  <condition attribute="ownerid" operator="eq-userid"/>
                  <filter type="or">
                    <condition attribute="statecode" operator="eq" value="0"/>
                    <condition attribute="telephone1" operator="in"><value>555-0100</value><value>a &amp; b</value></condition>
                  </filter>
                </filter>
                <order attribute="name" descending="true"/>
                <order attribute="primarycontactid"/>
              </entity>
            </fetch>"#,
        )?;
        assert_eq!(f.entity, "account");
        assert_eq!(
            f.attributes,
            Some(vec![
                "name".to_owned(),
                "_primarycontactid_value".to_owned()
            ])
        );
        assert_eq!((f.count, f.page, f.top), (Some(50), Some(2), None));
        assert_eq!(
            f.paging_cookie.as_deref(),
            Some("<cookie page=\"1\"></cookie>")
        );
        assert!(f.total_record_count);
        assert_eq!(
            f.order,
            vec![
                Order {
                    column: "name".into(),
                    descending: true
                },
                Order {
                    column: "_primarycontactid_value".into(),
                    descending: false
                }
            ]
        );
        assert_eq!(
            f.filter,
            Some(Filter::And(vec![
                Filter::StartsWith {
                    column: "name".into(),
                    text: "Contoso".into()
                },
                Filter::Compare {
                    column: "_ownerid_value".into(),
                    op: CompareOp::Eq,
                    value: text("00000000-0000-0000-0000-0000000000aa")
                },
                Filter::Or(vec![
                    Filter::Or(vec![
                        Filter::Compare {
                            column: "statecode".into(),
                            op: CompareOp::Eq,
                            value: Value::Int(0)
                        },
                        Filter::Compare {
                            column: "statecode".into(),
                            op: CompareOp::Eq,
                            value: text("0")
                        },
                    ]),
                    Filter::In {
                        column: "telephone1".into(),
                        values: vec![text("555-0100"), text("a & b")]
                    },
                ]),
            ]))
        );
        Ok(())
    }

    #[test]
    fn links_read_with_their_own_columns_and_filters() -> Result<(), ODataError> {
        let f = cx_parse(
            "<fetch><entity name='account'><attribute name='name'/>
               <link-entity name='contact' from='contactid' to='primarycontactid' alias='pc'>
                 <attribute name='fullname'/><attribute name='parentcustomerid'/>
                 <filter><condition attribute='parentcustomerid' operator='not-null'/></filter>
               </link-entity>
               <link-entity name='systemuser' to='ownerid' link-type='outer'><all-attributes/></link-entity>
             </entity></fetch>",
        )?;
        assert_eq!(f.filter, None);
        assert_eq!(
            f.links,
            vec![
                Link {
                    name: "contact".into(),
                    from: "contactid".into(),
                    to: "primarycontactid".into(),
                    kind: LinkKind::Inner,
                    alias: "pc".into(),
                    attributes: Some(vec!["fullname".into(), "_parentcustomerid_value".into()]),
                    filter: Some(Filter::Compare {
                        column: "_parentcustomerid_value".into(),
                        op: CompareOp::Ne,
                        value: Value::Null
                    }),
                },
                Link {
                    name: "systemuser".into(),
                    from: String::new(),
                    to: "ownerid".into(),
                    kind: LinkKind::Outer,
                    alias: "systemuser1".into(),
                    attributes: None,
                    filter: None,
                },
            ]
        );
        Ok(())
    }

    #[test]
    fn operators_become_the_engines_filters() -> Result<(), ODataError> {
        let one = |op: &str, value: &str| -> Result<Option<Filter>, ODataError> {
            let value = if value.is_empty() {
                String::new()
            } else {
                format!(" value=\"{value}\"")
            };
            Ok(cx_parse(&format!(
                "<fetch><entity name='account'><filter><condition attribute='name' operator='{op}'{value}/></filter></entity></fetch>"
            ))?
            .filter)
        };
        let name = || "name".to_owned();
        assert_eq!(
            one("like", "%toso%")?,
            Some(Filter::Contains {
                column: name(),
                text: "toso".into()
            })
        );
        assert_eq!(
            one("not-like", "%Ltd")?,
            Some(Filter::Not(Box::new(Filter::EndsWith {
                column: name(),
                text: "Ltd".into()
            })))
        );
        assert_eq!(
            one("like", "Contoso")?,
            Some(Filter::Compare {
                column: name(),
                op: CompareOp::Eq,
                value: text("Contoso")
            })
        );
        assert_eq!(
            one("null", "")?,
            Some(Filter::Compare {
                column: name(),
                op: CompareOp::Eq,
                value: Value::Null
            })
        );
        assert_eq!(
            one("ge", "2.5")?,
            Some(Filter::Compare {
                column: name(),
                op: CompareOp::Ge,
                value: Value::Float(2.5)
            })
        );
        assert_eq!(
            one("eq", "{4A1E0A9B-0000-0000-0000-00000000ABCD}")?,
            Some(Filter::Compare {
                column: name(),
                op: CompareOp::Eq,
                value: text("4a1e0a9b-0000-0000-0000-00000000abcd")
            })
        );
        assert_eq!(
            one("ne", "true")?,
            Some(Filter::And(vec![
                Filter::Compare {
                    column: name(),
                    op: CompareOp::Ne,
                    value: Value::Bool(true)
                },
                Filter::Compare {
                    column: name(),
                    op: CompareOp::Ne,
                    value: text("true")
                },
            ]))
        );
        Ok(())
    }

    #[test]
    fn date_operators_become_ranges_of_days() -> Result<(), ODataError> {
        let range = |operator: &str, value: &str| -> Result<Filter, ODataError> {
            let value = if value.is_empty() {
                String::new()
            } else {
                format!(" value='{value}'")
            };
            let xml = format!(
                "<fetch><entity name='account'><filter><condition attribute='closedate' operator='{operator}'{value}/></filter></entity></fetch>"
            );
            Ok(cx_parse(&xml)?.filter.unwrap_or(Filter::And(Vec::new())))
        };
        let at = |op: CompareOp, d: &str| Filter::Compare {
            column: "closedate".into(),
            op,
            value: text(d),
        };
        let within =
            |a: &str, b: &str| Filter::And(vec![at(CompareOp::Ge, a), at(CompareOp::Lt, b)]);
        for (operator, value, expected) in [
            ("today", "", within("2026-12-07", "2026-12-08")),
            ("yesterday", "", within("2026-12-06", "2026-12-07")),
            ("tomorrow", "", within("2026-12-08", "2026-12-09")),
            ("last-seven-days", "", within("2026-11-30", "2026-12-08")),
            ("next-seven-days", "", within("2026-12-07", "2026-12-15")),
            ("this-week", "", within("2026-12-07", "2026-12-14")),
            ("last-week", "", within("2026-11-30", "2026-12-07")),
            ("next-week", "", within("2026-12-14", "2026-12-21")),
            ("this-month", "", within("2026-12-01", "2027-01-01")),
            ("last-month", "", within("2026-11-01", "2026-12-01")),
            ("next-month", "", within("2027-01-01", "2027-02-01")),
            ("this-year", "", within("2026-01-01", "2027-01-01")),
            ("last-year", "", within("2025-01-01", "2026-01-01")),
            ("next-year", "", within("2027-01-01", "2028-01-01")),
            ("last-x-days", "3", within("2026-12-04", "2026-12-08")),
            ("next-x-days", "3", within("2026-12-07", "2026-12-11")),
            ("last-x-weeks", "2", within("2026-11-23", "2026-12-08")),
            ("next-x-weeks", "1", within("2026-12-07", "2026-12-15")),
            ("last-x-months", "1", within("2026-11-07", "2026-12-08")),
            ("next-x-months", "2", within("2026-12-07", "2027-02-08")),
            ("last-x-years", "1", within("2025-12-07", "2026-12-08")),
            ("next-x-years", "1", within("2026-12-07", "2027-12-08")),
            ("olderthan-x-days", "7", within("0", "2026-11-30")),
            ("olderthan-x-months", "1", within("0", "2026-11-07")),
            (
                "on",
                "2026-02-28T10:00:00Z",
                within("2026-02-28", "2026-03-01"),
            ),
            ("on-or-after", "2026-02-28", within("2026-02-28", ":")),
            ("on-or-before", "2026-02-28", within("0", "2026-03-01")),
            (
                "not-on",
                "2026-02-28",
                Filter::Or(vec![within("0", "2026-02-28"), within("2026-03-01", ":")]),
            ),
        ] {
            assert_eq!(range(operator, value)?, expected, "{operator} {value}");
        }
        for (operator, value, says) in [
            ("today", "2026-12-07", "no value"),
            ("last-x-days", "", "one value"),
            ("last-x-days", "0", "whole number"),
            ("last-x-days", "100001", "whole number"),
            ("on", "tomorrow", "a date"),
        ] {
            let e = range(operator, value)
                .err()
                .map(|e| (e.code(), e.to_string()));
            assert!(
                e.as_ref()
                    .is_some_and(|(code, m)| *code == "odata_syntax" && m.contains(says)),
                "{operator} {value}: {e:?}"
            );
        }
        assert_eq!(
            range("last-x-hours", "2").map_err(|e| e.code()),
            Err("odata_unsupported_option")
        );
        Ok(())
    }

    #[test]
    fn aggregates_read() -> Result<(), ODataError> {
        let fetch = cx_parse(
            "<fetch aggregate='true' aggregatelimit='100' top='3'><entity name='account'>
               <attribute name='accountid' aggregate='count' alias='records'/>
               <attribute name='revenue' aggregate='avg' alias='mean'/>
               <attribute name='name' aggregate='countcolumn' distinct='true' alias='names'/>
               <attribute name='telephone1' aggregate='countcolumn' alias='phones'/>
               <attribute name='primarycontactid' groupby='true' alias='contact'/>
               <attribute name='createdon' groupby='true' dategrouping='month' alias='month'/>
               <attribute name='statuscode' groupby='true'/>
               <filter><condition attribute='statecode' operator='eq' value='0'/></filter>
               <order alias='records' descending='true'/>
               <link-entity name='contact' to='primarycontactid' alias='c'><filter><condition attribute='fullname' operator='not-null'/></filter></link-entity>
             </entity></fetch>",
        )?;
        assert!(fetch.attributes.is_none() && fetch.order.is_empty());
        assert_eq!((fetch.top, fetch.aggregate_limit), (Some(3), Some(100)));
        assert!(fetch.filter.is_some() && fetch.links.len() == 1);
        let a = fetch.aggregation.unwrap_or_default();
        let measures: Vec<(Function, Option<&str>, &str)> = a
            .measures
            .iter()
            .map(|m| (m.function, m.column.as_deref(), m.alias.as_str()))
            .collect();
        assert_eq!(
            measures,
            [
                (Function::Count, None, "records"),
                (Function::Average, Some("revenue"), "mean"),
                (Function::CountDistinct, Some("name"), "names"),
                (Function::CountValues, Some("telephone1"), "phones"),
            ]
        );
        let groups: Vec<(&str, &str, Option<DatePart>)> = a
            .groups
            .iter()
            .map(|g| (g.column.as_str(), g.alias.as_str(), g.date))
            .collect();
        assert_eq!(
            groups,
            [
                ("_primarycontactid_value", "contact", None),
                ("createdon", "month", Some(DatePart::Month)),
                ("statuscode", "statuscode", None),
            ]
        );
        assert_eq!(a.order, [("records".to_owned(), true)]);
        Ok(())
    }

    #[test]
    fn what_is_not_answered_is_refused_by_name() {
        for (xml, code, says) in [
            (
                "<fetch><entity name='account'><link-entity name='contact' from='contactid' to='primarycontactid'><link-entity name='a' to='b'/></link-entity></entity></fetch>",
                "odata_unsupported_option",
                "inside another",
            ),
            (
                "<fetch><entity name='account'><link-entity name='contact' to='primarycontactid' link-type='all'/></entity></fetch>",
                "odata_unsupported_option",
                "all",
            ),
            (
                "<fetch><entity name='account'><link-entity name='contact' to='primarycontactid' link-type='exists'><attribute name='fullname'/></link-entity></entity></fetch>",
                "odata_syntax",
                "only filters",
            ),
            (
                "<fetch><entity name='account'><link-entity name='contact' to='primarycontactid'><order attribute='fullname'/></link-entity></entity></fetch>",
                "odata_unsupported_option",
                "order",
            ),
            (
                "<fetch><entity name='account'><link-entity name='contact' to='primarycontactid' alias='x'/><link-entity name='contact' to='primarycontactid' alias='x'/></entity></fetch>",
                "odata_syntax",
                "two links",
            ),
            (
                "<fetch><entity name='account'><link-entity name='contact'/></entity></fetch>",
                "odata_syntax",
                "no `to`",
            ),
            (
                "<fetch aggregate='true'><entity name='account'/></fetch>",
                "odata_syntax",
                "names its groups",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='name'/></entity></fetch>",
                "odata_syntax",
                "neither groups nor aggregates",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum'/></entity></fetch>",
                "odata_syntax",
                "alias",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='median' alias='m'/></entity></fetch>",
                "odata_syntax",
                "median",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum' distinct='true' alias='m'/></entity></fetch>",
                "odata_syntax",
                "distinct",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum' groupby='true' alias='m'/></entity></fetch>",
                "odata_syntax",
                "not both",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum' alias='m'/><attribute name='name' groupby='true' alias='m'/></entity></fetch>",
                "odata_syntax",
                "two columns",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='createdon' groupby='true' dategrouping='fiscal-year' alias='y'/></entity></fetch>",
                "odata_unsupported_option",
                "fiscal-year",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='createdon' groupby='true' dategrouping='decade' alias='y'/></entity></fetch>",
                "odata_syntax",
                "decade",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum' alias='m'/><order attribute='revenue'/></entity></fetch>",
                "odata_syntax",
                "alias",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum' alias='m'/><order alias='n'/></entity></fetch>",
                "odata_syntax",
                "`n`",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><all-attributes/></entity></fetch>",
                "odata_syntax",
                "all-attributes",
            ),
            (
                "<fetch aggregate='true'><entity name='account'><attribute name='revenue' aggregate='sum' alias='m'/><link-entity name='contact' to='primarycontactid'><attribute name='fullname' groupby='true' alias='f'/></link-entity></entity></fetch>",
                "odata_unsupported_option",
                "linked table",
            ),
            (
                "<fetch aggregate='true' count='5' page='2'><entity name='account'><attribute name='revenue' aggregate='sum' alias='m'/></entity></fetch>",
                "odata_unsupported_option",
                "paging an aggregate",
            ),
            (
                "<fetch aggregate='true' aggregatelimit='50001'><entity name='account'><attribute name='revenue' aggregate='sum' alias='m'/></entity></fetch>",
                "odata_syntax",
                "aggregatelimit",
            ),
            (
                "<fetch distinct='true'><entity name='account'/></fetch>",
                "odata_unsupported_option",
                "distinct",
            ),
            (
                "<fetch><entity name='account'><filter><condition attribute='createdon' operator='in-fiscal-year' value='3'/></filter></entity></fetch>",
                "odata_unsupported_option",
                "in-fiscal-year",
            ),
            (
                "<fetch><entity name='account'><filter><condition attribute='name' operator='like' value='a%b'/></filter></entity></fetch>",
                "odata_unsupported_option",
                "a%b",
            ),
            (
                "<fetch><entity name='account'><filter><condition entityname='c' attribute='name' operator='eq' value='x'/></filter></entity></fetch>",
                "odata_unsupported_option",
                "entityname",
            ),
            (
                "<fetch><entity name='account'><attribute name='name' alias='n'/></entity></fetch>",
                "odata_unsupported_option",
                "alias",
            ),
            (
                "<fetch top='5' page='1'><entity name='account'/></fetch>",
                "odata_syntax",
                "top",
            ),
            (
                "<fetch count='0'><entity name='account'/></fetch>",
                "odata_syntax",
                "count",
            ),
            (
                "<fetch count='5001'><entity name='account'/></fetch>",
                "odata_syntax",
                "count",
            ),
            ("<fetch><entity/></fetch>", "odata_syntax", "name"),
            ("<fetch></fetch>", "odata_syntax", "entity"),
            (
                "<fetch><entity name='a'/><entity name='b'/></fetch>",
                "odata_syntax",
                "second",
            ),
            ("<fetch><entity name='a'>", "odata_syntax", "closed"),
            (
                "<fetch><entity name='a'/></fetch><fetch/>",
                "odata_syntax",
                "after",
            ),
            (
                "<fetch><entity name='a'><filter type='xor'/></entity></fetch>",
                "odata_syntax",
                "xor",
            ),
            (
                "<fetch><entity name='a'><condition attribute='name' operator='eq' value='x'/></entity></fetch>",
                "odata_syntax",
                "condition",
            ),
            (
                "<fetch><entity name='a'><filter><condition attribute='name' operator='eq'/></filter></entity></fetch>",
                "odata_syntax",
                "one value",
            ),
            (
                "<fetch><entity name='a'><filter><condition attribute='name' operator='between'><value>1</value></condition></filter></entity></fetch>",
                "odata_syntax",
                "two",
            ),
            (
                "<!DOCTYPE fetch [<!ENTITY x 'y'>]><fetch><entity name='a'/></fetch>",
                "odata_syntax",
                "DTD",
            ),
            (
                "<fetch><entity name='a'>&x;</entity></fetch>",
                "odata_syntax",
                "entity",
            ),
            (
                "<fetch><entity name='a'>text</entity></fetch>",
                "odata_syntax",
                "value",
            ),
            (
                "<fetch><entity name='a' name='b'/></fetch>",
                "odata_syntax",
                "duplicated",
            ),
            ("not xml", "odata_syntax", "fetch"),
        ] {
            let result = cx_parse(xml);
            assert!(result.is_err(), "{xml}: accepted");
            if let Err(e) = result {
                assert_eq!(e.code(), code, "{xml}: {e}");
                assert!(e.to_string().contains(says), "{xml}: {e}");
            }
        }
    }

    #[test]
    fn limits_are_errors() {
        let deep = format!(
            "<fetch><entity name='a'>{}{}</entity></fetch>",
            "<filter>".repeat(MAX_FILTER_DEPTH + 1),
            "</filter>".repeat(MAX_FILTER_DEPTH + 1)
        );
        assert_eq!(cx_parse(&deep).map_err(|e| e.code()), Err("odata_limit"));
        let conditions =
            "<condition attribute='name' operator='eq' value='x'/>".repeat(MAX_FILTER_TERMS + 1);
        let many =
            format!("<fetch><entity name='a'><filter>{conditions}</filter></entity></fetch>");
        assert_eq!(cx_parse(&many).map_err(|e| e.code()), Err("odata_limit"));
        let huge = format!(
            "<fetch><entity name='{}'/></fetch>",
            "a".repeat(MAX_FETCH_BYTES)
        );
        assert_eq!(cx_parse(&huge).map_err(|e| e.code()), Err("odata_limit"));
        let values = "<value>x</value>".repeat(MAX_IN_VALUES + 1);
        let wide = format!(
            "<fetch><entity name='a'><filter><condition attribute='name' operator='in'>{values}</condition></filter></entity></fetch>"
        );
        assert_eq!(cx_parse(&wide).map_err(|e| e.code()), Err("odata_limit"));
    }
}
