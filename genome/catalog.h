// The LIV catalogue: every operator class the genome can name, as data.
//
// A class is a row: its STAR operator genome (featurizer, token mixing, sparsity, nonlinearity,
// channel mixing), its featurizer genome (one entry per feature group), the module family that
// implements it, and the defaults of its hyper-parameters. Adding a class means adding a row here
// (and, for a new family, its tensor layout in tensors.cpp and its module in evaluator/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace starsynth {

// STAR's structure pools (§1.3 of STAR.md); the integer values are the paper's digits.
enum class TokenMix : int { Diagonal = 1, LowRank = 2, Toeplitz = 3, SemiSeparable = 4 };
enum class Sparsity : int { None = 1, Banded = 2 };
enum class Nonlinearity : int { None = 1, Softmax = 2, Relu = 3, Swish = 4, Gelu = 5 };
enum class ChannelMix : int { Diagonal = 1, Dense = 2, Grouped = 3 };

// Which module implements a class. Hyper-parameters select the variant within a family
// (SA-3 is Attention with kv_repeat 4; Rec-2 is Recurrence with state expansion 2).
enum class Family : int {
  Attention,    // softmax attention, MHA/GQA, optional short-conv featurizer (SA-1..4)
  Recurrence,   // input-varying diagonal recurrence, Mamba-like (Rec-1/2)
  ShortConv,    // gated explicit short convolution (GConv-1)
  LongConv,     // gated long convolution with an implicit filter (GConv-2, Hyena)
  SwiGLU,       // gated memoryless unit (GMemless)
  Mlp,          // ungated GELU MLP (GPT-style models)
  HyenaSE,      // StripedHyena 2 short explicit
  HyenaMR,      // StripedHyena 2 medium regularized
  HyenaLI,      // StripedHyena 2 long implicit (modal)
};

std::string_view family_name(Family f);

struct OperatorGenome {
  int featurizer = 0;  // featurizer class id (STAR digit 1)
  TokenMix token_mix = TokenMix::Diagonal;
  Sparsity sparsity = Sparsity::None;
  Nonlinearity nonlinearity = Nonlinearity::None;
  ChannelMix channel_mix = ChannelMix::Dense;
  std::string code() const;  // "12123"
};

struct FeatureGroupGenome {
  std::string role;  // "q", "kv", "bc", "gate", "filter", ...
  TokenMix token_mix = TokenMix::Diagonal;
  Sparsity sparsity = Sparsity::None;
  Nonlinearity nonlinearity = Nonlinearity::None;
  ChannelMix channel_mix = ChannelMix::Dense;
  double expansion = 1.0;  // feature channels / width
  int repeat = 1;          // tiling across channels (GQA's KV repeat)
};

// Hyper-parameters of one LIV. A class row fixes defaults; a search space may override them per
// class; a ModelSpec layer carries the resolved values. Zero means "not used by this family".
struct LivHyper {
  int64_t head_dim = 0;          // attention (0 in a class row: 64, or width / 4 below 256)
  int64_t kv_repeat = 0;         // attention: query heads per K/V head
  int64_t short_conv = 0;        // length of the featurizer's short causal conv (0: none)
  int64_t state_expansion = 0;   // recurrence state per channel; Hyena-LI modal order
  int64_t filter_length = 0;     // explicit filter taps (GConv-1, Hyena-SE/MR)
  int64_t filter_group = 0;      // channels sharing one explicit filter (Hyena-SE/MR)
  int64_t filter_order = 0;      // width of GConv-2's implicit filter MLP
  int64_t filter_emb = 0;        // positional features fed to GConv-2's filter MLP
  int64_t ffn_hidden = 0;        // explicit hidden size; 0: from multiplier
  double ffn_multiplier = 0.0;   // hidden = multiplier · width, rounded up to ffn_multiple_of
  int64_t ffn_multiple_of = 0;
  int64_t dt_rank = 0;           // recurrence Δ projection rank; 0: ceil(width / 16)
  bool operator==(const LivHyper&) const = default;
};

struct LivClass {
  int id = 0;                   // STAR numbering: 1..17; extensions above
  std::string name;             // "SA-1", "Rec-1-Diff", "Hyena-SE"
  Family family = Family::Attention;
  bool differential = false;    // two branches, y = y1 - λ y2
  int base_id = 0;              // for a differential class, the class it doubles
  bool in_star_pool = false;    // one of STAR's 17 classes
  bool mixes_tokens = true;     // false for memoryless classes
  OperatorGenome op;
  std::vector<FeatureGroupGenome> feature_groups;
  std::vector<std::string> shareable;  // feature-group roles another LIV may reuse (gene 5 = 2..)
  LivHyper defaults;
};

// The whole table, ordered by id.
const std::vector<LivClass>& catalog();
// nullptr when unknown.
const LivClass* find_class(std::string_view name);
const LivClass* find_class(int id);
// The class with this name, or throws std::invalid_argument naming the known classes.
const LivClass& class_by_name(std::string_view name);
// STAR's 17-class alphabet, in id order.
std::vector<std::string> star_alphabet();
// Names of every class, for error messages.
std::string known_class_names();

}  // namespace starsynth
