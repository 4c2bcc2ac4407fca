//! The training options and presets: how a preset and the file combine, the geometry of the rotation,
//! the label loss's known answers, the optimisers against `torch.optim`, and a run that uses every
//! option at once (the CNN baseline, SGD, cosine with warmup, label smoothing, class balance,
//! clipping, rotation, flip averaging): recorded in run.json, resumable to the same metrics.

use crate::common::*;
use std::path::Path;
use tch::{Device, Kind, Tensor};
use train::config::{ClassBalance, ModelKind, OptimizerKind, Preset, Schedule, TrainSection};
use train::loader::{warp, Augment};
use train::trainer::{mgln_loss, run_experiment, LabelLoss};
use train::{ExperimentConfig, TrainError};

fn parse(text: &str) -> train::Result<ExperimentConfig> {
    ExperimentConfig::parse(text, Path::new("t.toml"))
}

/// `preset = "tuned"` supplies every key the file leaves out, every key the file sets wins, the
/// resolved configuration (config.toml) reads back to itself, and a typo is still an error with
/// its line. Without `preset` the defaults are the paper's, as before the key existed; files
/// that say `recipe`, its name before, read the same.
#[test]
fn tuned_preset_fills_what_the_file_leaves_out_and_the_file_wins() {
    let cfg = parse("preset = \"tuned\"\ncache = \"x\"\n[train]\nlr = 5e-4\n").unwrap();
    let old_name = parse("recipe = \"tuned\"\ncache = \"x\"\n[train]\nlr = 5e-4\n").unwrap();
    assert_eq!(old_name, cfg);
    let mut want = Preset::Tuned.base();
    want.cache = "x".into();
    want.train.lr = 5e-4;
    assert_eq!(cfg, want);
    assert_eq!(cfg.train.optimizer, OptimizerKind::Adamw);
    assert_eq!(cfg.train.schedule, Schedule::Onecycle);
    assert_eq!(cfg.train.label_smoothing, 0.1);
    assert_eq!(cfg.train.mixup_alpha, 0.0);
    assert!(cfg.train.tta_flip && cfg.model.ssm_batchnorm);
    assert_eq!(parse(&cfg.to_toml().unwrap()).unwrap(), cfg);

    let paper = parse("cache = \"x\"\n").unwrap();
    let want = ExperimentConfig {
        cache: "x".into(),
        ..ExperimentConfig::default()
    };
    assert_eq!(paper, want);
    assert_eq!(paper.train.optimizer, OptimizerKind::Adam);
    assert_eq!(paper.train.schedule, Schedule::Step);
    assert_eq!(paper.model.kind, ModelKind::Mgln);

    match parse("preset = \"tuned\"\ncache = \"x\"\n[train]\nlearning_rate = 1\n") {
        Err(TrainError::ConfigFile { line, reason, .. }) => {
            assert_eq!(line, 4, "{reason}");
            assert!(reason.contains("learning_rate"), "{reason}");
        }
        other => panic!("a typo was accepted: {other:?}"),
    }
    assert!(parse("preset = \"fancy\"\ncache = \"x\"\n").is_err());
    assert!(parse("cache = \"x\"\n[train]\nlabel_smoothing = 1.0\n").is_err());
}

/// The rotation turns the picture in pixels, not in the [-1, 1] units of each axis: a quarter turn
/// of a square is `rot90`, and a quarter turn of a 2×4 crop lands every sample on a pixel centre
/// (or on the edge it is clamped to), as the pixel-space formula says. A rotation in normalised
/// units would stretch the 2×4 case by the aspect ratio and miss those centres.
#[test]
fn rotation_turns_pixels_about_the_crop_centre() {
    let quarter = Augment {
        rotation: std::f64::consts::FRAC_PI_2,
        ..Augment::mirror(false)
    };
    let square = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
    let turned = warp(&square, Some(&[quarter]), 1, (4, 4));
    let want = square.rot90(1, [2, 3]);
    let err = (&turned - &want).abs().max().double_value(&[]);
    assert!(err < 1e-4, "{turned} vs {want}");

    let (h, w) = (2usize, 4usize);
    let wide = Tensor::arange((h * w) as i64, (Kind::Float, Device::Cpu)).view([1, 1, 2, 4]);
    let turned = warp(&wide, Some(&[quarter]), 1, (2, 4));
    let got: Vec<f32> = Vec::try_from(turned.reshape([-1])).unwrap();
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    for row in 0..h {
        for col in 0..w {
            // Output pixel (x, y) about the centre reads input (−y, x), clamped to the border.
            let (x, y) = (col as f64 - cx, row as f64 - cy);
            let in_col = (-y + cx).clamp(0.0, w as f64 - 1.0);
            let in_row = (x + cy).clamp(0.0, h as f64 - 1.0);
            let want = (in_row * w as f64 + in_col) as f32;
            let g = got[row * w + col];
            assert!((g - want).abs() < 1e-4, "({row}, {col}): {g} vs {want}");
        }
    }

    // Every frame of a sample turns with it.
    let frames = Tensor::cat(&[&square, &square], 0);
    let both = warp(&frames, Some(&[quarter]), 2, (4, 4));
    assert!(both.get(1).allclose(&both.get(0), 0.0, 0.0, false));
}

/// Label smoothing and class weights give the cross-entropy's known answers on the scores the
/// loss came from: (1 − ε)·CE + ε·mean_c(−log p_c), and the weighted mean Σ w_y·CE_i / Σ w_y.
#[test]
fn label_loss_options_give_the_known_answers() {
    tch::manual_seed(3);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let c = small_model(train::config::Branches::Gfm, train::config::Deform::None);
    let m = train::model::Network::new(&vs.root(), &c).unwrap();
    let face = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let input = || train::model::ModelInput {
        face: face.copy(),
        parts: PARTS
            .map(|(h, w)| Tensor::zeros([4, 3, 3, h as i64, w as i64], (Kind::Float, Device::Cpu))),
    };
    let labels = Tensor::from_slice(&[0i64, 1, 1, 3]);
    let weights = LabelLoss::balanced_weights(&[1, 2, 0, 1, 0]);
    assert_eq!(weights, [4.0 / 5.0, 4.0 / 10.0, 0.0, 4.0 / 5.0, 0.0]);
    let options = [
        LabelLoss::default(),
        LabelLoss {
            smoothing: 0.2,
            class_weights: None,
        },
        LabelLoss {
            smoothing: 0.0,
            class_weights: Some(Tensor::from_slice(&weights)),
        },
    ];
    tch::no_grad(|| {
        for (k, option) in options.iter().enumerate() {
            let out = mgln_loss(&m, input(), &labels, None, None, option, false).unwrap();
            let logp = out.output.global.unwrap().log_softmax(-1, Kind::Float);
            let ce: Vec<f32> =
                Vec::try_from(-logp.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1)).unwrap();
            let uniform: Vec<f32> = Vec::try_from(-logp.mean_dim(1, false, Kind::Float)).unwrap();
            let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let want = match k {
                0 => mean(&ce),
                1 => 0.8 * mean(&ce) + 0.2 * mean(&uniform),
                _ => {
                    let w: Vec<f64> = [0usize, 1, 1, 3]
                        .iter()
                        .map(|&y| weights[y] as f64)
                        .collect();
                    let num: f64 = w.iter().zip(&ce).map(|(w, &l)| w * l as f64).sum();
                    num / w.iter().sum::<f64>()
                }
            };
            let got = out.total.double_value(&[]);
            assert!((got - want).abs() < 1e-5, "option {k}: {got} vs {want}");
        }
    });
}

/// Three steps of each optimiser on the same parameters and gradients as `torch.optim` (the
/// `.venv` PyTorch): AdamW (fused and loop), Adam with L2 decay, Nesterov SGD with decay, each
/// under the cosine schedule's changing learning rate. Agreement within 1e-5 (fp32 rounding).
#[test]
fn optimisers_match_torch_optim() {
    let Some(python) = python("optimisers_match_torch_optim") else {
        return;
    };
    let cases = [
        ("adamw", OptimizerKind::Adamw, true),
        ("adamw", OptimizerKind::Adamw, false),
        ("adam", OptimizerKind::Adam, true),
        ("sgd", OptimizerKind::Sgd, true),
    ];
    let start = [0.5f32, -1.0, 2.0, 0.25];
    let coeffs = [1.0f32, -2.0, 0.5, 3.0];
    let lrs = [0.1, 0.05, 0.02];
    for (name, kind, fused) in cases {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&start));
        let t = TrainSection {
            optimizer: kind,
            lr: lrs[0],
            weight_decay: 0.1,
            momentum: 0.9,
            fused_adam: fused,
            ..TrainSection::default()
        };
        let mut opt = train::optim::Optimizer::new(&vs, &t);
        for lr in lrs {
            opt.set_lr(lr);
            // A loss with a gradient that depends on the weights: Σ c·w + ½ Σ w³.
            let loss = (&w * Tensor::from_slice(&coeffs)).sum(Kind::Float)
                + w.pow_tensor_scalar(3).sum(Kind::Float) * 0.5;
            opt.zero_grad();
            loss.backward();
            opt.step().unwrap();
        }
        let got: Vec<f32> = Vec::try_from(&w.detach()).unwrap();
        let script = format!(
            r#"
import torch, json
w = torch.tensor({start:?}, requires_grad=True)
c = torch.tensor({coeffs:?})
opt = {{"adamw": lambda: torch.optim.AdamW([w], lr=0.1, weight_decay=0.1),
       "adam": lambda: torch.optim.Adam([w], lr=0.1, weight_decay=0.1),
       "sgd": lambda: torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)}}["{name}"]()
for lr in {lrs:?}:
    for g in opt.param_groups: g["lr"] = lr
    opt.zero_grad()
    ((w * c).sum() + 0.5 * (w ** 3).sum()).backward()
    opt.step()
print(json.dumps(w.detach().tolist()))
"#
        );
        let out = stdout_of_success(std::process::Command::new(&python).args(["-c", &script]));
        let want: Vec<f32> = serde_json::from_str(out.trim()).unwrap();
        for (g, e) in got.iter().zip(&want) {
            assert!(
                (g - e).abs() < 1e-5,
                "{name} fused {fused}: {got:?} vs torch {want:?}"
            );
        }
    }
}

/// A run with every training option at once — the CNN baseline, Nesterov SGD, warmup then cosine,
/// label smoothing, class-balanced loss, gradient clipping, rotation, flip averaging — trains,
/// records its settings in run.json and its per-step learning rate in the metrics, scores through
/// the same path as MGLN, and an interrupted run resumes to exactly the uninterrupted metrics
/// (the SGD momentum buffers are in the checkpoint). In a process of its own: the CNN's dropout
/// draws from libtorch's process-global generator, which parallel tests reseed.
#[test]
fn every_training_option_trains_is_recorded_and_resumes_exactly() {
    if !in_own_process("presets::every_training_option_trains_is_recorded_and_resumes_exactly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 6, 2, 4);
    let mut cfg = small_experiment(&cache, &dir.path().join("runs"), 3);
    cfg.folds = Some(vec![1]);
    cfg.model.kind = ModelKind::Cnn;
    cfg.model.width = 0.25;
    let t = &mut cfg.train;
    t.optimizer = OptimizerKind::Sgd;
    t.lr = 0.05;
    t.schedule = Schedule::Cosine;
    t.warmup_epochs = 1.0;
    t.label_smoothing = 0.1;
    t.class_balance = ClassBalance::Loss;
    t.grad_clip = 1.0;
    t.rotate = 10.0;
    t.tta_flip = true;
    let a = run_experiment(&cfg, opts("a")).unwrap();
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.dir.join("run.json")).unwrap()).unwrap();
    let r = &run["training"];
    assert_eq!(r["model_kind"], "cnn");
    assert_eq!(r["optimizer"], "sgd");
    assert_eq!(r["schedule"], "cosine");
    assert_eq!(r["class_balance"], "loss");
    assert_eq!(r["tta_flip"], true);
    assert_eq!(r["augment"]["rotate_degrees"], 10.0);
    let metrics = train::outputs::read_metrics(&a.dir).unwrap();
    assert_eq!(metrics.len(), 3);
    // 12 training samples in batches of 8: the last step of epoch e is at e + 1/2.
    for m in &metrics {
        let want = train::optim::learning_rate(&cfg.train, (m.epoch - 1) as f64 + 0.5);
        assert!(
            (m.lr - want).abs() < 1e-12,
            "epoch {}: lr {} vs {want}",
            m.epoch,
            m.lr
        );
    }
    let scored = score_fold(&cfg, &a.dir, 1);
    assert_eq!(scored.len(), 12);
    for s in &scored {
        let total: f32 = s.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
    }
    let c_dir = run_stopped_after(&cfg, "c", None, 1);
    let mut o = opts("c");
    o.resume = Some(c_dir);
    let c = run_experiment(&cfg, o).unwrap();
    assert_eq!(
        strip(train::outputs::read_metrics(&c.dir).unwrap()),
        strip(metrics)
    );
}
