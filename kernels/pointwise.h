// Memory-bound pointwise operators of attention and SwiGLU layers, each one pass over memory where
// LibTorch's composite form makes many (the rotary embedding alone: a slice, four products, two
// sums and a concatenation, each a kernel over the whole tensor, and as many again backward):
//
//   rotary embedding (GPT-NeoX layout), for i < hd/2, with c = cos(θ_{t,i}), s = sin(θ_{t,i}):
//     y[.., i] = x[.., i]·c − x[.., i + hd/2]·s,   y[.., i + hd/2] = x[.., i + hd/2]·c + x[.., i]·s
//     (an odd head size's last element passes through); its gradient is the inverse rotation.
//   SwiGLU's activation:  y = silu(g) ⊙ u = g·σ(g)·u.
//   AdamW's update over the optimiser's flat buffers, after the global gradient norm: the clipping,
//   the weight decay, both moments and the step in one pass (LibTorch's ops make a dozen).
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

// param, exp_avg, exp_avg_sq (updated in place) and grad (read): `n` contiguous elements of the
// DType (Float32 or Float64); weight decay on the first `decayed`. Device scalars of the same type:
// norm (the gradients' global L2 norm) and scalars = [1 − lr·wd, −lr / (1 − β1^t), 1 / √(1 − β2^t)].
// With g = grad · min(clip / (norm + 1e-6), 1) (clip ≤ 0: g = grad), the arithmetic of
// torch::optim::AdamW after clip_grad_norm_:
//   p ← p · scalars[0] (decayed only);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
//   p ← p + scalars[1] · m / (√v · scalars[2] + eps).
struct AdamWArgs {
  DType dtype = DType::Float32;
  int64_t n = 0, decayed = 0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, clip = 1.0;
  const void *grad = nullptr, *norm = nullptr, *scalars = nullptr;
  void* stream = nullptr;  // cudaStream_t
};
void adamw_update(const AdamWArgs& a, void* param, void* exp_avg, void* exp_avg_sq);

}  // namespace starsynth::kernels
