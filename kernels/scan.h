// The input-varying diagonal recurrence of Rec-1 / Rec-2 (a selective scan), as CUDA kernels on
// raw device pointers:
//
//   h_t[d, e] = exp(log_a_t[d]) · h_{t−1}[d, e] + x_t[d] · B_t[e],   y_t[d] = Σ_e C_t[e] · h_t[d, e]
//
// log_a, x, y: [batch, length, channels]; B, C: [batch, length, state]; float32 or float64
// (the evaluator runs recurrences in float32 whatever the autocast type). A thread carries one
// channel's state in registers through the sequence; B and C, shared by every channel, pass
// through shared memory. The forward pass keeps the state every kScanChunk steps, from which the
// backward pass recomputes each chunk before walking it in reverse.
#pragma once

#include <cstdint>

#include "kernels/gated_conv.h"

namespace starsynth::kernels {

struct ScanArgs {
  DType dtype = DType::Float32;  // Float32 or Float64
  int64_t batch = 0, length = 0, channels = 0, state = 0;
  const void *log_a = nullptr, *x = nullptr, *B = nullptr, *C = nullptr;
  void* stream = nullptr;  // cudaStream_t
};

bool scan_supported(const ScanArgs& a);  // float32 with state ≤ 32, float64 with state ≤ 16
// Elements of the checkpoint buffer the forward pass fills and the backward pass reads.
int64_t scan_checkpoint_elements(const ScanArgs& a);
// The backward pass leaves dB and dC as partial sums over blocks of channels:
// [batch, length, state, scan_channel_blocks(a)], to be summed over the last dimension.
int64_t scan_channel_blocks(const ScanArgs& a);

void scan_forward(const ScanArgs& a, void* y, void* checkpoints);
void scan_backward(const ScanArgs& a, const void* checkpoints, const void* dy, void* dlog_a, void* dx,
                   void* dB_partial, void* dC_partial);

}  // namespace starsynth::kernels
