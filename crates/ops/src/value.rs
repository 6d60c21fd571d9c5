//! Column values to and from JSON.

use strata_engine::Value;

use crate::OpError;

/// A JSON value as a column value: null, boolean, integer, number or string.
pub fn from_json(column: &str, value: &serde_json::Value) -> Result<Value, OpError> {
    Ok(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) => Value::Float(f),
            (None, None) => {
                return Err(OpError::invalid(
                    "bad_value",
                    format!("column `{column}`: number out of range"),
                ));
            }
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            return Err(OpError::invalid(
                "bad_value",
                format!("column `{column}`: a value is null, a boolean, a number or a string"),
            ));
        }
    })
}

/// A column value as JSON.
#[must_use]
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Text(s) => serde_json::Value::String(s.clone()),
    }
}

/// A decision as JSON: the answer, every grant path with its kind, and the readable text.
#[must_use]
pub fn decision_json(
    org: &strata_engine::Organization,
    d: &strata_engine::Decision,
) -> serde_json::Value {
    let paths: Vec<serde_json::Value> = d
        .paths
        .iter()
        .map(|p| serde_json::json!({ "kind": p.kind().name(), "text": org.describe_path(p) }))
        .collect();
    let denial = d.denial.as_ref().map(|x| match x {
        strata_engine::Denial::UserDisabled => "user_disabled",
        strata_engine::Denial::RecordDeleted => "record_deleted",
        strata_engine::Denial::NoPrivilege => "no_privilege",
        strata_engine::Denial::NoAccessPath { .. } => "no_access_path",
    });
    serde_json::json!({
        "allowed": d.allowed,
        "user": org.user(d.user).name,
        "privilege": d.privilege.name(),
        "table": org.table(d.table).name,
        "record": d.record.map(|r| org.record(r).key.clone()),
        "paths": paths,
        "denial": denial,
        "explanation": org.render_decision(d),
    })
}
