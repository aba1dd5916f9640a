// Memory-bound pointwise operators of attention and SwiGLU layers, each one pass over memory where
// LibTorch's composite form makes many (the rotary embedding alone: a slice, four products, two
// sums and a concatenation, each a kernel over the whole tensor, and as many again backward):
//
//   rotary embedding (GPT-NeoX layout), for i < hd/2, with c = cos(θ_{t,i}), s = sin(θ_{t,i}):
//     y[.., i] = x[.., i]·c − x[.., i + hd/2]·s,   y[.., i + hd/2] = x[.., i + hd/2]·c + x[.., i]·s
//     (an odd head size's last element passes through); its gradient is the inverse rotation.
//   SwiGLU's activation:  y = silu(g) ⊙ u = g·σ(g)·u.
//
// Raw device pointers, no LibTorch (kernels/ops.cpp is the glue), so any nvcc compiles this file.
#pragma once

#include <cstdint>

#include "kernels/gated_conv.h"

namespace starsynth::kernels {

// x [batch, heads, length, head_dim] at the given element strides (head_dim's stride is 1), of the
// DType; cos and sin [length, head_dim / 2] contiguous in the accumulation type (double for
// Float64, else float). `inverse` rotates by −θ (the gradient). y: the same shape at y's strides.
struct RopeArgs {
  DType dtype = DType::Float32;
  int64_t batch = 0, heads = 0, length = 0, head_dim = 0;
  int64_t x_strides[3] = {0, 0, 0}, y_strides[3] = {0, 0, 0};  // batch, head, position
  const void *x = nullptr, *cos = nullptr, *sin = nullptr;
  bool inverse = false;
  void* stream = nullptr;  // cudaStream_t
};
void rope(const RopeArgs& a, void* y);

// g, u, y, dy, dg, du: `n` contiguous elements of the DType.
void swiglu_forward(DType dtype, int64_t n, const void* g, const void* u, void* y, void* stream);
void swiglu_backward(DType dtype, int64_t n, const void* g, const void* u, const void* dy, void* dg, void* du,
                     void* stream);

}  // namespace starsynth::kernels
