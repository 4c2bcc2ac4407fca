//! Adam whose state (step count, first and second moments) the project owns, so that it can be
//! saved in a checkpoint and restored exactly (tch's optimizer does not expose its state). The
//! update runs either as libtorch's fused kernel over all parameters at once (the default; the
//! kernel of `torch.optim.Adam(fused=True)`, on CPU and CUDA) or as a loop of tensor operations
//! per parameter; both are pinned to `torch.optim.Adam` by the oracle tests.

use crate::{Result, TrainError};
use std::path::Path;
use tch::{nn, Tensor};

/// Adam with decoupled-from-nothing (L2) weight decay, as `torch.optim.Adam`.
pub struct Adam {
    /// Learning rate (changed by the schedule).
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    /// AdamW: the decay multiplies the weights before the step instead of entering the gradient.
    decoupled: bool,
    step: i64,
    fused: bool,
    /// The step number as a float32 scalar on each parameter device, for the fused kernel:
    /// incremented there, so that no step uploads it from the host (an upload from pageable
    /// memory waits for the device).
    step_on_device: Vec<(tch::Device, Tensor)>,
    /// (name, variable, m, v), sorted by name.
    slots: Vec<(String, Tensor, Tensor, Tensor)>,
}

impl Adam {
    /// Adam over every trainable variable of `vs` (β = 0.9, 0.999; ε = 1e-8), fused kernel.
    pub fn new(vs: &nn::VarStore, lr: f64, weight_decay: f64) -> Adam {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(n, t)| {
                let m = t.zeros_like().detach();
                let v = t.zeros_like().detach();
                (n, t, m, v)
            })
            .collect();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled: false,
            step: 0,
            fused: true,
            step_on_device: Vec::new(),
            slots,
        }
    }

    /// Chooses the update: libtorch's fused kernel (`true`, the default) or the per-parameter
    /// loop of tensor operations (`false`). The state is the same either way.
    pub fn with_fused(mut self, fused: bool) -> Adam {
        self.fused = fused;
        self
    }

    /// Makes this AdamW (`torch.optim.AdamW`): p ← p·(1 − lr·weight_decay) before each Adam step,
    /// whose gradient then carries no decay term.
    pub fn with_decoupled_weight_decay(mut self, decoupled: bool) -> Adam {
        self.decoupled = decoupled;
        self
    }

    /// The variables this optimiser updates, sorted by name.
    pub fn variables(&self) -> impl Iterator<Item = &Tensor> {
        self.slots.iter().map(|(_, p, _, _)| p)
    }

    /// Whether the fused kernel runs.
    pub fn is_fused(&self) -> bool {
        self.fused
    }

    /// Steps taken.
    pub fn steps(&self) -> i64 {
        self.step
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for (_, t, _, _) in &mut self.slots {
            t.zero_grad();
        }
    }

    /// One update from the current gradients (variables without a gradient are left alone).
    ///
    /// Errors: libtorch refusing the fused kernel's tensors.
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        if self.decoupled && self.weight_decay != 0.0 {
            let keep = 1.0 - self.lr * self.weight_decay;
            tch::no_grad(|| {
                for (_, p, _, _) in &mut self.slots {
                    if p.grad().defined() {
                        let _ = p.g_mul_scalar_(keep);
                    }
                }
            });
        }
        if self.fused {
            return self.fused_step();
        }
        let (b1, b2) = (self.beta1, self.beta2);
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        let step_size = self.lr / bc1;
        tch::no_grad(|| {
            for (_, p, m, v) in &mut self.slots {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay != 0.0 && !self.decoupled {
                    &g + &*p * self.weight_decay
                } else {
                    g
                };
                let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let denom = (v.sqrt() / bc2.sqrt()) + self.eps;
                let _ = p.g_sub_(&(&*m / denom * step_size));
            }
        });
        Ok(())
    }

    /// One call of libtorch's `_fused_adam_` per device over the parameters that have a gradient.
    fn fused_step(&mut self) -> Result<()> {
        let grads: Vec<Tensor> = self.slots.iter().map(|(_, p, _, _)| p.grad()).collect();
        let mut devices: Vec<tch::Device> = Vec::new();
        for (_, p, _, _) in &self.slots {
            if !devices.contains(&p.device()) {
                devices.push(p.device());
            }
        }
        for device in devices {
            // Every device's copy advances each step, used or not.
            let step = match self.step_on_device.iter_mut().find(|(d, _)| *d == device) {
                Some((_, t)) => {
                    let _ = t.g_add_scalar_(1.0);
                    t.shallow_clone()
                }
                None => {
                    let t = Tensor::from(self.step as f32).to_device(device);
                    self.step_on_device.push((device, t.shallow_clone()));
                    t
                }
            };
            let live: Vec<usize> = (0..self.slots.len())
                .filter(|&i| grads[i].defined() && self.slots[i].1.device() == device)
                .collect();
            if live.is_empty() {
                continue;
            }
            let params: Vec<&Tensor> = live.iter().map(|&i| &self.slots[i].1).collect();
            let live_grads: Vec<&Tensor> = live.iter().map(|&i| &grads[i]).collect();
            let exp_avgs: Vec<&Tensor> = live.iter().map(|&i| &self.slots[i].2).collect();
            let exp_avg_sqs: Vec<&Tensor> = live.iter().map(|&i| &self.slots[i].3).collect();
            tch::no_grad(|| {
                crate::torch_ext::fused_adam(
                    &params,
                    &live_grads,
                    &exp_avgs,
                    &exp_avg_sqs,
                    &step,
                    self.lr,
                    (self.beta1, self.beta2),
                    if self.decoupled {
                        0.0
                    } else {
                        self.weight_decay
                    },
                    self.eps,
                )
            })?;
        }
        Ok(())
    }

    /// The state as named tensors (`adam.m.<var>`, `adam.v.<var>`, `adam.step`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("adam.step".to_string(), Tensor::from(self.step))];
        for (n, _, m, v) in &self.slots {
            out.push((format!("adam.m.{n}"), m.shallow_clone()));
            out.push((format!("adam.v.{n}"), v.shallow_clone()));
        }
        out
    }

    /// Restores a state written by [`Adam::state`].
    ///
    /// Errors: a missing or differently shaped tensor.
    pub fn load_state(&mut self, named: &[(String, Tensor)], file: &Path) -> Result<()> {
        let find = |k: &str| named.iter().find(|(n, _)| n == k).map(|(_, t)| t);
        let bad = |reason: String| TrainError::Checkpoint {
            path: file.to_path_buf(),
            reason,
        };
        self.step = find("adam.step")
            .ok_or_else(|| bad("no adam.step".into()))?
            .int64_value(&[]);
        self.step_on_device.clear();
        tch::no_grad(|| -> Result<()> {
            for (n, _, m, v) in &mut self.slots {
                for (kind, dst) in [("m", &mut *m), ("v", &mut *v)] {
                    let src = find(&format!("adam.{kind}.{n}"))
                        .ok_or_else(|| bad(format!("no adam.{kind}.{n}")))?;
                    if src.size() != dst.size() {
                        return Err(bad(format!("adam.{kind}.{n}: shape {:?}", src.size())));
                    }
                    dst.copy_(&src.to_device(dst.device()));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// One step equals the closed form of torch.optim.Adam's first update, p − lr·sign(g), with
    /// the fused kernel and with the loop; the state round-trips.
    #[test]
    fn first_step_matches_the_closed_form() {
        for fused in [true, false] {
            let vs = nn::VarStore::new(Device::Cpu);
            let w = vs.root().var("w", &[3], nn::Init::Const(1.0));
            let mut opt = Adam::new(&vs, 0.1, 0.0).with_fused(fused);
            let loss = (&w * Tensor::from_slice(&[1.0f32, -2.0, 0.5])).sum(Kind::Float);
            opt.zero_grad();
            loss.backward();
            opt.step().unwrap();
            let got: Vec<f32> = Vec::try_from(&w.detach()).unwrap();
            for (g, want) in got.iter().zip([0.9f32, 1.1, 0.9]) {
                assert!((g - want).abs() < 1e-5, "fused {fused}: {got:?}");
            }
            // State round trip.
            let state = opt.state();
            let mut other = Adam::new(&vs, 0.1, 0.0);
            other.load_state(&state, Path::new("mem")).unwrap();
            assert_eq!(other.steps(), 1);
        }
    }
}
