//! Scenario files, format 1: the executable specification of the security model.
//!
//! A file is parsed with line-accurate errors ([`spec::parse`]), its names are checked
//! ([`validate::validate`]), and its steps run against a [`Target`] — the engine in this
//! process ([`EngineTarget`]), a running server ([`HttpTarget`]) or any other implementation of
//! the model — and compared with what they expect.

mod dry_run;
pub mod engine_target;
pub mod export;
pub mod http_client;
pub mod http_target;
pub mod licences;
pub mod pack;
pub mod spec;
pub mod validate;
pub mod yaml;

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_engine::{GrantKind, Privilege, Value};

pub use engine_target::EngineTarget;
pub use http_target::HttpTarget;
pub use spec::{Expect, LoadError, Outcome, Scenario, Step, StepKind};

/// What a target answered to a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// A decision, with the kinds of its grant paths and a readable explanation.
    Decision {
        allowed: bool,
        kinds: Vec<GrantKind>,
        explanation: String,
    },
    /// Effective rights.
    Rights(Vec<Privilege>),
    /// Record ids or user names.
    Names(Vec<String>),
    /// The record as the user sees it (`None` when the user cannot read it), with the kinds of
    /// the read decision's grant paths.
    Fields {
        fields: Option<Vec<(String, Value)>>,
        kinds: Vec<GrantKind>,
    },
    /// An action's outcome and its message.
    Outcome { outcome: Outcome, message: String },
    /// The target could not answer.
    Error(String),
}

/// Something scenarios run against.
pub trait Target {
    /// Replaces the target's state with the scenario's setup.
    fn load(&mut self, scenario: &Scenario) -> Result<(), LoadError>;
    /// Runs one step.
    fn run(&mut self, step: &Step) -> Observed;
}

/// Parses and validates a scenario file's text.
pub fn load_str(source: &str) -> Result<Scenario, LoadError> {
    let scenario = spec::parse(source)?;
    validate::validate(&scenario)?;
    Ok(scenario)
}

/// Totals of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Steps that passed.
    pub passed: usize,
    /// Steps that failed, plus one per file that failed to load.
    pub failed: usize,
    /// Files that failed to load.
    pub load_errors: usize,
}

impl Summary {
    /// 0 when everything passed, 1 when a step failed, 2 when a file could not be loaded.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        if self.load_errors > 0 {
            2
        } else if self.failed > 0 {
            1
        } else {
            0
        }
    }

    fn add(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.load_errors += other.load_errors;
    }
}

/// Every `*.yaml` file under the given files and folders, recursively, sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files).map_err(|e| format!("{}: {e}", p.display()))?;
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, files)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(p);
        }
    }
    Ok(())
}

/// Runs one file against a target, printing one line per failed step.
pub fn run_file(path: &Path, target: &mut dyn Target, out: &mut dyn Write) -> Summary {
    let shown = path.display();
    let loaded = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(0, format!("cannot read the file: {e}")))
        .and_then(|source| load_str(&source));
    let scenario = match loaded.and_then(|s| target.load(&s).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(out, "{shown}:{}: load error: {}", e.line, e.message);
            return Summary {
                passed: 0,
                failed: 1,
                load_errors: 1,
            };
        }
    };
    let mut summary = Summary::default();
    for step in &scenario.steps {
        let observed = target.run(step);
        match judge(step, &observed) {
            None => summary.passed += 1,
            Some((expected, got, detail)) => {
                summary.failed += 1;
                let _ = writeln!(
                    out,
                    "{shown}: step {} (line {}, {}): expected {expected}, got {got}",
                    step.number, step.line, step.verb
                );
                for line in detail.lines().filter(|l| !l.is_empty()) {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    summary
}

/// Runs every file, each against a fresh target, and prints the closing `N passed, M failed`.
pub fn run_paths(
    paths: &[PathBuf],
    make_target: &mut dyn FnMut() -> Box<dyn Target>,
    out: &mut dyn Write,
) -> Summary {
    let mut total = Summary::default();
    match collect_files(paths) {
        Err(e) => {
            let _ = writeln!(out, "{e}");
            total.failed += 1;
            total.load_errors += 1;
        }
        Ok(files) => {
            for f in files {
                let mut target = make_target();
                total.add(run_file(&f, target.as_mut(), out));
            }
        }
    }
    let _ = writeln!(out, "{} passed, {} failed", total.passed, total.failed);
    total
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        _ => a == b,
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Text(t) => format!("{t:?}"),
        other => other.to_string(),
    }
}

fn show_rights(list: &[Privilege]) -> String {
    let names: Vec<&str> = Privilege::RECORD_RIGHTS
        .iter()
        .filter(|p| list.contains(p))
        .map(|p| p.name())
        .collect();
    format!("[{}]", names.join(", "))
}

fn show_names(list: &[String]) -> String {
    let mut sorted = list.to_vec();
    sorted.sort();
    format!("[{}]", sorted.join(", "))
}

/// `None` when the step passed; otherwise (expected, got, detail).
fn judge(step: &Step, observed: &Observed) -> Option<(String, String, String)> {
    let word = |b: bool| if b { "allow" } else { "deny" }.to_owned();
    match (&step.expect, observed) {
        (_, Observed::Error(m)) => Some((expected_text(step), "an error".to_owned(), m.clone())),
        (
            Expect::Decision(want),
            Observed::Decision {
                allowed,
                kinds,
                explanation,
            },
        ) => {
            if want != allowed {
                return Some((word(*want), word(*allowed), explanation.clone()));
            }
            match step.reason {
                Some(reason) if *allowed && !kinds.contains(&reason) => {
                    let got: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                    Some((
                        format!("allow with reason {}", reason.name()),
                        format!("allow through [{}]", got.join(", ")),
                        explanation.clone(),
                    ))
                }
                _ => None,
            }
        }
        (Expect::Decision(want), Observed::Fields { fields, .. }) => (*want != fields.is_some())
            .then(|| (word(*want), word(fields.is_some()), String::new())),
        (Expect::Rights(want), Observed::Rights(got)) => {
            let same = Privilege::RECORD_RIGHTS
                .iter()
                .all(|p| want.contains(p) == got.contains(p));
            (!same).then(|| (show_rights(want), show_rights(got), String::new()))
        }
        (Expect::Names(want), Observed::Names(got)) => {
            let (mut a, mut b) = (want.clone(), got.clone());
            a.sort();
            b.sort();
            (a != b).then(|| (show_names(want), show_names(got), String::new()))
        }
        (Expect::Fields(want), Observed::Fields { fields: got, kinds }) => {
            let Some(got) = got else {
                return Some((
                    expected_text(step),
                    "no read access to the record".to_owned(),
                    String::new(),
                ));
            };
            if let Some(reason) = step.reason.filter(|r| !kinds.contains(r)) {
                let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                return Some((
                    format!("read with reason {}", reason.name()),
                    format!("read through [{}]", names.join(", ")),
                    String::new(),
                ));
            }
            let mismatches: Vec<String> = want
                .iter()
                .filter_map(|(k, v)| {
                    let actual = got
                        .iter()
                        .find(|(c, _)| c == k)
                        .map_or(&Value::Null, |(_, v)| v);
                    (!values_equal(actual, v)).then(|| format!("{k}: {}", show_value(actual)))
                })
                .collect();
            (!mismatches.is_empty()).then(|| {
                (
                    expected_text(step),
                    format!("{{{}}}", mismatches.join(", ")),
                    String::new(),
                )
            })
        }
        (Expect::Outcome(want), Observed::Outcome { outcome, message }) => {
            if want != outcome {
                return Some((
                    want.name().to_owned(),
                    outcome.name().to_owned(),
                    message.clone(),
                ));
            }
            // `says`: the refusal's message must name what the file expects.
            step.says
                .as_ref()
                .filter(|text| !message.contains(text.as_str()))
                .map(|text| {
                    (
                        format!("{} saying `{text}`", want.name()),
                        format!("{} saying `{message}`", outcome.name()),
                        String::new(),
                    )
                })
        }
        (_, other) => Some((expected_text(step), format!("{other:?}"), String::new())),
    }
}

fn expected_text(step: &Step) -> String {
    match &step.expect {
        Expect::Decision(b) => if *b { "allow" } else { "deny" }.to_owned(),
        Expect::Rights(r) => show_rights(r),
        Expect::Names(n) => show_names(n),
        Expect::Fields(f) => format!(
            "{{{}}}",
            f.iter()
                .map(|(k, v)| format!("{k}: {}", show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expect::Outcome(o) => o.name().to_owned(),
    }
}
