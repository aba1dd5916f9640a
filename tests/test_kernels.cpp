// The CUDA kernels against the definitions of their operators (written here term by term, step by
// step), on the GPU only: forward and every gradient at random shapes (odd lengths, channel counts
// that are no multiple of a tile, 1 to 200 taps, state sizes 1 to 16, each gate present or absent),
// in float64, float32 and bfloat16, with outputs poisoned (NaN) beforehand so that an element left
// unwritten fails; the long (FFT) convolution's passes likewise, at filters as long as the
// sequence; and whole models with and without the kernels. The same for the pointwise kernels
// (rotary embedding, SwiGLU) and RMSNorm (and LibTorch's own RMSNorm operator, the fallback).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>

#include <limits>
#include <optional>
#include <random>
#include <tuple>
#include <utility>

#include "evaluator/model.h"
#include "evaluator/train_step.h"
#include "genome/presets.h"
#include "kernels/cross_entropy.h"
#include "kernels/gated_conv.h"
#include "kernels/long_conv.h"
#include "kernels/ops.h"
#include "kernels/pointwise.h"
#include "kernels/rms_norm.h"
#include "kernels/scan.h"

namespace starsynth {
namespace {

#define REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

constexpr const char* kAllKernels = "gated_conv,long_conv,scan,rope,swiglu,rms_norm,cross_entropy,adamw";

struct Case {
  int64_t B, L, C, K;
  bool q, k, D;
};

std::vector<Case> random_cases(int n) {
  std::mt19937 rng(7);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<Case> out = {{1, 1, 1, 1, true, true, true}, {2, 65, 65, 128, true, true, true}, {1, 200, 130, 200, false, false, false}};
  for (int i = 0; i < n; ++i)
    out.push_back({pick({1, 2, 3}), pick({1, 7, 63, 64, 65, 129, 300}), pick({1, 5, 63, 64, 65, 130, 257}),
                   pick({1, 2, 3, 4, 7, 9, 16, 17, 64, 128}), bool(rng() % 2), bool(rng() % 2), bool(rng() % 2)});
  return out;
}

std::string describe(const Case& c) {
  return "B=" + std::to_string(c.B) + " L=" + std::to_string(c.L) + " C=" + std::to_string(c.C) +
         " K=" + std::to_string(c.K) + (c.q ? " q" : "") + (c.k ? " k" : "") + (c.D ? " D" : "");
}

// The definition, term by term: y = q ⊙ (D ⊙ z + Σ_j h[:, j] ⊙ z shifted j steps later), z = k ⊙ v.
// Independent of the convolution routines both the kernels and the composite form rely on.
at::Tensor shift_add(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                     const at::Tensor& D) {
  const at::Tensor z = k.defined() ? k * v : v;
  const int64_t L = z.size(1), K = h.size(-1);
  const at::Tensor taps = h.reshape({h.size(0), K}).to(z.dtype());
  at::Tensor y = D.defined() ? D.to(z.dtype()) * z : at::zeros_like(z);
  for (int64_t j = 0; j < std::min(K, L); ++j)
    y = y + at::constant_pad_nd(z.slice(1, 0, L - j), {0, 0, j, 0}) * taps.select(1, j);
  return q.defined() ? q * y : y;
}

// max |a - b| / max(1, max |b|)
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor bd = b.to(at::kDouble);
  return (a.to(at::kDouble) - bd).abs().max().item<double>() / std::max(1.0, bd.abs().max().item<double>());
}

struct Inputs {
  at::Tensor q, k, v, h, D;
};

Inputs make_inputs(const Case& c, at::ScalarType t, uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  Inputs in;
  in.v = at::randn({c.B, c.L, c.C}, o);
  if (c.q) in.q = at::randn({c.B, c.L, c.C}, o);
  if (c.k) in.k = at::randn({c.B, c.L, c.C}, o);
  in.h = at::randn({c.C, 1, c.K}, o) / std::sqrt(double(c.K));
  if (c.D) in.D = at::randn({c.C}, o);
  for (at::Tensor* x : {&in.q, &in.k, &in.v})
    if (x->defined()) *x = x->to(t);
  if (t != at::kDouble) in.h = in.h.to(at::kFloat), in.D = in.D.defined() ? in.D.to(at::kFloat) : in.D;
  return in;
}

// The raw kernels on `in`, with every output pre-filled with NaN so that any element they fail to
// write shows; nothing where gated_conv_supported declines the shape.
struct RawOutputs {
  at::Tensor y, dy, dq, dk, dv, dh, dD;
};

std::optional<RawOutputs> run_raw(const Case& c, const Inputs& in, kernels::DType dtype) {
  kernels::GatedConvArgs a;
  a.dtype = dtype;
  a.batch = c.B, a.length = c.L, a.channels = c.C, a.taps = c.K;
  const at::Tensor h = in.h.reshape({c.C, c.K}).contiguous();
  a.q = c.q ? in.q.data_ptr() : nullptr, a.k = c.k ? in.k.data_ptr() : nullptr, a.v = in.v.data_ptr();
  a.h = h.data_ptr(), a.D = c.D ? in.D.data_ptr() : nullptr;
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  if (!kernels::gated_conv_supported(a)) return std::nullopt;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  RawOutputs o;
  o.y = at::full_like(in.v, nan), o.dy = at::randn_like(in.v);
  kernels::gated_conv_forward(a, o.y.data_ptr());
  o.dq = at::full_like(in.v, nan), o.dk = at::full_like(in.v, nan), o.dv = at::full_like(in.v, nan);
  o.dh = at::full_like(h, nan), o.dD = at::full({c.C}, nan, h.options());
  kernels::gated_conv_backward(a, o.dy.data_ptr(), o.dq.data_ptr(), o.dk.data_ptr(), o.dv.data_ptr(),
                               o.dh.data_ptr(), c.D ? o.dD.data_ptr() : nullptr);
  return o;
}

// The definition on float64 copies of `in`, and its gradients for dy by LibTorch's autograd, in
// the order q, k, v, h, D of the tensors present.
std::pair<at::Tensor, std::vector<at::Tensor>> definition_and_gradients(const Inputs& in, const at::Tensor& dy) {
  std::vector<at::Tensor> leaves;
  auto leaf = [&](const at::Tensor& x) {
    if (!x.defined()) return x;
    leaves.push_back(x.to(at::kDouble).detach().requires_grad_());
    return leaves.back();
  };
  const at::Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), h = leaf(in.h), D = leaf(in.D);
  const at::Tensor ref = shift_add(q, k, v, h, D);
  return {ref, torch::autograd::grad({ref}, leaves, {dy.to(at::kDouble)})};
}

TEST(GatedConvKernel, WritesEveryOutputAndMatchesTheDefinitionInFloat64) {
  REQUIRE_CUDA();
  for (const Case& c : random_cases(24)) {
    SCOPED_TRACE(describe(c));
    const Inputs in = make_inputs(c, at::kDouble, 1);
    const std::optional<RawOutputs> out = run_raw(c, in, kernels::DType::Float64);
    // Shared memory grows with the taps; float64 runs out first (float32 at 128 taps fits).
    if (!out) {
      EXPECT_GT(c.K, 64);
      continue;
    }
    const auto [ref, g] = definition_and_gradients(in, out->dy);
    EXPECT_LT(relative_error(out->y, ref), 1e-12);
    size_t i = 0;
    if (c.q) EXPECT_LT(relative_error(out->dq, g[i++]), 1e-12) << "dq";
    if (c.k) EXPECT_LT(relative_error(out->dk, g[i++]), 1e-12) << "dk";
    EXPECT_LT(relative_error(out->dv, g[i++]), 1e-12) << "dv";
    EXPECT_LT(relative_error(out->dh, g[i++].reshape({c.C, c.K})), 1e-11) << "dh";
    if (c.D) EXPECT_LT(relative_error(out->dD, g[i++]), 1e-11) << "dD";
    ASSERT_FALSE(out->y.isnan().any().item<bool>());
  }
}

// The bf16 kernels (tensor cores, filters of up to 128 taps) raw, outputs poisoned, against the
// definition evaluated in float64 on the same bf16 inputs and the same bf16 dy. They round z = k·v,
// g = dy·q and the filter to bf16 and each output once: 1e-2 of the largest value bounds that
// (about 2^-9 per rounding). Sequences of several 128-step tiles and several batches exercise the
// halos and the filter gradient a block carries across its tiles.
TEST(GatedConvKernel, WritesEveryOutputAndMatchesTheDefinitionInBFloat16) {
  REQUIRE_CUDA();
  std::vector<Case> cases = random_cases(24);
  cases.push_back({2, 1000, 64, 128, true, true, true});
  cases.push_back({3, 777, 40, 7, true, false, true});
  cases.push_back({1, 2048, 96, 33, false, true, false});
  for (const Case& c : cases) {
    SCOPED_TRACE(describe(c));
    const Inputs in = make_inputs(c, at::kBFloat16, 3);
    const std::optional<RawOutputs> out = run_raw(c, in, kernels::DType::BFloat16);
    // Past 128 taps the CUDA-core kernels take over, and at 200 their float shared memory is too large.
    if (!out) {
      EXPECT_GT(c.K, 128);
      continue;
    }
    const auto [ref, g] = definition_and_gradients(in, out->dy);
    ASSERT_FALSE(out->y.isnan().any().item<bool>());
    EXPECT_LT(relative_error(out->y, ref), 1e-2);
    size_t i = 0;
    if (c.q) EXPECT_LT(relative_error(out->dq, g[i++]), 1e-2) << "dq";
    if (c.k) EXPECT_LT(relative_error(out->dk, g[i++]), 1e-2) << "dk";
    EXPECT_LT(relative_error(out->dv, g[i++]), 1e-2) << "dv";
    EXPECT_LT(relative_error(out->dh, g[i++].reshape({c.C, c.K})), 1e-2) << "dh";
    if (c.D) EXPECT_LT(relative_error(out->dD, g[i++]), 1e-2) << "dD";
  }
}

// Through the installed LibTorch op (autograd, dtype handling), against the float64 reference:
// float32 within 1e-5, bfloat16 within the rounding of its 8-bit mantissa (inputs are rounded
// to bf16 for the reference too, so only the kernel's own arithmetic and output rounding count).
TEST(GatedConvKernel, TheInstalledOpMatchesTheDefinitionInFloat32AndBFloat16) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    const double bound = t == at::kFloat ? 1e-5 : 1.6e-2;
    for (const Case& c : random_cases(12)) {
      SCOPED_TRACE(describe(c) + (t == at::kFloat ? " float32" : " bfloat16"));
      const Inputs in = make_inputs(c, t, 2);
      std::vector<at::Tensor> fast, exact;
      auto leaf = [&](const at::Tensor& x, bool wide) {
        if (!x.defined()) return x;
        auto& list = wide ? exact : fast;
        list.push_back((wide ? x.to(at::kDouble) : x).detach().requires_grad_());
        return list.back();
      };
      const at::Tensor y = gated_causal_conv(leaf(in.q, false), leaf(in.k, false), leaf(in.v, false),
                                             leaf(in.h, false), leaf(in.D, false));
      const at::Tensor ref =
          shift_add(leaf(in.q, true), leaf(in.k, true), leaf(in.v, true), leaf(in.h, true), leaf(in.D, true));
      EXPECT_EQ(y.scalar_type(), t);
      EXPECT_LT(relative_error(y, ref), bound);
      const at::Tensor dy = at::randn_like(ref);
      const auto gf = torch::autograd::grad({y}, fast, {dy.to(t)});
      const auto ge = torch::autograd::grad({ref}, exact, {dy});
      for (size_t i = 0; i < gf.size(); ++i) {
        EXPECT_EQ(gf[i].scalar_type(), fast[i].scalar_type()) << "gradient " << i;
        // The skip gradient D (the one 1-d tensor) sums B·L products and gets twice the bound; the
        // filter gradient, a sum as long, has met the plain bound on every run so far.
        EXPECT_LT(relative_error(gf[i], ge[i]), bound * (fast[i].dim() == 3 ? 1 : 2)) << "gradient " << i;
      }
    }
  }
}

// The composite form (the CPU path, and the GPU path without kernels) against the definition.
TEST(GatedConvKernel, TheCompositeFormMatchesTheDefinitionOnTheGpu) {
  REQUIRE_CUDA();
  for (const Case& c : random_cases(12)) {
    SCOPED_TRACE(describe(c));
    const Inputs in = make_inputs(c, at::kDouble, 4);
    const at::Tensor definition = shift_add(in.q, in.k, in.v, in.h, in.D);
    EXPECT_LT(relative_error(gated_causal_conv_reference(in.q, in.k, in.v, in.h, in.D), definition), 1e-12) << "GPU";
    auto cpu = [](const at::Tensor& t) { return t.defined() ? t.cpu() : t; };
    EXPECT_LT(relative_error(gated_causal_conv_reference(cpu(in.q), cpu(in.k), cpu(in.v), cpu(in.h), cpu(in.D)),
                             definition.cpu()),
              1e-12)
        << "CPU";
  }
}

// The recurrence by its definition, one step at a time.
// The long convolution of Hyena-LI and GConv-2: filters as long as the sequence, some longer
// (only the first L taps count), against the same term-by-term definition.
std::vector<Case> long_cases(int n) {
  std::mt19937 rng(11);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<Case> out = {{1, 1, 1, 1, true, true, true}, {2, 300, 65, 305, true, true, true}, {3, 64, 33, 64, false, false, false}};
  for (int i = 0; i < n; ++i) {
    const int64_t L = pick({1, 2, 7, 31, 32, 33, 64, 65, 129, 300});
    out.push_back({pick({1, 2, 3}), L, pick({1, 5, 31, 32, 33, 65, 130}), L + pick({0, 0, 3}), bool(rng() % 2),
                   bool(rng() % 2), bool(rng() % 2)});
  }
  return out;
}

// The raw passes of kernels/long_conv.h in float64, composed as kernels/ops.cpp composes them but
// with LibTorch's public transforms, every buffer they write poisoned (NaN) beforehand.
struct LongRaw {
  at::Tensor z_rows, h_rows, y, dy, dq, dk, dv, dh, dD;
};

LongRaw run_long_raw(const Case& c, const Inputs& in) {
  kernels::LongConvArgs a;
  a.dtype = kernels::DType::Float64;
  a.batch = c.B, a.length = c.L, a.channels = c.C, a.fft_length = kernels::long_conv_fft_length(c.L);
  a.q = c.q ? in.q.data_ptr() : nullptr, a.k = c.k ? in.k.data_ptr() : nullptr, a.v = in.v.data_ptr();
  a.D = c.D ? in.D.data_ptr() : nullptr;
  a.stream = at::cuda::getCurrentCUDAStream().stream();
  EXPECT_TRUE(kernels::long_conv_supported(a));
  const int64_t N = a.fft_length, F = N / 2 + 1;
  const auto o = in.v.options();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto poisoned = [&](std::vector<int64_t> sizes) { return at::full(sizes, nan, o); };
  auto poisoned_complex = [&](std::vector<int64_t> sizes) {
    sizes.push_back(2);
    return at::view_as_complex(poisoned(sizes));
  };
  LongRaw r;
  r.z_rows = poisoned({c.B, c.C, N});
  kernels::long_conv_pack_forward(a, r.z_rows.data_ptr());
  const at::Tensor Z = at::fft_rfft(r.z_rows, N, -1);
  const at::Tensor taps = in.h.reshape({c.C, c.K}).slice(1, 0, c.L).contiguous();
  r.h_rows = poisoned({c.C, N});
  kernels::long_conv_pad_filter(a, taps.data_ptr(), r.h_rows.data_ptr());
  const at::Tensor H = at::fft_rfft(r.h_rows, N, -1);
  const at::Tensor Y = poisoned_complex({c.B, c.C, F});
  kernels::long_conv_multiply(a, Z.data_ptr(), H.data_ptr(), Y.data_ptr());
  const at::Tensor y_rows = (at::fft_irfft(Y, N, -1) * double(N)).contiguous();  // unnormalised, as cuFFT's
  const at::Tensor conv = poisoned({c.B, c.L, c.C});
  r.y = poisoned({c.B, c.L, c.C});
  kernels::long_conv_unpack_forward(a, y_rows.data_ptr(), conv.data_ptr(), r.y.data_ptr());

  r.dy = at::randn_like(in.v);
  const at::Tensor g_rows = poisoned({c.B, c.C, N}), partial = poisoned({kernels::long_conv_partial_rows(a), c.C});
  r.dq = poisoned({c.B, c.L, c.C});
  kernels::long_conv_pack_backward(a, r.dy.data_ptr(), conv.data_ptr(), g_rows.data_ptr(), r.dq.data_ptr(),
                                   partial.data_ptr());
  const at::Tensor G = at::fft_rfft(g_rows, N, -1).contiguous(), dH = poisoned_complex({c.C, F});
  kernels::long_conv_multiply_backward(a, G.data_ptr(), Z.contiguous().data_ptr(), H.contiguous().data_ptr(),
                                       dH.data_ptr());
  const at::Tensor dz_rows = (at::fft_irfft(G, N, -1) * double(N)).contiguous();
  r.dk = poisoned({c.B, c.L, c.C}), r.dv = poisoned({c.B, c.L, c.C});
  kernels::long_conv_unpack_backward(a, r.dy.data_ptr(), dz_rows.data_ptr(), r.dk.data_ptr(), r.dv.data_ptr());
  r.dh = (at::fft_irfft(dH, N, -1) * double(N)).slice(1, 0, c.L);  // dH carries the 1/N itself
  r.dD = partial.sum(0);
  return r;
}

TEST(LongConvKernel, WritesEveryOutputAndMatchesTheDefinitionInFloat64) {
  REQUIRE_CUDA();
  for (const Case& c : long_cases(20)) {
    SCOPED_TRACE(describe(c) + " N=" + std::to_string(kernels::long_conv_fft_length(c.L)));
    const Inputs in = make_inputs(c, at::kDouble, 5);
    const LongRaw out = run_long_raw(c, in);
    ASSERT_FALSE(out.z_rows.isnan().any().item<bool>());
    EXPECT_EQ(out.z_rows.slice(2, c.L).abs().max().item<double>(), 0.0) << "zero padding";
    const at::Tensor taps = in.h.reshape({c.C, c.K}).slice(1, 0, c.L);
    EXPECT_TRUE(at::equal(out.h_rows, at::constant_pad_nd(taps, {0, out.h_rows.size(1) - c.L}))) << "padded filter";
    const auto [ref, g] = definition_and_gradients(in, out.dy);
    EXPECT_LT(relative_error(out.y, ref), 1e-10);
    size_t i = 0;
    if (c.q) EXPECT_LT(relative_error(out.dq, g[i++]), 1e-10) << "dq";
    if (c.k) EXPECT_LT(relative_error(out.dk, g[i++]), 1e-10) << "dk";
    EXPECT_LT(relative_error(out.dv, g[i++]), 1e-10) << "dv";
    EXPECT_LT(relative_error(out.dh, g[i++].reshape({c.C, c.K}).slice(1, 0, c.L)), 1e-10) << "dh";
    if (c.D) EXPECT_LT(relative_error(out.dD, g[i++]), 1e-10) << "dD";
  }
}

// Through the installed op (autograd, the slice of a longer filter, dtypes) against the float64
// definition: float64 within 1e-10, float32 within 1e-5, bfloat16 within its rounding (as the
// short convolution's op). The op must be the kernel's, not the composite form it falls back to.
TEST(LongConvKernel, TheInstalledOpMatchesTheDefinitionInEachDtype) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const at::ScalarType t : {at::kDouble, at::kFloat, at::kBFloat16}) {
    const double bound = t == at::kDouble ? 1e-10 : t == at::kFloat ? 1e-5 : 1.6e-2;
    for (const Case& c : long_cases(10)) {
      SCOPED_TRACE(describe(c) + " " + std::string(c10::toString(t)));
      Inputs in = make_inputs(c, t, 6);
      in.h = in.h.reshape({c.C, c.K});
      std::vector<at::Tensor> fast, exact;
      auto leaf = [&](const at::Tensor& x, bool wide) {
        if (!x.defined()) return x;
        auto& list = wide ? exact : fast;
        list.push_back((wide ? x.to(at::kDouble) : x).detach().requires_grad_());
        return list.back();
      };
      const at::Tensor y = gated_long_conv(leaf(in.q, false), leaf(in.k, false), leaf(in.v, false),
                                           leaf(in.h, false), leaf(in.D, false));
      const at::Tensor ref =
          shift_add(leaf(in.q, true), leaf(in.k, true), leaf(in.v, true), leaf(in.h, true), leaf(in.D, true));
      ASSERT_TRUE(y.grad_fn());
      EXPECT_NE(y.grad_fn()->name().find("LongConv"), std::string::npos) << y.grad_fn()->name();
      EXPECT_EQ(y.scalar_type(), t);
      EXPECT_LT(relative_error(y, ref), bound);
      const at::Tensor dy = at::randn_like(ref);
      const auto gf = torch::autograd::grad({y}, fast, {dy.to(t)});
      const auto ge = torch::autograd::grad({ref}, exact, {dy});
      for (size_t i = 0; i < gf.size(); ++i) {
        EXPECT_EQ(gf[i].scalar_type(), fast[i].scalar_type()) << "gradient " << i;
        EXPECT_TRUE(gf[i].sizes().equals(fast[i].sizes())) << "gradient " << i;
        EXPECT_LT(relative_error(gf[i], ge[i]), bound * (fast[i].dim() == 1 ? 2 : 1)) << "gradient " << i;
      }
    }
  }
}

at::Tensor sequential_scan(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B, const at::Tensor& C) {
  at::Tensor h = at::zeros({x.size(0), x.size(2), B.size(2)}, x.options());
  std::vector<at::Tensor> ys;
  for (int64_t t = 0; t < x.size(1); ++t) {
    h = log_a.select(1, t).exp().unsqueeze(-1) * h + x.select(1, t).unsqueeze(-1) * B.select(1, t).unsqueeze(1);
    ys.push_back((h * C.select(1, t).unsqueeze(1)).sum(-1));
  }
  return at::stack(ys, 1);
}

struct ScanCase {
  int64_t B, L, D, E;
};

std::vector<ScanCase> scan_cases(int n) {
  std::mt19937 rng(11);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<ScanCase> out = {{1, 1, 1, 1}, {2, 257, 129, 16}, {1, 33, 300, 2}};
  for (int i = 0; i < n; ++i)
    out.push_back({pick({1, 2, 3}), pick({1, 31, 32, 33, 100, 257}), pick({1, 5, 127, 128, 129, 300}),
                   pick({1, 2, 3, 5, 8, 16})});
  return out;
}

std::vector<at::Tensor> scan_inputs(const ScanCase& c, at::ScalarType t, uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  return {(-at::softplus(at::randn({c.B, c.L, c.D}, o))).to(t), at::randn({c.B, c.L, c.D}, o).to(t),
          at::randn({c.B, c.L, c.E}, o).to(t), at::randn({c.B, c.L, c.E}, o).to(t)};
}

// Raw kernels, outputs poisoned with NaN, against the definition and its autograd gradients.
TEST(ScanKernel, WritesEveryOutputAndMatchesTheDefinitionInFloat64) {
  REQUIRE_CUDA();
  for (const ScanCase& c : scan_cases(16)) {
    SCOPED_TRACE("B=" + std::to_string(c.B) + " L=" + std::to_string(c.L) + " D=" + std::to_string(c.D) +
                 " E=" + std::to_string(c.E));
    std::vector<at::Tensor> in = scan_inputs(c, at::kDouble, 1);
    kernels::ScanArgs a;
    a.dtype = kernels::DType::Float64;
    a.batch = c.B, a.length = c.L, a.channels = c.D, a.state = c.E;
    a.log_a = in[0].data_ptr(), a.x = in[1].data_ptr(), a.B = in[2].data_ptr(), a.C = in[3].data_ptr();
    a.stream = at::cuda::getCurrentCUDAStream().stream();
    ASSERT_TRUE(kernels::scan_supported(a));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const at::Tensor y = at::full_like(in[1], nan), dy = at::randn_like(in[1]);
    const at::Tensor ckpt = at::full({kernels::scan_checkpoint_elements(a)}, nan, in[1].options());
    kernels::scan_forward(a, y.data_ptr(), ckpt.data_ptr());
    const int64_t blocks = kernels::scan_channel_blocks(a);
    at::Tensor dla = at::full_like(in[0], nan), dx = at::full_like(in[1], nan);
    at::Tensor dB = at::full({c.B, c.L, c.E, blocks}, nan, in[1].options()), dC = at::full_like(dB, nan);
    kernels::scan_backward(a, ckpt.data_ptr(), dy.data_ptr(), dla.data_ptr(), dx.data_ptr(), dB.data_ptr(),
                           dC.data_ptr());
    std::vector<at::Tensor> leaves;
    for (const at::Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
    const at::Tensor ref = sequential_scan(leaves[0], leaves[1], leaves[2], leaves[3]);
    const auto g = torch::autograd::grad({ref}, leaves, {dy});
    EXPECT_LT(relative_error(y, ref), 1e-12);
    EXPECT_LT(relative_error(dla, g[0]), 1e-11) << "d log_a";
    EXPECT_LT(relative_error(dx, g[1]), 1e-11) << "dx";
    EXPECT_LT(relative_error(dB.sum(-1), g[2]), 1e-11) << "dB";
    EXPECT_LT(relative_error(dC.sum(-1), g[3]), 1e-11) << "dC";
  }
}

// Through the installed op in float32 (the evaluator's recurrence type), against float64.
TEST(ScanKernel, TheInstalledOpMatchesTheDefinitionInFloat32) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const ScanCase& c : scan_cases(8)) {
    SCOPED_TRACE("B=" + std::to_string(c.B) + " L=" + std::to_string(c.L) + " D=" + std::to_string(c.D) +
                 " E=" + std::to_string(c.E));
    const std::vector<at::Tensor> in = scan_inputs(c, at::kFloat, 2);
    std::vector<at::Tensor> fast, exact;
    for (const at::Tensor& t : in) {
      fast.push_back(t.detach().requires_grad_());
      exact.push_back(t.to(at::kDouble).detach().requires_grad_());
    }
    const at::Tensor y = diagonal_scan(fast[0], fast[1], fast[2], fast[3]);
    const at::Tensor ref = sequential_scan(exact[0], exact[1], exact[2], exact[3]);
    EXPECT_EQ(y.scalar_type(), at::kFloat);
    EXPECT_LT(relative_error(y, ref), 1e-5);
    const at::Tensor dy = at::randn_like(ref);
    const auto gf = torch::autograd::grad({y}, fast, {dy.to(at::kFloat)});
    const auto ge = torch::autograd::grad({ref}, exact, {dy});
    for (size_t i = 0; i < gf.size(); ++i) EXPECT_LT(relative_error(gf[i], ge[i]), 1e-4) << "gradient " << i;
  }
}

// The rotary embedding by its definition: each pair (x_i, x_{i+hd/2}) as the complex number
// x_i + i·x_{i+hd/2}, multiplied by e^{iθ} with θ = position · θ0^(−2i/hd); an odd last element
// passes through.
at::Tensor rotate_complex(const at::Tensor& x, int64_t offset, double theta0) {
  const int64_t L = x.size(2), hd = x.size(3), half = hd / 2;
  const auto o = x.options().dtype(at::kDouble);
  const at::Tensor angle = at::outer(at::arange(offset, offset + L, o), at::pow(theta0, -at::arange(0, half, o) * 2.0 / double(hd)));
  const at::Tensor z = at::complex(x.slice(-1, 0, half).to(at::kDouble), x.slice(-1, half, 2 * half).to(at::kDouble)) *
                       at::polar(at::ones_like(angle), angle);
  std::vector<at::Tensor> parts = {at::real(z), at::imag(z)};
  if (hd % 2) parts.push_back(x.slice(-1, 2 * half).to(at::kDouble));
  return at::cat(parts, -1);
}

struct RopeCase {
  int64_t B, H, L, hd, offset;
};

std::vector<RopeCase> rope_cases(int n) {
  std::mt19937 rng(13);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<RopeCase> out = {{1, 1, 1, 2, 0}, {2, 3, 129, 65, 0}, {1, 2, 2048, 64, 0}, {2, 4, 1, 32, 1000}};
  for (int i = 0; i < n; ++i)
    out.push_back({pick({1, 2, 3}), pick({1, 2, 5}), pick({1, 7, 64, 100, 257}), pick({2, 3, 16, 31, 32, 64, 128}),
                   pick({0, 0, 5})});
  return out;
}

std::string describe(const RopeCase& c) {
  return "B=" + std::to_string(c.B) + " H=" + std::to_string(c.H) + " L=" + std::to_string(c.L) +
         " hd=" + std::to_string(c.hd) + " offset=" + std::to_string(c.offset);
}

// The raw kernel from the projection's layout ([B, L, H, hd] seen as [B, H, L, hd]) into a
// NaN-poisoned contiguous output, and back by the inverse rotation: in float64 (one pair per
// thread), and in float32 and bfloat16 (packs of pairs where the head size allows).
TEST(RopeKernel, WritesEveryOutputAndMatchesTheDefinition) {
  REQUIRE_CUDA();
  for (const at::ScalarType t : {at::kDouble, at::kFloat, at::kBFloat16})
    for (const RopeCase& c : rope_cases(16)) {
      SCOPED_TRACE(describe(c) + (t == at::kDouble ? " float64" : t == at::kFloat ? " float32" : " bfloat16"));
      const double bound = t == at::kDouble ? 1e-13 : t == at::kFloat ? 2e-6 : 8e-3;
      const at::ScalarType acc = t == at::kDouble ? at::kDouble : at::kFloat;
      torch::manual_seed(5);
      const auto o = at::TensorOptions().dtype(t).device(at::kCUDA);
      const auto od = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
      const at::Tensor x = at::randn({c.B, c.L, c.H, c.hd}, o).transpose(1, 2);
      const int64_t half = c.hd / 2;
      const at::Tensor angle = at::outer(at::arange(c.offset, c.offset + c.L, od),
                                         at::pow(1e4, -at::arange(0, half, od) * 2.0 / double(c.hd)));
      const at::Tensor cos = angle.cos().to(acc).contiguous(), sin = angle.sin().to(acc).contiguous();
      at::Tensor y = at::full({c.B, c.H, c.L, c.hd}, std::numeric_limits<double>::quiet_NaN(), o);
      kernels::RopeArgs a;
      a.dtype = t == at::kDouble ? kernels::DType::Float64 : t == at::kFloat ? kernels::DType::Float32 : kernels::DType::BFloat16;
      a.batch = c.B, a.heads = c.H, a.length = c.L, a.head_dim = c.hd;
      for (int d = 0; d < 3; ++d) a.x_strides[d] = x.stride(d), a.y_strides[d] = y.stride(d);
      a.x = x.data_ptr(), a.cos = cos.data_ptr(), a.sin = sin.data_ptr();
      a.stream = at::cuda::getCurrentCUDAStream().stream();
      kernels::rope(a, y.data_ptr());
      EXPECT_LT(relative_error(y, rotate_complex(x.to(at::kDouble), c.offset, 1e4)), bound);
      // The inverse rotation of y, written into x's strided layout, is x again.
      at::Tensor back = at::full({c.B, c.L, c.H, c.hd}, std::numeric_limits<double>::quiet_NaN(), o).transpose(1, 2);
      for (int d = 0; d < 3; ++d) a.x_strides[d] = y.stride(d), a.y_strides[d] = back.stride(d);
      a.x = y.data_ptr(), a.inverse = true;
      kernels::rope(a, back.data_ptr());
      EXPECT_LT(relative_error(back, x), 2 * bound);
      ASSERT_FALSE(y.isnan().any().item<bool>());
      ASSERT_FALSE(back.isnan().any().item<bool>());
    }
}

// Through the installed op (autograd, the cached angle table) in float32 and bfloat16, against
// the definition in float64 on the same (rounded) inputs, with gradients; and the composite form
// the CPU runs against the same definition.
TEST(RopeKernel, TheInstalledOpAndTheCompositeFormMatchTheDefinition) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    // bf16: one rounding of the output (2^-8 relative); the composite also rounds cos and sin.
    const double bound = t == at::kFloat ? 2e-6 : 8e-3;
    for (const RopeCase& c : rope_cases(8)) {
      SCOPED_TRACE(describe(c) + (t == at::kFloat ? " float32" : " bfloat16"));
      torch::manual_seed(6);
      const auto o = at::TensorOptions().dtype(t).device(at::kCUDA);
      const at::Tensor proj = at::randn({c.B, c.L, c.H, c.hd}, o).requires_grad_();
      const at::Tensor exact = proj.detach().to(at::kDouble).requires_grad_();
      const at::Tensor y = rotary_embedding(proj.transpose(1, 2), c.offset, 1e4);
      const at::Tensor ref = rotate_complex(exact.transpose(1, 2), c.offset, 1e4);
      EXPECT_EQ(y.scalar_type(), t);
      EXPECT_TRUE(y.is_contiguous());
      EXPECT_LT(relative_error(y, ref), bound);
      EXPECT_LT(relative_error(rotary_embedding_reference(proj.detach().transpose(1, 2), c.offset, 1e4), ref),
                t == at::kFloat ? 1e-4 : 2e-2) << "composite";  // float32 angles of long sequences are off by ~1e-4
      const at::Tensor dy = at::randn_like(ref);
      const at::Tensor g = torch::autograd::grad({y}, {proj}, {dy.to(t)})[0];
      const at::Tensor ge = torch::autograd::grad({ref}, {exact}, {dy})[0];
      EXPECT_LT(relative_error(g, ge), bound) << "gradient";
    }
  }
}

TEST(SwigluKernel, WritesEveryOutputAndMatchesTheDefinition) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // 1 and 1,001 elements take the single-element path, 4,096 the 16-byte packs; a tensor that
  // starts one element into its storage is misaligned for packs.
  for (const int64_t n : {int64_t(1), int64_t(1001), int64_t(4096)}) {
    for (const bool misaligned : {false, true}) {
      SCOPED_TRACE("n=" + std::to_string(n) + (misaligned ? " misaligned" : ""));
      torch::manual_seed(8);
      const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
      auto make = [&](double scale) { return (scale * at::randn({n + 1}, o)).slice(0, misaligned ? 1 : 0, misaligned ? n + 1 : n); };
      const at::Tensor g = make(3), u = make(1), dy = make(1);
      at::Tensor y = at::full({n}, nan, o), dg = at::full({n}, nan, o), du = at::full({n}, nan, o);
      void* stream = at::cuda::getCurrentCUDAStream().stream();
      kernels::swiglu_forward(kernels::DType::Float64, n, g.data_ptr(), u.data_ptr(), y.data_ptr(), stream);
      kernels::swiglu_backward(kernels::DType::Float64, n, g.data_ptr(), u.data_ptr(), dy.data_ptr(), dg.data_ptr(),
                               du.data_ptr(), stream);
      const at::Tensor gl = g.detach().requires_grad_(), ul = u.detach().requires_grad_();
      const at::Tensor ref = gl / (1 + at::exp(-gl)) * ul;  // g σ(g) u
      const auto grads = torch::autograd::grad({ref}, {gl, ul}, {dy});
      EXPECT_LT(relative_error(y, ref), 1e-14);
      EXPECT_LT(relative_error(dg, grads[0]), 1e-14);
      EXPECT_LT(relative_error(du, grads[1]), 1e-14);
      ASSERT_FALSE(y.isnan().any().item<bool>() || dg.isnan().any().item<bool>() || du.isnan().any().item<bool>());
    }
  }
  for (const at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(t == at::kFloat ? "float32" : "bfloat16");
    const double bound = t == at::kFloat ? 1e-6 : 8e-3;
    const auto o = at::TensorOptions().dtype(t).device(at::kCUDA);
    const at::Tensor g = (3 * at::randn({4, 33, 96}, o)).requires_grad_(), u = at::randn({4, 33, 96}, o).requires_grad_();
    const at::Tensor ge = g.detach().to(at::kDouble).requires_grad_(), ue = u.detach().to(at::kDouble).requires_grad_();
    const at::Tensor y = swiglu(g, u), ref = ge / (1 + at::exp(-ge)) * ue;
    EXPECT_EQ(y.scalar_type(), t);
    EXPECT_LT(relative_error(y, ref), bound);
    const at::Tensor dy = at::randn_like(ref);
    const auto gf = torch::autograd::grad({y}, {g, u}, {dy.to(t)});
    const auto gx = torch::autograd::grad({ref}, {ge, ue}, {dy});
    EXPECT_LT(relative_error(gf[0], gx[0]), bound) << "dg";
    EXPECT_LT(relative_error(gf[1], gx[1]), bound) << "du";
  }
}

at::Tensor rms_definition(const at::Tensor& x, const at::Tensor& w) {
  return x / at::sqrt((x * x).mean(-1, true) + 1e-5) * w;
}

// The raw kernels in float64 into NaN-poisoned outputs (and workspace): y, the kept 1/rms, dx and
// the weight's gradient, against the definition and its autograd gradients.
TEST(RmsNormKernel, WritesEveryOutputAndMatchesTheDefinitionInFloat64) {
  REQUIRE_CUDA();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const int64_t rows : {int64_t(1), int64_t(50), int64_t(3001)})
    for (const int64_t width : {int64_t(1), int64_t(37), int64_t(768), int64_t(4096)}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + ", width " + std::to_string(width));
      torch::manual_seed(10);
      const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
      const at::Tensor x = 2 * at::randn({rows, width}, o), w = at::randn({width}, o), dy = at::randn({rows, width}, o);
      kernels::RmsNormArgs a;
      a.x_dtype = a.y_dtype = kernels::DType::Float64;
      a.rows = rows, a.width = width, a.eps = 1e-5, a.x = x.data_ptr(), a.weight = w.data_ptr();
      a.stream = at::cuda::getCurrentCUDAStream().stream();
      ASSERT_TRUE(kernels::rms_norm_supported(a));
      at::Tensor y = at::full_like(x, nan), rstd = at::full({rows}, nan, o), dx = at::full_like(x, nan);
      at::Tensor dw = at::full({width}, nan, o), workspace = at::full({kernels::rms_norm_workspace(a)}, nan, o);
      kernels::rms_norm_forward(a, y.data_ptr(), rstd.data_ptr());
      kernels::rms_norm_backward(a, rstd.data_ptr(), dy.data_ptr(), dx.data_ptr(), dw.data_ptr(), workspace.data_ptr());
      const at::Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_();
      const at::Tensor ref = rms_definition(xl, wl);
      const auto g = torch::autograd::grad({ref}, {xl, wl}, {dy});
      EXPECT_LT(relative_error(y, ref), 1e-13);
      EXPECT_LT(relative_error(rstd, at::rsqrt((x * x).mean(-1) + 1e-5)), 1e-13);
      EXPECT_LT(relative_error(dx, g[0]), 1e-12);
      EXPECT_LT(relative_error(dw, g[1]), 1e-12);
      ASSERT_FALSE(y.isnan().any().item<bool>() || dx.isnan().any().item<bool>() || dw.isnan().any().item<bool>());
    }
}

// The evaluator's RMSNorm on CUDA through the installed kernel and through LibTorch's operator
// (the reference), against the definition in float64, with gradients for the input and the weight;
// under bf16 autocast the kernel returns bfloat16, rounded once from the float32 result.
TEST(RmsNormKernel, TheInstalledOpAndLibTorchsOperatorMatchTheDefinition) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const bool autocast : {false, true})
    for (const at::ScalarType t : {at::kFloat, at::kDouble}) {
      if (autocast && t == at::kDouble) continue;
      const at::ScalarType out = autocast ? at::kBFloat16 : t;
      const double bound = out == at::kBFloat16 ? 8e-3 : t == at::kFloat ? 1e-5 : 1e-12;
      for (const int64_t d : {int64_t(1), int64_t(37), int64_t(768), int64_t(4096), int64_t(10000)}) {
        SCOPED_TRACE(std::string(t == at::kFloat ? "float32" : "float64") + (autocast ? ", autocast" : "") +
                     ", width " + std::to_string(d));
        torch::manual_seed(9);
        const auto o = at::TensorOptions().dtype(t).device(at::kCUDA);
        const at::Tensor x = (2 * at::randn({3, 50, d}, o)).requires_grad_(), w = at::randn({d}, o).requires_grad_();
        const at::Tensor xe = x.detach().to(at::kDouble).requires_grad_(), we = w.detach().to(at::kDouble).requires_grad_();
        const at::Tensor ref = rms_definition(xe, we), dy = at::randn_like(ref);
        const auto ge = torch::autograd::grad({ref}, {xe, we}, {dy}, /*retain_graph=*/true);
        for (const bool kernel : {true, false}) {
          SCOPED_TRACE(kernel ? "kernel" : "LibTorch's operator");
          at::Tensor y;
          {
            const Bf16Autocast guard(autocast);
            y = kernel ? rms_norm(x, w, 1e-5) : rms_norm_reference(x, w, 1e-5);
          }
          // A width over the kernel's 8,192 goes to LibTorch's operator, which keeps float32.
          EXPECT_EQ(y.scalar_type(), kernel && d <= 8192 ? out : t);
          EXPECT_LT(relative_error(y, ref), y.scalar_type() == at::kBFloat16 ? bound : (t == at::kFloat ? 1e-5 : 1e-12));
          const auto g = torch::autograd::grad({y}, {x, w}, {dy.to(y.scalar_type())});
          // dy rounded to bf16 for the kernel's gradient: compare with the same rounding's exact gradient.
          const auto gr = y.scalar_type() == at::kBFloat16
                              ? torch::autograd::grad({ref}, {xe, we}, {dy.to(at::kBFloat16).to(at::kDouble)}, true)
                              : ge;
          const double gb = y.scalar_type() == at::kBFloat16 ? 1e-5 : (t == at::kFloat ? 1e-5 : 1e-12);
          EXPECT_LT(relative_error(g[0], gr[0]), gb) << "dx";
          EXPECT_LT(relative_error(g[1], gr[1]), gb * 10) << "dweight (a sum over 150 rows)";
        }
      }
    }
}

// The cross-entropy's definition on float64 logits: the mean over scored rows of
// logsumexp(x_r) − x_r[t_r], written with LibTorch's logsumexp and a gather.
at::Tensor cross_entropy_definition(const at::Tensor& x, const at::Tensor& t, int64_t ignore) {
  const at::Tensor scored = t.ne(ignore), safe = at::where(scored, t, at::zeros_like(t));
  const at::Tensor per_row = at::logsumexp(x, 1) - x.gather(1, safe.unsqueeze(1)).squeeze(1);
  return (per_row * scored).sum() / scored.sum();
}

// The raw kernels in float64 into NaN-poisoned outputs: the loss, the scored-row count, each row's
// log-sum-exp and the logits' gradient (zero on ignored rows) for a loss gradient of 0.7, against
// the definition and its autograd gradient; no scored row gives NaN, as does a target out of range.
TEST(CrossEntropyKernel, WritesEveryOutputAndMatchesTheDefinitionInFloat64) {
  REQUIRE_CUDA();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  const auto lo = at::TensorOptions().dtype(at::kLong).device(at::kCUDA);
  auto run = [&](const at::Tensor& x, const at::Tensor& t) {
    kernels::CrossEntropyArgs a;
    a.dtype = kernels::DType::Float64;
    a.rows = x.size(0), a.classes = x.size(1), a.ignore_index = -100;
    a.logits = x.data_ptr(), a.targets = t.data_ptr<int64_t>();
    a.stream = at::cuda::getCurrentCUDAStream().stream();
    EXPECT_TRUE(kernels::cross_entropy_supported(a));
    at::Tensor loss = at::full({}, nan, o), scored = at::full({1}, nan, o), lse = at::full({a.rows}, nan, o);
    at::Tensor workspace = at::full({kernels::cross_entropy_workspace(a)}, nan, o), dx = at::full_like(x, nan);
    const at::Tensor grad = at::full({}, 0.7, o);
    kernels::cross_entropy_forward(a, loss.data_ptr(), scored.data_ptr(), lse.data_ptr(), workspace.data_ptr());
    kernels::cross_entropy_backward(a, lse.data_ptr(), scored.data_ptr(), grad.data_ptr(), dx.data_ptr());
    return std::make_tuple(loss, scored, lse, dx);
  };
  for (const int64_t rows : {int64_t(1), int64_t(50), int64_t(3001), int64_t(20000)})
    for (const int64_t classes : {int64_t(1), int64_t(37), int64_t(256), int64_t(5000)}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + ", classes " + std::to_string(classes));
      torch::manual_seed(11);
      const at::Tensor x = 4 * at::randn({rows, classes}, o);
      at::Tensor t = at::randint(0, classes, {rows}, lo);
      if (rows > 1) t = at::where(at::rand({rows}, o) < 0.3, at::full_like(t, -100), t);
      t[0] = classes - 1;  // at least one scored row
      const auto [loss, scored, lse, dx] = run(x, t);
      const at::Tensor xl = x.detach().requires_grad_(), ref = cross_entropy_definition(xl, t, -100);
      const at::Tensor g = torch::autograd::grad({ref}, {xl}, {at::full({}, 0.7, o)})[0];
      EXPECT_LT(relative_error(loss, ref), 1e-13);
      EXPECT_EQ(scored.item<double>(), t.ne(-100).sum().item<double>());
      EXPECT_LT(relative_error(lse, at::logsumexp(x, 1)), 1e-13);
      EXPECT_LT(relative_error(dx, g), 1e-13);
      EXPECT_EQ(dx.index({t.eq(-100)}).abs().sum().item<double>(), 0.0) << "ignored rows";
      ASSERT_FALSE(lse.isnan().any().item<bool>() || dx.isnan().any().item<bool>());
    }
  const at::Tensor x = at::randn({5, 9}, o);
  EXPECT_TRUE(std::isnan(std::get<0>(run(x, at::full({5}, -100, lo))).item<double>())) << "no scored row";
  EXPECT_TRUE(std::isnan(std::get<0>(run(x, at::tensor(std::vector<int64_t>{1, 2, 9, 3, 4}, lo))).item<double>()))
      << "a target equal to the class count";
}

// The evaluator's loss on CUDA through the installed kernel, against LibTorch's (the reference) and
// the definition in float64: a 0-dim loss in the accumulation type (float32 for bfloat16 logits,
// with no cast of the logits first), and the logits' gradient in their own dtype.
TEST(CrossEntropyKernel, TheInstalledOpMatchesLibTorchsLossAndGradient) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const at::ScalarType t : {at::kDouble, at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(t == at::kDouble ? "float64" : t == at::kFloat ? "float32" : "bfloat16");
    torch::manual_seed(12);
    const auto o = at::TensorOptions().dtype(t).device(at::kCUDA);
    const at::Tensor x = (3 * at::randn({777, 256}, o)).requires_grad_();
    const auto lo = at::TensorOptions().dtype(at::kLong).device(at::kCUDA);
    const at::Tensor drawn = at::randint(0, 256, {777}, lo);
    const at::Tensor tg = at::where(at::rand({777}, o.dtype(at::kFloat)) < 0.1, at::full_like(drawn, -100), drawn);
    const at::Tensor loss = cross_entropy(x, tg, -100), ref = cross_entropy_reference(x, tg, -100);
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_EQ(loss.scalar_type(), t == at::kDouble ? at::kDouble : at::kFloat);
    const at::Tensor xe = x.detach().to(at::kDouble).requires_grad_(), def = cross_entropy_definition(xe, tg, -100);
    const double bound = t == at::kDouble ? 1e-13 : 1e-5;  // the logits are exact in double: float32 sums
    EXPECT_LT(relative_error(loss, def), bound);
    EXPECT_LT(relative_error(ref, def), bound);
    const at::Tensor g = torch::autograd::grad({loss}, {x})[0], gr = torch::autograd::grad({ref}, {x})[0];
    const at::Tensor gd = torch::autograd::grad({def}, {xe})[0];
    EXPECT_EQ(g.scalar_type(), t);
    // bfloat16 gradients: each element rounded once (relative 2^-8 of an element of at most 1/777).
    const double gb = t == at::kBFloat16 ? 1e-5 : t == at::kFloat ? 1e-8 : 1e-15;
    EXPECT_LT(relative_error(g, gd), gb) << "kernel";
    EXPECT_LT(relative_error(gr, gd), gb) << "LibTorch";
  }
}

// Models on the GPU compute the same loss and gradients with the kernels as without: the
// StripedHyena 2 preset (Hyena-SE, -MR, -LI and their short convolutions), the StripedMamba one
// (Rec-1) and Transformer++ (rotary attention, SwiGLU).
TEST(Kernels, ModelsTrainTheSameWithAndWithoutThem) {
  REQUIRE_CUDA();
  for (const std::string name : {"striped-hyena2", "striped-mamba", "transformer++"}) {
    SCOPED_TRACE(name);
    const SearchSpace space = preset_space(8, 64, 64);
    const ModelSpec spec = compile(space, preset_genome(space, name));
    torch::manual_seed(3);
    LivModel model(spec);
    model->to(at::kCUDA, at::kDouble);
    const at::Tensor tokens = at::randint(0, 64, {2, 50}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
    auto loss_and_grads = [&](bool kernels) {
      if (kernels) {
        EXPECT_EQ(kernels::install(), kAllKernels);
      } else {
        kernels::uninstall();
      }
      model->zero_grad();
      const at::Tensor logits = model->forward(tokens);
      const at::Tensor loss = cross_entropy(logits.reshape({-1, 64}), tokens.reshape({-1}), -100);
      loss.backward();
      std::vector<at::Tensor> out = {loss.detach().clone()};
      for (const auto& p : model->parameters())
        out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
      return out;
    };
    const std::vector<at::Tensor> with = loss_and_grads(true), without = loss_and_grads(false);
    ASSERT_EQ(with.size(), without.size());
    for (size_t i = 0; i < with.size(); ++i)
      EXPECT_LT(relative_error(with[i], without[i]), 1e-10) << "tensor " << i;
  }
  kernels::install();
}

}  // namespace
}  // namespace starsynth
