//! List cursors: the last record's order values and id, with a keyed MAC (HMAC-SHA-256) over
//! them and the query that made them (organisation, table, readers, filter, order), as
//! hex text. A cursor cannot be forged, edited or replayed on another query:
//! each is refused with `bad_cursor`. The key is derived from the store's audit key, so every
//! node of one deployment accepts the others' cursors.

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The key that signs cursors.
pub struct Cursors {
    key: [u8; 32],
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursors(..)")
    }
}

/// HMAC-SHA-256 (RFC 2104) of a message.
pub(crate) fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner = Sha256::new();
    inner.update(key.map(|b| b ^ 0x36));
    inner.update([0x36u8; 32]);
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(key.map(|b| b ^ 0x5c));
    outer.update([0x5cu8; 32]);
    outer.update(inner);
    outer.finalize().into()
}

impl Cursors {
    /// Cursors signed with this key.
    #[must_use]
    pub fn new(key: [u8; 32]) -> Self {
        Cursors { key }
    }

    fn mac(&self, query: &str, body: &str) -> [u8; 32] {
        let mut message = Vec::with_capacity(query.len() + body.len() + 1);
        message.extend_from_slice(query.as_bytes());
        message.push(0);
        message.extend_from_slice(body.as_bytes());
        hmac(&self.key, &message)
    }

    /// The cursor after `after` for `query`.
    #[must_use]
    pub fn encode(&self, after: &strata_engine::After, query: &str) -> String {
        let values: Vec<serde_json::Value> = after.values.iter().map(strata_ops::to_json).collect();
        let body = serde_json::json!({ "v": values, "id": after.record }).to_string();
        self.sign(&body, query)
    }

    /// A cursor for `query` carrying any `body` (signed, so that [`Cursors::decode`] reads
    /// past the MAC): for tests and the fuzzer, which hold the decoder to bodies no server
    /// gives.
    #[must_use]
    pub fn sign(&self, body: &str, query: &str) -> String {
        let mac = self.mac(query, body);
        format!("{}.{}", hex::encode(&mac[..16]), hex::encode(body))
    }

    /// The position a cursor names, if this server gave it for `query`.
    ///
    /// # Errors
    ///
    /// `bad_cursor`: not hex, not signed for `query` with this key, or not a position.
    pub fn decode(&self, text: &str, query: &str) -> Result<strata_engine::After, ApiError> {
        let bad = || {
            ApiError::new(
                "bad_cursor",
                format!(
                    "cursor `{}` is not one this server gave for this query",
                    text.chars().take(64).collect::<String>()
                ),
            )
            .at("cursor")
        };
        let (mac, body) = text.split_once('.').ok_or_else(bad)?;
        let mac = hex::decode(mac).map_err(|_| bad())?;
        let body = String::from_utf8(hex::decode(body).map_err(|_| bad())?).map_err(|_| bad())?;
        let expected = self.mac(query, &body);
        // Compared in constant time.
        if mac.len() != 16
            || mac
                .iter()
                .zip(&expected[..16])
                .fold(0u8, |d, (a, b)| d | (a ^ b))
                != 0
        {
            return Err(bad());
        }
        let value: serde_json::Value = serde_json::from_str(&body).map_err(|_| bad())?;
        let record = value["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(bad)?;
        let values = value["v"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|v| strata_ops::from_json("cursor", v).map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        Ok(strata_engine::After { values, record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_bound_and_unforgeable() {
        let c = Cursors::new([7; 32]);
        let after = strata_engine::After {
            values: vec![strata_engine::Value::Text("Oslo".into())],
            record: 42,
        };
        let text = c.encode(&after, "q1");
        assert_eq!(c.decode(&text, "q1").ok(), Some(after));
        assert!(c.decode(&text, "q2").is_err());
        assert!(Cursors::new([8; 32]).decode(&text, "q1").is_err());
        let (mac, _) = text.split_once('.').unwrap_or_default();
        let forged = format!("{mac}.{}", hex::encode(r#"{"v":["Oslo"],"id":41}"#));
        assert!(c.decode(&forged, "q1").is_err());
        assert!(c.decode("zz", "q1").is_err());
    }

    /// fuzz/regressions/cursor/crash-8597…: a float read back one bit off (serde_json's fast
    /// float parsing), so a cursor named a position next to the one it was given for.
    #[test]
    fn float_positions_decode_to_themselves() {
        let c = Cursors::new([7; 32]);
        for x in [
            7.777_777_777_777_778e189,
            7.777_777_777_777_778e28,
            0.1,
            -2.5e-300,
            1e308,
        ] {
            let after = strata_engine::After {
                values: vec![strata_engine::Value::Float(x)],
                record: 1,
            };
            let text = c.encode(&after, "q");
            assert_eq!(c.decode(&text, "q").ok(), Some(after), "{x:e}");
        }
        let body = include_str!(
            "../../../fuzz/regressions/cursor/crash-859793238c4d3802af1a9da1578c6568af497489"
        );
        let first = c.decode(&c.sign(body, "q"), "q").ok();
        assert!(first.is_some());
        let again = first
            .as_ref()
            .and_then(|after| c.decode(&c.encode(after, "q"), "q").ok());
        assert_eq!(again, first);
    }
}
