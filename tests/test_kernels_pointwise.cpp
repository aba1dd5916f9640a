// The one-pass kernels against their definitions: the rotary embedding and SwiGLU
// (kernels/pointwise.h), RMSNorm (kernels/rms_norm.h, and LibTorch's own RMSNorm operator, the
// fallback) and the cross-entropy loss (kernels/cross_entropy.h), outputs poisoned (NaN)
// beforehand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>

#include <limits>
#include <random>
#include <tuple>

#include "evaluator/model.h"
#include "evaluator/train_step.h"
#include "kernels/cross_entropy.h"
#include "kernels/ops.h"
#include "kernels/pointwise.h"
#include "kernels/rms_norm.h"

#include "tests/kernel_testing.h"

namespace starsynth {
namespace {

using namespace kernel_testing;

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

}  // namespace
}  // namespace starsynth
