//! What the CLI's process tests share.
#![allow(dead_code, reason = "each test binary uses part of what is shared")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The repository's root (scenario files, seeds).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `strata` with `args` (the audit key file named by the environment left out, `key_file`
/// given when there is one): exit code, stdout, stderr.
pub fn strata_with(key_file: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command.args(args).env_remove("STRATA_AUDIT_KEY_FILE");
    if let Some(file) = key_file {
        command.arg("--audit-key-file").arg(file);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run strata: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `strata` with `args` and no audit key file: exit code, stdout, stderr.
pub fn strata(args: &[&str]) -> (i32, String, String) {
    strata_with(None, args)
}

/// Spawns `strata serve` (or `demo`) as set up in `command`, with warnings-only logs, and waits
/// until it prints the address it serves on; returns the child and its URL (`http://` or
/// `https://`). The child's stdout
/// keeps being read, so that the server never blocks on a full pipe.
/// A loopback port free now (the system's pick), for a process to listen on.
#[allow(
    dead_code,
    reason = "not every test binary starts a process on a chosen port"
)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

/// `strata org create --db DB --org ORG --scenario FILE` (with the audit key file when given),
/// which must succeed; returns its stdout.
pub fn create_org(key_file: Option<&Path>, db: &str, org: &str, scenario: &Path) -> String {
    let scenario = scenario.to_string_lossy();
    let (code, out, err) = strata_with(
        key_file,
        &[
            "org",
            "create",
            "--db",
            db,
            "--org",
            org,
            "--scenario",
            &scenario,
        ],
    );
    assert_eq!(code, 0, "strata org create: {out}{err}");
    out
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when this is root (initdb refuses to run as root).
pub fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Gives `path` to the `postgres` user (when this is root).
pub fn chown_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown postgres {}", path.display());
    }
}

/// The PostgreSQL binaries: `STRATA_TEST_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn postgres_bin() -> Option<PathBuf> {
    std::env::var_os("STRATA_TEST_PG_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|p| p.join("initdb").exists() && p.join("psql").exists())
                .collect();
            found.sort();
            found.pop()
        })
}
