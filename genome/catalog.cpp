#include "genome/catalog.h"

#include <stdexcept>

namespace starsynth {

std::string_view family_name(Family f) {
  switch (f) {
    case Family::Attention: return "attention";
    case Family::Recurrence: return "recurrence";
    case Family::ShortConv: return "short-conv";
    case Family::LongConv: return "long-conv";
    case Family::SwiGLU: return "swiglu";
    case Family::Mlp: return "mlp";
    case Family::HyenaSE: return "hyena-se";
    case Family::HyenaMR: return "hyena-mr";
    case Family::HyenaLI: return "hyena-li";
  }
  return "?";
}

std::string OperatorGenome::code() const {
  std::string s = std::to_string(featurizer);
  if (featurizer > 9) s += '.';
  for (int v : {int(token_mix), int(sparsity), int(nonlinearity), int(channel_mix)}) s += std::to_string(v);
  return s;
}

namespace {

using TM = TokenMix;
using CM = ChannelMix;
using NL = Nonlinearity;

FeatureGroupGenome group(std::string role, TM tm, NL nl, CM cm, double expansion = 1.0, int repeat = 1) {
  return {std::move(role), tm, Sparsity::None, nl, cm, expansion, repeat};
}

LivHyper attention_hyper(int64_t kv_repeat, int64_t short_conv) {
  LivHyper h;
  h.head_dim = 0;  // resolved from the width: 64, or width / 4 for narrow models
  h.kv_repeat = kv_repeat;
  h.short_conv = short_conv;
  return h;
}

LivClass attention(int id, std::string name, int64_t kv_repeat, int64_t short_conv) {
  const TM feat_tm = short_conv ? TM::Toeplitz : TM::Diagonal;
  const double kv_expansion = 1.0 / double(kv_repeat);
  return {id, std::move(name), Family::Attention, false, 0, true, true,
          {id, TM::LowRank, Sparsity::None, NL::Softmax, CM::Grouped},
          {group("q", feat_tm, NL::None, CM::Dense),
           group("kv", feat_tm, NL::None, CM::Dense, kv_expansion, int(kv_repeat))},
          {"kv"},
          attention_hyper(kv_repeat, short_conv)};
}

LivClass recurrence(int id, std::string name, int64_t state) {
  LivHyper h;
  h.state_expansion = state;
  h.short_conv = 4;
  return {id, std::move(name), Family::Recurrence, false, 0, true, true,
          {id, TM::SemiSeparable, Sparsity::None, NL::None, CM::Diagonal},
          {group("u", TM::Toeplitz, NL::None, CM::Dense), group("gate", TM::Diagonal, NL::Swish, CM::Dense),
           group("bc", TM::Diagonal, NL::None, CM::Dense, double(state)),
           group("dt", TM::Diagonal, NL::None, CM::Dense)},
          {"bc"},
          h};
}

LivClass short_conv(int id) {
  LivHyper h;
  h.filter_length = 3;
  return {id, "GConv-1", Family::ShortConv, false, 0, true, true,
          {id, TM::Toeplitz, Sparsity::None, NL::None, CM::Diagonal},
          {group("bc", TM::Diagonal, NL::None, CM::Dense), group("x", TM::Diagonal, NL::None, CM::Dense),
           group("kernel", TM::Toeplitz, NL::None, CM::Diagonal)},
          {"bc"},
          h};
}

LivClass long_conv(int id) {
  LivHyper h;
  h.short_conv = 3;
  h.filter_order = 64;
  h.filter_emb = 3;
  return {id, "GConv-2", Family::LongConv, false, 0, true, true,
          {id, TM::Toeplitz, Sparsity::None, NL::None, CM::Diagonal},
          {group("bc", TM::Toeplitz, NL::None, CM::Dense), group("v", TM::Toeplitz, NL::None, CM::Dense),
           group("filter", TM::Toeplitz, NL::None, CM::Diagonal)},
          {"filter"},
          h};
}

LivClass swiglu(int id) {
  LivHyper h;
  h.ffn_multiplier = 8.0 / 3.0;
  h.ffn_multiple_of = 64;
  return {id, "GMemless", Family::SwiGLU, false, 0, true, false,
          {id, TM::Diagonal, Sparsity::None, NL::Swish, CM::Dense},
          {group("gate", TM::Diagonal, NL::Swish, CM::Dense, 8.0 / 3.0),
           group("up", TM::Diagonal, NL::None, CM::Dense, 8.0 / 3.0)},
          {"gate"},
          h};
}

LivClass differential(const LivClass& base, int id) {
  LivClass c = base;
  c.id = id;
  c.name = base.name + "-Diff";
  c.differential = true;
  c.base_id = base.id;
  c.op.featurizer = id;
  return c;
}

LivClass hyena(int id, std::string name, Family family, int64_t length, int64_t modal_order) {
  LivHyper h;
  h.short_conv = 3;
  h.filter_length = length;
  h.filter_group = length ? 16 : 0;
  h.state_expansion = modal_order;
  return {id, std::move(name), family, false, 0, false, true,
          {id, TM::Toeplitz, Sparsity::None, NL::None, CM::Diagonal},
          {group("bc", TM::Toeplitz, NL::None, CM::Dense), group("v", TM::Toeplitz, NL::None, CM::Dense),
           group("filter", TM::Toeplitz, NL::None, length ? CM::Grouped : CM::Diagonal)},
          {"filter"},
          h};
}

LivClass mlp(int id) {
  LivHyper h;
  h.ffn_multiplier = 4.0;
  h.ffn_multiple_of = 1;
  return {id, "MLP", Family::Mlp, false, 0, false, false,
          {id, TM::Diagonal, Sparsity::None, NL::Gelu, CM::Dense},
          {group("up", TM::Diagonal, NL::Gelu, CM::Dense, 4.0)},
          {},
          h};
}

std::vector<LivClass> build_catalog() {
  std::vector<LivClass> t;
  t.push_back(attention(1, "SA-1", 1, 0));
  t.push_back(attention(2, "SA-2", 1, 3));
  t.push_back(attention(3, "SA-3", 4, 0));
  t.push_back(attention(4, "SA-4", 2, 0));
  t.push_back(recurrence(5, "Rec-1", 16));
  t.push_back(recurrence(6, "Rec-2", 2));
  t.push_back(short_conv(7));
  t.push_back(long_conv(8));
  t.push_back(swiglu(9));
  for (int base = 1; base <= 8; ++base) t.push_back(differential(t[size_t(base - 1)], 9 + base));
  t.push_back(hyena(18, "Hyena-SE", Family::HyenaSE, 7, 0));
  t.push_back(hyena(19, "Hyena-MR", Family::HyenaMR, 128, 0));
  t.push_back(hyena(20, "Hyena-LI", Family::HyenaLI, 0, 16));
  t.push_back(mlp(21));
  return t;
}

}  // namespace

const std::vector<LivClass>& catalog() {
  static const std::vector<LivClass> table = build_catalog();
  return table;
}

const LivClass* find_class(std::string_view name) {
  for (const auto& c : catalog())
    if (c.name == name) return &c;
  return nullptr;
}

const LivClass* find_class(int id) {
  for (const auto& c : catalog())
    if (c.id == id) return &c;
  return nullptr;
}

std::string known_class_names() {
  std::string s;
  for (const auto& c : catalog()) s += (s.empty() ? "" : ", ") + c.name;
  return s;
}

const LivClass& class_by_name(std::string_view name) {
  if (const LivClass* c = find_class(name)) return *c;
  throw std::invalid_argument("unknown LIV class \"" + std::string(name) + "\" (known: " + known_class_names() + ")");
}

std::vector<std::string> star_alphabet() {
  std::vector<std::string> names;
  for (const auto& c : catalog())
    if (c.in_star_pool) names.push_back(c.name);
  return names;
}

}  // namespace starsynth
