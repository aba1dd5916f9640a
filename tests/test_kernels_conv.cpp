// The gated convolutions (kernels/gated_conv.h: Hyena-SE, -MR, GConv-1, the short convolutions;
// kernels/long_conv.h: Hyena-LI, GConv-2 by FFT) against the definition written here term by
// term: forward and every gradient at random shapes (odd lengths, channel counts that are no
// multiple of a tile, 1 to 200 taps, filters as long as the sequence, each gate present or
// absent), in float64, float32 and bfloat16, with outputs poisoned (NaN) beforehand so that an
// element left unwritten fails.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>

#include <limits>
#include <optional>
#include <random>
#include <utility>

#include "evaluator/model.h"
#include "kernels/gated_conv.h"
#include "kernels/long_conv.h"
#include "kernels/ops.h"

#include "tests/kernel_testing.h"

namespace starsynth {
namespace {

using namespace kernel_testing;

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

// The tensor-core backward pass's blocks: GatedConvArgs' time_blocks and wave_blocks.
struct BackwardBlocks {
  int64_t time = 0, wave = 0;
};

std::optional<RawOutputs> run_raw(const Case& c, const Inputs& in, kernels::DType dtype, BackwardBlocks blocks = {}) {
  kernels::GatedConvArgs a;
  a.dtype = dtype, a.time_blocks = blocks.time, a.wave_blocks = blocks.wave;
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

// Each of the kernels' outputs within `tolerance` of the definition's, relative to its largest
// value; the filter's and the skip's gradients, sums over every batch and step, within `sum_tolerance`.
void expect_matches_definition(const Case& c, const Inputs& in, const RawOutputs& out, double tolerance,
                               double sum_tolerance) {
  const auto [ref, g] = definition_and_gradients(in, out.dy);
  EXPECT_LT(relative_error(out.y, ref), tolerance);
  size_t i = 0;
  if (c.q) EXPECT_LT(relative_error(out.dq, g[i++]), tolerance) << "dq";
  if (c.k) EXPECT_LT(relative_error(out.dk, g[i++]), tolerance) << "dk";
  EXPECT_LT(relative_error(out.dv, g[i++]), tolerance) << "dv";
  EXPECT_LT(relative_error(out.dh, g[i++].reshape({c.C, c.K})), sum_tolerance) << "dh";
  if (c.D) EXPECT_LT(relative_error(out.dD, g[i++]), sum_tolerance) << "dD";
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
    expect_matches_definition(c, in, *out, 1e-12, 1e-11);
    ASSERT_FALSE(out->y.isnan().any().item<bool>());
  }
}

// The bf16 kernels (tensor cores, filters of up to 128 taps) raw, outputs poisoned, against the
// definition evaluated in float64 on the same bf16 inputs and the same bf16 dy. They round z = k·v,
// g = dy·q and the filter to bf16 and each output once: 1e-2 of the largest value bounds that
// (about 2^-9 per rounding). Each case runs three times: with the backward pass's blocks as the
// kernels choose them (at these sizes mostly one per tile); with one block along the sequence,
// which walks all its tiles, carrying z's halo, g's lookahead and the filter gradient from one to
// the next; and as if a wave held 4 blocks, so that shapes of more sequences (batch rows of 32
// channels) take several launches, of whole sequences and then of the rest split along time.
// Several batches, channel groups and sequences of many tiles exercise those.
TEST(GatedConvKernel, WritesEveryOutputAndMatchesTheDefinitionInBFloat16) {
  REQUIRE_CUDA();
  std::vector<Case> cases = random_cases(24);
  cases.push_back({2, 1000, 64, 128, true, true, true});
  cases.push_back({3, 777, 40, 7, true, false, true});
  cases.push_back({1, 2048, 96, 33, false, true, false});
  cases.push_back({2, 1500, 24, 64, true, true, false});
  cases.push_back({2, 1000, 96, 128, true, true, true});  // 6 sequences: launches of 4 and of 2 split in two
  for (const Case& c : cases)
    for (const BackwardBlocks blocks : {BackwardBlocks{}, BackwardBlocks{1, 0}, BackwardBlocks{0, 4}}) {
      SCOPED_TRACE(describe(c) + " time_blocks=" + std::to_string(blocks.time) +
                   " wave_blocks=" + std::to_string(blocks.wave));
      // Inside the loop: make_inputs reseeds the generator that run_raw draws dy from, so every
      // choice of blocks sees the same dy.
      const Inputs in = make_inputs(c, at::kBFloat16, 3);
      const std::optional<RawOutputs> out = run_raw(c, in, kernels::DType::BFloat16, blocks);
      // Past 128 taps the CUDA-core kernels take over, and at 200 their float shared memory is too large.
      if (!out) {
        EXPECT_GT(c.K, 128);
        continue;
      }
      ASSERT_FALSE(out->y.isnan().any().item<bool>());
      expect_matches_definition(c, in, *out, 1e-2, 1e-2);
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

}  // namespace
}  // namespace starsynth
