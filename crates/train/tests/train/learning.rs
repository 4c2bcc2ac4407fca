//! Tests that assert that training learns. Each one:
//! * trains on a task where learning is unambiguous: each class a stripe texture of its own
//!   (`common::class_texture`; plus per-subject brightness and noise), full batch (one Adam step per
//!   epoch over the whole training set, so batch-norm statistics are the set's), no augmentation
//!   and no mixup, enough steps;
//! * asserts what the setting means, with a bound far from what a broken trainer gives;
//! * runs under every seed of `FER_LEARNING_SEEDS` (default 0) and reports each bound through
//!   [`testkit::LearningCheck`]. `make test-learning` runs them under seeds 0–4 and every CPU
//!   kernel set libtorch offers on the host (`ATEN_CPU_CAPABILITY` = default, avx2, avx512: on
//!   another CPU the kernels are another seed) and prints the worst margins.
//!
//! The worst values written beside each bound were observed with `make test-learning` on an Intel
//! Xeon with AVX-512 (2 cores): 5 seeds × {DEFAULT, AVX2, AVX512}, 15 runs per bound.

use crate::common::*;
use testkit::{learning_seeds, LearningCheck};
use train::outputs::ScoredSample;
use train::trainer::run_experiment;
use train::ExperimentConfig;

/// Full-batch, augmentation-free settings of a learning test, seeded.
fn learning_config(
    cache: &std::path::Path,
    runs: &std::path::Path,
    epochs: usize,
    full_batch: usize,
    seed: u64,
) -> ExperimentConfig {
    let mut cfg = small_experiment(cache, runs, epochs);
    cfg.folds = Some(vec![0]);
    cfg.train.seed = seed;
    cfg.train.batch = full_batch;
    cfg.train.mixup_alpha = 0.0;
    cfg.train.shift = 0.0;
    cfg.train.scale = 0.0;
    cfg.train.flip = false;
    cfg.train.eval_every = epochs;
    // The SSM's batch norm (torchvision's vgg16_bn): without it this small network (width 1/16)
    // stays at chance for hundreds of steps on some seeds and kernel sets, its ReLUs dead (a loss
    // of exactly ln C) — the optimisation problem of the paper's un-normalised network, not what
    // these tests are about.
    cfg.model.ssm_batchnorm = true;
    cfg
}

/// Held-out subjects of a 3-class k-fold run (8 training subjects, 48 samples; 4 test subjects,
/// 24 samples): chance is 1/3; the fused prediction must be right on more than 80 % (worst seen:
/// 1.000, margin 0.200), and the last epoch's training loss (GFM + PBM) under half of chance,
/// 0.5 · 2 · ln 3 = 1.10 (worst seen: 0.918, margin 0.181, DEFAULT kernels, seed 4).
#[test]
fn learns_held_out_subjects_in_kfold() {
    const EPOCHS: usize = 100;
    let mut check = LearningCheck::new("learns_held_out_subjects_in_kfold");
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic_cache(dir.path(), 3, 12, 3, 6);
    for seed in learning_seeds() {
        let cfg = learning_config(&cache, &dir.path().join("runs"), EPOCHS, 48, seed);
        let out = run_experiment(&cfg, opts(&format!("seed{seed}"))).unwrap();
        let f = &out.folds[0];
        assert_eq!(f.confusion.iter().flatten().sum::<u64>(), 24);
        let last = train::outputs::read_metrics(&out.dir).unwrap();
        let last = last.last().expect("every epoch recorded");
        check.at_least("held_out_accuracy", seed, f.accuracy, 0.8);
        check.at_most("training_loss", seed, last.loss, 0.5 * 2.0 * 3f64.ln());
    }
    check.finish();
}

/// The FER+ soft-target cache: 8 classes, 16 subjects in 2 folds, 8 samples each; every record
/// votes 6 for its label, 3 for the next class, 1 for the one after (a single vote, which every
/// FERPlus mode drops), so the kept-vote distribution is 2/3 label, 1/3 next class.
fn votes_cache(dir: &std::path::Path, mode: &str) -> std::path::PathBuf {
    synthetic_cache_with_votes(dir, 8, 16, 2, 8, Some(mode))
}

/// What the predictions on fold 0's held-out subjects (64 samples) say about the votes.
struct VoteFit {
    /// Arg-max = the label (chance 1/8).
    accuracy: f64,
    /// Arg-max ∈ {label, next class} (chance 1/4).
    among_kept: f64,
    /// Mean probability on the two kept classes.
    kept_mass: f64,
    /// Mean of p(next) / (p(label) + p(next)): 1/3 for a model that predicts the vote
    /// distribution, about 0 for one trained on the labels alone.
    next_share: f64,
}

fn vote_fit(scored: &[ScoredSample]) -> VoteFit {
    let n = scored.len() as f64;
    let mut fit = VoteFit {
        accuracy: 0.0,
        among_kept: 0.0,
        kept_mass: 0.0,
        next_share: 0.0,
    };
    for s in scored {
        let (y, next) = (s.label as usize, (s.label as usize + 1) % 8);
        let (p, q) = (s.probabilities[y] as f64, s.probabilities[next] as f64);
        fit.accuracy += (s.predicted as usize == y) as u8 as f64 / n;
        fit.among_kept +=
            (s.predicted as usize == y || s.predicted as usize == next) as u8 as f64 / n;
        fit.kept_mass += (p + q) / n;
        fit.next_share += q / (p + q).max(1e-12) / n;
    }
    fit
}

/// One full-batch run (64 training samples) in `mode` per seed; the fit of its fold-0 model.
fn soft_runs(mode: &str, epochs: usize, lr: f64) -> Vec<(u64, VoteFit)> {
    let dir = tempfile::tempdir().unwrap();
    let cache = votes_cache(dir.path(), mode);
    learning_seeds()
        .into_iter()
        .map(|seed| {
            let mut cfg = learning_config(&cache, &dir.path().join("runs"), epochs, 64, seed);
            cfg.train.lr = lr;
            let out = run_experiment(&cfg, opts(&format!("seed{seed}"))).unwrap();
            let run_json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.dir.join("run.json")).unwrap()).unwrap();
            assert_eq!(run_json["targets"], mode, "run.json names the targets");
            let scored = score_fold(&cfg, &out.dir, 0);
            assert_eq!(scored.len(), 64);
            let fit = vote_fit(&scored);
            println!(
                "{mode} seed {seed}: accuracy {:.3}, among kept {:.3}, kept mass {:.3}, \
                 next share {:.3}",
                fit.accuracy, fit.among_kept, fit.kept_mass, fit.next_share
            );
            (seed, fit)
        })
        .collect()
}

/// What `crossentropy` and `probability` mean, asserted on held-out subjects: the label wins
/// (accuracy above `accuracy`, chance 12.5 %), the two kept classes hold most of the probability
/// (above `kept_mass`), and the next class keeps a share of it that a label-trained model does not:
/// p(next) / (p(label) + p(next)) between 0.15 and 0.5, around the votes' 1/3.
fn predicts_the_vote_distribution(test: &str, mode: &str, accuracy: f64, kept_mass: f64) {
    let mut check = LearningCheck::new(test);
    for (seed, fit) in soft_runs(mode, 150, 0.005) {
        check.at_least("held_out_accuracy", seed, fit.accuracy, accuracy);
        check.at_least("kept_mass", seed, fit.kept_mass, kept_mass);
        check.at_least("next_share", seed, fit.next_share, 0.15);
        check.at_most("next_share", seed, fit.next_share, 0.5);
    }
    check.finish();
}

/// `crossentropy` trains against the distribution (2/3, 1/3). Worst seen: accuracy 1.000 (bound
/// 0.6, margin 0.400), kept mass 0.864 (bound 0.5, margin 0.364), next share 0.281–0.379 (margins
/// 0.131 and 0.121).
#[test]
fn learns_crossentropy_targets_as_the_vote_distribution() {
    predicts_the_vote_distribution(
        "learns_crossentropy_targets_as_the_vote_distribution",
        "crossentropy",
        0.6,
        0.5,
    );
}

/// `probability` draws a label from the votes for every sample in every epoch: what it learns is
/// the distribution, as `crossentropy` does, only noisier. Worst seen: accuracy 0.875 (bound 0.6,
/// margin 0.275), kept mass 0.709 (bound 0.5, margin 0.209), next share 0.321–0.385 (margins 0.171
/// and 0.115) — where a model trained on the labels has about 0.
#[test]
fn learns_probability_draws_as_the_vote_distribution() {
    predicts_the_vote_distribution(
        "learns_probability_draws_as_the_vote_distribution",
        "probability",
        0.6,
        0.5,
    );
}

/// `multi_target` counts any kept emotion as right (FERPlus's −log max_k t_k·p_k): the
/// prediction is one of the two kept classes on held-out subjects (> 60 %, chance 25 %; worst seen
/// 0.750, margin 0.150), which hold most of the probability (> 0.6; worst seen 0.748, margin
/// 0.147; both DEFAULT kernels, seed 3: 6 of the 8 classes inside the kept pair).
#[test]
fn learns_multi_target_as_any_kept_emotion() {
    let mut check = LearningCheck::new("learns_multi_target_as_any_kept_emotion");
    for (seed, fit) in soft_runs("multi_target", 150, 0.005) {
        check.at_least("among_kept", seed, fit.among_kept, 0.6);
        check.at_least("kept_mass", seed, fit.kept_mass, 0.6);
    }
    check.finish();
}
