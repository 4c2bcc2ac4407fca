//! Training against FER+ votes (FERPlus's soft modes): the losses' known answers, the soft loss
//! reduced to the label loss on one-hot targets, the draws, and the refusals. What each mode
//! learns is asserted in `learning.rs`.

use crate::common::*;
use tch::{nn, Device, Kind, Tensor};
use train::config::{Branches, Deform};
use train::model::{ModelInput, Network};
use train::trainer::{mgln_loss, run_experiment, Mixup, SoftLoss, SoftTarget};

#[test]
fn soft_losses_known_answers() {
    // softmax([0, ln 2, 0]) = [1/4, 1/2, 1/4].
    let s = Tensor::from_slice(&[0f32, 2f32.ln(), 0.0, 0.0, 0.0, 0.0]).view([2, 3]);
    let t = Tensor::from_slice(&[0.5f32, 0.5, 0.0, 1.0, 0.0, 0.0]).view([2, 3]);
    let ce = SoftTarget {
        loss: SoftLoss::CrossEntropy,
        target: t.shallow_clone(),
    };
    // Row 0: −(½ ln ¼ + ½ ln ½) = 1.5 ln 2; row 1: uniform, −ln ⅓ = ln 3. Mean of both.
    let want = (1.5 * 2f64.ln() + 3f64.ln()) / 2.0;
    assert!((ce.loss_of(&s, None).double_value(&[]) - want).abs() < 1e-6);
    // With mixup partners swapped: row 0 against [1, 0, 0] (−ln ¼), row 1 against [½, ½, 0]
    // (−(½ ln ⅓ + ½ ln ⅓) = ln 3).
    let perm = Tensor::from_slice(&[1i64, 0]);
    let want = (4f64.ln() + 3f64.ln()) / 2.0;
    assert!((ce.loss_of(&s, Some(&perm)).double_value(&[]) - want).abs() < 1e-6);
    // FERPlus's multi_target: −log max_k t_k p_k. Row 0: max(½·¼, ½·½, 0) = ¼ → ln 4;
    // row 1: ⅓ → ln 3.
    let mt = SoftTarget {
        loss: SoftLoss::MaxProduct,
        target: t,
    };
    let want = (4f64.ln() + 3f64.ln()) / 2.0;
    assert!((mt.loss_of(&s, None).double_value(&[]) - want).abs() < 1e-6);
}

/// On one-hot targets, the soft cross-entropy is the label cross-entropy: the same total loss and
/// the same gradients through the whole network, with mixup.
#[test]
fn soft_cross_entropy_on_one_hot_targets_is_the_label_loss() {
    let c = small_model(Branches::Both, Deform::Channel);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = Network::new(&vs.root(), &c).unwrap();
    let mut rng = shard::KeyedRng::new(&[7, 1]);
    let mut draw = |shape: &[i64]| {
        let n: i64 = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        Tensor::from_slice(&v).view(shape)
    };
    let b = 3i64;
    let face = draw(&[b, 3, c.face.0, c.face.1]);
    let parts = c.parts.map(|(h, w)| draw(&[b, c.frames, 3, h, w]));
    let labels = Tensor::from_slice(&[4i64, 0, 2]);
    let one_hot = labels.one_hot(c.classes).to_kind(Kind::Float);
    let mix = Mixup {
        lambda: 0.7,
        perm: Tensor::from_slice(&[2i64, 0, 1]),
    };
    let run = |soft: Option<&SoftTarget>| {
        for v in vs.trainable_variables() {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let input = ModelInput {
            face: face.shallow_clone(),
            parts: parts.each_ref().map(|t| t.shallow_clone()),
        };
        let l = mgln_loss(
            &m,
            input,
            &labels,
            soft,
            Some(&mix),
            &Default::default(),
            false,
        )
        .unwrap();
        l.total.backward();
        let grads: Vec<Tensor> = vs
            .trainable_variables()
            .iter()
            .map(|v| v.grad().copy())
            .collect();
        (l.total.double_value(&[]), grads)
    };
    let (hard, gh) = run(None);
    let soft = SoftTarget {
        loss: SoftLoss::CrossEntropy,
        target: one_hot,
    };
    let (sl, gs) = run(Some(&soft));
    assert!(
        (hard - sl).abs() < 1e-6 * hard.abs().max(1.0),
        "{hard} vs {sl}"
    );
    for (a, b) in gh.iter().zip(&gs) {
        let d = (a - b).abs().max().double_value(&[]);
        let scale = a.abs().max().double_value(&[]).max(1e-12);
        assert!(
            d <= 1e-5 * scale,
            "gradient differs by {d} (largest {scale})"
        );
    }
}

fn ferplus_experiment(dir: &std::path::Path, mode: &str, epochs: usize) -> train::ExperimentConfig {
    let cache = synthetic_cache_with_votes(dir, 8, 16, 2, 8, Some(mode));
    let mut cfg = small_experiment(&cache, &dir.join("runs"), epochs);
    cfg.folds = Some(vec![0]);
    cfg.train.mixup_alpha = 0.0;
    cfg
}

/// `probability` draws its labels from the votes keyed by (seed, fold, epoch, record): a second
/// run gives the same metrics, and the draws are not the labels (its losses differ from
/// `crossentropy`'s and from the label run's).
#[test]
fn probability_draws_are_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ferplus_experiment(dir.path(), "probability", 2);
    let a = run_experiment(&cfg, opts("a")).unwrap();
    let b = run_experiment(&cfg, opts("b")).unwrap();
    let ma = strip(train::outputs::read_metrics(&a.dir).unwrap());
    assert_eq!(ma, strip(train::outputs::read_metrics(&b.dir).unwrap()));
    let other = tempfile::tempdir().unwrap();
    let cfg = ferplus_experiment(other.path(), "majority", 2);
    let m = run_experiment(&cfg, opts("m")).unwrap();
    let mm = strip(train::outputs::read_metrics(&m.dir).unwrap());
    assert_ne!(ma[0].loss, mm[0].loss, "probability trained on the labels");
}

/// A label mode (majority) trains on the labels, and a soft-mode cache whose records carry no
/// votes (built before format 1.1) is refused before any run directory is made, saying why.
#[test]
fn label_modes_use_labels_and_votes_missing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ferplus_experiment(dir.path(), "majority", 1);
    let out = run_experiment(&cfg, opts("m")).unwrap();
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["targets"], "labels");

    // The same cache layout without votes, but keyed as a crossentropy build.
    let other = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(other.path(), 8, 4, 2, 2);
    let manifest = cache.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["key_ingredients"]["config"]["ferplus_mode"] = serde_json::json!("crossentropy");
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let mut cfg = small_experiment(&cache, &other.path().join("runs"), 1);
    cfg.folds = Some(vec![0]);
    let e = match run_experiment(&cfg, opts("x")) {
        Ok(_) => panic!("a soft mode without votes must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("rebuild") && e.contains("crossentropy"), "{e}");
    assert!(
        !other.path().join("runs").exists(),
        "no run directory for a refused run"
    );
}

/// `probability`'s draws follow the distribution: 2/3 and 1/3 over 6,000 records.
#[test]
fn probability_draws_follow_the_vote_distribution() {
    let mut d = vec![0f32; 8];
    d[3] = 2.0 / 3.0;
    d[4] = 1.0 / 3.0;
    let t = train::trainer::VoteTargets {
        mode: shard::votes::FerPlusMode::Probability,
        distribution: (0..6000u64).map(|r| (r, d.clone())).collect(),
    };
    let records: Vec<u64> = (0..6000).collect();
    let train::trainer::BatchTarget::Labels(l) = t.batch(&records, [0, 0, 1], Device::Cpu).unwrap()
    else {
        panic!("probability draws labels")
    };
    let l = Vec::<i64>::try_from(&l).unwrap();
    let threes = l.iter().filter(|&&x| x == 3).count() as f64;
    let fours = l.iter().filter(|&&x| x == 4).count() as f64;
    assert_eq!(threes + fours, 6000.0);
    // Binomial(6000, 2/3): sd 36.5; 5 sd.
    assert!((threes - 4000.0).abs() < 183.0, "{threes} threes");
}
