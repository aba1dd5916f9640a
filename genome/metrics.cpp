#include "genome/metrics.h"

#include <cmath>

#include "genome/tensors.h"

namespace starsynth {

namespace {

// FLOPs per token of one branch beyond applying its tensors: attention scores and mixing, the
// scan, FFT convolutions and filter generation.
double mixer_flops(const LivClass& cls, const LayerSpec& l, int64_t d, int64_t context) {
  const LivHyper& h = l.hyper;
  const double fft = 15.0 * std::log2(2.0 * double(context)) * double(d);
  const bool own_filter = !(l.reuse_from >= 0 && l.reuse_role == "filter");
  switch (cls.family) {
    case Family::Attention: return 4.0 * double(d / h.head_dim * h.head_dim) * double(context + 1) / 2.0;
    case Family::Recurrence: return 5.0 * double(h.state_expansion * d);
    case Family::LongConv: {
      const double o = double(h.filter_order), e = double(h.filter_emb);
      return fft + (own_filter ? 2.0 * (e * o + o * o + o * double(d)) : 0.0);
    }
    case Family::HyenaLI: return fft + (own_filter ? 2.0 * double(h.state_expansion * d) : 0.0);
    default: return 0.0;
  }
}

}  // namespace

ParamCount count_parameters(const ModelSpec& spec) {
  ParamCount p;
  for (const TensorSpec& t : model_tensors(spec)) (t.role == TensorRole::Embedding ? p.embedding : p.non_embedding) += t.numel();
  for (size_t i = 0; i < spec.layers.size(); ++i)
    for (const TensorSpec& t : owned_tensors(spec, i)) p.non_embedding += t.numel();
  p.total = p.embedding + p.non_embedding;
  return p;
}

AnalyticMetrics analyze(const ModelSpec& spec, int64_t context, int64_t element_bytes) {
  AnalyticMetrics m;
  m.context = context;
  m.element_bytes = element_bytes;
  m.params = count_parameters(spec);
  for (const TensorSpec& t : model_tensors(spec)) m.flops_per_token += double(t.flops);
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const LivClass& cls = class_by_name(l.cls);
    LayerMetrics lm;
    for (const TensorSpec& t : owned_tensors(spec, i)) lm.params += t.numel();
    // A tied layer applies its owner's tensors to its own input: same FLOPs as owning them.
    for (const TensorSpec& t : full_tensors(spec, i))
      if (!(l.reuse_from >= 0 && t.group == l.reuse_role)) lm.flops += double(t.flops);
    lm.flops += branches(cls) * mixer_flops(cls, l, spec.width, context);
    for (const CacheEntry& c : cache_entries(spec, i, context)) lm.cache_elements += c.elements;
    m.cache_bytes += lm.cache_elements * element_bytes;
    m.flops_per_token += lm.flops;
    m.layers.push_back(lm);
  }
  return m;
}

}  // namespace starsynth
