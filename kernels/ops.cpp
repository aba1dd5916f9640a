// LibTorch glue for the CUDA kernels: autograd functions over kernels/*.cu, and their installation
// into the evaluator. Built only where LibTorch has CUDA.
#include "kernels/ops.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <cstdlib>

#include "evaluator/model.h"
#include "kernels/gated_conv.h"
#include "kernels/scan.h"

namespace starsynth::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool has_kernel_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kDouble || t == at::kBFloat16; }

DType dtype_of(at::ScalarType t) {
  return t == at::kDouble ? DType::Float64 : t == at::kBFloat16 ? DType::BFloat16 : DType::Float32;
}

// LibTorch 2's autograd takes no undefined inputs: an absent q, k or D travels as an empty tensor.
bool given(const at::Tensor& t) { return t.numel() > 0; }
const void* pointer(const at::Tensor& t) { return given(t) ? t.data_ptr() : nullptr; }
at::Tensor absent(const at::Tensor& like) { return at::empty({0}, like.options()); }

GatedConvArgs gated_conv_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                              const at::Tensor& D) {
  GatedConvArgs a;
  a.dtype = dtype_of(v.scalar_type());
  a.batch = v.size(0), a.length = v.size(1), a.channels = v.size(2), a.taps = h.size(-1);
  a.q = pointer(q), a.k = pointer(k), a.v = v.data_ptr(), a.h = h.data_ptr(), a.D = pointer(D);
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  return a;
}

// Inputs prepared by gated_conv_cuda: q, k, v contiguous of one dtype (q, k possibly empty);
// h [C, K] and D [C] (possibly empty) contiguous in the accumulation type.
struct GatedConv : torch::autograd::Function<GatedConv> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& h, const at::Tensor& D) {
    at::Tensor y = at::empty_like(v);
    gated_conv_forward(gated_conv_args(q, k, v, h, D), y.data_ptr());
    ctx->save_for_backward({q, k, v, h, D});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &q = s[0], &k = s[1], &v = s[2], &h = s[3], &D = s[4];
    const c10::cuda::CUDAGuard guard(v.device());
    const at::Tensor dy = grads[0].to(v.scalar_type()).contiguous();
    at::Tensor dq = given(q) ? at::empty_like(q) : at::Tensor(), dk = given(k) ? at::empty_like(k) : at::Tensor();
    at::Tensor dv = at::empty_like(v), dh = at::empty_like(h), dD = given(D) ? at::empty_like(D) : at::Tensor();
    gated_conv_backward(gated_conv_args(q, k, v, h, D), dy.data_ptr(), dq.defined() ? dq.data_ptr() : nullptr,
                        dk.defined() ? dk.data_ptr() : nullptr, dv.data_ptr(), dh.data_ptr(),
                        dD.defined() ? dD.data_ptr() : nullptr);
    return {dq, dk, dv, dh, dD};  // undefined: no gradient for an absent input
  }
};

at::Tensor gated_conv_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                           const at::Tensor& D) {
  const at::ScalarType t = v.scalar_type();
  GatedConvArgs probe;
  probe.dtype = dtype_of(t), probe.batch = v.size(0), probe.taps = h.size(-1);
  if (v.dim() != 3 || v.numel() == 0 || !has_kernel_dtype(t) || !gated_conv_supported(probe))
    return gated_causal_conv_reference(q, k, v, h, D);
  const c10::cuda::CUDAGuard guard(v.device());
  const at::ScalarType acc = t == at::kDouble ? at::kDouble : at::kFloat;
  auto same = [&](const at::Tensor& x) { return x.defined() ? x.to(t).contiguous() : absent(v); };
  return GatedConv::apply(same(q), same(k), v.contiguous(), h.reshape({v.size(2), h.size(-1)}).to(acc).contiguous(),
                          D.defined() ? D.to(acc).contiguous() : absent(v));
}

ScanArgs scan_args(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B, const at::Tensor& C) {
  ScanArgs a;
  a.dtype = dtype_of(x.scalar_type());
  a.batch = x.size(0), a.length = x.size(1), a.channels = x.size(2), a.state = B.size(2);
  a.log_a = log_a.data_ptr(), a.x = x.data_ptr(), a.B = B.data_ptr(), a.C = C.data_ptr();
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  return a;
}

// Inputs prepared by scan_cuda: contiguous, of one dtype (float32 or float64).
struct Scan : torch::autograd::Function<Scan> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B,
                            const at::Tensor& C) {
    const ScanArgs a = scan_args(log_a, x, B, C);
    at::Tensor y = at::empty_like(x), checkpoints = at::empty({scan_checkpoint_elements(a)}, x.options());
    scan_forward(a, y.data_ptr(), checkpoints.data_ptr());
    ctx->save_for_backward({log_a, x, B, C, checkpoints});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &log_a = s[0], &x = s[1], &B = s[2], &C = s[3], &checkpoints = s[4];
    const c10::cuda::CUDAGuard guard(x.device());
    const ScanArgs a = scan_args(log_a, x, B, C);
    const at::Tensor dy = grads[0].to(x.scalar_type()).contiguous();
    at::Tensor dlog_a = at::empty_like(log_a), dx = at::empty_like(x);
    const std::vector<int64_t> partial = {a.batch, a.length, a.state, scan_channel_blocks(a)};
    at::Tensor dB = at::empty(partial, B.options()), dC = at::empty(partial, C.options());
    scan_backward(a, checkpoints.data_ptr(), dy.data_ptr(), dlog_a.data_ptr(), dx.data_ptr(), dB.data_ptr(),
                  dC.data_ptr());
    return {dlog_a, dx, dB.sum(-1), dC.sum(-1)};
  }
};

at::Tensor scan_cuda(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B, const at::Tensor& C) {
  const at::ScalarType t = x.scalar_type();
  ScanArgs probe;
  if (x.dim() == 3 && B.dim() == 3) {
    probe.dtype = dtype_of(t), probe.batch = x.size(0), probe.length = x.size(1), probe.channels = x.size(2);
    probe.state = B.size(2);
  }
  const bool same = log_a.scalar_type() == t && B.scalar_type() == t && C.scalar_type() == t;
  if (!same || (t != at::kFloat && t != at::kDouble) || !scan_supported(probe))
    return diagonal_scan_reference(log_a, x, B, C);
  const c10::cuda::CUDAGuard guard(x.device());
  return Scan::apply(log_a.contiguous(), x.contiguous(), B.contiguous(), C.contiguous());
}

}  // namespace

std::string install() {
  const char* setting = std::getenv("STARSYNTH_KERNELS");
  if (setting && std::string(setting) == "0") {
    use_gated_conv_kernel(nullptr);
    use_scan_kernel(nullptr);
    return "";
  }
  use_gated_conv_kernel(&gated_conv_cuda);
  use_scan_kernel(&scan_cuda);
  return "gated_conv,scan";
}

}  // namespace starsynth::kernels
