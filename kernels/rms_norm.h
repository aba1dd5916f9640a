// RMSNorm over the last dimension as CUDA kernels on raw device pointers:
//
//   r = (mean_c x[c]² + eps)^(−1/2),   y[c] = x[c] · r · w[c]
//
// One warp per row. The output may be narrower than the input (float32 residual stream in,
// bfloat16 out under autocast), so the cast the next matrix product would make costs no pass of
// its own. The backward pass writes dx and, per block, a partial sum of the weight's gradient
// (accumulated in shared memory over the block's rows) into a workspace, then adds the partials
// in a fixed order: no second pass over the rows, no global atomics, the same sum on every run.
//   dx[c] = r · (g[c] − x[c] · r² · mean_c(g · x)),  g = dy ⊙ w;   dw[c] = Σ_rows dy[c] · x[c] · r
#pragma once

#include <cstdint>

#include "kernels/gated_conv.h"

namespace starsynth::kernels {

// x, dx: [rows, width] contiguous of x_dtype (Float32 or Float64); weight, rstd and the partials
// in the same type; y, dy: y_dtype (x_dtype, or BFloat16 for a Float32 x).
struct RmsNormArgs {
  DType x_dtype = DType::Float32, y_dtype = DType::Float32;
  int64_t rows = 0, width = 0;
  double eps = 1e-5;
  const void *x = nullptr, *weight = nullptr;
  void* stream = nullptr;  // cudaStream_t
};

// Dtype pairs above, width ≤ 8192 (float64: 4096), rows < 2^31: the shared-memory accumulator.
bool rms_norm_supported(const RmsNormArgs& a);
// rstd [rows]: r of each row, kept for the backward pass.
void rms_norm_forward(const RmsNormArgs& a, void* y, void* rstd);
// Elements of x_dtype the backward pass needs as scratch (the per-block partial weight gradients).
int64_t rms_norm_workspace(const RmsNormArgs& a);
// dweight [width] of x_dtype.
void rms_norm_backward(const RmsNormArgs& a, const void* rstd, const void* dy, void* dx, void* dweight,
                       void* workspace);

}  // namespace starsynth::kernels
