// The training loss as CUDA kernels on raw device pointers: the mean cross-entropy of a softmax
// over each row of logits, rows whose target is `ignore_index` skipped,
//
//   ℓ_r = logsumexp_j x[r, j] − x[r, t_r],   loss = Σ_{r scored} ℓ_r / n_scored
//   dx[r, j] = g / n_scored · (exp(x[r, j] − lse_r) − [j = t_r]) on scored rows, 0 on the others,
//
// read straight from the head's bfloat16 logits. LibTorch's form (a cast to float32, log_softmax,
// nll_loss, each with its own backward) is six kernels, and its nll_loss reduces in one block.
// Here the forward pass is a warp per row (max, then Σ exp from L1) with per-block partial sums
// that a second one-block kernel adds in a fixed order: deterministic, and no atomics.
// LibTorch's conventions: the mean over no scored row is NaN; a target outside [0, classes) that
// is not ignore_index gives a NaN loss (LibTorch would stop the device with an assertion).
#pragma once

#include <cstdint>

#include "kernels/gated_conv.h"

namespace starsynth::kernels {

// logits [rows, classes] contiguous of the DType; targets [rows] int64. The loss, the per-row
// log-sum-exp, the scored-row count and the partials are in the accumulation type (double for
// Float64, else float).
struct CrossEntropyArgs {
  DType dtype = DType::Float32;
  int64_t rows = 0, classes = 0, ignore_index = -100;
  const void* logits = nullptr;
  const int64_t* targets = nullptr;
  void* stream = nullptr;  // cudaStream_t
};

// rows and classes in [1, 2^31).
bool cross_entropy_supported(const CrossEntropyArgs& a);
// Elements of the accumulation type the forward pass needs as scratch.
int64_t cross_entropy_workspace(const CrossEntropyArgs& a);
// loss: one element (the mean); scored: one element (n_scored, kept for the backward pass);
// lse [rows].
void cross_entropy_forward(const CrossEntropyArgs& a, void* loss, void* scored, void* lse, void* workspace);
// grad_loss: the loss's gradient, one element on the device; dlogits: like the logits.
void cross_entropy_backward(const CrossEntropyArgs& a, const void* lse, const void* scored, const void* grad_loss,
                            void* dlogits);

}  // namespace starsynth::kernels
