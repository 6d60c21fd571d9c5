//! Requests to a Strata server.

use anyhow::{anyhow, bail};
use strata_scenario::http_client::{HttpClient, HttpResponse};

pub(crate) fn encode(text: &str) -> String {
    strata_scenario::http_client::encode_component(text)
}

/// One request with the key as bearer and a JSON body, whatever the status.
fn send(
    server: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<HttpResponse> {
    let client =
        HttpClient::new(server, std::time::Duration::from_secs(60)).map_err(|e| anyhow!(e))?;
    let auth = format!("Bearer {key}");
    client
        .request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .map_err(|e| anyhow!(e))
}

/// One request to a server; a non-2xx answer is an error carrying the server's message.
pub(crate) fn remote(
    server: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let bytes = body.map(|b| b.to_string().into_bytes());
    let response = send(server, key, method, path, bytes.as_deref())?;
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

/// Posts a batch of operations (the file's bytes as they are) to an organisation's
/// `/operations{query}`; the answer's text, or an error with the whole answer unless it is 200.
pub(crate) fn post_operations(
    server: &str,
    key: &str,
    org: &str,
    query: &str,
    body: &[u8],
) -> anyhow::Result<String> {
    let path = format!("/api/v1/orgs/{}/operations{query}", encode(org));
    let response = send(server, key, "POST", &path, Some(body))?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if response.status != 200 {
        bail!("HTTP {}: {text}", response.status);
    }
    Ok(text)
}
