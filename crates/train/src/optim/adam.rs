//! Adam whose state (step counts, first and second moments) the project owns, so that it can be
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
    fused: bool,
    /// The parameter groups: one over every variable, or the class heads and the trunk
    /// ([`Adam::with_trunk_group`]).
    groups: Vec<AdamGroup>,
}

/// Variables that step together at `lr_scale × lr`, counting their own steps (as
/// `torch.optim.Adam` counts a parameter's steps only when it has a gradient), so that a trunk
/// frozen for some epochs starts its bias correction at step 1 when it joins.
struct AdamGroup {
    /// Suffix of the group's step in the checkpoint state: "" (`adam.step`) or ".trunk".
    state_suffix: &'static str,
    lr_scale: f64,
    step: i64,
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
        let slots = super::trainable_slots(vs)
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
            fused: true,
            groups: vec![AdamGroup {
                state_suffix: "",
                lr_scale: 1.0,
                step: 0,
                step_on_device: Vec::new(),
                slots,
            }],
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

    /// Moves the variables `is_trunk` names into a group of their own that steps at
    /// `lr_scale × lr` and counts its own steps (`adam.step.trunk` in the state); the others
    /// (the class heads) stay in the first group.
    pub fn with_trunk_group(mut self, is_trunk: &dyn Fn(&str) -> bool, lr_scale: f64) -> Adam {
        let (trunk, heads): (Vec<_>, Vec<_>) = std::mem::take(&mut self.groups[0].slots)
            .into_iter()
            .partition(|(n, _, _, _)| is_trunk(n));
        self.groups[0].slots = heads;
        self.groups.push(AdamGroup {
            state_suffix: ".trunk",
            lr_scale,
            step: 0,
            step_on_device: Vec::new(),
            slots: trunk,
        });
        self
    }

    /// The variables this optimiser updates (group by group, each sorted by name).
    pub fn variables(&self) -> impl Iterator<Item = &Tensor> {
        self.groups
            .iter()
            .flat_map(|g| g.slots.iter().map(|(_, p, _, _)| p))
    }

    /// Steps taken (by the first group: every variable, or the class heads).
    pub fn steps(&self) -> i64 {
        self.groups[0].step
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for g in &mut self.groups {
            for (_, t, _, _) in &mut g.slots {
                t.zero_grad();
            }
        }
    }

    /// One update from the current gradients: every group with a gradient steps; variables
    /// without one (a frozen trunk's) are left alone.
    ///
    /// Errors: libtorch refusing the fused kernel's tensors.
    pub fn step(&mut self) -> Result<()> {
        let h = Hyper {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            // L2 in the gradient (Adam); AdamW's decay is applied to the weights below.
            l2: if self.decoupled {
                0.0
            } else {
                self.weight_decay
            },
        };
        for g in &mut self.groups {
            let grads: Vec<Tensor> = g.slots.iter().map(|(_, p, _, _)| p.grad()).collect();
            if !grads.iter().any(Tensor::defined) {
                continue;
            }
            g.step += 1;
            let lr = self.lr * g.lr_scale;
            if self.decoupled && self.weight_decay != 0.0 {
                let keep = 1.0 - lr * self.weight_decay;
                tch::no_grad(|| {
                    for ((_, p, _, _), grad) in g.slots.iter_mut().zip(&grads) {
                        if grad.defined() {
                            let _ = p.g_mul_scalar_(keep);
                        }
                    }
                });
            }
            if self.fused {
                g.fused_step(&grads, lr, &h)?;
            } else {
                g.loop_step(&grads, lr, &h);
            }
        }
        Ok(())
    }

    /// The state as named tensors (`adam.step`, `adam.step.trunk` with a trunk group,
    /// `adam.m.<var>`, `adam.v.<var>`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .groups
            .iter()
            .map(|g| (format!("adam.step{}", g.state_suffix), Tensor::from(g.step)))
            .collect();
        for g in &self.groups {
            for (n, _, m, v) in &g.slots {
                out.push((format!("adam.m.{n}"), m.shallow_clone()));
                out.push((format!("adam.v.{n}"), v.shallow_clone()));
            }
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
        for g in &mut self.groups {
            let key = format!("adam.step{}", g.state_suffix);
            g.step = find(&key)
                .ok_or_else(|| bad(format!("no {key}")))?
                .int64_value(&[]);
            g.step_on_device.clear();
        }
        tch::no_grad(|| -> Result<()> {
            for (n, _, m, v) in self.groups.iter_mut().flat_map(|g| g.slots.iter_mut()) {
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

/// The hyper-parameters every group shares.
struct Hyper {
    beta1: f64,
    beta2: f64,
    eps: f64,
    l2: f64,
}

impl AdamGroup {
    /// The loop of tensor operations over the variables with a gradient (`grads`, in slot
    /// order), at `lr`.
    fn loop_step(&mut self, grads: &[Tensor], lr: f64, h: &Hyper) {
        let bc1 = 1.0 - h.beta1.powi(self.step as i32);
        let bc2 = 1.0 - h.beta2.powi(self.step as i32);
        let step_size = lr / bc1;
        tch::no_grad(|| {
            for ((_, p, m, v), g) in self.slots.iter_mut().zip(grads) {
                if !g.defined() {
                    continue;
                }
                let g = if h.l2 != 0.0 {
                    g + &*p * h.l2
                } else {
                    g.shallow_clone()
                };
                let _ = m.g_mul_scalar_(h.beta1).g_add_(&(&g * (1.0 - h.beta1)));
                let _ = v
                    .g_mul_scalar_(h.beta2)
                    .g_add_(&(&g * &g * (1.0 - h.beta2)));
                let denom = (v.sqrt() / bc2.sqrt()) + h.eps;
                let _ = p.g_sub_(&(&*m / denom * step_size));
            }
        });
    }

    /// One call of libtorch's `_fused_adam_` per device over the variables with a gradient.
    fn fused_step(&mut self, grads: &[Tensor], lr: f64, h: &Hyper) -> Result<()> {
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
                    lr,
                    (h.beta1, h.beta2),
                    h.l2,
                    h.eps,
                )
            })?;
        }
        Ok(())
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
