//! Weights from outside a run (torchvision's VGG16 for the SSM) and the channels_last layout of a
//! network's variables and inputs.

use super::mgln::VGG_CONVS;
use crate::{Result, TrainError};
use tch::{nn, Tensor};

/// Copies torchvision VGG16 weights (`features.{0,2,…,21}.{weight,bias}`, e.g. converted from
/// `vgg16-397923af.pth` to safetensors) into the SSM. Returns how many tensors were loaded.
///
/// Errors: unreadable file, a missing tensor, a shape that differs (a `width` other than 1).
pub fn load_vgg16(vs: &mut nn::VarStore, path: &std::path::Path) -> Result<usize> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| TrainError::Weights {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let by_name: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
    let mut vars = vs.variables();
    let mut loaded = 0;
    tch::no_grad(|| -> Result<()> {
        for (i, _, _) in VGG_CONVS {
            for what in ["weight", "bias"] {
                let key = format!("features.{i}.{what}");
                let src = by_name.get(&key).ok_or_else(|| TrainError::Weights {
                    file: path.to_path_buf(),
                    reason: format!("no tensor {key}"),
                })?;
                let dst = vars
                    .get_mut(&format!("ssm.{key}"))
                    .ok_or_else(|| TrainError::Config(format!("model has no ssm.{key}")))?;
                if dst.size() != src.size() {
                    return Err(TrainError::Weights {
                        file: path.to_path_buf(),
                        reason: format!(
                            "{key}: file {:?}, model {:?} (pretrained weights need width = 1)",
                            src.size(),
                            dst.size()
                        ),
                    });
                }
                dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
                loaded += 1;
            }
        }
        Ok(())
    })?;
    Ok(loaded)
}

/// Gives every 4-d variable (the conv weights) the channels_last memory layout (NHWC strides, the
/// same shape), so that cuDNN's NHWC kernels run on channels_last activations without converting
/// the weights at every step. Gradients and Adam's moments created afterwards follow the layout.
/// Call it before building the optimiser.
pub fn to_channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            if t.dim() == 4 {
                t.set_data(&channels_last(&t));
            }
        }
    });
}

/// A copy of a 4-d tensor in the channels_last layout: the same shape and values, NHWC strides
/// (tch has no memory-format argument, so the layout is made by permuting, copying and
/// permuting back).
pub fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether a 4-d tensor has the channels_last layout (channel stride 1).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dim() == 4 && t.stride().get(1) == Some(&1) && t.size()[1] > 1
}
