// Each CUDA kernel of kernels/ beside (a) its composite LibTorch form and (b) its memory floor:
// the bytes it must move at the copy bandwidth measured in the same run. bf16 operands, the
// shapes of the kernels issue: B=8, L=8192, D=1024 and B=1, L=8192, D=4096, or those of --shapes
// (batch x length x channels, comma-separated).
//
//   kernel_speed [--repeats 5] [--iters 20] [--sections conv,long,scan,pointwise]
//                [--shapes 8x8192x1024,1x8192x4096]
//
// Forward: y = q ⊙ (h ∗ (k ⊙ v) + D ⊙ k ⊙ v) reads q, k, v and writes y. Backward (timed as
// forward + backward, minus forward): reads q, k, v, dy and writes dq, dk, dv (filter gradients
// are small). Then the long convolution of Hyena-LI (L taps, by FFT); the Rec-1 / Rec-2
// recurrence (state 16 / 2), float32, where ×faster compares forward plus backward with the
// composite's. Last, the pointwise operators of attention and SwiGLU layers (rotary embedding,
// SwiGLU's activation, bf16) and RMSNorm (float32; the kernel, and LibTorch's own operator, each
// against the composite form), at the same shapes. Times are medians over repeats of the mean
// over iters, µs.
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "evaluator/model.h"
#include "kernels/ops.h"

using namespace starsynth;

namespace {

int option(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return std::stoi(argv[i + 1]);
  return fallback;
}

// "8x8192x1024,1x8192x4096" as {B, L, D} triples; anything else is a usage error, named.
std::vector<std::array<int64_t, 3>> parse_shapes(const std::string& text) {
  std::vector<std::array<int64_t, 3>> shapes;
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    std::array<int64_t, 3> s{};
    char x1 = 0, x2 = 0;
    std::stringstream fields(item);
    if (!(fields >> s[0] >> x1 >> s[1] >> x2 >> s[2]) || x1 != 'x' || x2 != 'x' || !fields.eof() || s[0] < 1 ||
        s[1] < 1 || s[2] < 1)
      throw std::invalid_argument("kernel_speed: --shapes: '" + item +
                                  "' is not BATCHxLENGTHxCHANNELS with three positive integers");
    shapes.push_back(s);
  }
  if (shapes.empty()) throw std::invalid_argument("kernel_speed: --shapes: no shape given");
  return shapes;
}

double median_us(const std::function<void()>& work, int repeats, int iters) {
  work();
  torch::cuda::synchronize();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) work();
    torch::cuda::synchronize();
    t.push_back(1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Op {
  const char* name;
  int64_t taps;
  bool gates, skip;
};

}  // namespace

int main(int argc, char** argv) {
  const int repeats = option(argc, argv, "repeats", 5), iters = option(argc, argv, "iters", 20);
  std::string sections = "conv,long,scan,pointwise", shape_list = "8x8192x1024,1x8192x4096";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--sections") sections = argv[i + 1];
    if (std::string(argv[i]) == "--shapes") shape_list = argv[i + 1];
  }
  std::vector<std::array<int64_t, 3>> shapes;
  try {
    shapes = parse_shapes(shape_list);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  auto wanted = [&](const char* name) { return ("," + sections + ",").find("," + std::string(name) + ",") != std::string::npos; };
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "kernel_speed: no CUDA device\n");
    return 1;
  }
  // Copy bandwidth: 1 GiB device to device, bytes read plus bytes written.
  const int64_t bytes = int64_t(1) << 30;
  const at::Tensor src = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(at::kCUDA)), dst = at::empty_like(src);
  const double copy_us = median_us([&] { dst.copy_(src); }, repeats, iters);
  const double bandwidth = 2.0 * double(bytes) / (copy_us * 1e-6);  // bytes/s
  std::printf("%s; copy bandwidth %.0f GB/s (1 GiB copy %.0f µs)\n", at::cuda::getDeviceProperties(0)->name,
              bandwidth / 1e9, copy_us);
  std::printf("%-22s %-10s %4s | %9s %9s %9s %7s | %9s %9s %9s %8s\n", "shape", "op", "taps", "fwd µs", "composite",
              "floor", "÷floor", "bwd µs", "composite", "floor", "bwd÷fwd");

  const Op ops[] = {{"short conv", 3, false, false}, {"Hyena-SE", 7, true, false}, {"Hyena-MR", 128, true, true}};
  torch::NoGradGuard no_grad_by_default;
  for (const auto& s : shapes) {
    if (!wanted("conv")) break;
    const int64_t B = s[0], L = s[1], C = s[2];
    const auto o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    for (const Op& op : ops) {
      const at::Tensor v = at::randn({B, L, C}, o).requires_grad_();
      const at::Tensor q = op.gates ? at::randn({B, L, C}, o).requires_grad_() : at::Tensor();
      const at::Tensor k = op.gates ? at::randn({B, L, C}, o).requires_grad_() : at::Tensor();
      const at::Tensor h = (at::randn({C, 1, op.taps}, o.dtype(at::kFloat)) / std::sqrt(double(op.taps))).requires_grad_();
      const at::Tensor D = op.skip ? at::randn({C}, o.dtype(at::kFloat)).requires_grad_() : at::Tensor();
      const at::Tensor dy = at::randn({B, L, C}, o);
      std::vector<at::Tensor> leaves = {v, h};
      if (op.gates) leaves.insert(leaves.end(), {q, k});
      if (op.skip) leaves.push_back(D);
      double fwd[2], fwdbwd[2];
      for (int kernel = 0; kernel < 2; ++kernel) {
        if (kernel) kernels::install();
        else use_gated_conv_kernel(nullptr);
        fwd[kernel] = median_us([&] { gated_causal_conv(q, k, v, h, D); }, repeats, iters);
        fwdbwd[kernel] = median_us(
            [&] {
              torch::AutoGradMode grad(true);
              const at::Tensor y = gated_causal_conv(q, k, v, h, D);
              torch::autograd::grad({y}, leaves, {dy});
            },
            repeats, iters);
      }
      const double tensor_bytes = double(B * L * C) * 2, inputs = op.gates ? 3 : 1;
      const double floor_fwd = 1e6 * (inputs + 1) * tensor_bytes / bandwidth;
      const double floor_bwd = 1e6 * (2 * inputs + 1) * tensor_bytes / bandwidth;
      const double bwd = fwdbwd[1] - fwd[1];
      char shape[64];
      std::snprintf(shape, sizeof shape, "B=%lld L=%lld D=%lld", static_cast<long long>(B), static_cast<long long>(L),
                    static_cast<long long>(C));
      std::printf("%-22s %-10s %4lld | %9.0f %9.0f %9.0f %7.2f | %9.0f %9.0f %9.0f %8.2f\n", shape, op.name,
                  static_cast<long long>(op.taps), fwd[1], fwd[0], floor_fwd, fwd[1] / floor_fwd, bwd,
                  fwdbwd[0] - fwd[0], floor_bwd, bwd / fwd[1]);
    }
  }

  // The long convolution of Hyena-LI / GConv-2 (filters of L taps, by FFT over N ≥ 2L − 1 points):
  // the same I/O floor as the short one, which no FFT method reaches, so the time of its transforms
  // alone (one real-to-complex and one complex-to-real over the [B, C, N] float32 rows, cuFFT
  // through LibTorch; backward needs two and a small third) is printed beside it.
  std::printf("\n%-22s %-10s %4s | %9s %9s %9s %7s %11s | %9s %9s %8s\n", "shape", "op", "taps", "fwd µs", "composite",
              "floor", "÷floor", "transforms", "bwd µs", "composite", "bwd÷fwd");
  for (const auto& s : shapes) {
    if (!wanted("long")) break;
    const int64_t B = s[0], L = s[1], C = s[2];
    const auto o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    const at::Tensor q = at::randn({B, L, C}, o).requires_grad_(), k = at::randn({B, L, C}, o).requires_grad_();
    const at::Tensor v = at::randn({B, L, C}, o).requires_grad_();
    const at::Tensor h = (at::randn({C, L}, o.dtype(at::kFloat)) / std::sqrt(double(L))).requires_grad_();
    const at::Tensor D = at::randn({C}, o.dtype(at::kFloat)).requires_grad_();
    const at::Tensor dy = at::randn({B, L, C}, o);
    double fwd[2], fwdbwd[2];
    for (int kernel = 0; kernel < 2; ++kernel) {
      if (kernel) kernels::install();
      else use_long_conv_kernel(nullptr);
      fwd[kernel] = median_us([&] { gated_long_conv(q, k, v, h, D); }, repeats, iters);
      fwdbwd[kernel] = median_us(
          [&] {
            torch::AutoGradMode grad(true);
            torch::autograd::grad({gated_long_conv(q, k, v, h, D)}, {q, k, v, h, D}, {dy});
          },
          repeats, iters);
    }
    const int64_t N = 2 * L;  // L here is a power of two: N is the kernels' transform length
    const at::Tensor rows = at::randn({B, C, N}, o.dtype(at::kFloat));
    const double transforms = median_us(
        [&] { at::_fft_c2r(at::_fft_r2c(rows, {2}, 0, true), {2}, 0, N); }, repeats, iters);
    const double tensor_bytes = double(B * L * C) * 2;
    const double floor_fwd = 1e6 * 4 * tensor_bytes / bandwidth;
    const double bwd = fwdbwd[1] - fwd[1];
    char shape[64];
    std::snprintf(shape, sizeof shape, "B=%lld L=%lld D=%lld", static_cast<long long>(B), static_cast<long long>(L),
                  static_cast<long long>(C));
    std::printf("%-22s %-10s %4lld | %9.0f %9.0f %9.0f %7.2f %11.0f | %9.0f %9.0f %8.2f\n", shape, "Hyena-LI",
                static_cast<long long>(L), fwd[1], fwd[0], floor_fwd, fwd[1] / floor_fwd, transforms, bwd,
                fwdbwd[0] - fwd[0], bwd / fwd[1]);
  }

  // The recurrence, in float32 (the evaluator's type for it): reads log_a and x, writes y (B and C
  // are 1/64 of that or less); backward reads log_a, x, dy and writes their two gradients.
  std::printf("\n%-22s %-10s %4s | %9s %9s %9s %7s | %9s %9s %9s %8s\n", "shape", "op", "state", "fwd µs",
              "composite", "floor", "÷floor", "bwd µs", "composite", "floor", "×faster");
  const int scan_iters = std::max(1, iters / 10);
  for (const auto& s : shapes) {
    if (!wanted("scan")) break;
    const int64_t B = s[0], L = s[1], D = s[2];
    const auto o = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
    for (const int64_t E : {int64_t(16), int64_t(2)}) {
      const at::Tensor log_a = (-at::softplus(at::randn({B, L, D}, o))).requires_grad_();
      const at::Tensor x = at::randn({B, L, D}, o).requires_grad_();
      const at::Tensor Bm = at::randn({B, L, E}, o).requires_grad_(), Cm = at::randn({B, L, E}, o).requires_grad_();
      const at::Tensor dy = at::randn({B, L, D}, o);
      double fwd[2], fwdbwd[2];
      for (int kernel = 0; kernel < 2; ++kernel) {
        if (kernel) kernels::install();
        else use_scan_kernel(nullptr);
        fwd[kernel] = median_us([&] { diagonal_scan(log_a, x, Bm, Cm); }, repeats, scan_iters);
        fwdbwd[kernel] = median_us(
            [&] {
              torch::AutoGradMode grad(true);
              torch::autograd::grad({diagonal_scan(log_a, x, Bm, Cm)}, {log_a, x, Bm, Cm}, {dy});
            },
            repeats, scan_iters);
      }
      const double tensor_bytes = double(B * L * D) * 4;
      const double floor_fwd = 1e6 * 3 * tensor_bytes / bandwidth, floor_bwd = 1e6 * 5 * tensor_bytes / bandwidth;
      char shape[64];
      std::snprintf(shape, sizeof shape, "B=%lld L=%lld D=%lld", static_cast<long long>(B), static_cast<long long>(L),
                    static_cast<long long>(D));
      std::printf("%-22s %-10s %4lld | %9.0f %9.0f %9.0f %7.2f | %9.0f %9.0f %9.0f %8.1f\n", shape,
                  E == 16 ? "Rec-1" : "Rec-2", static_cast<long long>(E), fwd[1], fwd[0], floor_fwd, fwd[1] / floor_fwd,
                  fwdbwd[1] - fwd[1], fwdbwd[0] - fwd[0], floor_bwd, fwdbwd[0] / fwdbwd[1]);
    }
  }

  // Pointwise operators: `run(kernel)` computes the output with (1) or without (0) the kernel.
  std::printf("\n%-22s %-10s %4s | %9s %9s %9s %7s | %9s %9s %9s %8s\n", "shape", "op", "", "fwd µs", "composite",
              "floor", "÷floor", "bwd µs", "composite", "floor", "×faster");
  for (const auto& s : shapes) {
    if (!wanted("pointwise")) break;
    const int64_t B = s[0], L = s[1], D = s[2], hd = 64;
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
    auto row = [&](const char* name, const std::vector<at::Tensor>& leaves, const std::function<at::Tensor(bool)>& run,
                   double element_bytes, int fwd_tensors, int bwd_tensors) {
      const at::Tensor dy = at::randn_like(run(false).detach());
      double fwd[2], fwdbwd[2];
      for (int kernel = 0; kernel < 2; ++kernel) {
        if (kernel) kernels::install();
        else kernels::uninstall();
        fwd[kernel] = median_us([&] { run(kernel); }, repeats, iters);
        fwdbwd[kernel] = median_us(
            [&] {
              torch::AutoGradMode grad(true);
              torch::autograd::grad({run(kernel)}, leaves, {dy});
            },
            repeats, iters);
      }
      const double tensor_bytes = double(B * L * D) * element_bytes;
      const double floor_fwd = 1e6 * fwd_tensors * tensor_bytes / bandwidth, floor_bwd = 1e6 * bwd_tensors * tensor_bytes / bandwidth;
      char shape[64];
      std::snprintf(shape, sizeof shape, "B=%lld L=%lld D=%lld", static_cast<long long>(B), static_cast<long long>(L),
                    static_cast<long long>(D));
      std::printf("%-22s %-10s %4s | %9.0f %9.0f %9.0f %7.2f | %9.0f %9.0f %9.0f %8.1f\n", shape, name, "", fwd[1],
                  fwd[0], floor_fwd, fwd[1] / floor_fwd, fwdbwd[1] - fwd[1], fwdbwd[0] - fwd[0], floor_bwd,
                  fwdbwd[0] / fwdbwd[1]);
    };
    // The projection's output [B, L, D] seen as [B, H, L, hd], as attention hands it over.
    const at::Tensor proj = at::randn({B, L, D}, bf16).requires_grad_();
    row("RoPE", {proj}, [&](bool) { return rotary_embedding(proj.view({B, L, D / hd, hd}).transpose(1, 2), 0, 1e4); },
        2, 2, 2);
    const at::Tensor g = at::randn({B, L, D}, bf16).requires_grad_(), u = at::randn({B, L, D}, bf16).requires_grad_();
    row("SwiGLU", {g, u}, [&](bool) { return swiglu(g, u); }, 2, 3, 5);
    const at::Tensor x = at::randn({B, L, D}, bf16.dtype(at::kFloat)).requires_grad_();
    const at::Tensor w = at::randn({D}, bf16.dtype(at::kFloat)).requires_grad_();
    row("RMSNorm", {x, w}, [&](bool fused) { return fused ? rms_norm(x, w, 1e-5) : rms_norm_composite(x, w, 1e-5); },
        4, 2, 3);
    row("RMSNorm op", {x, w},  // LibTorch's own operator
        [&](bool fused) { return fused ? rms_norm_reference(x, w, 1e-5) : rms_norm_composite(x, w, 1e-5); }, 4, 2, 3);
  }
  return 0;
}
