// The tensor layout of every layer: the single description that parameter counts, cache sizes,
// FLOPs, sharing compatibility and (in evaluator/) the modules themselves all derive from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genome/model_spec.h"

namespace starsynth {

enum class TensorRole {
  Embedding,   // token/position embedding, untied output head
  Norm,        // pre-norm and final norm
  Featurizer,  // computes a feature group; tied by featurizer sharing
  Operator,    // token-mixer parameters that are not features (A_log, skip D, λ)
  Output,      // output channel mixing
};

struct TensorSpec {
  std::string name;             // "b0.q.weight", "norm.weight"
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::Featurizer;
  std::string group;            // feature-group role ("kv", "bc", ...); empty when none
  int64_t flops = 0;            // forward FLOPs per token spent applying it (2 per multiply-add)
  int64_t numel() const;
};

struct CacheEntry {
  std::string name;        // "b0.kv", "u.conv", "state"
  int64_t elements = 0;    // per sequence, at the given context length
  std::string group;       // feature-group role it belongs to; empty when it is the mixer's own
};

// Everything layer `i` would hold on its own, before any sharing.
std::vector<TensorSpec> full_tensors(const ModelSpec& spec, size_t i);
// What layer `i` actually allocates: full minus the groups it reuses and minus the featurizer
// tensors it takes from the layer it is tied to.
std::vector<TensorSpec> owned_tensors(const ModelSpec& spec, size_t i);
// Model-level tensors: embedding, learned positions, final norm, and the head when untied.
std::vector<TensorSpec> model_tensors(const ModelSpec& spec);

// Decode state of layer `i` for a context of `context` tokens, in elements, after reuse.
std::vector<CacheEntry> cache_entries(const ModelSpec& spec, size_t i, int64_t context);

// Layers whose featurizer signatures are equal can tie weights. Computed after reuse.
std::string featurizer_signature(const ModelSpec& spec, size_t i);
// Layers whose signatures for `role` are equal produce interchangeable features; "" when the
// layer's class cannot share `role`.
std::string feature_signature(const LayerSpec& layer, int64_t width, const std::string& role);

// The output projection's tensor name: "o" for attention, "out" for other token mixers, "down"
// for memoryless units.
std::string output_projection(const LivClass& cls);

// Number of branches (2 for differential classes).
int branches(const LivClass& cls);

}  // namespace starsynth
