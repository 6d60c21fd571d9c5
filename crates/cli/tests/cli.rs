//! The `strata` binary as a user runs it: output, exit codes and load errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn strata(args: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("test")
        .args(args)
        .output()
        .unwrap_or_else(|e| unreachable_output(&e));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn unreachable_output(e: &std::io::Error) -> std::process::Output {
    std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(255 << 8),
        stdout: Vec::new(),
        stderr: format!("cannot run strata: {e}").into_bytes(),
    }
}

#[test]
fn the_examples_pass_with_exit_status_zero() {
    let (code, text) = strata(&[&repo().join("tests/scenarios/examples")]);
    assert_eq!(code, 0, "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "{text}");
}

#[test]
fn failed_steps_are_reported_one_line_each_with_status_one() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrong-expectations.yaml");
    let (code, text) = strata(&[&file]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 5 failed"), "{text}");
    assert!(
        text.contains("step 2 (line 20, check): expected allow, got deny"),
        "{text}"
    );
    assert!(text.contains("step 3 (line 22, check): expected allow with reason share, got allow through [ownership]"), "{text}");
    assert!(
        text.contains("step 4 (line 25, access): expected [read, write], got [read]"),
        "{text}"
    );
    assert!(
        text.contains("step 5 (line 27, list): expected [], got [a1]"),
        "{text}"
    );
    assert!(
        text.contains("step 6 (line 29, update): expected ok, got denied"),
        "{text}"
    );
    // The explanation of a failed decision is printed under it.
    assert!(
        text.contains("no role of the user") || text.contains("needs `"),
        "{text}"
    );
}

#[test]
fn every_bad_file_fails_to_load_with_its_line_and_problem() {
    let dir = repo().join("tests/bad-scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    assert!(
        files.len() >= 10,
        "bad-input fixtures are missing in {}",
        dir.display()
    );
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap_or_default();
        let header = source.lines().next().unwrap_or_default();
        let rest = header.strip_prefix("# expect line ").unwrap_or_default();
        let (line, message) = rest.split_once(": ").unwrap_or(("?", "?"));
        let (code, text) = strata(&[&file]);
        assert_eq!(code, 2, "{}: {text}", file.display());
        let expected = format!("{}:{line}: load error: ", file.display());
        assert!(
            text.contains(&expected),
            "{}: wanted `{expected}` in:\n{text}",
            file.display()
        );
        assert!(
            text.contains(message),
            "{}: wanted `{message}` in:\n{text}",
            file.display()
        );
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l == "0 passed, 1 failed"),
            "{text}"
        );
    }
}

#[test]
fn a_missing_path_is_a_load_error() {
    let (code, text) = strata(&[Path::new("/nonexistent/scenarios")]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no such file or folder"), "{text}");
}

#[test]
fn explain_prints_every_grant_path_or_what_is_missing() {
    let file = repo().join("tests/scenarios/examples/seed002-sales-representative.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["explain", "--scenario"])
        .arg(&file)
        .args([
            "--user",
            "rep_east",
            "--privilege",
            "write",
            "--record",
            "acc_peer",
        ])
        .output();
    let out = out.map(|o| {
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    });
    let (code, text) = out.unwrap_or((None, String::new()));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("deny: user `rep_east` lacks `write` on record `acc_peer`"),
        "{text}"
    );
    assert!(text.contains("gives `write` at `user` from unit `Sales US East`, but unit `Sales US East` needs `business_unit`"), "{text}");

    let file = repo().join("tests/scenarios/examples/seed002-hierarchy.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["who-has-access", "--scenario"])
        .arg(&file)
        .args(["--record", "a_rep"])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut users: Vec<&str> = text.lines().collect();
    users.sort_unstable();
    assert_eq!(users, ["ceo", "manager_na", "rep1", "vp_sales"]);
}

/// Runs `strata` with any arguments; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap_or_else(|e| unreachable_output(&e));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_prints_the_readable_records_their_count_and_names_bad_input() {
    let file = repo().join("tests/scenarios/examples/seed002-hierarchy.yaml");
    let file = file.to_string_lossy();
    let list = |extra: &[&str]| {
        let mut args = vec!["list", "--scenario", &file, "--table", "account"];
        args.extend_from_slice(extra);
        run(&args)
    };
    // The VP reads his own account and, through the manager hierarchy, his reports'.
    let (code, out, err) = list(&["--as", "vp_sales", "--count"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a_vp", "a_mgr", "a_rep"]);
    assert_eq!(err.trim(), "count: 3");
    // Every record for the CEO; the first one only with --limit 1.
    let (code, out, _) = list(&["--as", "ceo"]);
    assert_eq!((code, out.lines().count()), (0, 5));
    let (code, out, _) = list(&["--as", "ceo", "--limit", "1"]);
    assert_eq!((code, out.lines().collect::<Vec<_>>()), (0, vec!["a_ceo"]));
    // Bad input: named, exit 2, nothing printed on stdout.
    for (extra, problem) in [
        (&["--as", "ceo", "--filter", "name eq"][..], "bad_filter"),
        (
            &["--as", "ceo", "--orderby", "name sideways"][..],
            "bad_order",
        ),
        (&["--as", "ceo", "--limit", "0"][..], "bad_page_size"),
        (&["--as", "nobody"][..], "unknown user `nobody`"),
        (
            &["--as", "ceo", "--filter", "nosuch eq 1"][..],
            "no column `nosuch`",
        ),
    ] {
        let (code, out, err) = list(extra);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert!(out.is_empty(), "{extra:?}: {out}");
        assert!(err.contains(problem), "{extra:?}: {err}");
    }
}

/// Issue 9, finding 11: a verb that reads a database does not create one when the path names
/// no file.
#[test]
fn reading_verbs_do_not_create_a_missing_database() {
    let dir = std::env::temp_dir().join(format!("strata-nosuch-{}", std::process::id()));
    let db = dir.join("nosuch.db");
    let db_text = db.to_string_lossy().into_owned();
    for args in [
        vec![
            "explain",
            "--db",
            &db_text,
            "--org",
            "o",
            "--user",
            "u",
            "--privilege",
            "read",
            "--record",
            "r",
        ],
        vec!["audit", "verify", "--db", &db_text, "--org", "o"],
        vec!["org", "list", "--db", &db_text],
    ] {
        let (code, _, err) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(!db.exists(), "{args:?} created {}", db.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `strata bench console`: the demo served in process, every screen answered (a refusal or
/// another status fails the bench) and timed by the server.
#[test]
fn bench_console_times_every_screen_of_the_demo() {
    let (code, out, err) = run(&["bench", "console", "--runs", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    for page in [
        "business units",
        "users",
        "a user",
        "teams",
        "roles",
        "role editor",
        "rules",
        "check access",
        "who has access",
        "compare users",
        "app access",
        "licences",
        "audit",
        "access review",
        "import roles",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{page}  "))),
            "no row for {page}: {out}"
        );
    }
    assert!(
        out.contains("SERVER P50") && out.contains("SERVER P99"),
        "{out}"
    );
}

/// A command whose reader goes away (`strata … | head`) ends as `cat` does, by SIGPIPE, and
/// prints no panic (it panicked with "failed printing to stdout" before).
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;
    let scenario = repo().join("tests/scenarios/examples/seed001-app-access.yaml");
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["export", "roles", "--scenario"])
        .arg(&scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    assert!(child.is_ok(), "cannot run strata: {child:?}");
    let Ok(mut child) = child else { return };
    // The reader closes before the command writes its first byte.
    drop(child.stdout.take());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| unreachable_output(&e));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "{:?} {stderr}", out.status);
}
