// The gated causal depthwise convolution of Hyena-SE, Hyena-MR and GConv-1 (and, with no gates,
// every featurizer's short convolution), as CUDA kernels on raw device pointers:
//
//   z = k ⊙ v,   y[b, t, c] = q[b, t, c] · ( Σ_{j<K} h[c, j] · z[b, t−j, c]  +  D[c] · z[b, t, c] )
//
// with z = 0 before the sequence starts. One kernel reads q, k, v and writes y: the gating and the
// skip term cost no extra pass over memory. No LibTorch here (kernels/ops.cpp is the glue), so any
// nvcc can compile this file, CI's included.
#pragma once

#include <cstdint>

namespace starsynth::kernels {

enum class DType { Float32, Float64, BFloat16 };

// q, k, v, y, dy, dq, dk, dv: [batch, length, channels], contiguous, of the DType.
// h [channels, taps], D [channels], dh, dD: the accumulation type (double for Float64, else float).
// q, k and D may be null: that gate (or the skip term) is absent.
struct GatedConvArgs {
  DType dtype = DType::Float32;
  int64_t batch = 0, length = 0, channels = 0, taps = 0;
  const void *q = nullptr, *k = nullptr, *v = nullptr, *h = nullptr, *D = nullptr;
  void* stream = nullptr;  // cudaStream_t
  // The tensor-core backward pass's blocks along the sequence, per batch and group of 32 channels,
  // each walking its share of the sequence in order; 0 lets them fill one wave of the device.
  // (Tests set it to 1, so that every block walks many tiles.)
  int64_t time_blocks = 0;
  // The blocks one wave of the tensor-core backward pass holds; 0: the device's. (Tests set a few,
  // so that small shapes take the launches of shapes that overfill a wave.)
  int64_t wave_blocks = 0;
};

// Whether the kernels handle `taps` on the current device (their shared memory grows with it).
bool gated_conv_supported(const GatedConvArgs& a);

void gated_conv_forward(const GatedConvArgs& a, void* y);

// dq and dk are written only where q and k are given; dh and dD (when D is given) are overwritten.
void gated_conv_backward(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD);

}  // namespace starsynth::kernels
