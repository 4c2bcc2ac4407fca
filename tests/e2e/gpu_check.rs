//! The CPU dry run of `scripts/gpu_check.sh` (tiny sizes): the one-command GPU check stays
//! runnable — binaries found, a cache built, `train bench` and a short training run, the JSON
//! and Markdown tables written — so that a session with a GPU runs it without preparing anything.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn gpu_check_script_dry_run_on_cpu_writes_its_tables() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // target/release/deps/e2e-… → target/release, where `cargo test --workspace` put the binaries.
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .to_path_buf();
    let (train, prep) = (bin.join("train"), bin.join("prep"));
    let (shape, cascade) = (
        face::default_shape_model_path(),
        face::cascade_path("lbpcascade_frontalface"),
    );
    // The binaries are there after `cargo test --workspace` (make test); the models after setup.
    if !testkit::files_present(
        "gpu_check_script_dry_run_on_cpu_writes_its_tables",
        &[&train, &prep, &shape, &cascade],
    ) {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("bash")
        .arg(repo.join("scripts/gpu_check.sh"))
        .args(["--device", "cpu", "--small", "--out"])
        .arg(out.path())
        .arg("--bin")
        .arg(&bin)
        .current_dir(&repo)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("gpu_check.json")).unwrap()).unwrap();
    let bench = json["bench"].as_array().unwrap();
    let inputs: Vec<&str> = bench.iter().map(|r| r["input"].as_str().unwrap()).collect();
    assert_eq!(inputs, ["synthetic", "cache"], "{json}");
    assert!(bench
        .iter()
        .all(|r| r["samples_per_s"].as_f64().unwrap() > 0.0));
    let acc = json["run"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{json}");
    assert_eq!(json["run"]["epochs"], 1);
    assert_eq!(json["run_tuned"]["epochs"], 1, "{json}");
    let md = std::fs::read_to_string(out.path().join("gpu_check.md")).unwrap();
    assert!(
        md.contains("| synthetic | fp32 | 2 |")
            && md.contains("1-epoch FER2013 run: accuracy")
            && md.contains("1-epoch FER2013 run, tuned preset: accuracy"),
        "{md}"
    );
}
