//! SGD with Nesterov momentum (`train.optimizer = "sgd"`), with its state for the checkpoint.

use crate::{Result, TrainError};
use std::path::Path;
use tch::{nn, Tensor};

/// SGD with Nesterov momentum as `torch.optim.SGD(momentum=μ, nesterov=True)`: d = g + wd·p;
/// b ← μ·b + d (b = d at the first step); p ← p − lr·(d + μ·b).
pub struct Sgd {
    /// Learning rate (changed by the schedule).
    pub lr: f64,
    momentum: f64,
    weight_decay: f64,
    step: i64,
    /// (name, variable, momentum buffer, lr scale), sorted by name.
    pub(super) slots: Vec<(String, Tensor, Tensor, f64)>,
}

impl Sgd {
    /// Nesterov SGD over every trainable variable of `vs`.
    pub fn new(vs: &nn::VarStore, lr: f64, momentum: f64, weight_decay: f64) -> Sgd {
        Sgd {
            lr,
            momentum,
            weight_decay,
            step: 0,
            slots: super::trainable_slots(vs)
                .into_iter()
                .map(|(n, t)| {
                    let b = t.zeros_like().detach();
                    (n, t, b, 1.0)
                })
                .collect(),
        }
    }

    /// Steps the variables `is_trunk` names at `lr_scale × lr`. (A buffer that starts at zero
    /// when a frozen trunk joins gets b = d, as at a first step.)
    pub fn with_trunk_scale(mut self, is_trunk: &dyn Fn(&str) -> bool, lr_scale: f64) -> Sgd {
        for (n, _, _, scale) in &mut self.slots {
            if is_trunk(n) {
                *scale = lr_scale;
            }
        }
        self
    }

    /// One update from the current gradients (variables without a gradient are left alone).
    pub fn step(&mut self) {
        self.step += 1;
        let (mu, wd, lr, first) = (self.momentum, self.weight_decay, self.lr, self.step == 1);
        tch::no_grad(|| {
            for (_, p, b, scale) in &mut self.slots {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if wd != 0.0 { &g + &*p * wd } else { g };
                if first {
                    b.copy_(&d);
                } else {
                    let _ = b.g_mul_scalar_(mu).g_add_(&d);
                }
                let _ = p.g_sub_(&((d + &*b * mu) * (lr * *scale)));
            }
        });
    }

    pub(super) fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("sgd.step".to_string(), Tensor::from(self.step))];
        for (n, _, b, _) in &self.slots {
            out.push((format!("sgd.b.{n}"), b.shallow_clone()));
        }
        out
    }

    pub(super) fn load_state(&mut self, named: &[(String, Tensor)], file: &Path) -> Result<()> {
        let find = |k: &str| named.iter().find(|(n, _)| n == k).map(|(_, t)| t);
        let bad = |reason: String| TrainError::Checkpoint {
            path: file.to_path_buf(),
            reason,
        };
        self.step = find("sgd.step")
            .ok_or_else(|| bad("no sgd.step (a checkpoint of another optimiser?)".into()))?
            .int64_value(&[]);
        tch::no_grad(|| {
            for (n, _, b, _) in &mut self.slots {
                let src =
                    find(&format!("sgd.b.{n}")).ok_or_else(|| bad(format!("no sgd.b.{n}")))?;
                if src.size() != b.size() {
                    return Err(bad(format!("sgd.b.{n}: shape {:?}", src.size())));
                }
                b.copy_(&src.to_device(b.device()));
            }
            Ok(())
        })
    }
}
