//! Issue 39: the Kubernetes manifests under scripts/k8s are checked against the Kubernetes API
//! schema by `kubernetes-validate` (PyPI; it carries the JSON schemas of every Kubernetes minor
//! version, so it needs no cluster and no network), in strict mode (an unknown field is an
//! error), for the oldest version the manifests support (1.29: `backoffLimitPerIndex` and
//! `maxFailedIndexes` of Indexed Jobs are beta and on by default from 1.29) and a current one.
//! The same check on a copy with one misspelled field fails, so the validator really reads them.

use super::repo;
use std::process::Command;

const VERSIONS: [&str; 2] = ["1.29.0", "1.33.0"];

fn validate(files: &[std::path::PathBuf], version: &str) -> Option<std::process::Output> {
    let exe = repo().join(".venv/bin/kubernetes-validate");
    if !testkit::files_present(
        "kubernetes_manifests_validate_against_the_api_schema",
        &[&exe],
    ) {
        return None;
    }
    Some(
        Command::new(exe)
            .args(["--strict", "-k", version])
            .args(files)
            .output()
            .unwrap(),
    )
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schema() {
    let mut files: Vec<_> = std::fs::read_dir(repo().join("scripts/k8s"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    for v in VERSIONS {
        let Some(o) = validate(&files, v) else { return };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "Kubernetes {v}: {text}");
        assert_eq!(text.matches("passed for resource").count(), 4, "{text}");
    }
    // One misspelled field in a copy: refused, naming it.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("train-indexed-job.yaml");
    let text = std::fs::read_to_string(repo().join("scripts/k8s/train-indexed-job.yaml")).unwrap();
    assert!(text.contains("backoffLimitPerIndex"));
    std::fs::write(
        &bad,
        text.replace("backoffLimitPerIndex", "backofLimitPerIndex"),
    )
    .unwrap();
    let Some(o) = validate(&[bad], VERSIONS[1]) else {
        return;
    };
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success() && out.contains("'backofLimitPerIndex' was unexpected"),
        "{out}"
    );
}
