// SearchSpace: what a search may vary and what it holds fixed. Depth (the number of LIVs), width,
// the class alphabet and each class's hyper-parameters are fixed for a whole run; the genome
// chooses the class of every LIV and how LIVs share weights and features.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "genome/catalog.h"
#include "genome/model_spec.h"

namespace starsynth {

struct SearchSpace {
  int num_livs = 0;
  int64_t width = 0;
  int64_t vocab_size = 0;
  std::vector<std::string> alphabet;        // gene 1 = 1-based index into this list
  std::map<std::string, LivHyper> hyper;    // resolved hyper-parameters of every alphabet class
  bool allow_featurizer_sharing = true;
  bool allow_feature_sharing = true;
  // Model template applied to every compiled genome.
  NormType norm = NormType::RMSNorm;
  PositionEncoding position = PositionEncoding::RoPE;
  int64_t max_positions = 0;
  double rope_theta = 10000.0;
  bool tie_embeddings = true;
  bool bias = false;

  const LivClass& cls(int gene) const;      // gene 1 value → class
  const LivHyper& hyper_of(const std::string& name) const;
  // Largest gene-5 value any alphabet class accepts (1 = no reuse).
  int max_feature_strategy() const;
};

// A space with catalogue defaults for every class in `alphabet`; `overrides` replaces individual
// fields (non-zero ones) of a class's defaults.
SearchSpace make_space(int num_livs, int64_t width, int64_t vocab_size, std::vector<std::string> alphabet,
                       const std::map<std::string, LivHyper>& overrides = {});

// Merges the non-zero fields of `override` into `base`.
LivHyper merge_hyper(LivHyper base, const LivHyper& override);

// Throws FieldError ("alphabet[2]", "classes[SA-1].head_dim", ...) for the first bad field.
void validate(const SearchSpace& space);

}  // namespace starsynth
