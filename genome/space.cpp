#include "genome/space.h"

#include <algorithm>
#include <set>

#include "genome/errors.h"

namespace starsynth {

const LivClass& SearchSpace::cls(int gene) const { return class_by_name(alphabet.at(size_t(gene - 1))); }

const LivHyper& SearchSpace::hyper_of(const std::string& name) const { return hyper.at(name); }

int SearchSpace::max_feature_strategy() const {
  size_t most = 0;
  for (const auto& name : alphabet) most = std::max(most, class_by_name(name).shareable.size());
  return 1 + int(most);
}

LivHyper merge_hyper(LivHyper h, const LivHyper& o) {
  auto take = [](auto& field, auto value) {
    if (value != 0) field = value;
  };
  take(h.head_dim, o.head_dim);
  take(h.kv_repeat, o.kv_repeat);
  take(h.short_conv, o.short_conv);
  take(h.state_expansion, o.state_expansion);
  take(h.filter_length, o.filter_length);
  take(h.filter_group, o.filter_group);
  take(h.filter_order, o.filter_order);
  take(h.filter_emb, o.filter_emb);
  take(h.ffn_hidden, o.ffn_hidden);
  take(h.ffn_multiplier, o.ffn_multiplier);
  take(h.ffn_multiple_of, o.ffn_multiple_of);
  take(h.dt_rank, o.dt_rank);
  return h;
}

SearchSpace make_space(int num_livs, int64_t width, int64_t vocab_size, std::vector<std::string> alphabet,
                       const std::map<std::string, LivHyper>& overrides) {
  SearchSpace s;
  s.num_livs = num_livs;
  s.width = width;
  s.vocab_size = vocab_size;
  s.alphabet = std::move(alphabet);
  for (const auto& name : s.alphabet) {
    const LivClass* cls = find_class(name);
    if (!cls) continue;  // validate() reports it with its path
    LivHyper h = cls->defaults;
    if (auto it = overrides.find(name); it != overrides.end()) h = merge_hyper(h, it->second);
    s.hyper[name] = resolve_hyper(*cls, h, width);
  }
  return s;
}

void validate(const SearchSpace& s) {
  if (s.num_livs <= 0) throw FieldError("num_livs", "expected a positive number of LIVs, got " + std::to_string(s.num_livs));
  if (s.width <= 0) throw FieldError("width", "expected a positive width, got " + std::to_string(s.width));
  if (s.vocab_size <= 0)
    throw FieldError("vocab_size", "expected a positive vocabulary size, got " + std::to_string(s.vocab_size));
  if (s.alphabet.empty()) throw FieldError("alphabet", "expected at least one LIV class");
  std::set<std::string> seen;
  for (size_t i = 0; i < s.alphabet.size(); ++i) {
    const std::string& name = s.alphabet[i];
    const std::string path = "alphabet[" + std::to_string(i) + "]";
    const LivClass* cls = find_class(name);
    if (!cls) throw FieldError(path, "expected one of " + known_class_names() + ", got \"" + name + "\"");
    if (!seen.insert(name).second) throw FieldError(path, "class \"" + name + "\" appears twice");
    auto it = s.hyper.find(name);
    if (it == s.hyper.end()) throw FieldError("classes[" + name + "]", "missing hyper-parameters");
    validate_hyper(*cls, it->second, s.width, "classes[" + name + "].hyper.");
  }
  if (s.position == PositionEncoding::Learned && s.max_positions <= 0)
    throw FieldError("max_positions", "expected a positive number with learned positions");
}

}  // namespace starsynth
