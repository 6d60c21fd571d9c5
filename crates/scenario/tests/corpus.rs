//! The scenario corpus (`tests/scenarios/`) runs against the engine: every step must pass.

use std::path::PathBuf;

/// The corpus's files (`find tests/scenarios -name '*.yaml' | wc -l`).
const CORPUS_FILES: usize = 133;

use strata_scenario::{EngineTarget, Target, run_paths};

#[test]
fn corpus_passes_against_the_engine() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let files = strata_scenario::collect_files(std::slice::from_ref(&root)).unwrap_or_default();
    assert!(
        files.len() == CORPUS_FILES,
        "the corpus has {} files, not the {CORPUS_FILES} it holds (a file or folder went missing, or one was added: update CORPUS_FILES): {}",
        files.len(),
        root.display()
    );
    let mut out = Vec::new();
    let summary = run_paths(
        &[root],
        &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
        &mut out,
    );
    let text = String::from_utf8_lossy(&out);
    assert_eq!(summary.failed, 0, "{text}");
    assert!(summary.passed > 0, "{text}");
}
