// What the trainer needs from libtorch that tch 0.24 does not bind (tch-rs issue 916 and its
// generator's skip list): the TF32 switches of the global context, autocast for a given device
// type (tch's `autocast` only reaches CUDA's), and the fused Adam kernel (`_fused_adam_` takes
// tensor lists, which tch's generated bindings leave out).
//
// Built by crates/train/build.rs with the `cc` crate against the headers of the libtorch that
// torch-sys links (the .venv's torch wheel), with torch-sys's own flags. Tensors cross the FFI as
// `at::Tensor*`: tch's `Tensor::as_ptr()` is exactly that (torch-sys's `C_tensor`).
// Every entry point catches C++ exceptions and returns them as a message instead.

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Version.h>
#include <ATen/autocast_mode.h>
#include <ATen/ops/_fused_adam.h>

#include <cstring>
#include <string>
#include <vector>

namespace {
thread_local std::string last_error;

const char *fail(const std::exception &e) {
  last_error = e.what();
  return last_error.c_str();
}

at::DeviceType device_type(int device) { return device == 1 ? at::kCUDA : at::kCPU; }
} // namespace

extern "C" {

// The CPU kernel set libtorch dispatches to in this process ("DEFAULT", "AVX2", "AVX512"): the
// CPU's best, or what ATEN_CPU_CAPABILITY asks for. Copied into `out` (NUL-terminated, cut to
// `len` - 1 bytes).
const char *fer_cpu_capability(char *out, size_t len) {
  try {
    std::string cap = at::get_cpu_capability();
    if (len > 0) {
      size_t n = cap.size() < len - 1 ? cap.size() : len - 1;
      std::memcpy(out, cap.data(), n);
      out[n] = '\0';
    }
    return nullptr;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Allows (or forbids) TF32 tensor-core arithmetic for cuBLAS matmuls and cuDNN convolutions:
// what `torch.backends.cuda.matmul.allow_tf32` and `torch.backends.cudnn.allow_tf32` set.
const char *fer_set_tf32(bool allow) {
  try {
    at::globalContext().setAllowTF32CuBLAS(allow);
    at::globalContext().setAllowTF32CuDNN(allow);
    return nullptr;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Reads both switches back.
const char *fer_tf32(bool *cublas, bool *cudnn) {
  try {
    *cublas = at::globalContext().allowTF32CuBLAS();
    *cudnn = at::globalContext().allowTF32CuDNN();
    return nullptr;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Enters a bf16 autocast region for a device type (0 CPU, 1 CUDA), as
// `torch.autocast(device, dtype=torch.bfloat16)` does. The previous state (enabled flag and
// dtype) goes to *was_enabled / *was_dtype, for fer_autocast_leave.
const char *fer_autocast_enter(int device, bool *was_enabled, int *was_dtype) {
  try {
    auto t = device_type(device);
    *was_enabled = at::autocast::is_autocast_enabled(t);
    *was_dtype = static_cast<int>(at::autocast::get_autocast_dtype(t));
    at::autocast::set_autocast_dtype(t, at::kBFloat16);
    at::autocast::set_autocast_enabled(t, true);
    at::autocast::increment_nesting();
    return nullptr;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Leaves a region entered by fer_autocast_enter, restoring the state it saved (so regions nest);
// on leaving the outermost region the cast-weight cache is cleared.
const char *fer_autocast_leave(int device, bool was_enabled, int was_dtype) {
  try {
    auto t = device_type(device);
    at::autocast::set_autocast_enabled(t, was_enabled);
    at::autocast::set_autocast_dtype(t, static_cast<at::ScalarType>(was_dtype));
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    return nullptr;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Whether autocast is on for a device type.
bool fer_autocast_enabled(int device) {
  return at::autocast::is_autocast_enabled(device_type(device));
}

// One Adam step over n parameters in one call of libtorch's fused kernel (CPU and CUDA), the
// kernel `torch.optim.Adam(fused=True)` runs. `step` is a float32 scalar tensor on the
// parameters' device holding the step number already incremented (as torch.optim does before
// calling it); it is only read. L2 weight decay (added to the gradient), no amsgrad.
const char *fer_fused_adam(at::Tensor **params, at::Tensor **grads, at::Tensor **exp_avgs,
                           at::Tensor **exp_avg_sqs, at::Tensor *step, int n, double lr,
                           double beta1, double beta2, double weight_decay, double eps) {
  try {
    std::vector<at::Tensor> p, g, m, v, steps;
    p.reserve(n);
    g.reserve(n);
    m.reserve(n);
    v.reserve(n);
    steps.reserve(n);
    for (int i = 0; i < n; ++i) {
      p.push_back(*params[i]);
      g.push_back(*grads[i]);
      m.push_back(*exp_avgs[i]);
      v.push_back(*exp_avg_sqs[i]);
      steps.push_back(*step);
    }
    std::vector<at::Tensor> none;
    at::_fused_adam_(p, g, m, v, none, steps, lr, beta1, beta2, weight_decay, eps,
                     /*amsgrad=*/false, /*maximize=*/false);
    return nullptr;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

} // extern "C"
