#include "genome/model_spec.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "genome/errors.h"
#include "genome/tensors.h"

namespace starsynth {

std::string_view norm_name(NormType n) { return n == NormType::RMSNorm ? "rmsnorm" : "layernorm"; }

std::string_view position_name(PositionEncoding p) {
  switch (p) {
    case PositionEncoding::None: return "none";
    case PositionEncoding::RoPE: return "rope";
    case PositionEncoding::Learned: return "learned";
  }
  return "?";
}

LivHyper resolve_hyper(const LivClass& cls, LivHyper h, int64_t width) {
  if ((cls.family == Family::SwiGLU || cls.family == Family::Mlp) && h.ffn_hidden == 0) {
    const int64_t multiple = std::max<int64_t>(1, h.ffn_multiple_of);
    // The small epsilon keeps 8/3 · 768 at 2048 rather than rounding a representation error up.
    const auto raw = int64_t(std::ceil(h.ffn_multiplier * double(width) - 1e-6));
    h.ffn_hidden = (raw + multiple - 1) / multiple * multiple;
  }
  // Head size 64 as at STAR's scale; narrow (MAD-scale) models get 4 heads so GQA can group them.
  if (cls.family == Family::Attention && h.head_dim == 0) h.head_dim = width >= 256 ? 64 : std::max<int64_t>(1, width / 4);
  if (cls.family == Family::Recurrence && h.dt_rank == 0) h.dt_rank = (width + 15) / 16;
  return h;
}

namespace {

void require(bool ok, const std::string& path, const std::string& expected) {
  if (!ok) throw FieldError(path, expected);
}

void require_positive(int64_t v, const std::string& path) {
  require(v > 0, path, "expected a positive integer, got " + std::to_string(v));
}

}  // namespace

void validate_hyper(const LivClass& cls, const LivHyper& h, int64_t width, const std::string& at) {
  switch (cls.family) {
    case Family::Attention:
      require_positive(h.head_dim, at + "head_dim");
      require(width % h.head_dim == 0, at + "head_dim",
              "expected a divisor of the width " + std::to_string(width) + ", got " + std::to_string(h.head_dim));
      require_positive(h.kv_repeat, at + "kv_repeat");
      require((width / h.head_dim) % h.kv_repeat == 0, at + "kv_repeat",
              "expected a divisor of the head count " + std::to_string(width / h.head_dim) + ", got " +
                  std::to_string(h.kv_repeat));
      require(h.short_conv >= 0, at + "short_conv", "expected 0 (none) or a positive length");
      break;
    case Family::Recurrence:
      require_positive(h.state_expansion, at + "state_expansion");
      require_positive(h.short_conv, at + "short_conv");
      require_positive(h.dt_rank, at + "dt_rank");
      break;
    case Family::ShortConv: require_positive(h.filter_length, at + "filter_length"); break;
    case Family::LongConv:
      require_positive(h.short_conv, at + "short_conv");
      require_positive(h.filter_order, at + "filter_order");
      require(h.filter_emb >= 3 && h.filter_emb % 2 == 1, at + "filter_emb",
              "expected an odd number >= 3 (time plus sine/cosine pairs), got " + std::to_string(h.filter_emb));
      break;
    case Family::HyenaSE:
    case Family::HyenaMR:
      require_positive(h.short_conv, at + "short_conv");
      require_positive(h.filter_length, at + "filter_length");
      require_positive(h.filter_group, at + "filter_group");
      require(width % h.filter_group == 0, at + "filter_group",
              "expected a divisor of the width " + std::to_string(width) + ", got " + std::to_string(h.filter_group));
      break;
    case Family::HyenaLI:
      require_positive(h.short_conv, at + "short_conv");
      require_positive(h.state_expansion, at + "state_expansion");
      break;
    case Family::SwiGLU:
    case Family::Mlp: require_positive(h.ffn_hidden, at + "ffn_hidden"); break;
  }
}

void validate(const ModelSpec& spec) {
  require_positive(spec.vocab_size, "vocab_size");
  require_positive(spec.width, "width");
  require(spec.norm_eps > 0, "norm_eps", "expected a positive number");
  if (spec.position == PositionEncoding::Learned) require_positive(spec.max_positions, "max_positions");
  if (spec.position == PositionEncoding::RoPE) require(spec.rope_theta > 0, "rope_theta", "expected a positive number");
  require(!spec.layers.empty(), "layers", "expected at least one layer");
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const std::string at = "layers[" + std::to_string(i) + "].";
    const LivClass* cls = find_class(l.cls);
    require(cls != nullptr, at + "class", "expected one of " + known_class_names() + ", got \"" + l.cls + "\"");
    validate_hyper(*cls, l.hyper, spec.width, at + "hyper.");
    const int n = int(i);
    if (l.tie_featurizer_to != -1) {
      require(l.tie_featurizer_to >= 0 && l.tie_featurizer_to < n, at + "tie_featurizer_to",
              "expected an earlier layer index in [0, " + std::to_string(n) + ")");
      const LayerSpec& owner = spec.layers[size_t(l.tie_featurizer_to)];
      require(owner.tie_featurizer_to == -1, at + "tie_featurizer_to",
              "expected the owner of the tied weights, but layer " + std::to_string(l.tie_featurizer_to) +
                  " is itself tied to layer " + std::to_string(owner.tie_featurizer_to));
    }
    if (l.reuse_from != -1) {
      require(l.reuse_from >= 0 && l.reuse_from < n, at + "reuse_from",
              "expected an earlier layer index in [0, " + std::to_string(n) + ")");
      const std::string mine = feature_signature(l, spec.width, l.reuse_role);
      require(!mine.empty(), at + "reuse",
              "expected a feature group that " + l.cls + " can reuse, got \"" + l.reuse_role + "\"");
      const LayerSpec& producer = spec.layers[size_t(l.reuse_from)];
      require(producer.reuse_from == -1, at + "reuse_from",
              "expected a producer, but layer " + std::to_string(l.reuse_from) + " reuses features itself");
      require(feature_signature(producer, spec.width, l.reuse_role) == mine, at + "reuse_from",
              "incompatible sharing: layer " + std::to_string(l.reuse_from) + " (" + producer.cls +
                  ") has no feature group \"" + l.reuse_role + "\" of the shape " + l.cls + " needs");
    } else {
      require(l.reuse_role.empty(), at + "reuse", "expected no feature group without reuse_from");
    }
  }
  // Tying is checked after every reuse is known, since reuse changes what a featurizer owns.
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    if (l.tie_featurizer_to < 0) continue;
    const std::string mine = featurizer_signature(spec, i);
    require(!mine.empty() && mine == featurizer_signature(spec, size_t(l.tie_featurizer_to)),
            "layers[" + std::to_string(i) + "].tie_featurizer_to",
            "incompatible sharing: layer " + std::to_string(l.tie_featurizer_to) + " (" +
                spec.layers[size_t(l.tie_featurizer_to)].cls + ") has featurizer weights of another shape than " +
                l.cls);
  }
}

std::string summary(const ModelSpec& spec) {
  std::vector<std::pair<std::string, int>> counts;
  int tied = 0, reused = 0;
  std::map<std::string, int> roles;
  for (const LayerSpec& l : spec.layers) {
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == l.cls; });
    if (it == counts.end()) counts.push_back({l.cls, 1});
    else ++it->second;
    tied += l.tie_featurizer_to >= 0;
    if (l.reuse_from >= 0) ++reused, ++roles[l.reuse_role];
  }
  std::ostringstream s;
  for (size_t k = 0; k < counts.size(); ++k) s << (k ? " " : "") << counts[k].second << "×" << counts[k].first;
  s << "; tied " << tied << ", reuse " << reused;
  if (!roles.empty()) {
    s << " (";
    bool first = true;
    for (const auto& [role, n] : roles) s << (first ? "" : " ") << role << ":" << n, first = false;
    s << ")";
  }
  return s.str();
}

}  // namespace starsynth
