// ModelSpec: a plain struct that fully describes one network. The evaluator builds modules from it
// alone; ModelConfig (proto/) is its file form. It expresses STAR backbones compiled from genomes
// and standard published models (GPT-style and Llama-style) exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genome/catalog.h"

namespace starsynth {

enum class NormType { RMSNorm, LayerNorm };
enum class PositionEncoding { None, RoPE, Learned };

struct LayerSpec {
  std::string cls;               // catalogue class name
  LivHyper hyper;                // resolved: every field the family uses is set
  int tie_featurizer_to = -1;    // earlier layer whose featurizer tensors this layer uses
  int reuse_from = -1;           // earlier layer whose computed feature group this layer reads
  std::string reuse_role;        // the group it reads ("kv", "bc", "gate", "filter")
  bool operator==(const LayerSpec&) const = default;
};

struct ModelSpec {
  std::string name;
  int64_t vocab_size = 0;
  int64_t width = 0;
  NormType norm = NormType::RMSNorm;
  double norm_eps = 1e-5;
  PositionEncoding position = PositionEncoding::RoPE;
  int64_t max_positions = 0;     // for learned positions
  double rope_theta = 10000.0;
  bool tie_embeddings = true;
  bool bias = false;             // biases on every linear map (GPT-style)
  std::vector<LayerSpec> layers;
  bool operator==(const ModelSpec&) const = default;
};

std::string_view norm_name(NormType n);
std::string_view position_name(PositionEncoding p);

// Fills in what a class's defaults leave derived (FFN hidden size from the multiplier, Δ rank)
// so that every field the family uses is explicit. Idempotent.
LivHyper resolve_hyper(const LivClass& cls, LivHyper hyper, int64_t width);

// Throws FieldError at `at` + field name ("layers[2].head_dim") when a field the family uses is
// missing or inconsistent with the width.
void validate_hyper(const LivClass& cls, const LivHyper& hyper, int64_t width, const std::string& at);

// Throws FieldError naming the first bad field ("layers[2].hyper.head_dim: ...").
void validate(const ModelSpec& spec);

// One line per architecture: class counts and sharing, e.g. "12×SA-1 12×GMemless; 3 tied, 2 reuse".
std::string summary(const ModelSpec& spec);

}  // namespace starsynth
