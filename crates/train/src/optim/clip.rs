//! Gradient clipping by the global norm (`train.grad_clip`).

use tch::{Kind, Tensor};

/// Scales the gradients of `variables` by min(1, `max_norm` / ‖g‖), ‖g‖ the norm of all their
/// gradients as one vector (`torch.nn.utils.clip_grad_norm_`); variables without a gradient are
/// left out. The scale is computed on the device: the host never waits for it.
pub fn clip_grad_norm(variables: &[&Tensor], max_norm: f64) {
    let grads: Vec<Tensor> = variables
        .iter()
        .map(|p| p.grad())
        .filter(|g| g.defined())
        .collect();
    if grads.is_empty() {
        return;
    }
    tch::no_grad(|| {
        let squares: Vec<Tensor> = grads
            .iter()
            .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
            .collect();
        let norm = Tensor::stack(&squares, 0).sum(Kind::Float).sqrt();
        let coef = (norm + 1e-6)
            .reciprocal()
            .g_mul_scalar(max_norm)
            .clamp_max(1.0);
        for g in &grads {
            let _ = g.shallow_clone().g_mul_(&coef.to_kind(g.kind()));
        }
    });
}
