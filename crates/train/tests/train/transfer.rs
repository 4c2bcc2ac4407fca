//! Starting runs from trained ones (`model.init_from`), the trunk's own rate and freezing, and
//! `train eval` scoring a run on another cache with classes matched by name.

use super::common::*;
use std::path::{Path, PathBuf};
use train::trained::TrainedModel;

/// A finished one-fold source run (fold 0, 3 classes) on its own synthetic cache in `dir`.
fn source_run(dir: &Path) -> (PathBuf, train::ExperimentConfig) {
    let (mut cfg, _) = one_fold_experiment(dir, 1);
    cfg.name = "source".into();
    let out = train::trainer::run_experiment(&cfg, opts("src")).unwrap();
    (out.dir, cfg)
}

/// The batch-norm running statistics move in training mode even when nothing is trained.
fn is_statistic(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

fn tensors(file: &Path) -> Vec<(String, tch::Tensor)> {
    tch::Tensor::read_safetensors(file)
        .unwrap()
        .into_iter()
        .filter_map(|(n, t)| n.strip_prefix("model.").map(|s| (s.to_string(), t)))
        .collect()
}

/// Every tensor a run starts from equals the source fold's reported weights; with the trunk
/// frozen for the first epoch, the trunk is still exactly the source's after it (no gradient,
/// no update, no weight decay) while the heads have moved; run.json names what was loaded, the
/// source's cache key and its configuration.
#[test]
fn init_from_loads_the_source_and_a_frozen_trunk_stays_put() {
    let dir = tempfile::tempdir().unwrap();
    let (run, src_cfg) = source_run(dir.path());
    let spec = format!("{}#fold0", run.display());
    let source = TrainedModel::open(&spec).unwrap();
    assert_eq!(source.weights_of, train::trained::WeightsOf::ReportedEpoch);
    let src = tensors(&source.weights);

    // Straight after loading: the planned tensors are the source's, bit for bit.
    let mc = source.model.clone();
    let init =
        train::transfer::InitWeights::resolve(&spec, &mc, &source.preprocessing, &source.classes)
            .unwrap();
    assert_eq!(init.plan.heads, train::transfer::HeadTransfer::Loaded);
    assert!(init.plan.skipped.is_empty(), "{:?}", init.plan.skipped);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = train::model::Network::new(&vs.root(), &mc).unwrap();
    init.plan.apply(&vs, &init.tensors, &spec).unwrap();
    let vars = vs.variables();
    assert_eq!(init.plan.loaded.len(), vars.len());
    for (name, t) in &src {
        assert!(vars[name].equal(t), "{name}");
    }

    // A run from it, the trunk frozen in epoch 1 of 2: stopped after epoch 1.
    let mut cfg = src_cfg.clone();
    cfg.name = "fine".into();
    cfg.model.init_from = Some(spec.clone());
    cfg.train.epochs = 2;
    cfg.train.freeze_trunk_epochs = 1;
    cfg.train.trunk_lr_factor = 0.1;
    let fine = run_stopped_after(&cfg, "frozen", None, 1);
    let after = tensors(&fine.join("fold-fold0/checkpoint.safetensors"));
    let mut heads_moved = false;
    for (name, t) in &after {
        let s = &src.iter().find(|(n, _)| n == name).unwrap().1;
        if mc.is_class_head(name) {
            heads_moved |= !t.equal(s);
        } else if !is_statistic(name) {
            assert!(t.equal(s), "{name}: the frozen trunk moved");
        }
    }
    assert!(heads_moved, "the heads did not train");
    let rj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fine.join("run.json")).unwrap()).unwrap();
    let rec = &rj["init_from"];
    assert_eq!(rec["loaded"].as_array().unwrap().len(), vars.len());
    assert_eq!(rec["model"]["source"], spec.as_str());
    assert_eq!(rec["model"]["weights_of"], "reported-epoch");
    assert_eq!(
        rec["model"]["cache_key"],
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(run.join("run.json")).unwrap())
            .unwrap()["cache_key"]
    );
    assert_eq!(rec["model"]["config"]["name"], "source");
    // Resumed, it trains the whole network in epoch 2 and finishes.
    train::trainer::run_experiment(
        &cfg,
        train::trainer::RunOptions {
            resume: Some(fine.clone()),
            ..opts("frozen")
        },
    )
    .unwrap();
    let last = tensors(&fine.join("fold-fold0/checkpoint.safetensors"));
    assert!(last
        .iter()
        .filter(|(n, _)| !mc.is_class_head(n) && !is_statistic(n))
        .any(|(n, t)| !t.equal(&after.iter().find(|(m, _)| m == n).unwrap().1)));
}

/// One class more than the source: the trunk and the three shared classes' head rows load, the
/// new class's rows start at their mean, run.json says so; the run trains.
#[test]
fn init_from_with_another_class_loads_the_shared_head_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = source_run(dir.path());
    let other = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(other.path(), 4, 6, 2, 6);
    let mut cfg = small_experiment(&cache, &other.path().join("runs"), 1);
    cfg.folds = Some(vec![0]);
    cfg.model.init_from = Some(format!("{}#0", run.display()));
    let out = train::trainer::run_experiment(&cfg, opts("four")).unwrap();
    let rj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.dir.join("run.json")).unwrap()).unwrap();
    let rec = &rj["init_from"];
    assert_eq!(rec["heads"]["heads"], "partial");
    assert_eq!(rec["heads"]["only_here"], serde_json::json!(["class3"]));
    assert_eq!(
        rec["heads"]["rows"],
        serde_json::json!([0, 1, 2, serde_json::Value::Null])
    );
    assert_eq!(rec["skipped"], serde_json::json!([]));
    let loaded: Vec<&str> = rec["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for head in [
        "gfm.head2.bias",
        "gfm.head2.weight",
        "pbm.end2.bias",
        "pbm.end2.weight",
    ] {
        assert!(loaded.contains(&head), "{head} not loaded: {loaded:?}");
    }
    assert!(out.folds[0].accuracy.is_finite());
}

/// A source whose inputs differ is refused before anything is written, each difference named
/// with both values; so is a source of another model kind.
#[test]
fn init_from_refuses_other_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let (run, src_cfg) = source_run(dir.path());
    let mut cfg = src_cfg.clone();
    cfg.name = "refused".into();
    cfg.model.init_from = Some(run.display().to_string());
    cfg.model.face_size = Some((24, 24));
    cfg.train.frames = Some(2);
    let e = train::trainer::run_experiment(&cfg, opts("x")).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, train::TrainError::PreprocessingMismatch { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("face input 32×32 in the source, 24×24 here"),
        "{msg}"
    );
    assert!(msg.contains("3 frames in the source, 2 here"), "{msg}");
    assert!(!cfg.runs_dir.join("refused").exists());
    cfg.model.face_size = None;
    cfg.train.frames = None;
    cfg.model.kind = train::config::ModelKind::Cnn;
    let msg = train::trainer::run_experiment(&cfg, opts("y"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("model.kind Mgln in the source, Cnn here"),
        "{msg}"
    );
}

/// `train eval` of a 3-class run on a 4-class cache: `leave-out` scores the samples of the
/// three shared classes, choosing among those, and lists the fourth as left out; `score` scores
/// every sample, the fourth class's always wrong. The binary writes eval.json.
#[test]
fn eval_scores_a_run_on_another_cache_by_class_name() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = source_run(dir.path());
    let other = tempfile::tempdir().unwrap();
    let cache_dir = synthetic_cache(other.path(), 4, 6, 2, 6);
    let cache = std::sync::Arc::new(shard::Cache::open(&cache_dir).unwrap());
    let model = TrainedModel::open(&run.display().to_string()).unwrap();
    let total = cache.len();
    let fourth = train::loader::sample_infos(&cache)
        .unwrap()
        .iter()
        .filter(|i| i.label == 3)
        .count() as u64;
    let eval = |unshared| {
        train::eval::evaluate(
            std::slice::from_ref(&model),
            cache.clone(),
            &train::eval::EvalOptions {
                split: train::eval::EvalSplit::All,
                unshared,
                batch: 8,
                device: tch::Device::Cpu,
                seed: 0,
            },
            &mut |_| {},
        )
        .unwrap()
    };
    let left = eval(train::eval::Unshared::LeaveOut);
    assert_eq!(left.classes, ["class0", "class1", "class2"]);
    assert_eq!(left.only_cache, ["class3"]);
    let m = &left.models[0];
    assert_eq!((m.scored, m.left_out), (total - fourth, fourth));
    assert_eq!(m.confusion.len(), 3);
    let scored = eval(train::eval::Unshared::Score);
    let s = &scored.models[0];
    assert_eq!((s.scored, s.left_out), (total, 0));
    assert_eq!(s.confusion[3][3], 0, "the model has no class3");
    assert_eq!(s.confusion[3].iter().sum::<u64>(), fourth);
    // The same samples of the shared classes are right or wrong alike, or more often right
    // when the model may only choose among them.
    let right = |m: &train::eval::ModelEval| (0..3).map(|k| m.confusion[k][k]).sum::<u64>();
    assert!(right(m) >= right(s));

    let out = other.path().join("eval-out");
    stdout_of_success(
        std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .args(["eval", "--run"])
            .arg(&run)
            .arg("--cache")
            .arg(&cache_dir)
            .arg("--out")
            .arg(&out)
            .args(["--device", "cpu"]),
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(written["models"][0]["scored"], total - fourth);
    assert!(out.join("predictions-fold0.parquet").exists());
}
