#include "genome/genome.h"

#include <algorithm>
#include <map>

#include "genome/tensors.h"

namespace starsynth {

int& gene(LivGene& g, int k) {
  switch (k) {
    case 0: return g.cls;
    case 1: return g.feat_group;
    case 2: return g.feat_strategy;
    case 3: return g.fg_group;
    default: return g.fg_strategy;
  }
}

int gene(const LivGene& g, int k) { return gene(const_cast<LivGene&>(g), k); }

int gene_max(const SearchSpace& space, const LivGene& g, int k) {
  switch (k) {
    case 0: return int(space.alphabet.size());
    case 1:
    case 3: return space.num_livs;
    case 2: return space.allow_featurizer_sharing ? 2 : 1;
    default: return space.allow_feature_sharing ? 1 + int(space.cls(g.cls).shareable.size()) : 1;
  }
}

namespace {

const char* const kGeneNames[kGenesPerLiv] = {"class", "featurizer_group", "featurizer_strategy", "feature_group",
                                               "feature_strategy"};

std::string gene_path(size_t liv, int k) { return "livs[" + std::to_string(liv) + "]." + kGeneNames[k]; }

std::string expected_text(const SearchSpace& space, const LivGene& g, int k) {
  const int hi = gene_max(space, g, k);
  std::string range = "expected 1.." + std::to_string(hi);
  switch (k) {
    case 0: return range + " (an index into the alphabet of " + std::to_string(hi) + " classes)";
    case 1:
    case 3: return range + " (a group label, at most the number of LIVs)";
    case 2: return space.allow_featurizer_sharing ? range + " (1 none, 2 all featurizer weights)"
                                                  : "expected 1: featurizer sharing is off in this search space";
    default: {
      if (!space.allow_feature_sharing) return "expected 1: feature sharing is off in this search space";
      std::string roles = "1 none";
      const auto& shareable = space.cls(g.cls).shareable;
      for (size_t r = 0; r < shareable.size(); ++r) roles += ", " + std::to_string(r + 2) + " " + shareable[r];
      return range + " for class " + space.cls(g.cls).name + " (" + roles + ")";
    }
  }
}

LayerSpec layer_of(const SearchSpace& space, const LivGene& g) {
  LayerSpec l;
  l.cls = space.cls(g.cls).name;
  l.hyper = space.hyper_of(l.cls);
  return l;
}

ModelSpec model_template(const SearchSpace& space) {
  ModelSpec m;
  m.vocab_size = space.vocab_size;
  m.width = space.width;
  m.norm = space.norm;
  m.position = space.position;
  m.max_positions = space.max_positions;
  m.rope_theta = space.rope_theta;
  m.tie_embeddings = space.tie_embeddings;
  m.bias = space.bias;
  return m;
}

// Builds the network a genome with consistent groups describes: the first member of a group owns
// (produces), later members tie to (reuse from) it. With `ties` false only reuse is applied, which
// is what featurizer signatures are computed from.
ModelSpec assemble(const SearchSpace& space, const Genome& g, bool ties) {
  ModelSpec m = model_template(space);
  std::map<int, int> producer, owner;
  for (size_t i = 0; i < g.livs.size(); ++i) {
    const LivGene& liv = g.livs[i];
    LayerSpec l = layer_of(space, liv);
    if (std::string role = feature_role(space, liv); !role.empty()) {
      auto [it, first] = producer.try_emplace(liv.fg_group, int(i));
      if (!first) l.reuse_from = it->second, l.reuse_role = role;
    }
    if (ties && liv.feat_strategy == 2) {
      auto [it, first] = owner.try_emplace(liv.feat_group, int(i));
      if (!first) l.tie_featurizer_to = it->second;
    }
    m.layers.push_back(std::move(l));
  }
  return m;
}

// Splits the active LIVs into groups of equal (label, signature), in order of first appearance.
// Returns each LIV's group index, -1 when inactive.
std::vector<int> partition(const std::vector<int>& label, const std::vector<std::string>& sig,
                                           const std::vector<bool>& active) {
  std::map<std::pair<int, std::string>, int> index;
  std::vector<int> group(label.size(), -1);
  for (size_t i = 0; i < label.size(); ++i) {
    if (!active[i]) continue;
    group[i] = index.try_emplace({label[i], sig[i]}, int(index.size())).first->second;
  }
  return group;
}

std::vector<std::string> feature_signatures(const SearchSpace& space, const Genome& g) {
  std::vector<std::string> sig;
  for (const LivGene& liv : g.livs) sig.push_back(feature_signature(layer_of(space, liv), space.width, feature_role(space, liv)));
  return sig;
}

std::vector<std::string> featurizer_signatures(const SearchSpace& space, const Genome& g) {
  const ModelSpec reuse_only = assemble(space, g, false);
  std::vector<std::string> sig;
  for (size_t i = 0; i < g.livs.size(); ++i) sig.push_back(featurizer_signature(reuse_only, i));
  return sig;
}

// Sets each active LIV's label to its group index + 1.
void relabel(Genome& g, const std::vector<int>& group, int LivGene::*label) {
  for (size_t i = 0; i < g.livs.size(); ++i)
    if (group[i] >= 0) g.livs[i].*label = group[i] + 1;
}

std::vector<int> labels(const Genome& g, int LivGene::*label) {
  std::vector<int> v;
  for (const LivGene& liv : g.livs) v.push_back(liv.*label);
  return v;
}

std::vector<bool> reuse_active(const SearchSpace& space, const Genome& g) {
  std::vector<bool> a;
  for (const LivGene& liv : g.livs) a.push_back(!feature_role(space, liv).empty());
  return a;
}

std::vector<bool> tie_active(const Genome& g) {
  std::vector<bool> a;
  for (const LivGene& liv : g.livs) a.push_back(liv.feat_strategy == 2);
  return a;
}

// The first LIV that joins a label already taken by a group of another signature.
std::optional<size_t> first_mixed(const std::vector<int>& label, const std::vector<int>& group) {
  std::map<int, int> first_group_of_label;
  for (size_t i = 0; i < label.size(); ++i) {
    if (group[i] < 0) continue;
    auto it = first_group_of_label.try_emplace(label[i], group[i]).first;
    if (it->second != group[i]) return i;
  }
  return std::nullopt;
}

std::optional<size_t> owner_of(const std::vector<int>& label, const std::vector<int>& group, size_t j) {
  for (size_t i = 0; i < j; ++i)
    if (group[i] >= 0 && label[i] == label[j]) return i;
  return std::nullopt;
}

}  // namespace

Bounds bounds(const SearchSpace& space) {
  Bounds b;
  int max_class_strategy = space.allow_feature_sharing ? space.max_feature_strategy() : 1;
  for (int i = 0; i < space.num_livs; ++i) {
    b.lower.insert(b.lower.end(), {1, 1, 1, 1, 1});
    b.upper.insert(b.upper.end(), {int64_t(space.alphabet.size()), space.num_livs,
                                   space.allow_featurizer_sharing ? 2 : 1, space.num_livs, max_class_strategy});
  }
  return b;
}

std::vector<int64_t> encode(const Genome& g) {
  std::vector<int64_t> flat;
  flat.reserve(g.livs.size() * kGenesPerLiv);
  for (const LivGene& liv : g.livs)
    for (int k = 0; k < kGenesPerLiv; ++k) flat.push_back(gene(liv, k));
  return flat;
}

Genome decode(const SearchSpace& space, std::span<const int64_t> flat) {
  const Bounds b = bounds(space);
  if (flat.size() != b.lower.size())
    throw FieldError("genes", "expected " + std::to_string(b.lower.size()) + " integers (" +
                                  std::to_string(space.num_livs) + " LIVs × 5), got " + std::to_string(flat.size()));
  Genome g;
  g.livs.resize(size_t(space.num_livs));
  for (size_t i = 0; i < flat.size(); ++i) {
    const size_t liv = i / kGenesPerLiv;
    const int k = int(i % kGenesPerLiv);
    if (flat[i] < b.lower[i] || flat[i] > b.upper[i])
      throw FieldError(gene_path(liv, k), "expected " + std::to_string(b.lower[i]) + ".." + std::to_string(b.upper[i]) +
                                              ", got " + std::to_string(flat[i]));
    gene(g.livs[liv], k) = int(flat[i]);
  }
  return g;
}

std::string feature_role(const SearchSpace& space, const LivGene& liv) {
  if (!space.allow_feature_sharing || liv.fg_strategy < 2) return "";
  if (liv.cls < 1 || liv.cls > int(space.alphabet.size())) return "";
  const auto& shareable = space.cls(liv.cls).shareable;
  const size_t r = size_t(liv.fg_strategy - 2);
  return r < shareable.size() ? shareable[r] : "";
}

std::optional<FieldError> find_violation(const SearchSpace& space, const Genome& g) {
  if (int(g.livs.size()) != space.num_livs)
    return FieldError("livs", "expected " + std::to_string(space.num_livs) + " LIVs (the search space's num_livs), got " +
                                  std::to_string(g.livs.size()));
  for (size_t i = 0; i < g.livs.size(); ++i)
    for (int k = 0; k < kGenesPerLiv; ++k) {
      if (k > 0 && (g.livs[i].cls < 1 || g.livs[i].cls > int(space.alphabet.size()))) break;
      const int v = gene(g.livs[i], k);
      if (v < 1 || v > gene_max(space, g.livs[i], k)) return FieldError(gene_path(i, k), expected_text(space, g.livs[i], k) + ", got " + std::to_string(v));
    }

  const ModelSpec m = assemble(space, g, false);
  {
    const std::vector<int> label = labels(g, &LivGene::fg_group);
    const auto sig = feature_signatures(space, g);
    auto group = partition(label, sig, reuse_active(space, g));
    if (auto j = first_mixed(label, group)) {
      const size_t p = *owner_of(label, group, *j);
      return FieldError(gene_path(*j, 4), "incompatible sharing: LIV " + std::to_string(*j) + " (" + m.layers[*j].cls +
                                              ", " + feature_role(space, g.livs[*j]) + ") cannot reuse the features of LIV " +
                                              std::to_string(p) + " (" + m.layers[p].cls + ", " +
                                              feature_role(space, g.livs[p]) + ") in feature group " +
                                              std::to_string(label[*j]));
    }
  }
  {
    const std::vector<int> label = labels(g, &LivGene::feat_group);
    const auto sig = featurizer_signatures(space, g);
    auto group = partition(label, sig, tie_active(g));
    if (auto j = first_mixed(label, group)) {
      const size_t p = *owner_of(label, group, *j);
      return FieldError(gene_path(*j, 2), "incompatible sharing: LIV " + std::to_string(*j) + " (" + m.layers[*j].cls +
                                              ") cannot tie featurizer weights with LIV " + std::to_string(p) + " (" +
                                              m.layers[p].cls + "): their featurizers have different shapes");
    }
    for (size_t i = 0; i < g.livs.size(); ++i)
      if (group[i] >= 0 && sig[i].empty() && owner_of(label, group, i))
        return FieldError(gene_path(i, 2), "LIV " + std::to_string(i) + " owns no featurizer weights to tie");
  }
  return std::nullopt;
}

void validate(const SearchSpace& space, const Genome& g) {
  if (auto v = find_violation(space, g)) throw *v;
}

Genome repair(const SearchSpace& space, const Genome& in) {
  Genome g = in;
  g.livs.resize(size_t(space.num_livs));
  for (LivGene& liv : g.livs) {
    for (int k = 0; k < kGenesPerLiv; ++k) {
      const int hi = gene_max(space, liv, k);
      int& v = gene(liv, k);
      // An unusable sharing strategy becomes "none"; anything else is clamped into range.
      if ((k == 2 || k == 4) && (v < 1 || v > hi)) v = 1;
      else v = std::clamp(v, 1, hi);
    }
  }
  {
    auto group = partition(labels(g, &LivGene::fg_group), feature_signatures(space, g), reuse_active(space, g));
    relabel(g, group, &LivGene::fg_group);
  }
  {
    const auto sig = featurizer_signatures(space, g);
    for (size_t i = 0; i < g.livs.size(); ++i)
      if (sig[i].empty()) g.livs[i].feat_strategy = 1;
    auto group = partition(labels(g, &LivGene::feat_group), sig, tie_active(g));
    relabel(g, group, &LivGene::feat_group);
  }
  return g;
}

Genome canonical(const SearchSpace& space, const Genome& in) {
  Genome g = repair(space, in);
  auto normalise = [&](int LivGene::*label, int LivGene::*strategy, const std::vector<bool>& active) {
    std::map<int, int> size;
    for (size_t i = 0; i < g.livs.size(); ++i)
      if (active[i]) ++size[g.livs[i].*label];
    std::map<int, int> relabelled;
    for (size_t i = 0; i < g.livs.size(); ++i) {
      LivGene& liv = g.livs[i];
      if (!active[i] || size[liv.*label] < 2) {
        liv.*strategy = 1;
        liv.*label = 1;
      } else {
        liv.*label = relabelled.try_emplace(liv.*label, int(relabelled.size()) + 1).first->second;
      }
    }
  };
  normalise(&LivGene::fg_group, &LivGene::fg_strategy, reuse_active(space, g));
  normalise(&LivGene::feat_group, &LivGene::feat_strategy, tie_active(g));
  return g;
}

uint64_t genome_hash(const SearchSpace& space, const Genome& g) {
  uint64_t h = 14695981039346656037ull;
  for (int64_t v : encode(canonical(space, g))) {
    for (int byte = 0; byte < 8; ++byte) {
      h ^= uint64_t(v >> (8 * byte)) & 0xffu;
      h *= 1099511628211ull;
    }
  }
  return h;
}

ModelSpec compile(const SearchSpace& space, const Genome& g) {
  validate(space, g);
  ModelSpec m = assemble(space, g, true);
  validate(m);
  return m;
}

std::string to_string(const Genome& g) {
  std::string s;
  for (size_t i = 0; i < g.livs.size(); ++i) {
    if (i) s += '-';
    for (int k = 0; k < kGenesPerLiv; ++k) s += (k ? "." : "") + std::to_string(gene(g.livs[i], k));
  }
  return s;
}

}  // namespace starsynth
