//! What the CLI's process tests share.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Spawns `strata serve` (or `demo`) as set up in `command`, with warnings-only logs, and waits
/// until it prints the address it serves on; returns the child and its URL (`http://` or
/// `https://`). The child's stdout
/// keeps being read, so that the server never blocks on a full pipe.
pub fn spawn_serving(command: &mut Command) -> (Child, String) {
    let mut child = command
        .env_remove("STRATA_AUDIT_KEY_FILE")
        .env("STRATA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server stopped before serving")
            .unwrap();
        let at = line
            .find("http://127.0.0.1:")
            .or_else(|| line.find("https://127.0.0.1:"));
        if let Some(at) = at {
            let url: String = line[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            break url
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}
