//! Lists: the readable records of a table, filtered on columns, ordered, counted and paged by a
//! cursor that stays correct while writes happen.
//!
//! Plan: the security set first (the record index's bitmap of readable records), then the
//! filter on each of those records, then the order. Columns the user may not read (column
//! security) count as null for the filter and the order, so a filter cannot reveal them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::ControlFlow;

use roaring::RoaringBitmap;

use crate::ids::{BusinessUnitId, Owner, RecordId, RelationshipId, TableId, TeamId, UserId};
use crate::model::Value;
use crate::organization::Organization;

/// A filter on column values.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Compare a column with a value.
    Compare {
        /// The column.
        column: String,
        /// The comparison.
        op: CompareOp,
        /// The value (`Null` with `Eq`/`Ne` tests for null).
        value: Value,
    },
    /// The column's value is one of these.
    In {
        /// The column.
        column: String,
        /// The values.
        values: Vec<Value>,
    },
    /// The column's text contains this text.
    Contains {
        /// The column.
        column: String,
        /// The text.
        text: String,
    },
    /// The column's text starts with this text.
    StartsWith {
        /// The column.
        column: String,
        /// The text.
        text: String,
    },
    /// The column's text ends with this text (OData `endswith`). Like `Contains` and
    /// `StartsWith`, it is tested on each record, never answered by a column index.
    EndsWith {
        /// The column.
        column: String,
        /// The text.
        text: String,
    },
    /// A record's own fact refers to one of these (`None`: to nothing, as a null lookup).
    /// The Web API's primary id, `_ownerid_value`, `_owningbusinessunit_value` and lookup
    /// columns (`_parentcustomerid_value`) become this: they are the record's security facts,
    /// not column values.
    Refers {
        /// Which fact.
        fact: Fact,
        /// What it may refer to.
        targets: Vec<Option<Referent>>,
    },
    /// Every filter holds.
    And(Vec<Filter>),
    /// Some filter holds.
    Or(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
}

/// A record's fact a [`Filter::Refers`] tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The record itself.
    Record,
    /// Its owner (a user or a team; none for organisation-owned tables).
    Owner,
    /// Its owning business unit.
    OwningUnit,
    /// The parent set through a relationship's lookup.
    Lookup(RelationshipId),
    /// The user who created it (`createdby`; none: the system, D165).
    CreatedBy,
    /// The user who last changed it (`modifiedby`; none: the system, D165).
    ModifiedBy,
}

/// What a record's fact refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Referent {
    /// A record.
    Record(RecordId),
    /// A user.
    User(UserId),
    /// A team.
    Team(TeamId),
    /// A business unit.
    Unit(BusinessUnitId),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
}

/// One column of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// The column.
    pub column: String,
    /// Descending instead of ascending.
    pub descending: bool,
}

/// Where the previous page ended: the order values of its last record and the record's id.
#[derive(Clone, Debug, PartialEq)]
pub struct After {
    /// The order columns' values of the last record returned.
    pub values: Vec<Value>,
    /// Its id.
    pub record: u32,
}

/// A list request.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only records matching this filter.
    pub filter: Option<Filter>,
    /// Order (the record id breaks ties and orders unordered lists).
    pub order: Vec<Order>,
    /// Continue after this position.
    pub after: Option<After>,
    /// Page size (at least 1).
    pub limit: usize,
    /// Count every matching record too.
    pub count: bool,
    /// How to answer (the default chooses by estimated cost).
    pub plan: Plan,
    /// The most filter comparisons the list may evaluate (records tested × comparisons in the
    /// filter that the column indexes do not answer); past it the list fails with
    /// [`ListError::TooExpensive`]. `None`: no bound (trusted callers: a local file, benchmarks).
    pub work_budget: Option<u64>,
    /// Impersonation (D7): the impersonator, whose view also bounds the list — every record must be readable by both users, and a secured
    /// column is null unless both may read it.
    pub impersonator: Option<UserId>,
}

/// The two ways to answer an ordered list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Plan {
    /// Choose by estimated cost: the readable set's size against the page and the table.
    #[default]
    Auto,
    /// The readable set first: filter every readable record, then order.
    SecurityFirst,
    /// Scan the order column's sorted index and keep the readable, matching records until the
    /// page is full (one declared, unsecured order column only; otherwise security first).
    AttributeOrder,
}

/// One page.
#[derive(Clone, Debug, PartialEq)]
pub struct ListPage {
    /// The records, in order.
    pub records: Vec<RecordId>,
    /// Where this page ended, when more records follow.
    pub next: Option<After>,
    /// Every matching record, when asked.
    pub total: Option<usize>,
}

/// A list request that cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// A column the table does not have.
    #[error("table `{table}` has no column `{column}`")]
    UnknownColumn { table: String, column: String },
    /// A value of the wrong kind for the comparison.
    #[error("column `{column}`: {problem}")]
    BadValue { column: String, problem: String },
    /// A cursor that does not fit this order.
    #[error("the cursor does not belong to this query")]
    BadCursor,
    /// The filter would need more work than the list's budget.
    #[error(
        "the filter needs more than {budget} comparisons over the readable records: narrow it with an equality on an indexed column, or fewer terms"
    )]
    TooExpensive { budget: u64 },
}

/// Ordering of values: null first, then booleans, numbers, text.
#[must_use]
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(x), Value::Float(y)) => int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => int_float(*y, *x).reverse(),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        _ => rank_of(a).cmp(&rank_of(b)),
    }
}

/// An integer against a float, exactly: integers beyond 2^53 are not rounded (`as f64` would
/// make 2^53 + 1 equal 2^53). NaN orders as `total_cmp` does: above everything when positive,
/// below when negative.
fn int_float(x: i64, y: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if y.is_nan() {
        return if y.is_sign_negative() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    if y >= TWO_63 {
        return Ordering::Less;
    }
    if y < -TWO_63 {
        return Ordering::Greater;
    }
    if y == 0.0 && y.is_sign_negative() {
        // -0.0 orders below 0.0 (`total_cmp`), and 0 equals 0.0: so 0 is above -0.0, or the
        // order would not be transitive (0.0 = 0 = -0.0 < 0.0) and no index could keep it.
        return if x >= 0 {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let whole = y.trunc();
    // Exact: |whole| < 2^63.
    match x.cmp(&(whole as i64)) {
        Ordering::Equal if y > whole => Ordering::Less,
        Ordering::Equal if y < whole => Ordering::Greater,
        other => other,
    }
}

impl Filter {
    /// The comparisons testing one record may make (each value of an `In`, each target of a
    /// `Refers`): what the list's work budget counts.
    #[must_use]
    pub fn terms(&self) -> usize {
        match self {
            Filter::And(list) | Filter::Or(list) => list.iter().map(Filter::terms).sum(),
            Filter::Not(f) => f.terms(),
            Filter::In { values, .. } => values.len().max(1),
            Filter::Refers { targets, .. } => targets.len().max(1),
            _ => 1,
        }
    }

    fn columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::Compare { column, .. }
            | Filter::In { column, .. }
            | Filter::Contains { column, .. }
            | Filter::StartsWith { column, .. }
            | Filter::EndsWith { column, .. } => out.push(column),
            Filter::And(list) | Filter::Or(list) => list.iter().for_each(|f| f.columns(out)),
            Filter::Not(f) => f.columns(out),
            Filter::Refers { .. } => {}
        }
    }

    fn check_values(&self) -> Result<(), ListError> {
        match self {
            Filter::Compare { column, op, value } => {
                let ordered = !matches!(op, CompareOp::Eq | CompareOp::Ne);
                if ordered && matches!(value, Value::Null | Value::Bool(_)) {
                    return Err(ListError::BadValue {
                        column: column.clone(),
                        problem: format!("`{op:?}` needs a number or a text, not `{value}`")
                            .to_lowercase(),
                    });
                }
                Ok(())
            }
            Filter::In { column, values } if values.is_empty() => Err(ListError::BadValue {
                column: column.clone(),
                problem: "`in` needs at least one value".to_owned(),
            }),
            Filter::And(list) | Filter::Or(list) => list.iter().try_for_each(Filter::check_values),
            Filter::Not(f) => f.check_values(),
            _ => Ok(()),
        }
    }

    fn matches<'v>(
        &self,
        value_of: &impl Fn(&str) -> Cow<'v, Value>,
        fact_of: &impl Fn(Fact) -> Option<Referent>,
    ) -> bool {
        match self {
            Filter::Refers { fact, targets } => targets.contains(&fact_of(*fact)),
            Filter::Compare { column, op, value } => {
                let v = &*value_of(column);
                match op {
                    CompareOp::Eq => compare_values(v, value) == Ordering::Equal,
                    CompareOp::Ne => compare_values(v, value) != Ordering::Equal,
                    // Ordered comparisons never hold for null or for another kind of value.
                    _ if *v == Value::Null || rank_of(v) != rank_of(value) => false,
                    CompareOp::Lt => compare_values(v, value) == Ordering::Less,
                    CompareOp::Le => compare_values(v, value) != Ordering::Greater,
                    CompareOp::Gt => compare_values(v, value) == Ordering::Greater,
                    CompareOp::Ge => compare_values(v, value) != Ordering::Less,
                }
            }
            Filter::In { column, values } => {
                let v = &*value_of(column);
                values
                    .iter()
                    .any(|x| compare_values(v, x) == Ordering::Equal)
            }
            Filter::Contains { column, text } => {
                matches!(&*value_of(column), Value::Text(t) if t.contains(text.as_str()))
            }
            Filter::StartsWith { column, text } => {
                matches!(&*value_of(column), Value::Text(t) if t.starts_with(text.as_str()))
            }
            Filter::EndsWith { column, text } => {
                matches!(&*value_of(column), Value::Text(t) if t.ends_with(text.as_str()))
            }
            Filter::And(list) => list.iter().all(|f| f.matches(value_of, fact_of)),
            Filter::Or(list) => list.iter().any(|f| f.matches(value_of, fact_of)),
            Filter::Not(f) => !f.matches(value_of, fact_of),
        }
    }
}

/// A value's kind in list order: null, booleans, numbers, text.
pub(crate) fn rank_of(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Text(_) => 3,
    }
}

/// What a secured column reads as without read access to it.
static NULL: Value = Value::Null;

/// The column lists may filter and order by that holds a record's state (`0` active, `1`
/// inactive), as Dataverse's `statecode`, unless the table has a column of that name.
pub const STATE_COLUMN: &str = "statecode";
static ACTIVE: Value = Value::Int(0);
static INACTIVE: Value = Value::Int(1);

/// The columns lists may filter and order by that hold when a record was created and last
/// changed (D165): RFC 3339 text to the second (`2026-12-07T22:30:00Z`, ordered as text is
/// ordered in time), null when unknown. Every table has them; no record holds a value of its own
/// under these names.
pub const CREATED_ON: &str = "createdon";
/// See [`CREATED_ON`].
pub const MODIFIED_ON: &str = "modifiedon";

/// The columns the system keeps for every record, which no write may set (D165).
pub const STAMP_COLUMNS: [&str; 4] = [CREATED_ON, MODIFIED_ON, "createdby", "modifiedby"];

/// A stamp's time as a list value: RFC 3339 text, null when unknown (0).
#[must_use]
pub fn stamp_value(seconds: u32) -> Value {
    crate::model::Stamps::text(seconds).map_or(Value::Null, Value::Text)
}

/// An order value as a sort holds it: a column's value borrowed from its record, or a stamp's
/// seconds (D165) — no text made per record, and 16 bytes a key whichever the column.
#[derive(Clone, Copy, Debug)]
enum SortKey<'a> {
    Value(&'a Value),
    /// Seconds since the Unix epoch; 0 (unknown) is null.
    Seconds(u32),
}

impl<'a> SortKey<'a> {
    /// The value a list shows for it.
    fn value(self) -> Cow<'a, Value> {
        match self {
            SortKey::Value(v) => Cow::Borrowed(v),
            SortKey::Seconds(s) => Cow::Owned(stamp_value(s)),
        }
    }

    /// The key of a value a cursor carries for `column`: a stamp's text read back as seconds.
    fn of_value(value: &'a Value, column: &str) -> SortKey<'a> {
        if column == CREATED_ON || column == MODIFIED_ON {
            match value {
                Value::Null => return SortKey::Seconds(0),
                Value::Text(t) => {
                    if let Some(s) = stamp_seconds(t) {
                        return SortKey::Seconds(s);
                    }
                }
                _ => {}
            }
        }
        SortKey::Value(value)
    }

    /// Seconds compare as numbers, which orders them as their RFC 3339 text (4-digit years)
    /// and puts 0 (null) first, as [`compare_values`] puts null before text.
    fn cmp(self, other: SortKey<'_>) -> Ordering {
        match (self, other) {
            (SortKey::Seconds(a), SortKey::Seconds(b)) => a.cmp(&b),
            (SortKey::Value(a), SortKey::Value(b)) => compare_values(a, b),
            (a, b) => compare_values(&a.value(), &b.value()),
        }
    }
}

/// The seconds of a stamp's RFC 3339 text as [`stamp_value`] writes it.
fn stamp_seconds(text: &str) -> Option<u32> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let days = crate::date::Date::parse(date)?.days();
    let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    u32::try_from(days * 86_400 + h * 3_600 + m * 60 + s).ok()
}

/// Orders two rows (order keys, record id) by a list's order.
fn cmp_rows(order: &[Order], a: (&[SortKey<'_>], u32), b: (&[SortKey<'_>], u32)) -> Ordering {
    for (i, o) in order.iter().enumerate() {
        let c = a.0[i].cmp(b.0[i]);
        let c = if o.descending { c.reverse() } else { c };
        if c != Ordering::Equal {
            return c;
        }
    }
    a.1.cmp(&b.1)
}

impl Organization {
    /// What a record's fact refers to.
    fn fact_of(&self, record: RecordId, fact: Fact) -> Option<Referent> {
        let r = &self.records[record.index()];
        match fact {
            Fact::Record => Some(Referent::Record(record)),
            Fact::Owner => match r.owner {
                Owner::User(u) => Some(Referent::User(u)),
                Owner::Team(t) => Some(Referent::Team(t)),
                Owner::None => None,
            },
            Fact::OwningUnit => Some(Referent::Unit(r.business_unit)),
            Fact::Lookup(rel) => r.lookup(rel).map(Referent::Record),
            Fact::CreatedBy => r.stamps.creator().map(Referent::User),
            Fact::ModifiedBy => r.stamps.modifier().map(Referent::User),
        }
    }

    /// The records whose fact refers to one of `targets`, from the record index, where it
    /// keeps them (the record itself, owners and units; a null owner or a lookup is tested on
    /// each record).
    fn refers_bitmap(
        &self,
        table: TableId,
        fact: Fact,
        targets: &[Option<Referent>],
    ) -> Option<(RoaringBitmap, bool)> {
        if matches!(fact, Fact::Lookup(_) | Fact::CreatedBy | Fact::ModifiedBy) {
            return None;
        }
        let mut set = RoaringBitmap::new();
        for target in targets {
            match (fact, target) {
                (Fact::Record, Some(Referent::Record(r)))
                    if self
                        .records
                        .get(r.index())
                        .is_some_and(|x| x.table == table) =>
                {
                    set.insert(r.get());
                }
                (Fact::Owner | Fact::OwningUnit, Some(target)) => {
                    set |= self.index.fact_bitmap(table, *target)?;
                }
                (_, None) if fact == Fact::Owner => return None,
                _ => {}
            }
        }
        Some((set, true))
    }

    /// A column's value in a list page for its reader (and the impersonator whose view bounds
    /// it, D7): null where column security hides it from either, the state for
    /// [`STATE_COLUMN`]. The record is one the list returned to them.
    #[must_use]
    pub fn list_column_value(
        &self,
        user: UserId,
        impersonator: Option<UserId>,
        record: RecordId,
        column: &str,
    ) -> Cow<'_, Value> {
        let table = self.records[record.index()].table;
        self.list_value((user, impersonator), table, record, column)
    }

    /// A column's value in a list for `readers` (the value of [`Organization::list_key`]).
    fn list_value(
        &self,
        readers: (UserId, Option<UserId>),
        table: TableId,
        record: RecordId,
        column: &str,
    ) -> Cow<'_, Value> {
        self.list_key(readers, table, record, column).value()
    }

    /// A column's value in a list for `readers`, as a sort key: null where column security
    /// hides it, the state for [`STATE_COLUMN`], the stamps' seconds for [`CREATED_ON`] and
    /// [`MODIFIED_ON`].
    fn list_key(
        &self,
        readers: (UserId, Option<UserId>),
        table: TableId,
        record: RecordId,
        column: &str,
    ) -> SortKey<'_> {
        if self.tables[table.index()].is_secured(column)
            && std::iter::once(readers.0)
                .chain(readers.1)
                .any(|u| !self.column_access(u, table, column, Some(record)).read)
        {
            return SortKey::Value(&NULL);
        }
        let rec = &self.records[record.index()];
        if column == STATE_COLUMN && !self.has_own_column(table, column) {
            return SortKey::Value(match rec.state {
                crate::model::RecordState::Active => &ACTIVE,
                crate::model::RecordState::Inactive => &INACTIVE,
            });
        }
        match column {
            CREATED_ON => SortKey::Seconds(rec.stamps.created_at),
            MODIFIED_ON => SortKey::Seconds(rec.stamps.modified_at),
            _ => SortKey::Value(rec.field(column)),
        }
    }

    /// The records a filter's equality tests select, taken from the column indexes without
    /// reading a record, when some part of the filter can be answered there: the records and
    /// whether they match the whole filter (otherwise each must still be tested).
    fn pushdown(&self, table: TableId, filter: &Filter) -> Option<(RoaringBitmap, bool)> {
        let equal = |column: &str, values: &[Value]| {
            if self.tables[table.index()].is_secured(column) {
                return None;
            }
            let index = self.column_index(table, column)?;
            let value_of = |id: u32| self.records[id as usize].field(column);
            let mut set = RoaringBitmap::new();
            for v in values {
                set |= index.equal(v, &value_of).as_ref();
            }
            Some((set, true))
        };
        match filter {
            Filter::Compare {
                column,
                op: CompareOp::Eq,
                value,
            } => equal(column, std::slice::from_ref(value)),
            Filter::In { column, values } => equal(column, values),
            Filter::Refers { fact, targets } => self.refers_bitmap(table, *fact, targets),
            Filter::And(list) => {
                let mut out: Option<RoaringBitmap> = None;
                let mut exact = true;
                for f in list {
                    match self.pushdown(table, f) {
                        Some((b, e)) => {
                            exact &= e;
                            out = Some(match out {
                                Some(o) => o & b,
                                None => b,
                            });
                        }
                        None => exact = false,
                    }
                }
                out.map(|b| (b, exact))
            }
            _ => None,
        }
    }

    /// The attribute-ordered plan, when it applies and is chosen: walk the order column's
    /// index from the cursor, keeping the records of `set` that match the rest of the filter.
    fn attribute_ordered(
        &self,
        table: TableId,
        query: &ListQuery,
        set: &RoaringBitmap,
        residual: bool,
        matches: &impl Fn(u32) -> bool,
        limit: usize,
    ) -> Option<ListPage> {
        let [order] = query.order.as_slice() else {
            return None;
        };
        if query.plan == Plan::SecurityFirst
            || self.tables[table.index()].is_secured(&order.column)
            || (query.count && residual)
        {
            return None;
        }
        let index = self.column_index(table, &order.column)?;
        if query.plan == Plan::Auto {
            // Walking the order costs about limit × table / set steps (more when a filter
            // still has to be tested); the set first costs one record read per record of the
            // set, about six walk steps (measured at 10M records: ~250 ns against ~40 ns).
            let live = self.table_records[table.index()].len() as u128;
            let set_len = u128::from(set.len());
            let factor = if residual { 8 } else { 1 };
            if (limit as u128) * live * factor >= 6 * set_len * set_len {
                return None;
            }
        }
        let value_of = |id: u32| self.records[id as usize].field(&order.column);
        let mut records = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        let after = query.after.as_ref().map(|a| (&a.values[0], a.record));
        index.walk(order.descending, after, &value_of, |id| {
            if !set.contains(id) || !matches(id) {
                return ControlFlow::Continue(());
            }
            if records.len() == limit {
                more = true;
                return ControlFlow::Break(());
            }
            records.push(RecordId::from_index(id as usize));
            ControlFlow::Continue(())
        });
        let next = if more {
            records.last().map(|r| After {
                values: vec![value_of(r.get()).clone()],
                record: r.get(),
            })
        } else {
            None
        };
        Some(ListPage {
            records,
            next,
            total: query.count.then(|| set.len() as usize),
        })
    }

    /// Whether a list may name this column: declared, set on one of the table's records, or
    /// [`STATE_COLUMN`].
    #[must_use]
    pub fn has_column(&self, table: TableId, column: &str) -> bool {
        column == STATE_COLUMN
            || column == CREATED_ON
            || column == MODIFIED_ON
            || self.has_own_column(table, column)
    }

    /// Every column name a table's records have held (declared or not), sorted.
    pub fn columns_seen(&self, table: TableId) -> impl Iterator<Item = &str> {
        self.seen_columns
            .get(table.index())
            .into_iter()
            .flat_map(|set| set.iter().map(String::as_str))
    }

    /// Whether a table has this column: declared, or set on one of its records.
    fn has_own_column(&self, table: TableId, column: &str) -> bool {
        self.tables[table.index()]
            .columns
            .iter()
            .any(|c| c.name == column)
            || self
                .seen_columns
                .get(table.index())
                .is_some_and(|s| s.contains(column))
    }

    /// Whether a filter and an order fit `table`: every column known, every value of the right
    /// kind for its comparison (what [`Organization::list`] refuses first).
    ///
    /// # Errors
    ///
    /// [`ListError::UnknownColumn`], [`ListError::BadValue`].
    pub fn check_list(
        &self,
        table: TableId,
        filter: Option<&Filter>,
        order: &[Order],
    ) -> Result<(), ListError> {
        let mut columns = Vec::new();
        if let Some(f) = filter {
            f.columns(&mut columns);
            f.check_values()?;
        }
        columns.extend(order.iter().map(|o| o.column.as_str()));
        for c in columns {
            if !self.has_column(table, c) {
                return Err(ListError::UnknownColumn {
                    table: self.tables[table.index()].name.clone(),
                    column: c.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Whether one record matches `filter` as `readers` (a user, and an impersonator) see it:
    /// an unreadable secured column is null, as in [`Organization::list`]. For the few related
    /// records of one record (the Web API's `$filter` inside a collection-valued `$expand`),
    /// where a list of the whole table would test every readable record; the caller checks
    /// the filter first ([`Organization::check_list`]) and bounds the records it tests.
    #[must_use]
    pub fn record_matches(
        &self,
        readers: (UserId, Option<UserId>),
        record: RecordId,
        filter: &Filter,
    ) -> bool {
        let table = self.records[record.index()].table;
        filter.matches(
            &|c: &str| self.list_value(readers, table, record, c),
            &|fact| self.fact_of(record, fact),
        )
    }

    /// Sorts records of one table by `order` as `readers` see their columns (an unreadable
    /// secured column is null; the record id breaks ties), as [`Organization::list`] orders a
    /// page.
    pub fn sort_as_seen(
        &self,
        readers: (UserId, Option<UserId>),
        records: &mut [RecordId],
        order: &[Order],
    ) {
        let mut rows: Vec<(Vec<SortKey<'_>>, RecordId)> = records
            .iter()
            .map(|&r| {
                let table = self.records[r.index()].table;
                let values = order
                    .iter()
                    .map(|o| self.list_key(readers, table, r, &o.column))
                    .collect();
                (values, r)
            })
            .collect();
        rows.sort_by(|a, b| cmp_rows(order, (&a.0, a.1.get()), (&b.0, b.1.get())));
        for (slot, (_, r)) in records.iter_mut().zip(rows) {
            *slot = r;
        }
    }

    /// A page of the records of `table` the user can read, filtered, ordered and counted.
    pub fn list(
        &self,
        user: UserId,
        table: TableId,
        query: &ListQuery,
    ) -> Result<ListPage, ListError> {
        self.check_list(table, query.filter.as_ref(), &query.order)?;
        if query
            .after
            .as_ref()
            .is_some_and(|a| a.values.len() != query.order.len())
        {
            return Err(ListError::BadCursor);
        }
        // The readable records, narrowed by what the column indexes answer of the filter; what
        // they cannot answer (the residual filter) is tested record by record.
        let readable = self.readable(user, table);
        let pushed = query.filter.as_ref().and_then(|f| self.pushdown(table, f));
        let residual = match (&query.filter, &pushed) {
            (Some(f), Some((_, exact))) => (!exact).then_some(f),
            (filter, _) => filter.as_ref(),
        };
        // Column security: an unreadable secured column is null for this user.
        let readers = (user, query.impersonator);
        let value =
            |record: RecordId, column: &str| self.list_value(readers, table, record, column);
        // The work budget: each record tested costs the residual filter's comparisons; past the
        // budget no record matches and the list fails.
        let cost = residual.map_or(0, |f| f.terms() as u64);
        let budget = query.work_budget.unwrap_or(u64::MAX);
        let spent = std::cell::Cell::new(0u64);
        let exhausted = || spent.get() > budget;
        let matches = |id: u32| {
            let Some(f) = residual else {
                return true;
            };
            spent.set(spent.get().saturating_add(cost));
            if exhausted() {
                return false;
            }
            let record = RecordId::from_index(id as usize);
            f.matches(&|c: &str| value(record, c), &|fact| {
                self.fact_of(record, fact)
            })
        };
        let too_expensive = || ListError::TooExpensive { budget };
        let limit = query.limit.max(1);
        // Where a page in record-id order starts.
        let start = query
            .after
            .as_ref()
            .map_or(0, |a| a.record.saturating_add(1));
        if query.order.is_empty()
            && !query.count
            && pushed.is_none()
            && query.impersonator.is_none()
        {
            // A page in record-id order: merge the readable bitmaps from the cursor and stop
            // after the page, without building their union.
            let mut records = Vec::with_capacity(limit.min(1024));
            let mut next = None;
            readable.walk(start, |id| {
                if !matches(id) {
                    if exhausted() {
                        return ControlFlow::Break(());
                    }
                    return ControlFlow::Continue(());
                }
                if records.len() == limit {
                    next = records.last().map(|r: &RecordId| After {
                        values: Vec::new(),
                        record: r.get(),
                    });
                    return ControlFlow::Break(());
                }
                records.push(RecordId::from_index(id as usize));
                ControlFlow::Continue(())
            });
            if exhausted() {
                return Err(too_expensive());
            }
            return Ok(ListPage {
                records,
                next,
                total: None,
            });
        }
        // The readable records, narrowed by what the column indexes answer of the filter; what
        // they cannot answer (the residual filter) is tested record by record.
        let mut set = match pushed {
            Some((bits, _)) => readable.to_bitmap() & bits,
            None => readable.to_bitmap(),
        };
        if let Some(impersonator) = query.impersonator {
            set &= self.readable(impersonator, table).to_bitmap();
        }
        if query.order.is_empty() {
            // Record-id order: walk the set from the cursor and stop after the page (and, for a
            // filtered count, go on counting without keeping the records).
            let mut records = Vec::with_capacity(limit.min(1024));
            let mut next = None;
            let mut matched_before = 0usize;
            let mut matched = 0usize;
            if query.count && residual.is_some() {
                matched_before = set.range(..start).filter(|id| matches(*id)).count();
            }
            for id in set.range(start..) {
                if !matches(id) {
                    if exhausted() {
                        break;
                    }
                    continue;
                }
                matched += 1;
                if records.len() < limit {
                    records.push(RecordId::from_index(id as usize));
                } else if next.is_none() {
                    next = records.last().map(|r: &RecordId| After {
                        values: Vec::new(),
                        record: r.get(),
                    });
                    if !query.count || residual.is_none() {
                        break;
                    }
                }
            }
            if exhausted() {
                return Err(too_expensive());
            }
            let total = query.count.then(|| {
                if residual.is_some() {
                    matched_before + matched
                } else {
                    set.len() as usize
                }
            });
            return Ok(ListPage {
                records,
                next,
                total,
            });
        }
        if let Some(page) =
            self.attribute_ordered(table, query, &set, residual.is_some(), &matches, limit)
        {
            if exhausted() {
                return Err(too_expensive());
            }
            return Ok(page);
        }
        // The set first: the matching records' order values (borrowed, `k` per record), then
        // only the page is selected and sorted.
        let k = query.order.len();
        let mut ids: Vec<u32> = Vec::new();
        let mut keys: Vec<SortKey<'_>> = Vec::new();
        for id in &set {
            if matches(id) {
                let record = RecordId::from_index(id as usize);
                keys.extend(
                    query
                        .order
                        .iter()
                        .map(|o| self.list_key(readers, table, record, &o.column)),
                );
                ids.push(id);
            } else if exhausted() {
                return Err(too_expensive());
            }
        }
        let total = query.count.then_some(ids.len());
        let row = |i: usize| (&keys[i * k..(i + 1) * k], ids[i]);
        let cmp = |a: &usize, b: &usize| cmp_rows(&query.order, row(*a), row(*b));
        let mut rows: Vec<usize> = (0..ids.len()).collect();
        if let Some(after) = &query.after {
            let pivot: Vec<SortKey<'_>> = after
                .values
                .iter()
                .zip(&query.order)
                .map(|(v, o)| SortKey::of_value(v, &o.column))
                .collect();
            rows.retain(|i| {
                cmp_rows(&query.order, row(*i), (&pivot, after.record)) == Ordering::Greater
            });
        }
        let more = rows.len() > limit;
        if more {
            rows.select_nth_unstable_by(limit, cmp);
            rows.truncate(limit);
        }
        rows.sort_by(cmp);
        let next = if more {
            rows.last().map(|i| After {
                values: row(*i).0.iter().map(|k| k.value().into_owned()).collect(),
                record: ids[*i],
            })
        } else {
            None
        };
        Ok(ListPage {
            records: rows
                .iter()
                .map(|i| RecordId::from_index(ids[*i] as usize))
                .collect(),
            next,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_filters_match_the_start_the_end_or_anywhere() {
        let name = Value::Text("Contoso Ltd".into());
        let value_of = |column: &str| Cow::Borrowed(if column == "name" { &name } else { &NULL });
        let no_facts = |_: Fact| None;
        let text = |f: fn(String, String) -> Filter, t: &str| f("name".into(), t.into());
        let ends = |column, text| Filter::EndsWith { column, text };
        let starts = |column, text| Filter::StartsWith { column, text };
        let contains = |column, text| Filter::Contains { column, text };
        assert!(text(ends, "Ltd").matches(&value_of, &no_facts));
        assert!(text(ends, "").matches(&value_of, &no_facts));
        assert!(!text(ends, "Contoso").matches(&value_of, &no_facts));
        assert!(text(starts, "Contoso").matches(&value_of, &no_facts));
        assert!(!text(starts, "Ltd").matches(&value_of, &no_facts));
        assert!(text(contains, "oso L").matches(&value_of, &no_facts));
        // A null (or hidden) column never ends with anything, so `not endswith` holds for it.
        let on_other = Filter::EndsWith {
            column: "other".into(),
            text: String::new(),
        };
        assert!(!on_other.matches(&value_of, &no_facts));
        assert!(Filter::Not(Box::new(on_other.clone())).matches(&value_of, &no_facts));
        let mut columns = Vec::new();
        on_other.columns(&mut columns);
        assert_eq!(columns, ["other"]);
        assert_eq!(on_other.terms(), 1);
        // An `In` costs a comparison per value, a `Refers` one per target: the work budget
        // counts what a record's test may do.
        let many = Filter::In {
            column: "name".into(),
            values: (0..300).map(Value::Int).collect(),
        };
        assert_eq!(Filter::Not(Box::new(many)).terms(), 300);
        let refers = Filter::Refers {
            fact: Fact::Record,
            targets: vec![None; 7],
        };
        assert_eq!(refers.terms(), 7);
    }

    /// The order is total and transitive across integers and floats, signed zeros and NaNs:
    /// every triple sorts the same whichever way it is compared.
    #[test]
    fn numbers_order_transitively() {
        let values = [
            Value::Int(0),
            Value::Int(-1),
            Value::Int(1),
            Value::Float(-0.0),
            Value::Float(0.0),
            Value::Float(-0.5),
            Value::Float(0.5),
            Value::Float(f64::NAN),
            Value::Float(-f64::NAN),
            Value::Float(f64::INFINITY),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(
                    compare_values(a, b),
                    compare_values(b, a).reverse(),
                    "{a:?} {b:?}"
                );
                for c in &values {
                    if compare_values(a, b) != Ordering::Greater
                        && compare_values(b, c) != Ordering::Greater
                    {
                        assert_ne!(compare_values(a, c), Ordering::Greater, "{a:?} {b:?} {c:?}");
                    }
                }
            }
        }
        assert_eq!(
            compare_values(&Value::Int(0), &Value::Float(-0.0)),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Value::Int(0), &Value::Float(0.0)),
            Ordering::Equal
        );
    }

    #[test]
    fn integers_beyond_2_53_compare_exactly_with_floats() {
        let big = 9_007_199_254_740_993_i64; // 2^53 + 1
        let f = 9_007_199_254_740_992.0_f64; // 2^53
        assert_eq!(
            compare_values(&Value::Int(big), &Value::Float(f)),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Value::Float(f), &Value::Int(big)),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Int(big - 1), &Value::Float(f)),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(&Value::Int(2), &Value::Float(2.5)),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Int(-3), &Value::Float(-2.5)),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Int(-2), &Value::Float(-2.5)),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Value::Int(i64::MAX), &Value::Float(1e19)),
            Ordering::Less
        );
        assert_eq!(
            compare_values(&Value::Int(i64::MIN), &Value::Float(-1e19)),
            Ordering::Greater
        );
        assert_eq!(
            compare_values(&Value::Int(0), &Value::Float(f64::NAN)),
            Ordering::Less
        );
    }

    /// A stamp's seconds and its text order alike, and the text reads back as the seconds
    /// (D165: a cursor carries the text).
    #[test]
    fn stamps_order_as_their_text_and_read_back() {
        let samples = [
            0u32,
            1,
            59,
            86_399,
            86_400,
            951_782_400,
            1_800_000_000,
            u32::MAX,
        ];
        for a in samples {
            let text = stamp_value(a);
            match &text {
                Value::Text(t) => assert_eq!(stamp_seconds(t), Some(a)),
                _ => assert_eq!(a, 0),
            }
            assert!(matches!(SortKey::of_value(&text, CREATED_ON), SortKey::Seconds(s) if s == a));
            for b in samples {
                assert_eq!(
                    SortKey::Seconds(a).cmp(SortKey::Seconds(b)),
                    compare_values(&stamp_value(a), &stamp_value(b)),
                    "{a} {b}"
                );
                assert_eq!(
                    SortKey::Seconds(a).cmp(SortKey::Value(&stamp_value(b))),
                    compare_values(&stamp_value(a), &stamp_value(b))
                );
            }
        }
        for bad in [
            "",
            "2026-12-07",
            "2026-12-07T22:30:00",
            "2026-12-07T22:30Z",
            "x",
        ] {
            assert_eq!(stamp_seconds(bad), None, "{bad}");
        }
        let other = Value::Text("soon".into());
        assert!(matches!(
            SortKey::of_value(&other, MODIFIED_ON),
            SortKey::Value(_)
        ));
    }
}
