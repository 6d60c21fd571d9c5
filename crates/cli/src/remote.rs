//! Requests to a Strata server.

use anyhow::{anyhow, bail};

pub(crate) fn encode(text: &str) -> String {
    strata_scenario::http_client::encode_component(text)
}

/// One request to a server; a non-2xx answer is an error carrying the server's message.
pub(crate) fn remote(
    server: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let client =
        strata_scenario::http_client::HttpClient::new(server, std::time::Duration::from_secs(60))
            .map_err(|e| anyhow!(e))?;
    let auth = format!("Bearer {key}");
    let bytes = body.map(|b| b.to_string().into_bytes());
    let response = client
        .request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            bytes.as_deref(),
        )
        .map_err(|e| anyhow!(e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&response.status) {
        bail!(
            "HTTP {}: {}",
            response.status,
            value["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(value)
}
