// The gated long causal convolution of Hyena-LI and GConv-2, whose filters are as long as the
// sequence:
//
//   z = k ⊙ v,   y[b, t, c] = q[b, t, c] · ( Σ_{j≤t} h[c, j] · z[b, t−j, c]  +  D[c] · z[b, t, c] )
//
// by FFT: h ∗ z = IFFT(FFT(z) · FFT(h)) over N ≥ 2L − 1 points, zero-padded so that the circular
// convolution is the linear one. The transforms are cuFFT's, called by kernels/ops.cpp through
// LibTorch (its plan cache, its workspace, CUDA-graph capture); the kernels here are every pass
// around them, each doing in one pass over memory what LibTorch's composite form does in several:
// the gates, the transpose between the model's [B, L, C] and the transforms' rows [B, C, N], the
// zero padding, the products of spectra, the batch sum of the filter's gradient and the 1/N of
// the inverse transform. Raw device pointers, no LibTorch, so any nvcc compiles this file.
//
// Backward, with g = dy ⊙ q (the transforms' adjoints are correlations, products with conj):
//   dq = dy ⊙ (h ∗ z + D ⊙ z),   dz = IFFT(FFT(g) · conj(FFT(h))) + D ⊙ g,   dk = dz ⊙ v,  dv = dz ⊙ k,
//   dh[c, j] = Σ_b IFFT(FFT(g) · conj(FFT(z)))[j],   dD[c] = Σ_{b,t} g · z.
#pragma once

#include <cstdint>

#include "kernels/gated_conv.h"

namespace starsynth::kernels {

// q, k, v, conv, y, dy, dq, dk, dv: [batch, length, channels], contiguous, of the DType; D
// [channels] in the accumulation type (double for Float64, else float). q, k and D may be null.
// Rows and spectra are in the accumulation type: rows [batch, channels, fft_length] real,
// spectra [batch, channels, fft_length/2 + 1] complex (re, im interleaved; H: [channels, ...]).
struct LongConvArgs {
  DType dtype = DType::Float32;
  int64_t batch = 0, length = 0, channels = 0, fft_length = 0;
  const void *q = nullptr, *k = nullptr, *v = nullptr, *D = nullptr;
  void* stream = nullptr;  // cudaStream_t
};

// Whether the grids fit (channels ≤ 65,535, batch ≤ 65,535, fft_length ≥ 2·length − 1 < 2^31).
bool long_conv_supported(const LongConvArgs& a);
// The smallest N ≥ max(2L − 1, 2) whose prime factors are 2, 3, 5 and 7: cuFFT's fast sizes.
int64_t long_conv_fft_length(int64_t length);

// Forward: z_rows ← z transposed, zeros past L; h_rows ← h [channels, length] padded likewise;
// Y ← Z · H; then from y_rows = N · (h ∗ z): conv ← h ∗ z (the DType; kept for dq) and y.
void long_conv_pack_forward(const LongConvArgs& a, void* z_rows);
void long_conv_pad_filter(const LongConvArgs& a, const void* h, void* h_rows);
void long_conv_multiply(const LongConvArgs& a, const void* Z, const void* H, void* Y);
void long_conv_unpack_forward(const LongConvArgs& a, const void* y_rows, void* conv, void* y);

// Backward: g_rows ← g transposed, zeros past L; dq (when q is given); dD_partial (when D is
// given) [long_conv_partial_rows(a), channels], partial sums of g·z to be summed over rows.
void long_conv_pack_backward(const LongConvArgs& a, const void* dy, const void* conv, void* g_rows, void* dq,
                             void* dD_partial);
int64_t long_conv_partial_rows(const LongConvArgs& a);
// dH[c, f] ← Σ_b G[b, c, f] · conj(Z[b, c, f]) / N (the inverse transform's scale);  G ← G · conj(H) in place.
void long_conv_multiply_backward(const LongConvArgs& a, void* G, const void* Z, const void* H, void* dH);
// From dz_rows = N · (h ⋆ g): dk, dv (dv = dz when k is absent; dk written only when k is given).
void long_conv_unpack_backward(const LongConvArgs& a, const void* dy, const void* dz_rows, void* dk, void* dv);

}  // namespace starsynth::kernels
