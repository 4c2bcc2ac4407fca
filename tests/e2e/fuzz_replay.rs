//! Replays the fuzz corpus seeds (`fuzz/corpus/<target>/`) and every crash the fuzzers found
//! (`fuzz/regressions/<target>/`, named after the bug) through the fuzz harnesses' own checks, on
//! stable, on every `make test`: a fixed crash that comes back fails here.

#[path = "../../fuzz/src/checks.rs"]
#[allow(dead_code)]
mod checks;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Seeds committed under `fuzz/corpus/` (21 when written): a replay that finds fewer lost them
/// (a moved directory, a filter that matches nothing) and fails instead of passing on nothing.
const COMMITTED_SEEDS: usize = 21;
/// Crash inputs committed under `fuzz/regressions/` (5 when written), likewise.
const COMMITTED_REGRESSIONS: usize = 5;
/// A replay of one input that takes longer than this is a hang (the slowest takes milliseconds;
/// the bound is generous so that a loaded or unoptimised build never trips it).
const PER_INPUT_LIMIT: Duration = Duration::from_secs(20);

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for target in checks::TARGETS {
        for file in inputs(kind, target) {
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            println!("replay {kind}/{target}/{}", name(&file));
            let start = Instant::now();
            assert!(checks::run(target, &bytes));
            let took = start.elapsed();
            assert!(
                took < PER_INPUT_LIMIT,
                "{kind}/{target}/{} took {took:?}: a hang",
                name(&file)
            );
            n += 1;
        }
    }
    n
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn fuzz_corpus_seeds_replay_cleanly() {
    for target in checks::TARGETS {
        assert!(
            !inputs("corpus", target).is_empty(),
            "fuzz/corpus/{target} has no seed (regenerate: make fuzz-seeds)"
        );
    }
    let n = replay("corpus");
    println!("{n} seeds replayed");
    assert!(
        n >= COMMITTED_SEEDS,
        "{n} seeds replayed, {COMMITTED_SEEDS} committed"
    );
}

#[test]
fn fuzz_crash_regressions_stay_fixed() {
    let n = replay("regressions");
    println!("{n} crash regressions replayed");
    assert!(
        n >= COMMITTED_REGRESSIONS,
        "{n} crash regressions replayed, {COMMITTED_REGRESSIONS} committed"
    );
}

/// The committed seeds are exactly what the generator writes today, so the seeds are known to be
/// valid inputs (a seed the parser rejects would start the fuzzer in the wrong place).
#[test]
fn fuzz_seeds_are_valid_inputs() {
    for (target, name, bytes) in checks::seeds() {
        let accepted = match target {
            "dlib_model" => face::ShapePredictor::from_bytes(&bytes, Path::new(&name)).is_ok(),
            "cascade_xml" => face::CascadeDetector::from_xml(
                std::str::from_utf8(&bytes).unwrap_or(""),
                &name,
                Path::new(&name),
            )
            .is_ok(),
            _ => true,
        };
        assert!(
            accepted,
            "seed {target}/{name} is rejected by its own parser"
        );
        assert!(checks::run(target, &bytes));
    }
    let sp =
        face::ShapePredictor::from_bytes(&checks::tiny_dlib_model(5, 2, 3, 2, 4), Path::new("t"))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sp.dimensions(), (2, 3, 4, 4));
    assert_eq!(sp.num_parts(), 5);
}

/// Regenerates `fuzz/corpus/*` from the generator (`make fuzz-seeds`).
#[test]
#[ignore = "writes into the source tree; run through `make fuzz-seeds`"]
fn write_fuzz_seeds() {
    let n = checks::write_seeds(&fuzz_dir().join("corpus")).unwrap_or_else(|e| panic!("{e}"));
    println!("wrote {n} seeds");
}

/// A shape model with other than 68 points (dlib also ships a 5-point one) is refused when the
/// models load, naming the file, instead of failing every input at the crop stage.
#[test]
fn five_point_shape_model_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let model = dir.path().join("five.dat");
    std::fs::write(&model, checks::tiny_dlib_model(5, 2, 3, 2, 4))
        .unwrap_or_else(|e| panic!("{e}"));
    let cascade = face::cascade_path("haarcascade_frontalface_default");
    if !testkit::files_present("five_point_shape_model_is_refused_at_load", &[&cascade]) {
        return;
    }
    let models = prep::ModelFiles {
        shape_predictor: model.clone(),
        cascade,
        fallback: None,
    };
    let err = models
        .load(false)
        .err()
        .unwrap_or_else(|| panic!("a 5-point model was accepted"));
    let msg = err.to_string();
    assert!(
        msg.contains("five.dat") && msg.contains("5 landmarks"),
        "{msg}"
    );
}
