//! What tch 0.24 does not bind, through the project's shim (`shim/torch_ext.cpp`, compiled by
//! `build.rs` against the same libtorch): the TF32 switches of libtorch's global context, bf16
//! autocast for the CPU as well as CUDA, and libtorch's fused Adam kernel.

use crate::{Result, TrainError};
use std::ffi::{c_char, c_int, CStr};
use tch::{Device, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn fer_set_tf32(allow: bool) -> *const c_char;
    fn fer_tf32(cublas: *mut bool, cudnn: *mut bool) -> *const c_char;
    fn fer_autocast_enter(
        device: c_int,
        was_enabled: *mut bool,
        was_dtype: *mut c_int,
    ) -> *const c_char;
    fn fer_autocast_leave(device: c_int, was_enabled: bool, was_dtype: c_int) -> *const c_char;
    fn fer_autocast_enabled(device: c_int) -> bool;
    fn fer_cpu_capability(out: *mut c_char, len: usize) -> *const c_char;
    #[allow(clippy::too_many_arguments)]
    fn fer_fused_adam(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        exp_avgs: *const *const C_tensor,
        exp_avg_sqs: *const *const C_tensor,
        step: *const C_tensor,
        n: c_int,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *const c_char;
}

/// Turns the shim's error convention (null = fine, else a message valid until the thread's next
/// failing call) into a `Result`.
fn check(message: *const c_char, op: &'static str) -> Result<()> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string owned by the shim's thread-local.
    let reason = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    Err(TrainError::Libtorch { op, reason })
}

/// Allows or forbids TF32 tensor-core arithmetic for cuBLAS matmuls and cuDNN convolutions
/// (`torch.backends.cuda.matmul.allow_tf32` and `torch.backends.cudnn.allow_tf32` together).
/// A process-wide switch; it has no effect on CPU arithmetic.
///
/// Errors: libtorch refuses (it does not today).
pub fn set_tf32(allow: bool) -> Result<()> {
    // SAFETY: no arguments to validate; the shim catches every C++ exception.
    check(unsafe { fer_set_tf32(allow) }, "set TF32")
}

/// The two TF32 switches as libtorch reports them: (cuBLAS, cuDNN).
///
/// Errors: libtorch refuses.
pub fn tf32() -> Result<(bool, bool)> {
    let (mut cublas, mut cudnn) = (false, false);
    // SAFETY: both pointers are valid for the call.
    check(unsafe { fer_tf32(&mut cublas, &mut cudnn) }, "read TF32")?;
    Ok((cublas, cudnn))
}

/// The CPU kernel set libtorch dispatches to in this process: `DEFAULT`, `AVX2` or `AVX512` on
/// x86-64 — the CPU's best, or what the `ATEN_CPU_CAPABILITY` environment variable asks for (read
/// once, at libtorch's start). Kernels of different sets round differently, so a run records it.
///
/// Errors: libtorch refuses (it does not today).
pub fn cpu_capability() -> Result<String> {
    let mut buf = [0 as c_char; 32];
    // SAFETY: `buf` is valid for `buf.len()` bytes; the shim NUL-terminates within them.
    let message = unsafe { fer_cpu_capability(buf.as_mut_ptr(), buf.len()) };
    check(message, "read the CPU capability")?;
    // SAFETY: NUL-terminated by the shim (the buffer was zeroed too).
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

fn device_code(device: Device) -> c_int {
    if device.is_cuda() {
        1
    } else {
        0
    }
}

/// Whether autocast is on for `device`'s type.
pub fn autocast_enabled(device: Device) -> bool {
    // SAFETY: plain query.
    unsafe { fer_autocast_enabled(device_code(device)) }
}

/// Runs `f` under bf16 autocast for `device`'s type (CPU or CUDA), as
/// `with torch.autocast(device, dtype=torch.bfloat16)`; with `enabled = false` just runs `f`.
/// The previous autocast state (on or off, and its dtype) is restored afterwards, also when `f`
/// panics, so regions nest.
///
/// Errors: libtorch refuses to switch.
pub fn autocast_bf16<T>(device: Device, enabled: bool, f: impl FnOnce() -> T) -> Result<T> {
    if !enabled {
        return Ok(f());
    }
    struct Leave(c_int, bool, c_int);
    impl Drop for Leave {
        fn drop(&mut self) {
            // SAFETY: plain values; an error on leaving is ignored (nothing left to undo).
            let _ = unsafe { fer_autocast_leave(self.0, self.1, self.2) };
        }
    }
    let code = device_code(device);
    let (mut was_enabled, mut was_dtype) = (false, 0);
    // SAFETY: both pointers are valid for the call.
    let entered = unsafe { fer_autocast_enter(code, &mut was_enabled, &mut was_dtype) };
    check(entered, "enter autocast")?;
    let _leave = Leave(code, was_enabled, was_dtype);
    Ok(f())
}

/// One Adam step over every parameter in one call of libtorch's fused kernel (the one
/// `torch.optim.Adam(fused=True)` runs, on CPU and CUDA): `params`, `grads`, first and second
/// moments in the same order; `step` a float32 scalar on the parameters' device holding the
/// number of this step (1 for the first), read only. L2 weight decay, no amsgrad.
///
/// Errors: lists of different lengths; libtorch refusing the tensors (devices, dtypes, shapes).
#[allow(clippy::too_many_arguments)]
pub fn fused_adam(
    params: &[&Tensor],
    grads: &[&Tensor],
    exp_avgs: &[&Tensor],
    exp_avg_sqs: &[&Tensor],
    step: &Tensor,
    lr: f64,
    betas: (f64, f64),
    weight_decay: f64,
    eps: f64,
) -> Result<()> {
    let n = params.len();
    if grads.len() != n || exp_avgs.len() != n || exp_avg_sqs.len() != n {
        return Err(TrainError::Libtorch {
            op: "fused Adam",
            reason: format!(
                "{n} parameters, {} gradients, {} and {} moments",
                grads.len(),
                exp_avgs.len(),
                exp_avg_sqs.len()
            ),
        });
    }
    let ptrs = |ts: &[&Tensor]| -> Vec<*const C_tensor> { ts.iter().map(|t| t.as_ptr()).collect() };
    let (p, g, m, v) = (ptrs(params), ptrs(grads), ptrs(exp_avgs), ptrs(exp_avg_sqs));
    // SAFETY: four arrays of n valid tensor pointers that outlive the call, and a valid step
    // tensor; the kernel updates params, exp_avgs and exp_avg_sqs in place (tch tensors share
    // their storage, so the caller sees the update).
    let message = unsafe {
        fer_fused_adam(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            step.as_ptr(),
            n as c_int,
            lr,
            betas.0,
            betas.1,
            weight_decay,
            eps,
        )
    };
    check(message, "fused Adam")
}
