// The tensor-core path of the gated convolution (kernels/gated_conv_mma.cu), for gated_conv.cu's
// dispatch: bfloat16, up to 128 taps, sm_80 and later. Same arguments and outputs as
// gated_conv_forward / gated_conv_backward; the backward pass expects dh and dD zeroed.
#pragma once

#include "kernels/gated_conv.h"

namespace starsynth::kernels::gated_conv_mma {

bool applies(const GatedConvArgs& a);
void run_forward(const GatedConvArgs& a, void* y);
void run_backward(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD);

}  // namespace starsynth::kernels::gated_conv_mma
