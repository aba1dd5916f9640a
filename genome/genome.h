// The hierarchical STAR genome: a backbone of N LIVs, five integer genes each (STAR.md §2.2):
//   1 class               1-based index into the search space's alphabet
//   2 featurizer group    LIVs with equal labels and strategy 2 tie featurizer weights
//   3 featurizer strategy 1 = no weights shared, 2 = all featurizer weights shared
//   4 feature group       LIVs with equal labels and strategy > 1 reuse a feature group
//   5 feature strategy    1 = none; k > 1 = the class's (k-1)-th shareable group ("kv", "bc", ...)
// Group labels range over [1, N]. The flat encoding is the 5N genes in this order.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "genome/errors.h"
#include "genome/model_spec.h"
#include "genome/space.h"

namespace starsynth {

struct LivGene {
  int cls = 1;
  int feat_group = 1;
  int feat_strategy = 1;
  int fg_group = 1;
  int fg_strategy = 1;
  bool operator==(const LivGene&) const = default;
};

struct Genome {
  std::vector<LivGene> livs;
  bool operator==(const Genome&) const = default;
};

inline constexpr int kGenesPerLiv = 5;

// Gene k (0..4) of a LIV, and the largest value legal for it in this LIV (the smallest is 1).
int& gene(LivGene& g, int k);
int gene(const LivGene& g, int k);
int gene_max(const SearchSpace& space, const LivGene& g, int k);

struct Bounds {
  std::vector<int64_t> lower, upper;  // inclusive, one per flat gene
};

Bounds bounds(const SearchSpace& space);
std::vector<int64_t> encode(const Genome& g);
// Throws FieldError when the length or a gene is outside the bounds.
Genome decode(const SearchSpace& space, std::span<const int64_t> flat);

// The reused feature-group role a gene-5 value selects for this LIV ("" for none or illegal).
std::string feature_role(const SearchSpace& space, const LivGene& gene);

// The first violated rule as a FieldError ("livs[3].feature_strategy: ..."), or nothing.
std::optional<FieldError> find_violation(const SearchSpace& space, const Genome& g);
void validate(const SearchSpace& space, const Genome& g);  // throws the violation
inline bool is_valid(const SearchSpace& space, const Genome& g) { return !find_violation(space, g); }

// Always returns a valid genome; repair(repair(g)) == repair(g). Genes out of range are clamped;
// a sharing group whose members are not all compatible is split by compatibility; labels of
// groups in use are renumbered in order of first appearance.
Genome repair(const SearchSpace& space, const Genome& g);

// The representative of every genome that compiles to the same network: repaired, singleton
// groups made no-ops, labels renumbered by first appearance, labels of no-op genes set to 1.
Genome canonical(const SearchSpace& space, const Genome& g);
// 64-bit FNV-1a of the canonical encoding: equal for genomes that describe the same network.
uint64_t genome_hash(const SearchSpace& space, const Genome& g);

// Compiles a valid genome into a network description. Throws FieldError when invalid.
ModelSpec compile(const SearchSpace& space, const Genome& g);

// "2.1.2.1.1-3.1.1.1.2": genes of a LIV joined by '.', LIVs by '-' (STAR's notation, dotted
// because class indices can exceed 9).
std::string to_string(const Genome& g);

}  // namespace starsynth
