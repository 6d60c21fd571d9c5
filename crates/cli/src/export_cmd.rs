//! `strata export`: the whole model of an organisation as a scenario file (docs/export.md), from
//! a database, a scenario file or a server (`GET …/export`, System Administrators only).

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use strata_scenario::export::{ExportOptions, export};

use crate::args::Source;
use crate::question_cmd::organisation;
use crate::remote::encode;

/// Writes the export to `output` (or standard output).
pub(crate) fn run(source: &Source, records: bool, output: Option<&Path>) -> anyhow::Result<()> {
    let text = match source.server() {
        Some(server) => {
            let client = strata_scenario::http_client::HttpClient::new(
                server.url,
                std::time::Duration::from_secs(600),
            )
            .map_err(|e| anyhow!(e))?;
            let path = format!(
                "/api/v1/orgs/{}/export{}",
                encode(server.org),
                if records { "?records=true" } else { "" }
            );
            let auth = format!("Bearer {}", server.key);
            let response = client
                .request("GET", &path, &[("Authorization", &auth)], None)
                .map_err(|e| anyhow!(e))?;
            let body = String::from_utf8_lossy(&response.body).into_owned();
            if response.status != 200 {
                let value: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                bail!(
                    "HTTP {}: {}",
                    response.status,
                    value["error"]["message"].as_str().unwrap_or(&body)
                );
            }
            body
        }
        None => {
            let org = organisation(source)?;
            let name = match (&source.org, &source.scenario) {
                (Some(name), _) => name.clone(),
                (None, Some(path)) => path
                    .file_stem()
                    .map_or_else(|| "export".to_owned(), |s| s.to_string_lossy().into_owned()),
                (None, None) => "export".to_owned(),
            };
            export(&org, &ExportOptions { name, records })
        }
    };
    match output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}
