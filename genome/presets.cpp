#include "genome/presets.h"

#include <algorithm>
#include <stdexcept>

#include "genome/errors.h"

namespace starsynth {

namespace {

// Token mixers cycle through `mixers`, each followed by a SwiGLU, as in STAR's baselines (every
// LIV is its own residual block, so a Transformer++ layer is two LIVs).
std::vector<std::string> striped(const std::vector<std::string>& mixers, int num_livs) {
  std::vector<std::string> out;
  for (int i = 0; i < num_livs; ++i) out.push_back(i % 2 ? "GMemless" : mixers[size_t(i / 2) % mixers.size()]);
  return out;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> list = {
      {"transformer++", "SA-1 / GMemless alternating (RoPE attention and SwiGLU, pre-norm)"},
      {"striped-mamba", "Rec-1, Rec-1, SA-1 token mixers, each followed by GMemless"},
      {"striped-hyena2", "Hyena-SE, Hyena-MR, Hyena-LI, SA-1 token mixers, each followed by GMemless"},
      {"recurrent", "Rec-1 / GMemless alternating"},
  };
  return list;
}

std::string known_preset_names() {
  std::string s;
  for (const Preset& p : presets()) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

std::vector<std::string> preset_classes(const std::string& name, int num_livs) {
  if (name == "transformer++") return striped({"SA-1"}, num_livs);
  if (name == "striped-mamba") return striped({"Rec-1", "Rec-1", "SA-1"}, num_livs);
  if (name == "striped-hyena2") return striped({"Hyena-SE", "Hyena-MR", "Hyena-LI", "SA-1"}, num_livs);
  if (name == "recurrent") return striped({"Rec-1"}, num_livs);
  throw std::invalid_argument("unknown preset \"" + name + "\" (known: " + known_preset_names() + ")");
}

Genome preset_genome(const SearchSpace& space, const std::string& name) {
  Genome g;
  for (const std::string& cls : preset_classes(name, space.num_livs)) {
    auto it = std::find(space.alphabet.begin(), space.alphabet.end(), cls);
    if (it == space.alphabet.end())
      throw FieldError("alphabet", "preset " + name + " needs class " + cls + ", which the search space lacks");
    LivGene gene;
    gene.cls = int(it - space.alphabet.begin()) + 1;
    g.livs.push_back(gene);
  }
  return g;
}

SearchSpace preset_space(int num_livs, int64_t width, int64_t vocab_size) {
  std::vector<std::string> alphabet = star_alphabet();
  for (const char* extra : {"Hyena-SE", "Hyena-MR", "Hyena-LI"}) alphabet.push_back(extra);
  return make_space(num_livs, width, vocab_size, alphabet);
}

}  // namespace starsynth
