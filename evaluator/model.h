// LivModel: a torch::nn::Module built from a ModelSpec alone. Its parameters are exactly the
// tensors genome/tensors.h lays out: each layer registers the tensors it owns; a tied layer uses
// its owner's tensors (the same storage, registered once); a consumer of a reused feature group
// reads the producer's computed feature and owns no parameters for it.
//
// Only evaluator translation units include this header (it pulls in LibTorch).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "genome/model_spec.h"

namespace starsynth {

// Per-sequence decode state: every tensor a layer keeps between steps, by layer and name.
struct DecodeState {
  int64_t position = 0;
  std::vector<std::map<std::string, at::Tensor>> layers;
  int64_t elements() const;  // per batch row, summed over all layers
  int64_t layer_elements(size_t layer) const;
};

class LivModelImpl : public torch::nn::Module {
 public:
  explicit LivModelImpl(const ModelSpec& spec);

  // tokens [B, L] int64 → logits [B, L, vocab].
  at::Tensor forward(const at::Tensor& tokens);
  // The final-normed hidden states [B, L, width] (for task heads other than the LM head).
  at::Tensor hidden(const at::Tensor& tokens);
  // Projects hidden states onto the vocabulary with the (possibly tied) head.
  at::Tensor logits(const at::Tensor& hidden);

  // Step-by-step decoding: one token per sequence [B] → logits [B, vocab].
  DecodeState start_decode(int64_t batch) const;
  at::Tensor step(const at::Tensor& tokens, DecodeState& state);

  // Parameters counted once per storage (tied tensors are registered once anyway).
  int64_t parameter_count() const;
  // The tensors layer `i` computes with, owned or tied, by the names of genome/tensors.h.
  const std::map<std::string, at::Tensor>& layer_tensors(size_t i) const { return weights_.at(i); }
  const ModelSpec& spec() const { return spec_; }

 private:
  struct Features;  // computed feature groups of one forward pass, for reuse by later layers
  at::Tensor mix(size_t i, const at::Tensor& x, Features& features);
  at::Tensor mix_step(size_t i, const at::Tensor& x, DecodeState& state, Features& features);
  // The end of both: publish the features later layers reuse, combine a differential class's
  // branches, apply the output projection.
  at::Tensor finish(size_t i, const std::vector<at::Tensor>& outputs, std::vector<at::Tensor> produced,
                    Features& features);
  at::Tensor norm(const at::Tensor& x, const std::string& prefix, const std::map<std::string, at::Tensor>& w) const;

  ModelSpec spec_;
  std::vector<std::map<std::string, at::Tensor>> weights_;  // per layer: name → tensor
  std::map<std::string, at::Tensor> top_;                   // embeddings, final norm, head
  std::vector<std::string> produces_;                       // per layer: the feature role it shares, or ""
};
TORCH_MODULE(LivModel);

// The token embedding: rows of `weight` [vocab, width] by `tokens`. On CUDA, while gradients are
// recorded, the weight's gradient is one scatter-add (LibTorch's own backward sorts the indices
// first: about ten kernels, a twentieth of a MAD-scale training step).
at::Tensor embed_tokens(const at::Tensor& weight, const at::Tensor& tokens);

// The gated causal depthwise convolution of Hyena-SE/-MR and GConv-1, and (with no gates) every
// featurizer's short convolution: y = q ⊙ (h ∗ z + D ⊙ z) with z = k ⊙ v, causal along L.
// q, k, v [B, L, C]; h [C, 1, K] or [C, K]; D [C]; q, k and D may be undefined (absent).
at::Tensor gated_causal_conv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                             const at::Tensor& D);
// Its composite LibTorch form: the CPU path, and the reference the CUDA kernels are tested against.
at::Tensor gated_causal_conv_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& h, const at::Tensor& D);
// CUDA kernels plug in here (kernels::install() sets it; the evaluator never includes kernels/):
// gated_causal_conv sends CUDA tensors to `kernel`. nullptr: the composite form everywhere.
using GatedConvKernel = at::Tensor (*)(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& h, const at::Tensor& D);
void use_gated_conv_kernel(GatedConvKernel kernel);

// The gated long causal convolution of Hyena-LI and GConv-2, whose filters span the sequence:
// y = q ⊙ (h ∗ z + D ⊙ z) with z = k ⊙ v, h [C, ≥L] (its first L taps count), by FFT in at least
// float32. q, k and D may be undefined. CUDA tensors go to the kernel when one is installed (the
// same signature as the short convolution's).
at::Tensor gated_long_conv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                           const at::Tensor& D);
at::Tensor gated_long_conv_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                                     const at::Tensor& D);
void use_long_conv_kernel(GatedConvKernel kernel);

// The diagonal recurrence of Rec-1/Rec-2: h_t = exp(log_a_t)·h_{t−1} + x_t ⊗ B_t, y_t = h_t·C_t, with
// log_a, x [B, L, d] and B, C [B, L, e] (float32 or float64). The reference is the chunked
// parallel form; CUDA tensors go to the kernel when one is installed.
at::Tensor diagonal_scan(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B, const at::Tensor& C);
at::Tensor diagonal_scan_reference(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B,
                                   const at::Tensor& C);
using ScanKernel = at::Tensor (*)(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B,
                                  const at::Tensor& C);
void use_scan_kernel(ScanKernel kernel);

// Rotary position embedding (GPT-NeoX layout) of x [B, H, L, hd] at positions offset … offset+L−1,
// returned contiguous; CUDA tensors go to the kernel when one is installed.
at::Tensor rotary_embedding(const at::Tensor& x, int64_t offset, double theta);
at::Tensor rotary_embedding_reference(const at::Tensor& x, int64_t offset, double theta);
// Its angles position · θ^(−2i/hd) for positions offset … offset+length−1 and i < hd/2: [length, hd/2].
at::Tensor rotary_angles(int64_t offset, int64_t length, int64_t head_dim, double theta, const at::TensorOptions& options);
using RopeKernel = at::Tensor (*)(const at::Tensor& x, int64_t offset, double theta);
void use_rope_kernel(RopeKernel kernel);

// SwiGLU's activation silu(g) ⊙ u; CUDA tensors go to the kernel when one is installed.
at::Tensor swiglu(const at::Tensor& g, const at::Tensor& u);
at::Tensor swiglu_reference(const at::Tensor& g, const at::Tensor& u);
using SwigluKernel = at::Tensor (*)(const at::Tensor& g, const at::Tensor& u);
void use_swiglu_kernel(SwigluKernel kernel);

// RMSNorm over the last dimension, in at least float32: x / √(mean(x²) + eps) · weight. CUDA
// tensors go to the kernel when one is installed (which, under autocast, may return the autocast
// type: every consumer is a matrix product that would cast to it anyway). The reference is
// LibTorch's own operator where it has one (≥ 2.4; one fused kernel on CUDA in recent versions),
// else the composite form; rms_norm_composite is that form always.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor rms_norm_composite(const at::Tensor& x, const at::Tensor& weight, double eps);
using RmsNormKernel = at::Tensor (*)(const at::Tensor& x, const at::Tensor& weight, double eps);
void use_rms_norm_kernel(RmsNormKernel kernel);

// The training loss: the mean cross-entropy of softmax(logits [N, V]) against targets [N] (int64),
// rows whose target is ignore_index left out, in at least float32 whatever the logits' dtype (so
// bfloat16 logits need no cast first). The reference is LibTorch's cross_entropy_loss on the
// widened logits; CUDA tensors go to the kernel when one is installed.
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index);
at::Tensor cross_entropy_reference(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index);
using CrossEntropyKernel = at::Tensor (*)(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index);
void use_cross_entropy_kernel(CrossEntropyKernel kernel);

}  // namespace starsynth
