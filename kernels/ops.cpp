// LibTorch glue for the CUDA kernels: autograd functions over kernels/*.cu, and their installation
// into the evaluator. Built only where LibTorch has CUDA.
#include "kernels/ops.h"

#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "evaluator/model.h"
#include "evaluator/train_step.h"
#include "kernels/cross_entropy.h"
#include "kernels/gated_conv.h"
#include "kernels/long_conv.h"
#include "kernels/pointwise.h"
#include "kernels/rms_norm.h"
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

LongConvArgs long_conv_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& D) {
  LongConvArgs a;
  a.dtype = dtype_of(v.scalar_type());
  a.batch = v.size(0), a.length = v.size(1), a.channels = v.size(2);
  a.fft_length = long_conv_fft_length(a.length);
  a.q = pointer(q), a.k = pointer(k), a.v = v.data_ptr(), a.D = pointer(D);
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  return a;
}

// Real rows [.., N] → their spectra [.., N/2 + 1], and back, unnormalised (the kernels scale by
// 1/N where they read the result): cuFFT through LibTorch's plan cache.
at::Tensor spectrum(const at::Tensor& rows) {
  at::Tensor s = at::_fft_r2c(rows, {rows.dim() - 1}, /*normalization=*/0, /*onesided=*/true);
  TORCH_CHECK(s.is_contiguous(), "long_conv: the transform's output is not contiguous");
  return s;
}
at::Tensor signal(const at::Tensor& spectra, int64_t n) {
  at::Tensor r = at::_fft_c2r(spectra, {spectra.dim() - 1}, /*normalization=*/0, n);
  TORCH_CHECK(r.is_contiguous(), "long_conv: the inverse transform's output is not contiguous");
  return r;
}

// Inputs prepared by long_conv_cuda: q, k, v contiguous of one dtype (q, k possibly empty); h
// [C, L] and D [C] (possibly empty) contiguous in the accumulation type. The spectra of z and h
// are kept for backward (LibTorch's autograd of the composite form keeps the same two), and the
// convolution itself for dq.
struct LongConv : torch::autograd::Function<LongConv> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& h, const at::Tensor& D) {
    const LongConvArgs a = long_conv_args(q, k, v, D);
    const int64_t N = a.fft_length;
    at::Tensor z_rows = at::empty({a.batch, a.channels, N}, h.options());
    long_conv_pack_forward(a, z_rows.data_ptr());
    const at::Tensor Z = spectrum(z_rows);
    at::Tensor h_rows = at::empty({a.channels, N}, h.options());
    long_conv_pad_filter(a, h.data_ptr(), h_rows.data_ptr());
    const at::Tensor H = spectrum(h_rows);
    h_rows = at::Tensor();
    at::Tensor Y = at::empty_like(Z);
    long_conv_multiply(a, Z.data_ptr(), H.data_ptr(), Y.data_ptr());
    z_rows = at::Tensor();  // back to the allocator before the inverse transform asks for as much
    const at::Tensor y_rows = signal(Y, N);
    at::Tensor conv = at::empty_like(v), y = at::empty_like(v);
    long_conv_unpack_forward(a, y_rows.data_ptr(), conv.data_ptr(), y.data_ptr());
    ctx->save_for_backward({q, k, v, D, conv, Z, H});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &q = s[0], &k = s[1], &v = s[2], &D = s[3], &conv = s[4], &Z = s[5], &H = s[6];
    const c10::cuda::CUDAGuard guard(v.device());
    const LongConvArgs a = long_conv_args(q, k, v, D);
    const int64_t N = a.fft_length;
    const at::Tensor dy = grads[0].to(v.scalar_type()).contiguous();
    const auto wide = v.options().dtype(v.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
    at::Tensor g_rows = at::empty({a.batch, a.channels, N}, wide);
    at::Tensor dq = given(q) ? at::empty_like(q) : at::Tensor();
    at::Tensor partial = given(D) ? at::empty({long_conv_partial_rows(a), a.channels}, wide) : at::Tensor();
    long_conv_pack_backward(a, dy.data_ptr(), conv.data_ptr(), g_rows.data_ptr(), dq.defined() ? dq.data_ptr() : nullptr,
                            partial.defined() ? partial.data_ptr() : nullptr);
    at::Tensor G = spectrum(g_rows);
    g_rows = at::Tensor();
    at::Tensor dH = at::empty_like(H);
    long_conv_multiply_backward(a, G.data_ptr(), Z.data_ptr(), H.data_ptr(), dH.data_ptr());
    const at::Tensor dz_rows = signal(G, N);
    G = at::Tensor();
    at::Tensor dk = given(k) ? at::empty_like(k) : at::Tensor(), dv = at::empty_like(v);
    long_conv_unpack_backward(a, dy.data_ptr(), dz_rows.data_ptr(), dk.defined() ? dk.data_ptr() : nullptr,
                              dv.data_ptr());
    const at::Tensor dh = signal(dH, N).slice(1, 0, a.length);  // a view; dH carries the 1/N
    return {dq, dk, dv, dh, given(D) ? partial.sum(0) : at::Tensor()};
  }
};

at::Tensor long_conv_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                          const at::Tensor& D) {
  const at::ScalarType t = v.scalar_type();
  LongConvArgs probe;
  if (v.dim() == 3) {
    probe.batch = v.size(0), probe.length = v.size(1), probe.channels = v.size(2);
    probe.fft_length = long_conv_fft_length(probe.length);
  }
  const bool fits = v.dim() == 3 && v.numel() > 0 && has_kernel_dtype(t) && h.dim() == 2 &&
                    h.size(0) == v.size(2) && h.size(1) >= v.size(1) && long_conv_supported(probe);
  if (!fits) return gated_long_conv_reference(q, k, v, h, D);
  const c10::cuda::CUDAGuard guard(v.device());
  const at::ScalarType acc = t == at::kDouble ? at::kDouble : at::kFloat;
  auto same = [&](const at::Tensor& x) { return x.defined() ? x.to(t).contiguous() : absent(v); };
  const at::Tensor taps = h.size(1) == v.size(1) ? h : h.slice(1, 0, v.size(1));  // no slice, no zeros in its backward
  return LongConv::apply(same(q), same(k), v.contiguous(), taps.to(acc).contiguous(),
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

// cos and sin of the rotary angles (position · θ^(−2i/hd)) for one length, offset, head size and
// accumulation type, computed in float64 once and kept: inside a CUDA graph the table is then a
// constant, not a dozen small kernels per attention layer. Kept only for whole sequences (offset 0;
// a decode step's table is one row) and never while the stream is being captured: the capture
// records kernels without running them, so such a table would hold nothing until the graph replays.
std::pair<at::Tensor, at::Tensor> rope_table(const at::Tensor& x, int64_t offset, double theta, at::ScalarType acc) {
  using Key = std::tuple<int, int64_t, int64_t, int64_t, double, int>;
  static std::mutex mutex;
  static auto* tables = new std::map<Key, std::pair<at::Tensor, at::Tensor>>();  // never destroyed: CUDA may be gone at exit
  const int64_t L = x.size(2), hd = x.size(3);
  const Key key{x.get_device(), L, offset, hd, theta, int(acc)};
  {
    const std::lock_guard<std::mutex> lock(mutex);
    auto it = tables->find(key);
    if (it != tables->end()) return it->second;
  }
  const torch::NoGradGuard no_grad;
  const at::Tensor angle = rotary_angles(offset, L, hd, theta, at::TensorOptions().dtype(at::kDouble).device(x.device()));
  std::pair<at::Tensor, at::Tensor> table{angle.cos().to(acc).contiguous(), angle.sin().to(acc).contiguous()};
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(at::cuda::getCurrentCUDAStream().stream(), &capturing));
  if (offset == 0 && capturing == cudaStreamCaptureStatusNone) {
    // Complete before another thread's stream can read it (workers may share a GPU); once per key.
    at::cuda::getCurrentCUDAStream().synchronize();
    const std::lock_guard<std::mutex> lock(mutex);
    // Bounded, and never cleared: another stream may still be reading a table.
    if (tables->size() < 256) tables->emplace(key, table);
  }
  return table;
}

RopeArgs rope_args(const at::Tensor& x, const at::Tensor& y, const at::Tensor& cos, const at::Tensor& sin, bool inverse) {
  RopeArgs a;
  a.dtype = dtype_of(x.scalar_type());
  a.batch = x.size(0), a.heads = x.size(1), a.length = x.size(2), a.head_dim = x.size(3);
  for (int d = 0; d < 3; ++d) a.x_strides[d] = x.stride(d), a.y_strides[d] = y.stride(d);
  a.x = x.data_ptr(), a.cos = cos.data_ptr(), a.sin = sin.data_ptr(), a.inverse = inverse;
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  return a;
}

// x [B, H, L, hd] with unit stride along hd. The output is contiguous (attention's layout); the
// gradient takes x's own layout (when x is dense, as the projection's transposed view is), so
// that the view's backward is free.
struct Rope : torch::autograd::Function<Rope> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    at::Tensor y = at::empty(x.sizes(), x.options());
    rope(rope_args(x, y, cos, sin, false), y.data_ptr());
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["strides"] = x.is_non_overlapping_and_dense() ? x.strides().vec() : y.strides().vec();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    at::Tensor dy = grads[0];
    const c10::cuda::CUDAGuard guard(dy.device());
    if (dy.stride(3) != 1) dy = dy.contiguous();
    const at::Tensor dx = at::empty_strided(ctx->saved_data["sizes"].toIntVector(),
                                            ctx->saved_data["strides"].toIntVector(), dy.options());
    rope(rope_args(dy, dx, s[0], s[1], true), dx.data_ptr());
    return {dx, at::Tensor(), at::Tensor()};
  }
};

at::Tensor rope_cuda(const at::Tensor& x, int64_t offset, double theta) {
  const at::ScalarType t = x.scalar_type();
  if (x.dim() != 4 || x.size(3) < 2 || x.stride(3) != 1 || !has_kernel_dtype(t))
    return rotary_embedding_reference(x, offset, theta);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto [cos, sin] = rope_table(x, offset, theta, t == at::kDouble ? at::kDouble : at::kFloat);
  return Rope::apply(x, cos, sin);
}

// g and u contiguous, of one shape and dtype.
struct Swiglu : torch::autograd::Function<Swiglu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u) {
    at::Tensor y = at::empty_like(g);
    swiglu_forward(dtype_of(g.scalar_type()), g.numel(), g.data_ptr(), u.data_ptr(), y.data_ptr(),
                   at::cuda::getCurrentCUDAStream().stream());
    ctx->save_for_backward({g, u});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &g = s[0], &u = s[1];
    const c10::cuda::CUDAGuard guard(g.device());
    const at::Tensor dy = grads[0].to(g.scalar_type()).contiguous();
    at::Tensor dg = at::empty_like(g), du = at::empty_like(u);
    swiglu_backward(dtype_of(g.scalar_type()), g.numel(), g.data_ptr(), u.data_ptr(), dy.data_ptr(), dg.data_ptr(),
                    du.data_ptr(), at::cuda::getCurrentCUDAStream().stream());
    return {dg, du};
  }
};

at::Tensor swiglu_cuda(const at::Tensor& g, const at::Tensor& u) {
  const at::ScalarType t = g.scalar_type();
  if (u.scalar_type() != t || !g.sizes().equals(u.sizes()) || !has_kernel_dtype(t) || !u.is_cuda())
    return swiglu_reference(g, u);
  const c10::cuda::CUDAGuard guard(g.device());
  return Swiglu::apply(g.contiguous(), u.contiguous());
}

RmsNormArgs rms_norm_args(const at::Tensor& x, const at::Tensor& weight, double eps, at::ScalarType out) {
  RmsNormArgs a;
  a.x_dtype = dtype_of(x.scalar_type()), a.y_dtype = dtype_of(out);
  a.width = x.size(-1), a.rows = a.width ? x.numel() / a.width : 0, a.eps = eps;
  a.x = x.data_ptr(), a.weight = weight.data_ptr();
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  return a;
}

// x contiguous, weight [width] contiguous of x's dtype; `out` the output's dtype.
struct RmsNorm : torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps,
                            at::ScalarType out) {
    const RmsNormArgs a = rms_norm_args(x, weight, eps, out);
    at::Tensor y = at::empty(x.sizes(), x.options().dtype(out)), rstd = at::empty({a.rows}, x.options());
    rms_norm_forward(a, y.data_ptr(), rstd.data_ptr());
    ctx->save_for_backward({x, weight, rstd});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["out"] = int64_t(out);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &x = s[0], &weight = s[1], &rstd = s[2];
    const c10::cuda::CUDAGuard guard(x.device());
    const auto out = static_cast<at::ScalarType>(ctx->saved_data["out"].toInt());
    const RmsNormArgs a = rms_norm_args(x, weight, ctx->saved_data["eps"].toDouble(), out);
    const at::Tensor dy = grads[0].to(out).contiguous();
    at::Tensor dx = at::empty_like(x), dweight = at::empty_like(weight),
               workspace = at::empty({rms_norm_workspace(a)}, x.options());
    rms_norm_backward(a, rstd.data_ptr(), dy.data_ptr(), dx.data_ptr(), dweight.data_ptr(), workspace.data_ptr());
    return {dx, dweight, at::Tensor(), at::Tensor()};
  }
};

at::Tensor rms_norm_cuda(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::ScalarType t = x.scalar_type();
  at::ScalarType out = t;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (t == at::kFloat && at::autocast::is_autocast_enabled(at::kCUDA) &&
      at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16)
    out = at::kBFloat16;
#endif
  const bool fits = (t == at::kFloat || t == at::kDouble) && weight.scalar_type() == t && weight.dim() == 1 &&
                    x.dim() >= 1 && weight.size(0) == x.size(-1) && weight.is_cuda() &&
                    rms_norm_supported(rms_norm_args(x, weight, eps, out));
  if (!fits) return rms_norm_reference(x, weight, eps);
  const c10::cuda::CUDAGuard guard(x.device());
  return RmsNorm::apply(x.contiguous(), weight.contiguous(), eps, out);
}

CrossEntropyArgs cross_entropy_args(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index) {
  CrossEntropyArgs a;
  a.dtype = dtype_of(logits.scalar_type());
  a.rows = logits.size(0), a.classes = logits.size(1), a.ignore_index = ignore_index;
  a.logits = logits.data_ptr(), a.targets = targets.data_ptr<int64_t>();
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  return a;
}

// logits [N, V] contiguous; targets [N] int64 contiguous. Returns the loss, a 0-dim tensor in
// the accumulation type; the per-row log-sum-exp and the scored-row count are kept for backward.
struct CrossEntropy : torch::autograd::Function<CrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            int64_t ignore_index) {
    const CrossEntropyArgs a = cross_entropy_args(logits, targets, ignore_index);
    const auto wide = logits.options().dtype(logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
    at::Tensor loss = at::empty({}, wide), scored = at::empty({1}, wide), lse = at::empty({a.rows}, wide),
               workspace = at::empty({cross_entropy_workspace(a)}, wide);
    cross_entropy_forward(a, loss.data_ptr(), scored.data_ptr(), lse.data_ptr(), workspace.data_ptr());
    ctx->save_for_backward({logits, targets, lse, scored});
    ctx->saved_data["ignore"] = ignore_index;
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list s = ctx->get_saved_variables();
    const at::Tensor &logits = s[0], &targets = s[1], &lse = s[2], &scored = s[3];
    const c10::cuda::CUDAGuard guard(logits.device());
    const CrossEntropyArgs a = cross_entropy_args(logits, targets, ctx->saved_data["ignore"].toInt());
    const at::Tensor grad = grads[0].to(lse.scalar_type()).contiguous();
    at::Tensor dlogits = at::empty_like(logits);
    cross_entropy_backward(a, lse.data_ptr(), scored.data_ptr(), grad.data_ptr(), dlogits.data_ptr());
    return {dlogits, at::Tensor(), at::Tensor()};
  }
};

at::Tensor cross_entropy_cuda(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index) {
  const bool fits = logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0) &&
                    targets.scalar_type() == at::kLong && targets.is_cuda() &&
                    has_kernel_dtype(logits.scalar_type()) &&
                    cross_entropy_supported(cross_entropy_args(logits, targets, ignore_index));
  if (!fits) return cross_entropy_reference(logits, targets, ignore_index);
  const c10::cuda::CUDAGuard guard(logits.device());
  return CrossEntropy::apply(logits.contiguous(), targets.contiguous(), ignore_index);
}

// The flat buffers FlatAdamW keeps: contiguous, one device, one dtype.
bool adamw_cuda(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                const at::Tensor& exp_avg_sq, const at::Tensor& scalars, const at::Tensor& norm, int64_t decayed,
                const AdamWSettings& s) {
  if (param.scalar_type() != at::kFloat && param.scalar_type() != at::kDouble) return false;
  const c10::cuda::CUDAGuard guard(param.device());
  AdamWArgs a;
  a.dtype = dtype_of(param.scalar_type());
  a.n = param.numel(), a.decayed = decayed;
  a.beta1 = s.beta1, a.beta2 = s.beta2, a.eps = s.eps, a.clip = s.clip;
  a.grad = grad.data_ptr(), a.norm = norm.data_ptr(), a.scalars = scalars.data_ptr();
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  adamw_update(a, param.data_ptr(), exp_avg.data_ptr(), exp_avg_sq.data_ptr());
  return true;
}

}  // namespace

void uninstall() {
  use_gated_conv_kernel(nullptr);
  use_long_conv_kernel(nullptr);
  use_scan_kernel(nullptr);
  use_rope_kernel(nullptr);
  use_swiglu_kernel(nullptr);
  use_rms_norm_kernel(nullptr);
  use_cross_entropy_kernel(nullptr);
  use_adamw_kernel(nullptr);
}

std::string install() {
  const char* setting = std::getenv("STARSYNTH_KERNELS");
  if (setting && std::string(setting) == "0") {
    uninstall();
    return "";
  }
  use_gated_conv_kernel(&gated_conv_cuda);
  use_long_conv_kernel(&long_conv_cuda);
  use_scan_kernel(&scan_cuda);
  use_rope_kernel(&rope_cuda);
  use_swiglu_kernel(&swiglu_cuda);
  use_rms_norm_kernel(&rms_norm_cuda);
  use_cross_entropy_kernel(&cross_entropy_cuda);
  use_adamw_kernel(&adamw_cuda);
  return "gated_conv,long_conv,scan,rope,swiglu,rms_norm,cross_entropy,adamw";
}

}  // namespace starsynth::kernels
