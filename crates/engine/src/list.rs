//! Lists: the readable records of a table, filtered on columns, ordered, counted and paged by a
//! cursor that stays correct while writes happen.
//!
//! Plan: the security set first (the record index's bitmap of readable records), then the
//! filter on each of those records, then the order. Columns the user may not read (column
//! security) count as null for the filter and the order, so a filter cannot reveal them.

use std::cmp::Ordering;

use crate::ids::{RecordId, TableId, UserId};
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
    /// Every filter holds.
    And(Vec<Filter>),
    /// Some filter holds.
    Or(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
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
}

/// Ordering of values: null first, then booleans, numbers, text.
#[must_use]
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::Text(_) => 3,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(x), Value::Float(y)) => (*x as f64).total_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.total_cmp(&(*y as f64)),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Filter {
    fn columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::Compare { column, .. }
            | Filter::In { column, .. }
            | Filter::Contains { column, .. }
            | Filter::StartsWith { column, .. } => out.push(column),
            Filter::And(list) | Filter::Or(list) => list.iter().for_each(|f| f.columns(out)),
            Filter::Not(f) => f.columns(out),
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

    fn matches(&self, value_of: &impl Fn(&str) -> Value) -> bool {
        match self {
            Filter::Compare { column, op, value } => {
                let v = value_of(column);
                match op {
                    CompareOp::Eq => compare_values(&v, value) == Ordering::Equal,
                    CompareOp::Ne => compare_values(&v, value) != Ordering::Equal,
                    // Ordered comparisons never hold for null or for another kind of value.
                    _ if v == Value::Null || rank_of(&v) != rank_of(value) => false,
                    CompareOp::Lt => compare_values(&v, value) == Ordering::Less,
                    CompareOp::Le => compare_values(&v, value) != Ordering::Greater,
                    CompareOp::Gt => compare_values(&v, value) == Ordering::Greater,
                    CompareOp::Ge => compare_values(&v, value) != Ordering::Less,
                }
            }
            Filter::In { column, values } => {
                let v = value_of(column);
                values
                    .iter()
                    .any(|x| compare_values(&v, x) == Ordering::Equal)
            }
            Filter::Contains { column, text } => {
                matches!(value_of(column), Value::Text(t) if t.contains(text.as_str()))
            }
            Filter::StartsWith { column, text } => {
                matches!(value_of(column), Value::Text(t) if t.starts_with(text.as_str()))
            }
            Filter::And(list) => list.iter().all(|f| f.matches(value_of)),
            Filter::Or(list) => list.iter().any(|f| f.matches(value_of)),
            Filter::Not(f) => !f.matches(value_of),
        }
    }
}

fn rank_of(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Text(_) => 3,
    }
}

impl Organization {
    /// The attribute-ordered plan, when it applies and is chosen: walk the order column's
    /// sorted index from the cursor, keeping readable records that match the filter.
    fn attribute_ordered(
        &self,
        table: TableId,
        query: &ListQuery,
        readable: &roaring::RoaringBitmap,
        value: &impl Fn(RecordId, &str) -> Value,
        limit: usize,
    ) -> Option<ListPage> {
        let [order] = query.order.as_slice() else {
            return None;
        };
        if query.plan == Plan::SecurityFirst
            || self.tables[table.index()].is_secured(&order.column)
            || (query.count && query.filter.is_some())
        {
            return None;
        }
        let by_value = self.sorted_column(table, &order.column)?;
        if query.plan == Plan::Auto {
            // Scanning costs about limit / selectivity steps (more with a filter); the readable
            // set first costs one step per readable record.
            let live = self.table_records[table.index()].len() as u128;
            let readable_len = u128::from(readable.len());
            let factor = if query.filter.is_some() { 8 } else { 1 };
            if (limit as u128) * live * factor >= readable_len * readable_len {
                return None;
            }
        }
        let start = query
            .after
            .as_ref()
            .map(|a| crate::index::SortKey(a.values[0].clone()));
        let groups: Box<dyn Iterator<Item = (&crate::index::SortKey, &roaring::RoaringBitmap)>> =
            match (order.descending, &start) {
                (false, None) => Box::new(by_value.iter()),
                (false, Some(k)) => Box::new(by_value.range(k.clone()..)),
                (true, None) => Box::new(by_value.iter().rev()),
                (true, Some(k)) => Box::new(by_value.range(..=k.clone()).rev()),
            };
        let mut records = Vec::with_capacity(limit.min(1024));
        let mut last: Option<(Value, u32)> = None;
        let mut more = false;
        'groups: for (key, ids) in groups {
            let from = match (&query.after, &start) {
                (Some(after), Some(k)) if k == key => after.record.saturating_add(1),
                _ => 0,
            };
            for id in ids.range(from..) {
                if !readable.contains(id) {
                    continue;
                }
                let record = RecordId::from_index(id as usize);
                if !query
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&|c: &str| value(record, c)))
                {
                    continue;
                }
                if records.len() == limit {
                    more = true;
                    break 'groups;
                }
                records.push(record);
                last = Some((key.0.clone(), id));
            }
        }
        let next = if more {
            last.map(|(v, record)| After {
                values: vec![v],
                record,
            })
        } else {
            None
        };
        let total = query.count.then(|| readable.len() as usize);
        Some(ListPage {
            records,
            next,
            total,
        })
    }

    /// Whether a table has this column: declared, or set on one of its records.
    #[must_use]
    pub fn has_column(&self, table: TableId, column: &str) -> bool {
        self.tables[table.index()]
            .columns
            .iter()
            .any(|c| c.name == column)
            || self
                .seen_columns
                .get(table.index())
                .is_some_and(|s| s.contains(column))
    }

    /// A page of the records of `table` the user can read, filtered, ordered and counted.
    pub fn list(
        &self,
        user: UserId,
        table: TableId,
        query: &ListQuery,
    ) -> Result<ListPage, ListError> {
        let mut columns = Vec::new();
        if let Some(f) = &query.filter {
            f.columns(&mut columns);
            f.check_values()?;
        }
        columns.extend(query.order.iter().map(|o| o.column.as_str()));
        for c in columns {
            if !self.has_column(table, c) {
                return Err(ListError::UnknownColumn {
                    table: self.tables[table.index()].name.clone(),
                    column: c.to_owned(),
                });
            }
        }
        if query
            .after
            .as_ref()
            .is_some_and(|a| a.values.len() != query.order.len())
        {
            return Err(ListError::BadCursor);
        }
        // Column security: an unreadable secured column is null for this user.
        let value = |record: RecordId, column: &str| -> Value {
            let rec = &self.records[record.index()];
            if self.tables[table.index()].is_secured(column)
                && !self.column_access(user, table, column, Some(record)).read
            {
                return Value::Null;
            }
            rec.field(column).clone()
        };
        let readable = self.readable_set(user, table);
        let limit = query.limit.max(1);
        if query.order.is_empty() {
            // Record-id order: walk the set from the cursor and stop after the page (and, for a
            // filtered count, go on counting without keeping the records).
            let start = query
                .after
                .as_ref()
                .map_or(0, |a| a.record.saturating_add(1));
            let mut records = Vec::with_capacity(limit.min(1024));
            let mut next = None;
            let mut matched_before = 0usize;
            let mut matched = 0usize;
            let matches = |id: u32| {
                let record = RecordId::from_index(id as usize);
                query
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&|c: &str| value(record, c)))
            };
            if query.count && query.filter.is_some() {
                for id in readable.range(..start) {
                    if matches(id) {
                        matched_before += 1;
                    }
                }
            }
            for id in readable.range(start..) {
                if !matches(id) {
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
                    if !query.count || query.filter.is_none() {
                        break;
                    }
                }
            }
            let total = query.count.then(|| {
                if query.filter.is_some() {
                    matched_before + matched
                } else {
                    readable.len() as usize
                }
            });
            return Ok(ListPage {
                records,
                next,
                total,
            });
        }
        if let Some(page) = self.attribute_ordered(table, query, &readable, &value, limit) {
            return Ok(page);
        }
        let mut rows: Vec<(Vec<Value>, u32)> = Vec::new();
        for id in &readable {
            let record = RecordId::from_index(id as usize);
            let keep = query
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(&|c: &str| value(record, c)));
            if keep {
                let key = query
                    .order
                    .iter()
                    .map(|o| value(record, &o.column))
                    .collect();
                rows.push((key, id));
            }
        }
        let total = query.count.then_some(rows.len());
        let cmp = |a: &(Vec<Value>, u32), b: &(Vec<Value>, u32)| {
            for (i, o) in query.order.iter().enumerate() {
                let c = compare_values(&a.0[i], &b.0[i]);
                let c = if o.descending { c.reverse() } else { c };
                if c != Ordering::Equal {
                    return c;
                }
            }
            a.1.cmp(&b.1)
        };
        if let Some(after) = &query.after {
            let pivot = (after.values.clone(), after.record);
            rows.retain(|r| cmp(r, &pivot) == Ordering::Greater);
        }
        let more = rows.len() > limit;
        if more {
            // Only the page needs ordering: select it, then sort it.
            rows.select_nth_unstable_by(limit, cmp);
            rows.truncate(limit);
        }
        rows.sort_by(cmp);
        let next = if more {
            rows.last().map(|(values, record)| After {
                values: values.clone(),
                record: *record,
            })
        } else {
            None
        };
        Ok(ListPage {
            records: rows
                .into_iter()
                .map(|(_, id)| RecordId::from_index(id as usize))
                .collect(),
            next,
            total,
        })
    }
}
