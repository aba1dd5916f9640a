// LibTorch glue for the CUDA kernels: autograd functions over kernels/*.cu, and their installation
// into the evaluator. Built only where LibTorch has CUDA.
#include "kernels/ops.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <cstdlib>

#include "evaluator/model.h"
#include "kernels/gated_conv.h"

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

}  // namespace

std::string install() {
  const char* setting = std::getenv("STARSYNTH_KERNELS");
  if (setting && std::string(setting) == "0") {
    use_gated_conv_kernel(nullptr);
    return "";
  }
  use_gated_conv_kernel(&gated_conv_cuda);
  return "gated_conv";
}

}  // namespace starsynth::kernels
