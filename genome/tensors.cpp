#include "genome/tensors.h"

#include <algorithm>
#include <numeric>
#include <sstream>

namespace starsynth {

int64_t TensorSpec::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

int branches(const LivClass& cls) { return cls.differential ? 2 : 1; }

std::string output_projection(const LivClass& cls) {
  return cls.family == Family::Attention ? "o" : cls.mixes_tokens ? "out" : "down";
}

namespace {

// Collects one layer's tensors; `linear` follows nn::Linear's [out, in] layout and adds a bias
// when the model has biases.
struct Layout {
  bool bias = false;
  std::string prefix;
  std::vector<TensorSpec> out;

  void linear(const std::string& name, int64_t rows, int64_t cols, TensorRole role, const std::string& group,
              bool force_bias = false) {
    out.push_back({prefix + name + ".weight", {rows, cols}, role, group, 2 * rows * cols});
    if (bias || force_bias) out.push_back({prefix + name + ".bias", {rows}, role, group, 0});
  }
  void conv(const std::string& name, int64_t channels, int64_t length, const std::string& group) {
    out.push_back({prefix + name + ".conv", {channels, 1, length}, TensorRole::Featurizer, group, 2 * channels * length});
  }
  void add(const std::string& name, std::vector<int64_t> shape, TensorRole role, const std::string& group = "",
           int64_t flops = 0) {
    out.push_back({prefix + name, std::move(shape), role, group, flops});
  }
};

int64_t heads(const LayerSpec& l, int64_t d) { return d / l.hyper.head_dim; }
int64_t kv_dim(const LayerSpec& l, int64_t d) { return heads(l, d) / l.hyper.kv_repeat * l.hyper.head_dim; }

// The tensors of one branch of the token mixer (everything but norm and output projection).
void branch_tensors(Layout& t, const LivClass& cls, const LayerSpec& l, int64_t d) {
  const LivHyper& h = l.hyper;
  using R = TensorRole;
  switch (cls.family) {
    case Family::Attention: {
      const int64_t qd = heads(l, d) * h.head_dim, kvd = kv_dim(l, d);
      t.linear("q", qd, d, R::Featurizer, "q");
      t.linear("k", kvd, d, R::Featurizer, "kv");
      t.linear("v", kvd, d, R::Featurizer, "kv");
      if (h.short_conv) {
        t.conv("q", qd, h.short_conv, "q");
        t.conv("k", kvd, h.short_conv, "kv");
        t.conv("v", kvd, h.short_conv, "kv");
      }
      break;
    }
    case Family::Recurrence:
      t.linear("u", d, d, R::Featurizer, "u");
      t.conv("u", d, h.short_conv, "u");
      t.linear("gate", d, d, R::Featurizer, "gate");
      t.linear("B", h.state_expansion, d, R::Featurizer, "bc");
      t.linear("C", h.state_expansion, d, R::Featurizer, "bc");
      // Δ = softplus(up(down(u)) + bias): a low-rank map whose bias is part of Δ, not optional.
      t.add("dt_down.weight", {h.dt_rank, d}, R::Featurizer, "dt", 2 * h.dt_rank * d);
      t.add("dt_up.weight", {d, h.dt_rank}, R::Featurizer, "dt", 2 * h.dt_rank * d);
      t.add("dt_up.bias", {d}, R::Featurizer, "dt");
      // One decay rate per channel, shared by its state dimensions (as in Mamba-2): this keeps a
      // chunked scan a sequence of small matmuls.
      t.add("A_log", {d}, R::Operator);
      t.add("D", {d}, R::Operator);
      break;
    case Family::ShortConv:
      t.linear("b", d, d, R::Featurizer, "bc");
      t.linear("c", d, d, R::Featurizer, "bc");
      t.linear("x", d, d, R::Featurizer, "x");
      t.add("kernel", {d, 1, h.filter_length}, R::Featurizer, "kernel", 2 * d * h.filter_length);
      break;
    case Family::LongConv:
    case Family::HyenaSE:
    case Family::HyenaMR:
    case Family::HyenaLI:
      t.linear("q", d, d, R::Featurizer, "bc");
      t.linear("k", d, d, R::Featurizer, "bc");
      t.linear("v", d, d, R::Featurizer, "v");
      t.conv("q", d, h.short_conv, "bc");
      t.conv("k", d, h.short_conv, "bc");
      t.conv("v", d, h.short_conv, "v");
      if (cls.family == Family::LongConv) {
        // Hyena's implicit filter: MLP(positional features) with one shared sine frequency.
        t.add("filter.in.weight", {h.filter_order, h.filter_emb}, R::Featurizer, "filter");
        t.add("filter.in.bias", {h.filter_order}, R::Featurizer, "filter");
        t.add("filter.mid.weight", {h.filter_order, h.filter_order}, R::Featurizer, "filter");
        t.add("filter.mid.bias", {h.filter_order}, R::Featurizer, "filter");
        t.add("filter.freq", {h.filter_order}, R::Featurizer, "filter");
        t.add("filter.out.weight", {d, h.filter_order}, R::Featurizer, "filter");
        t.add("D", {d}, R::Operator);
      } else if (cls.family == Family::HyenaLI) {
        t.add("filter.log_poles", {d, h.state_expansion}, R::Featurizer, "filter");
        t.add("filter.residues", {d, h.state_expansion}, R::Featurizer, "filter");
        t.add("D", {d}, R::Operator);
      } else {
        // One filter per group of channels, applied to all d channels.
        t.add("filter.taps", {d / h.filter_group, 1, h.filter_length}, R::Featurizer, "filter",
              2 * d * h.filter_length);
        if (cls.family == Family::HyenaMR) t.add("D", {d}, R::Operator);
      }
      break;
    case Family::SwiGLU:
      t.linear("gate", h.ffn_hidden, d, R::Featurizer, "gate");
      t.linear("up", h.ffn_hidden, d, R::Featurizer, "up");
      break;
    case Family::Mlp:
      t.linear("up", h.ffn_hidden, d, R::Featurizer, "up");
      break;
  }
}

int64_t output_inputs(const LivClass& cls, const LayerSpec& l, int64_t d) {
  switch (cls.family) {
    case Family::Attention: return heads(l, d) * l.hyper.head_dim;
    case Family::SwiGLU:
    case Family::Mlp: return l.hyper.ffn_hidden;
    default: return d;
  }
}

std::string branch_prefix(const LivClass& cls, int b) { return cls.differential ? "b" + std::to_string(b) + "." : ""; }

}  // namespace

std::vector<TensorSpec> full_tensors(const ModelSpec& spec, size_t i) {
  const LayerSpec& l = spec.layers.at(i);
  const LivClass& cls = class_by_name(l.cls);
  const int64_t d = spec.width;
  Layout t;
  t.bias = spec.bias;
  t.add("norm.weight", {d}, TensorRole::Norm);
  if (spec.norm == NormType::LayerNorm) t.add("norm.bias", {d}, TensorRole::Norm);
  for (int b = 0; b < branches(cls); ++b) {
    t.prefix = branch_prefix(cls, b);
    branch_tensors(t, cls, l, d);
  }
  t.prefix.clear();
  if (cls.differential) t.add("lambda", {1}, TensorRole::Operator);
  t.linear(output_projection(cls), d, output_inputs(cls, l, d), TensorRole::Output, "");
  return t.out;
}

std::vector<TensorSpec> owned_tensors(const ModelSpec& spec, size_t i) {
  const LayerSpec& l = spec.layers.at(i);
  std::vector<TensorSpec> all = full_tensors(spec, i);
  std::erase_if(all, [&](const TensorSpec& t) {
    if (l.reuse_from >= 0 && !t.group.empty() && t.group == l.reuse_role) return true;
    if (l.tie_featurizer_to >= 0 && t.role == TensorRole::Featurizer) return true;
    return false;
  });
  return all;
}

std::vector<TensorSpec> model_tensors(const ModelSpec& spec) {
  const int64_t d = spec.width;
  std::vector<TensorSpec> t;
  // A tied head allocates nothing but still costs its matmul: the FLOPs go on the embedding.
  const int64_t head_flops = 2 * spec.vocab_size * d;
  t.push_back({"tok_emb.weight", {spec.vocab_size, d}, TensorRole::Embedding, "", spec.tie_embeddings ? head_flops : 0});
  if (spec.position == PositionEncoding::Learned)
    t.push_back({"pos_emb.weight", {spec.max_positions, d}, TensorRole::Embedding, "", 0});
  t.push_back({"final_norm.weight", {d}, TensorRole::Norm, "", 0});
  if (spec.norm == NormType::LayerNorm) t.push_back({"final_norm.bias", {d}, TensorRole::Norm, "", 0});
  if (!spec.tie_embeddings) t.push_back({"head.weight", {spec.vocab_size, d}, TensorRole::Embedding, "", head_flops});
  return t;
}

std::vector<CacheEntry> cache_entries(const ModelSpec& spec, size_t i, int64_t context) {
  const LayerSpec& l = spec.layers.at(i);
  const LivClass& cls = class_by_name(l.cls);
  const LivHyper& h = l.hyper;
  const int64_t d = spec.width;
  std::vector<CacheEntry> c;
  for (int b = 0; b < branches(cls); ++b) {
    const std::string p = branch_prefix(cls, b);
    auto conv_history = [&](const std::string& name, int64_t channels, const std::string& group) {
      if (h.short_conv > 1) c.push_back({p + name + ".conv", (h.short_conv - 1) * channels, group});
    };
    switch (cls.family) {
      case Family::Attention: {
        const int64_t qd = heads(l, d) * h.head_dim, kvd = kv_dim(l, d);
        c.push_back({p + "k", context * kvd, "kv"});
        c.push_back({p + "v", context * kvd, "kv"});
        conv_history("q", qd, "q");
        conv_history("k", kvd, "kv");
        conv_history("v", kvd, "kv");
        break;
      }
      case Family::Recurrence:
        c.push_back({p + "state", d * h.state_expansion, ""});
        conv_history("u", d, "u");
        break;
      case Family::ShortConv:
        c.push_back({p + "kernel.history", (h.filter_length - 1) * d, ""});
        break;
      case Family::LongConv:
      case Family::HyenaSE:
      case Family::HyenaMR:
      case Family::HyenaLI:
        conv_history("q", d, "bc");
        conv_history("k", d, "bc");
        conv_history("v", d, "v");
        if (cls.family == Family::LongConv) c.push_back({p + "filter.history", context * d, ""});
        else if (cls.family == Family::HyenaLI) c.push_back({p + "modal.state", h.state_expansion * d, ""});
        else c.push_back({p + "filter.history", (h.filter_length - 1) * d, ""});
        break;
      case Family::SwiGLU:
      case Family::Mlp:
        break;
    }
  }
  if (l.reuse_from >= 0) std::erase_if(c, [&](const CacheEntry& e) { return e.group == l.reuse_role; });
  return c;
}

std::string featurizer_signature(const ModelSpec& spec, size_t i) {
  const LayerSpec& l = spec.layers.at(i);
  std::ostringstream s;
  s << family_name(class_by_name(l.cls).family);
  bool any = false;
  for (const TensorSpec& t : full_tensors(spec, i)) {
    if (t.role != TensorRole::Featurizer) continue;
    if (l.reuse_from >= 0 && t.group == l.reuse_role) continue;
    any = true;
    s << ' ' << t.name << '[';
    for (size_t k = 0; k < t.shape.size(); ++k) s << (k ? "," : "") << t.shape[k];
    s << ']';
  }
  return any ? s.str() : "";
}

std::string feature_signature(const LayerSpec& l, int64_t width, const std::string& role) {
  const LivClass& cls = class_by_name(l.cls);
  if (std::find(cls.shareable.begin(), cls.shareable.end(), role) == cls.shareable.end()) return "";
  const LivHyper& h = l.hyper;
  std::ostringstream s;
  s << family_name(cls.family) << '.' << role << " branches=" << branches(cls);
  switch (cls.family) {
    case Family::Attention: s << " kv_heads=" << heads(l, width) / h.kv_repeat << " head_dim=" << h.head_dim; break;
    case Family::Recurrence: s << " state=" << h.state_expansion; break;
    case Family::SwiGLU: s << " hidden=" << h.ffn_hidden; break;
    case Family::HyenaSE:
    case Family::HyenaMR: s << " length=" << h.filter_length << " group=" << h.filter_group; break;
    case Family::HyenaLI: s << " order=" << h.state_expansion; break;
    default: break;  // ShortConv gates and GConv-2's filter are width × length features
  }
  return s.str();
}

}  // namespace starsynth
