use shard::{
    CacheKey, CacheWriter, CacheWriterOptions, EncodedRecord, PlaneInfo, SampleMeta,
    SourceFingerprint, Split,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use train::ExperimentConfig;

/// A small network of 5 classes (width 1/16, 32² faces, 2-layer LSTMs of 16): seconds on a CPU.
pub fn small_model(
    branches: train::config::Branches,
    deform: train::config::Deform,
) -> train::model::ModelConfig {
    train::model::ModelConfig {
        kind: train::config::ModelKind::Mgln,
        classes: 5,
        frames: 3,
        branches,
        deform,
        width: 0.0625,
        face: (FACE.0 as i64, FACE.1 as i64),
        parts: PARTS.map(|(h, w)| (h as i64, w as i64)),
        lstm_side: 4,
        lstm_layers: 2,
        head_relu: false,
        ssm_batchnorm: false,
        head_batchnorm: false,
        head_channels: None,
    }
}

/// Plane sizes of the synthetic caches: small, but ≥ 8 px (the SSM's stride).
pub const FACE: (usize, usize) = (32, 32);
pub const PARTS: [(usize, usize); 3] = [(16, 32), (16, 16), (16, 16)];

/// Whether pixel (`x`, `y`) of an `h`-row plane is bright in class `label`'s texture: stripes
/// whose orientation (horizontal, vertical, and the two diagonals) and period (two sizes) depend on
/// the class, so 8 classes look different everywhere in every crop. A texture, not a position:
/// MGLN's branches end in global average pooling, which sees a texture at once but a position only
/// through the borders (a class drawn as a band at a class-dependent row took hundreds of steps).
pub fn class_texture(label: usize, x: usize, y: usize, h: usize) -> bool {
    let (orientation, size) = (label % 4, label / 4 % 2);
    let half = (1 + size) * if orientation >= 2 { 2 } else { 1 };
    let coord = match orientation {
        0 => y,
        1 => x,
        2 => x + y,
        _ => x + h - y,
    };
    (coord / half) % 2 == 0
}

/// A cache of `classes` classes where the class is visible as a texture ([`class_texture`]) in the
/// face and in every part crop, plus per-subject brightness and noise. Subjects are spread over
/// `folds` folds, `per_subject` samples each.
pub fn synthetic_cache(
    dir: &Path,
    classes: usize,
    subjects: usize,
    folds: u16,
    per_subject: usize,
) -> PathBuf {
    synthetic_cache_with_votes(dir, classes, subjects, folds, per_subject, None)
}

/// [`synthetic_cache`] whose records carry FER+-style votes (10 counts: 6 for the label, 3 for
/// the next class, 1 for the one after; `classes` must be 8) and whose key ingredients name the
/// FERPlus `mode` it was built under, as `prep build --dataset ferplus` writes them.
pub fn synthetic_cache_with_votes(
    dir: &Path,
    classes: usize,
    subjects: usize,
    folds: u16,
    per_subject: usize,
    mode: Option<&str>,
) -> PathBuf {
    let mut config = serde_json::json!({"synthetic": [classes, subjects, folds, per_subject]});
    if let Some(m) = mode {
        config["ferplus_mode"] = serde_json::json!(m);
    }
    let key = CacheKey::compute(
        &config,
        &BTreeMap::new(),
        &SourceFingerprint {
            files: 0,
            bytes: 0,
            digest: "synthetic".into(),
        },
    )
    .unwrap();
    let out = dir.join(shard::cache_dir_name("synthetic", &key));
    let names = (0..classes).map(|c| format!("class{c}")).collect();
    let mut w = CacheWriter::create(
        &out,
        "synthetic",
        &key,
        names,
        CacheWriterOptions::default(),
    )
    .unwrap();
    let mut state = 12345u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 59) as u8
    };
    for s in 0..subjects {
        for k in 0..per_subject {
            let label = (s + k) % classes;
            let base = 60 + (s % 5) as u8 * 10;
            let mut plane = |(h, w): (usize, usize)| -> Vec<u8> {
                let mut v = vec![base; h * w];
                for y in 0..h {
                    for x in 0..w {
                        let on = class_texture(label, x, y, h);
                        v[y * w + x] = if on { base + 100 } else { base } + noise();
                    }
                }
                v
            };
            let mut planes = vec![PlaneInfo::new("face", FACE.0 as u16, FACE.1 as u16)];
            let mut data = vec![plane(FACE)];
            for slot in 0..3 {
                for (name, size) in ["eyes", "nose", "mouth"].iter().zip(PARTS) {
                    planes.push(PlaneInfo::new(
                        format!("{name}/{slot}"),
                        size.0 as u16,
                        size.1 as u16,
                    ));
                    data.push(plane(size));
                }
            }
            let meta = SampleMeta {
                sample_id: format!("S{s:03}/{k:03}"),
                dataset: "synthetic".into(),
                subject: format!("S{s:03}"),
                sequence: None,
                source: vec![],
                frame_indices: vec![0, 1, 2],
                label: label as u16,
                split: Split::Fold((s % folds as usize) as u16),
                landmarks: vec![],
                detector: "synthetic".into(),
                flags: 0,
                planes,
                ext: shard::MetaExt {
                    frames: Vec::new(),
                    votes: match mode {
                        Some(_) => {
                            let mut v = vec![0u16; 10];
                            v[label] = 6;
                            v[(label + 1) % classes] = 3;
                            v[(label + 2) % classes] = 1;
                            v
                        }
                        None => Vec::new(),
                    },
                    valence_arousal: None,
                },
            };
            let refs: Vec<&[u8]> = data.iter().map(|v| v.as_slice()).collect();
            w.push(&EncodedRecord::encode(meta, &refs, 1).unwrap())
                .unwrap();
        }
    }
    w.finish(serde_json::json!({})).unwrap();
    out
}

/// A small CPU experiment on `cache`.
pub fn small_experiment(cache: &Path, runs: &Path, epochs: usize) -> ExperimentConfig {
    let text = format!(
        r#"
name = "tiny"
cache = "{}"
runs_dir = "{}"
[model]
width = 0.0625
lstm_side = 4
lstm_layers = 1
head_relu = false
[train]
epochs = {epochs}
batch = 8
lr = 0.002
device = "cpu"
threads = 1
mixup_alpha = 0.4
"#,
        cache.display(),
        runs.display()
    );
    ExperimentConfig::parse(&text, Path::new("tiny.toml")).unwrap()
}

/// The metrics of a run without their timings (which differ between any two runs).
pub fn strip(v: Vec<train::outputs::EpochRecord>) -> Vec<train::outputs::EpochRecord> {
    v.into_iter().map(|r| r.without_timing()).collect()
}

/// Runs `cmd` to the end and returns its stdout; a failure shows its stderr.
pub fn stdout_of_success(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-fold (fold 0) small experiment of `epochs` epochs on a 3-class synthetic cache in `dir`,
/// also written as `dir/exp.toml` for the binary.
pub fn one_fold_experiment(dir: &Path, epochs: usize) -> (ExperimentConfig, PathBuf) {
    let cache = synthetic_cache(dir, 3, 6, 2, 6);
    let mut cfg = small_experiment(&cache, &dir.join("runs"), epochs);
    cfg.folds = Some(vec![0]);
    let toml = dir.join("exp.toml");
    std::fs::write(&toml, cfg.to_toml().unwrap()).unwrap();
    (cfg, toml)
}

/// Runs `config` (written as the TOML file `toml`) with the `train` binary under run name `name`
/// and returns its metrics without timings. A process of its own: libtorch's random generator is
/// global to a process, and the tests of this binary seed and initialise networks in parallel,
/// so an in-process reference could draw other weights than the run it is compared with.
pub fn metrics_of_a_separate_run(
    toml: &Path,
    config: &ExperimentConfig,
    name: &str,
) -> Vec<train::outputs::EpochRecord> {
    stdout_of_success(
        std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .args(["run", "--config"])
            .arg(toml)
            .args(["--run-name", name]),
    );
    let dir = config.runs_dir.join(&config.name).join(name);
    strip(train::outputs::read_metrics(&dir).unwrap())
}

/// Options of an in-process run named `name`: quiet, no resume, no git revision.
pub fn opts(name: &str) -> train::trainer::RunOptions<'static> {
    train::trainer::RunOptions {
        resume: None,
        run_name: Some(name.into()),
        git_revision: None,
        progress: &train::trainer::Quiet,
        stop: train::trainer::StopToken::never(),
        overrides: Vec::new(),
        task_folds: None,
    }
}

/// Progress that trips the run's stop token once `epochs` epochs have ended (what Ctrl-C does
/// at that moment).
struct StopAfter {
    epochs: usize,
    ended: std::sync::atomic::AtomicUsize,
    token: train::trainer::StopToken,
}

impl train::trainer::TrainProgress for StopAfter {
    fn epoch_start(&self, _: &str, _: usize, _: usize, _: u64) {}
    fn batch_done(&self, _: u64) {}
    fn epoch_end(&self, _: &train::outputs::EpochRecord) {
        let n = self.ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n >= self.epochs {
            self.token.stop();
        }
    }
    fn note(&self, _: &str) {}
}

/// Runs `cfg` as run `name` (continuing `resume` when given) and stops it after `epochs` more
/// epochs, through the run's stop token; returns the run directory, left as an interrupted run
/// leaves it.
pub fn run_stopped_after(
    cfg: &ExperimentConfig,
    name: &str,
    resume: Option<PathBuf>,
    epochs: usize,
) -> PathBuf {
    let token = train::trainer::StopToken::new();
    let progress = StopAfter {
        epochs,
        ended: Default::default(),
        token: token.clone(),
    };
    let options = train::trainer::RunOptions {
        resume,
        run_name: Some(name.into()),
        git_revision: None,
        progress: &progress,
        stop: token,
        overrides: Vec::new(),
        task_folds: None,
    };
    match train::trainer::run_experiment(cfg, options) {
        Err(train::TrainError::Stopped { run, .. }) => run,
        Err(e) => panic!("run {name}: {e}"),
        Ok(_) => panic!("run {name} finished instead of stopping after {epochs} epochs"),
    }
}

/// The fused predictions of a finished run's fold `k` model (its last checkpoint) on the fold's
/// test records.
pub fn score_fold(cfg: &ExperimentConfig, run: &Path, k: u16) -> Vec<train::outputs::ScoredSample> {
    let cache = train::loader::open_cache(&cfg.resolve_cache().unwrap()).unwrap();
    let test: Vec<u64> = train::loader::sample_infos(&cache)
        .unwrap()
        .into_iter()
        .filter(|i| i.split == Split::Fold(k))
        .map(|i| i.record)
        .collect();
    let runner =
        train::trainer::Runner::new(cfg, run.to_path_buf(), cache, tch::Device::Cpu).unwrap();
    let mc = runner.model_config();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = train::model::Network::new(&vs.root(), &mc).unwrap();
    train::outputs::load_model_vars(
        &vs,
        &run.join(format!("fold-fold{k}"))
            .join("checkpoint.safetensors"),
    )
    .unwrap();
    runner.score(&model, &runner.transform(&mc), &test).unwrap()
}

/// The `.venv` Python of the workspace, or `None` after [`testkit::unavailable`].
pub fn python(test: &str) -> Option<PathBuf> {
    testkit::venv_python(test)
}

/// Runs the calling test again in a process of its own, alone, and returns `false` in the parent
/// once that child passed; in the child it returns `true` and the test goes on. For tests whose
/// exactness depends on libtorch's random generator (the CNN's dropout): it is global to a
/// process, and the other tests of this binary reseed it from their own threads.
pub fn in_own_process(test: &str) -> bool {
    if std::env::var_os("FER_TEST_OWN_PROCESS").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env("FER_TEST_OWN_PROCESS", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in a process of its own:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
