//! The optimisers a run can choose ([`OptimizerKind`]) behind one type whose state goes into the
//! checkpoint, with the trunk as a group of its own when it steps at another rate or starts
//! frozen.
//!
//! * [`adam`] — Adam and AdamW (fused kernel or loop), [`sgd`] — Nesterov SGD;
//! * [`schedule`] — the learning-rate schedules; [`clip`] — gradient clipping.

pub mod adam;
pub mod clip;
pub mod schedule;
pub mod sgd;

pub use adam::Adam;
pub use schedule::learning_rate;
pub use sgd::Sgd;

use crate::config::{OptimizerKind, TrainSection};
use crate::Result;
use std::path::Path;
use tch::{nn, Tensor};

/// Every trainable variable of `vs` (name, variable), sorted by name: what each optimiser
/// keeps its state for, in the order its checkpoint names them.
pub(crate) fn trainable_slots(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The optimiser of a run: Adam, AdamW ([`Adam`] with decoupled decay) or Nesterov SGD.
pub enum Optimizer {
    /// Adam or AdamW.
    Adam(Adam),
    /// SGD with Nesterov momentum.
    Sgd(Sgd),
}

impl Optimizer {
    /// The optimiser `t` asks for over every trainable variable of `vs`, at `t.lr`.
    pub fn new(vs: &nn::VarStore, t: &TrainSection) -> Optimizer {
        match t.optimizer {
            OptimizerKind::Adam | OptimizerKind::Adamw => Optimizer::Adam(
                Adam::new(vs, t.lr, t.weight_decay)
                    .with_fused(t.fused_adam)
                    .with_decoupled_weight_decay(t.optimizer == OptimizerKind::Adamw),
            ),
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd::new(vs, t.lr, t.momentum, t.weight_decay)),
        }
    }

    /// Splits off the trunk (every variable `is_trunk` names) when `t` asks for it
    /// (`trunk_lr_factor` ≠ 1 or `freeze_trunk_epochs` > 0): it then steps at
    /// `trunk_lr_factor × lr`, and with Adam counts its own steps. Otherwise unchanged, so that
    /// runs without these settings keep their state and arithmetic exactly.
    pub fn with_trunk(self, t: &TrainSection, is_trunk: &dyn Fn(&str) -> bool) -> Optimizer {
        if t.trunk_lr_factor == 1.0 && t.freeze_trunk_epochs == 0 {
            return self;
        }
        match self {
            Optimizer::Adam(a) => Optimizer::Adam(a.with_trunk_group(is_trunk, t.trunk_lr_factor)),
            Optimizer::Sgd(s) => Optimizer::Sgd(s.with_trunk_scale(is_trunk, t.trunk_lr_factor)),
        }
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Adam(a) => a.lr,
            Optimizer::Sgd(s) => s.lr,
        }
    }

    /// Sets the learning rate of the next step.
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Adam(a) => a.lr = lr,
            Optimizer::Sgd(s) => s.lr = lr,
        }
    }

    fn variables(&self) -> Vec<&Tensor> {
        match self {
            Optimizer::Adam(a) => a.variables().collect(),
            Optimizer::Sgd(s) => s.slots.iter().map(|(_, p, _, _)| p).collect(),
        }
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        match self {
            Optimizer::Adam(a) => a.zero_grad(),
            Optimizer::Sgd(s) => {
                for (_, t, _, _) in &mut s.slots {
                    t.zero_grad();
                }
            }
        }
    }

    /// Scales every gradient so that their norm as one vector is at most `max_norm`
    /// ([`clip::clip_grad_norm`]).
    pub fn clip_grad_norm(&mut self, max_norm: f64) {
        clip::clip_grad_norm(&self.variables(), max_norm);
    }

    /// One update from the current gradients.
    ///
    /// Errors: libtorch refusing the fused Adam kernel's tensors.
    pub fn step(&mut self) -> Result<()> {
        match self {
            Optimizer::Adam(a) => a.step(),
            Optimizer::Sgd(s) => {
                s.step();
                Ok(())
            }
        }
    }

    /// The state as named tensors (`adam.*` or `sgd.*`), for the checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        match self {
            Optimizer::Adam(a) => a.state(),
            Optimizer::Sgd(s) => s.state(),
        }
    }

    /// Restores a state written by [`Optimizer::state`].
    ///
    /// Errors: [`TrainError::Checkpoint`] for a missing or differently shaped tensor.
    pub fn load_state(&mut self, named: &[(String, Tensor)], file: &Path) -> Result<()> {
        match self {
            Optimizer::Adam(a) => a.load_state(named, file),
            Optimizer::Sgd(s) => s.load_state(named, file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn quadratic_step(opt: &mut Optimizer, w: &Tensor, coeffs: &[f32]) {
        let loss = (w * Tensor::from_slice(coeffs)).sum(Kind::Float);
        opt.zero_grad();
        loss.backward();
        opt.step().unwrap();
    }

    /// AdamW's first step is p·(1 − lr·wd) − lr·sign(g); Adam with the same decay puts it in the
    /// gradient instead, where the first step's normalisation hides it.
    #[test]
    fn adamw_decays_the_weights_apart_from_the_gradient() {
        for fused in [true, false] {
            for (kind, want) in [
                (OptimizerKind::Adamw, [1.0 * 0.95 - 0.1, 2.0 * 0.95 + 0.1]),
                (OptimizerKind::Adam, [1.0 - 0.1, 2.0 + 0.1]),
            ] {
                let vs = nn::VarStore::new(Device::Cpu);
                let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, 2.0]));
                let t = TrainSection {
                    optimizer: kind,
                    lr: 0.1,
                    weight_decay: 0.5,
                    fused_adam: fused,
                    ..TrainSection::default()
                };
                let mut opt = Optimizer::new(&vs, &t);
                quadratic_step(&mut opt, &w, &[1.0, -3.0]);
                let got: Vec<f32> = Vec::try_from(&w.detach()).unwrap();
                for (g, e) in got.iter().zip(want) {
                    assert!(
                        (*g as f64 - e).abs() < 1e-5,
                        "{kind:?} fused {fused}: {got:?}"
                    );
                }
            }
        }
    }

    /// Two Nesterov steps on a linear loss with gradient g: b₁ = g, p₁ = p₀ − lr·(1 + μ)·g;
    /// b₂ = (μ + 1)·g, p₂ = p₁ − lr·(g + μ·(μ + 1)·g). The state round-trips.
    #[test]
    fn nesterov_sgd_matches_its_closed_form() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[0.0f32, 0.0]));
        let t = TrainSection {
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            momentum: 0.9,
            ..TrainSection::default()
        };
        let mut opt = Optimizer::new(&vs, &t);
        for _ in 0..2 {
            quadratic_step(&mut opt, &w, &[1.0, -2.0]);
        }
        let got: Vec<f32> = Vec::try_from(&w.detach()).unwrap();
        let per_unit = -0.1 * (1.0 + 0.9) - 0.1 * (1.0 + 0.9 * 1.9);
        for (g, c) in got.iter().zip([1.0, -2.0]) {
            assert!((*g as f64 - per_unit * c).abs() < 1e-5, "{got:?}");
        }
        let mut other = Optimizer::new(&vs, &t);
        other.load_state(&opt.state(), Path::new("mem")).unwrap();
        assert_eq!(other.state().len(), opt.state().len());
        let adam = Optimizer::new(&vs, &TrainSection::default());
        let mut adam = adam;
        assert!(adam.load_state(&opt.state(), Path::new("mem")).is_err());
    }

    /// The trunk steps at `trunk_lr_factor × lr` (Adam, AdamW and SGD), and a trunk that had no
    /// gradient for a step (frozen) takes Adam's first step when it joins: p − lr·factor·sign(g),
    /// its bias correction counted from its own first step.
    #[test]
    fn the_trunk_steps_at_its_factor_and_counts_its_own_steps() {
        for kind in [
            OptimizerKind::Adam,
            OptimizerKind::Adamw,
            OptimizerKind::Sgd,
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let trunk = vs.root().var_copy("trunk", &Tensor::from_slice(&[0.0f32]));
            let head = vs.root().var_copy("head", &Tensor::from_slice(&[0.0f32]));
            let t = TrainSection {
                optimizer: kind,
                lr: 0.1,
                momentum: 0.0,
                trunk_lr_factor: 0.25,
                freeze_trunk_epochs: 1,
                epochs: 2,
                ..TrainSection::default()
            };
            let mut opt = Optimizer::new(&vs, &t).with_trunk(&t, &|n: &str| n == "trunk");
            let step = |opt: &mut Optimizer| {
                let loss = (&trunk * 2.0 + &head * 2.0).sum(Kind::Float);
                opt.zero_grad();
                loss.backward();
                opt.step().unwrap();
            };
            let value = |v: &Tensor| v.double_value(&[0]);
            // Frozen: the trunk has no gradient and stays where it is.
            let _ = trunk.set_requires_grad(false);
            step(&mut opt);
            assert_eq!(value(&trunk), 0.0, "{kind:?}");
            let head_first = value(&head);
            let _ = trunk.set_requires_grad(true);
            step(&mut opt);
            let want = match kind {
                // Adam's first step is lr·sign(g) whatever the step count of the others.
                OptimizerKind::Adam | OptimizerKind::Adamw => -0.1 * 0.25,
                // SGD without momentum: lr·factor·g.
                OptimizerKind::Sgd => -0.1 * 0.25 * 2.0,
            };
            assert!(
                (value(&trunk) - want).abs() < 1e-6,
                "{kind:?}: {}",
                value(&trunk)
            );
            assert!(
                (head_first - want / 0.25).abs() < 1e-6,
                "{kind:?}: {head_first}"
            );
        }
    }

    /// Clipping scales the whole gradient to the given norm and leaves a smaller one alone.
    #[test]
    fn clipping_bounds_the_global_norm() {
        for (max, want) in [(1.0, [0.6f32, 0.8]), (10.0, [3.0, 4.0])] {
            let vs = nn::VarStore::new(Device::Cpu);
            let w = vs.root().var_copy("w", &Tensor::from_slice(&[0.0f32, 0.0]));
            let mut opt = Optimizer::new(&vs, &TrainSection::default());
            let loss = (&w * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float);
            opt.zero_grad();
            loss.backward();
            opt.clip_grad_norm(max);
            let g: Vec<f32> = Vec::try_from(&w.grad()).unwrap();
            for (a, b) in g.iter().zip(want) {
                assert!((a - b).abs() < 1e-4, "max {max}: {g:?}");
            }
        }
    }
}
