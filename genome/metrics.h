// Analytic metrics of a ModelSpec: what a network costs before anything trains. These are the
// numbers the search's budgets are checked against, and the evaluator's measurements are tested
// against them.
#pragma once

#include <cstdint>
#include <vector>

#include "genome/model_spec.h"

namespace starsynth {

struct ParamCount {
  int64_t total = 0;
  int64_t embedding = 0;       // token embedding, learned positions, untied output head
  int64_t non_embedding = 0;
};

struct LayerMetrics {
  int64_t params = 0;          // parameters the layer allocates (shared ones counted at the owner)
  int64_t cache_elements = 0;  // decode state per sequence at the context length
  double flops = 0;            // forward FLOPs per token
};

struct AnalyticMetrics {
  ParamCount params;
  int64_t context = 0;         // tokens of context the cache is sized for
  int64_t element_bytes = 0;   // bytes per cached element
  int64_t cache_bytes = 0;     // per sequence, all layers
  double flops_per_token = 0;  // forward, averaged over the positions of a causal sequence
  std::vector<LayerMetrics> layers;
};

// FLOPs count 2 per multiply-add of matmuls, convolutions, attention (at the causal average of
// (context + 1) / 2 keys per query), scans and FFT convolutions (3 real FFTs of length 2·context at
// 2.5·n·log2(n) each, per channel); elementwise gates, norms and softmax are left out.
AnalyticMetrics analyze(const ModelSpec& spec, int64_t context, int64_t element_bytes);
ParamCount count_parameters(const ModelSpec& spec);

}  // namespace starsynth
