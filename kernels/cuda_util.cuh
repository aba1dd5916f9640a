// What the .cu files of kernels/ share: error checks that say which kernel failed, the
// accumulation type of each storage type, the conversions between them, and warp reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace starsynth::kernels::cuda {

inline void check(cudaError_t e, const char* kernel, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": " + what + ": " + cudaGetErrorString(e));
}

// The current device's multiprocessor count, asked of the driver once per device: launches size
// their grids by it on every call.
inline int multiprocessors() {
  constexpr int kDevices = 64;
  static std::atomic<int> counts[kDevices] = {};
  int device = 0;
  check(cudaGetDevice(&device), "kernels", "cudaGetDevice");
  int n = device < kDevices ? counts[device].load(std::memory_order_relaxed) : 0;
  if (n == 0) {
    check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device), "kernels", "multiprocessor count");
    if (device < kDevices) counts[device].store(n, std::memory_order_relaxed);
  }
  return n;
}

// Arithmetic in float for float and bfloat16 storage, in double for double.
template <typename T> struct Accumulate { using type = float; };
template <> struct Accumulate<double> { using type = double; };

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ double widen(double x) { return x; }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T narrow(float x);
template <> __device__ __forceinline__ float narrow<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 narrow<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <typename T> __device__ __forceinline__ T narrow(double x) { return x; }

// Butterfly reductions over a full warp: every lane ends with the result.
template <typename A> __device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename A> __device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace starsynth::kernels::cuda
