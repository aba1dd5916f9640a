#include "evaluator/model.h"

#include <cmath>

#include "genome/tensors.h"

namespace starsynth {

namespace {

using TensorMap = std::map<std::string, at::Tensor>;

// Positions are normalised by this constant in GConv-2's implicit filter, so that the filter's
// value at lag k does not depend on the sequence length (decoding must see the same filter).
constexpr double kFilterScale = 1024.0;

int64_t numel_per_row(const at::Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / t.size(0); }

// FFTs and scans run in at least float32, whatever the autocast dtype.
at::ScalarType wide(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16 ? at::kFloat : t.scalar_type();
}

GatedConvKernel g_gated_conv_kernel = nullptr;
GatedConvKernel g_long_conv_kernel = nullptr;
ScanKernel g_scan_kernel = nullptr;
RopeKernel g_rope_kernel = nullptr;
SwigluKernel g_swiglu_kernel = nullptr;
RmsNormKernel g_rms_norm_kernel = nullptr;
CrossEntropyKernel g_cross_entropy_kernel = nullptr;

// x [B, L, C], kernel [C, 1, k] → causal depthwise convolution, [B, L, C].
at::Tensor causal_conv(const at::Tensor& x, const at::Tensor& kernel) {
  return gated_causal_conv(at::Tensor(), at::Tensor(), x, kernel, at::Tensor());
}

// One decode step of causal_conv: `history` [B, C, k-1] holds the previous inputs (oldest first);
// kernel[:, 0, j] weighs the input j steps back.
at::Tensor causal_conv_step(const at::Tensor& x, const at::Tensor& kernel, at::Tensor& history) {
  const at::Tensor window = at::cat({history, x.unsqueeze(-1)}, -1);  // [B, C, k]
  history = window.slice(-1, 1);
  return (window * kernel.squeeze(1).flip(-1).to(x.dtype())).sum(-1);
}

// Causal convolution of z [B, L, d] with per-channel filters h [d, ≥L] by FFT.
at::Tensor fft_conv(const at::Tensor& z, const at::Tensor& h) {
  const int64_t L = z.size(1), n = 2 * L;
  const at::Tensor zf = torch::fft::rfft(z.transpose(1, 2).to(wide(z)), n);
  const at::Tensor hf = torch::fft::rfft(h.slice(-1, 0, L).to(wide(z)), n);
  return torch::fft::irfft(zf * hf, n).slice(-1, 0, L).transpose(1, 2).to(z.dtype());
}

// Softmax attention; q [B, H, Lq, hd], k/v [B, KVH, Lk, hd]. Causal when Lq == Lk.
at::Tensor attend(const at::Tensor& q, at::Tensor k, at::Tensor v, bool causal) {
  const int64_t groups = q.size(1) / k.size(1);
  if (groups > 1) k = k.repeat_interleave(groups, 1), v = v.repeat_interleave(groups, 1);
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
  at::Tensor scores = q.matmul(k.transpose(-2, -1)) / std::sqrt(double(q.size(-1)));
  if (causal) {
    const int64_t L = q.size(2);
    const at::Tensor mask = at::ones({L, L}, at::TensorOptions().dtype(at::kBool).device(q.device())).triu(1);
    scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  }
  return at::softmax(scores, -1).matmul(v);
#endif
}

// The chunked form of the diagonal recurrence h_t = a_t h_{t-1} + x_t B_t, y_t = C_t·h_t, with
// log a [B, L, d], x [B, L, d], B/C [B, L, e]. Within a chunk the output is a masked,
// decay-weighted attention-like sum; between chunks the state [B, d, e] is carried.
at::Tensor chunked_scan(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& Bm, const at::Tensor& Cm) {
  const int64_t L = x.size(1), T = 16;
  at::Tensor h = at::zeros({x.size(0), x.size(2), Bm.size(2)}, x.options());
  std::vector<at::Tensor> ys;
  for (int64_t s = 0; s < L; s += T) {
    const int64_t e = std::min(L, s + T), n = e - s;
    const at::Tensor la = log_a.slice(1, s, e), xc = x.slice(1, s, e), bc = Bm.slice(1, s, e), cc = Cm.slice(1, s, e);
    const at::Tensor cum = la.cumsum(1);                                   // [B, n, d]
    at::Tensor diff = cum.unsqueeze(2) - cum.unsqueeze(1);                 // [B, t, s, d]
    const at::Tensor future = at::ones({n, n}, at::TensorOptions().dtype(at::kBool).device(x.device())).triu(1);
    diff = diff.masked_fill(future.unsqueeze(0).unsqueeze(-1), -std::numeric_limits<float>::infinity());
    const at::Tensor g = cc.matmul(bc.transpose(1, 2));                    // [B, t, s]
    const at::Tensor intra = (g.unsqueeze(-1) * diff.exp() * xc.unsqueeze(1)).sum(2);
    const at::Tensor inter = cum.exp() * cc.matmul(h.transpose(1, 2));   // [B, n, d]
    ys.push_back(intra + inter);
    const at::Tensor last = cum.slice(1, n - 1, n);                        // [B, 1, d]
    h = last.exp().transpose(1, 2) * h + ((last - cum).exp() * xc).transpose(1, 2).matmul(bc);
  }
  return at::cat(ys, 1);
}

// Hyena's implicit filter for lags 0..L-1: a sine-activated MLP of positional features, times
// an exponential decay window that differs by channel. Returns [d, L].
at::Tensor implicit_filter(const TensorMap& w, const std::string& p, int64_t L, int64_t d, int64_t emb) {
  const at::TensorOptions opts = w.at(p + "filter.freq").options();
  const at::Tensor k = at::arange(L, opts).unsqueeze(1);  // [L, 1]
  std::vector<at::Tensor> feats = {k / kFilterScale};
  const int64_t bands = (emb - 1) / 2;
  for (int64_t b = 0; b < bands; ++b) {
    const double f = bands > 1 ? 1e-4 + double(b) * (double(bands - 1) - 1e-4) / double(bands - 1) : 1e-4;
    const at::Tensor angle = k * (2.0 * M_PI * f / kFilterScale);
    feats.push_back(angle.cos());
    feats.push_back(-angle.sin());
  }
  const at::Tensor z = at::cat(feats, 1);  // [L, emb]
  const at::Tensor freq = w.at(p + "filter.freq");
  at::Tensor hdn = at::sin(freq * at::linear(z, w.at(p + "filter.in.weight"), w.at(p + "filter.in.bias")));
  hdn = at::sin(freq * at::linear(hdn, w.at(p + "filter.mid.weight"), w.at(p + "filter.mid.bias")));
  const at::Tensor out = at::linear(hdn, w.at(p + "filter.out.weight"));  // [L, d]
  const double fast = std::log(1e-2) / 0.3, slow = std::log(1e-2) / 1.5;
  const at::Tensor rate = at::linspace(fast, slow, d, opts).abs();  // [d]
  const at::Tensor window = at::exp(-(k / kFilterScale) * rate.unsqueeze(0)) + 0.05;    // [L, d]
  return (out * window).t();
}

// Hyena-LI's modal filter h[c, k] = Σ_n R[c, n] λ[c, n]^k with λ = exp(-exp(log_poles)). [d, L].
at::Tensor modal_filter(const TensorMap& w, const std::string& p, int64_t L) {
  const at::Tensor rate = w.at(p + "filter.log_poles").exp();  // -log λ, [d, S]
  const at::Tensor k = at::arange(L, rate.options());
  return (w.at(p + "filter.residues").unsqueeze(-1) * at::exp(-rate.unsqueeze(-1) * k)).sum(1);
}

// Hyena-SE/MR's explicit filter expanded to every channel, [d, 1, len]; MR's taps are damped by
// an exponential decay whose rate is swept across the filter groups (10^-1 … 10^2).
at::Tensor explicit_filter(const TensorMap& w, const std::string& p, const LivClass& cls, int64_t d) {
  at::Tensor taps = w.at(p + "filter.taps");  // [G, 1, len]
  if (cls.family == Family::HyenaMR) {
    const int64_t G = taps.size(0), len = taps.size(2);
    const at::Tensor t = at::linspace(0.0, 1.0, len, taps.options());
    const at::Tensor r = at::pow(10.0, at::linspace(-1.0, 2.0, G, taps.options()));
    taps = taps * at::exp(-r.unsqueeze(1) * t.unsqueeze(0)).unsqueeze(1);
  }
  return taps.repeat_interleave(d / taps.size(0), 0);
}

at::Tensor linear(const TensorMap& w, const std::string& name, const at::Tensor& x) {
  auto bias = w.find(name + ".bias");
  return at::linear(x, w.at(name + ".weight"), bias == w.end() ? at::Tensor() : bias->second);
}

// SwiGLU's mixer silu(gate(x)) ⊙ up(x): with another layer's gate when `shared` is given; with
// its own gate kept in `produced` when later layers reuse it; else in one fused pass.
at::Tensor swiglu_layer(const TensorMap& w, const std::string& p, const at::Tensor& x, const at::Tensor& shared,
                        bool publish, std::vector<at::Tensor>& produced) {
  if (shared.defined()) return shared * linear(w, p + "up", x);
  if (!publish) return swiglu(linear(w, p + "gate", x), linear(w, p + "up", x));
  const at::Tensor gate = at::silu(linear(w, p + "gate", x));
  produced.push_back(gate);
  return gate * linear(w, p + "up", x);
}

void init_tensor(at::Tensor& t, const TensorSpec& spec, const LayerSpec* layer, size_t num_layers) {
  torch::NoGradGuard no_grad;
  const std::string& n = spec.name;
  auto ends = [&](const std::string& suffix) {
    return n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool filter_mlp = n.find("filter.in.") != std::string::npos || n.find("filter.mid.") != std::string::npos ||
                          n.find("filter.out.") != std::string::npos;
  if (spec.role == TensorRole::Norm) {
    ends(".bias") ? t.zero_() : t.fill_(1.0);
  } else if (filter_mlp) {
    const double bound = 1.0 / std::sqrt(double(t.dim() == 2 ? t.size(1) : t.size(0)));
    t.uniform_(-bound, bound);
  } else if (ends("filter.freq") || ends("D")) {
    t.fill_(1.0);
  } else if (ends("lambda")) {
    t.fill_(0.5);
  } else if (ends("A_log")) {
    t.uniform_(1.0, 16.0).log_();
  } else if (ends("dt_up.bias")) {
    // Δ starts log-uniform in [1e-3, 1e-1]; the bias is its inverse softplus.
    const at::Tensor dt = at::exp(at::empty_like(t).uniform_(std::log(1e-3), std::log(1e-1)));
    t.copy_(dt + at::log(-at::expm1(-dt)));
  } else if (ends("filter.log_poles")) {
    t.uniform_(1e-3, 0.7).log_();  // poles λ = exp(-u) between 0.5 and 0.999
  } else if (ends("filter.residues")) {
    t.normal_(0.0, 1.0 / std::sqrt(double(t.size(1))));
  } else if (ends("filter.taps")) {
    t.normal_(0.0, 1.0 / double(t.size(2)));
    t.select(2, t.size(2) - 1).add_(1.0);  // start as a pass-through of the current input
  } else if (ends(".conv") || ends("kernel")) {
    const double bound = 1.0 / std::sqrt(double(t.size(2)));
    t.uniform_(-bound, bound);
  } else if (ends(".bias")) {
    t.zero_();
  } else if (spec.role == TensorRole::Embedding) {
    t.normal_(0.0, n.rfind("pos_emb", 0) == 0 ? 0.01 : 0.02);
  } else {
    // Linear weights; output projections scaled down with depth as in GPT-2.
    const double scale = spec.role == TensorRole::Output && layer ? 1.0 / std::sqrt(2.0 * double(num_layers)) : 1.0;
    t.normal_(0.0, 0.02 * scale);
  }
}

std::string param_name(size_t layer, const std::string& name) {
  std::string s = "l" + std::to_string(layer) + "_" + name;
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

}  // namespace

at::Tensor gated_causal_conv_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& h, const at::Tensor& D) {
  const at::Tensor z = k.defined() ? k * v : v;
  const int64_t taps = h.size(-1);
  // conv1d correlates: flip the filter so that h[:, j] weighs the input j steps back (lag j), as in
  // the decode step, the CUDA kernels and Hyena-MR's decay over lags.
  const at::Tensor zt = at::constant_pad_nd(z.transpose(1, 2), {taps - 1, 0});
  at::Tensor y = at::conv1d(zt, h.reshape({h.size(0), 1, taps}).flip(-1).to(z.dtype()), at::Tensor(), at::IntArrayRef{1},
                            at::IntArrayRef{0}, at::IntArrayRef{1}, h.size(0))
                     .transpose(1, 2);
  if (D.defined()) y = y + D * z;
  return q.defined() ? q * y : y;
}

at::Tensor gated_causal_conv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                             const at::Tensor& D) {
  if (g_gated_conv_kernel && v.is_cuda()) return g_gated_conv_kernel(q, k, v, h, D);
  return gated_causal_conv_reference(q, k, v, h, D);
}

void use_gated_conv_kernel(GatedConvKernel kernel) { g_gated_conv_kernel = kernel; }

at::Tensor gated_long_conv_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                                     const at::Tensor& D) {
  const at::Tensor z = k.defined() ? k * v : v;
  at::Tensor y = fft_conv(z, h);
  if (D.defined()) y = y + D * z;
  return q.defined() ? q * y : y;
}

at::Tensor gated_long_conv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                           const at::Tensor& D) {
  if (g_long_conv_kernel && v.is_cuda()) return g_long_conv_kernel(q, k, v, h, D);
  return gated_long_conv_reference(q, k, v, h, D);
}

void use_long_conv_kernel(GatedConvKernel kernel) { g_long_conv_kernel = kernel; }

at::Tensor diagonal_scan_reference(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B,
                                   const at::Tensor& C) {
  return chunked_scan(log_a, x, B, C);
}

at::Tensor diagonal_scan(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B, const at::Tensor& C) {
  if (g_scan_kernel && x.is_cuda()) return g_scan_kernel(log_a, x, B, C);
  return chunked_scan(log_a, x, B, C);
}

void use_scan_kernel(ScanKernel kernel) { g_scan_kernel = kernel; }

at::Tensor rotary_angles(int64_t offset, int64_t length, int64_t head_dim, double theta, const at::TensorOptions& options) {
  const at::Tensor inv = at::pow(theta, -at::arange(0, head_dim / 2, options) * 2.0 / double(head_dim));
  return at::arange(offset, offset + length, options).unsqueeze(1) * inv.unsqueeze(0);
}

at::Tensor rotary_embedding_reference(const at::Tensor& x, int64_t offset, double theta) {
  const int64_t L = x.size(2), hd = x.size(3), half = hd / 2;
  if (half == 0) return x;
  const at::Tensor angle = rotary_angles(offset, L, hd, theta, at::TensorOptions().dtype(wide(x)).device(x.device()));
  const at::Tensor cos = angle.cos().to(x.dtype()), sin = angle.sin().to(x.dtype());
  const at::Tensor x1 = x.slice(-1, 0, half), x2 = x.slice(-1, half, 2 * half);
  std::vector<at::Tensor> parts = {x1 * cos - x2 * sin, x2 * cos + x1 * sin};
  if (hd % 2) parts.push_back(x.slice(-1, 2 * half));
  return at::cat(parts, -1);
}

at::Tensor rotary_embedding(const at::Tensor& x, int64_t offset, double theta) {
  if (g_rope_kernel && x.is_cuda()) return g_rope_kernel(x, offset, theta);
  return rotary_embedding_reference(x, offset, theta);
}

void use_rope_kernel(RopeKernel kernel) { g_rope_kernel = kernel; }

at::Tensor swiglu_reference(const at::Tensor& g, const at::Tensor& u) { return at::silu(g) * u; }

at::Tensor swiglu(const at::Tensor& g, const at::Tensor& u) {
  if (g_swiglu_kernel && g.is_cuda()) return g_swiglu_kernel(g, u);
  return swiglu_reference(g, u);
}

void use_swiglu_kernel(SwigluKernel kernel) { g_swiglu_kernel = kernel; }

at::Tensor rms_norm_composite(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor xf = x.to(wide(x));
  return (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.dtype()) * weight;
}

at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (x.scalar_type() == weight.scalar_type() && x.scalar_type() == wide(x))
    return at::rms_norm(x, {x.size(-1)}, weight, eps);
#endif
  return rms_norm_composite(x, weight, eps);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (g_rms_norm_kernel && x.is_cuda()) return g_rms_norm_kernel(x, weight, eps);
  return rms_norm_reference(x, weight, eps);
}

void use_rms_norm_kernel(RmsNormKernel kernel) { g_rms_norm_kernel = kernel; }

at::Tensor cross_entropy_reference(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index) {
  return at::cross_entropy_loss(logits.to(wide(logits)), targets, {}, at::Reduction::Mean, ignore_index);
}

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, int64_t ignore_index) {
  if (g_cross_entropy_kernel && logits.is_cuda()) return g_cross_entropy_kernel(logits, targets, ignore_index);
  return cross_entropy_reference(logits, targets, ignore_index);
}

void use_cross_entropy_kernel(CrossEntropyKernel kernel) { g_cross_entropy_kernel = kernel; }

namespace {

struct EmbeddingLookup : torch::autograd::Function<EmbeddingLookup> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& tokens) {
    ctx->save_for_backward({tokens});
    ctx->saved_data["rows"] = weight.size(0);
    return at::embedding(weight, tokens);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor tokens = ctx->get_saved_variables()[0], g = grads[0];
    const int64_t d = g.size(-1);
    at::Tensor dw = at::zeros({ctx->saved_data["rows"].toInt(), d}, g.options());
    dw.index_add_(0, tokens.reshape({-1}), g.reshape({-1, d}));
    return {dw, at::Tensor()};
  }
};

}  // namespace

at::Tensor embed_tokens(const at::Tensor& weight, const at::Tensor& tokens) {
  if (weight.is_cuda() && weight.requires_grad() && at::GradMode::is_enabled())
    return EmbeddingLookup::apply(weight, tokens);
  return at::embedding(weight, tokens);
}

struct LivModelImpl::Features {
  std::map<size_t, std::vector<at::Tensor>> by_layer;
};

int64_t DecodeState::layer_elements(size_t layer) const {
  int64_t n = 0;
  for (const auto& [name, t] : layers.at(layer)) n += numel_per_row(t);
  return n;
}

int64_t DecodeState::elements() const {
  int64_t n = 0;
  for (size_t i = 0; i < layers.size(); ++i) n += layer_elements(i);
  return n;
}

LivModelImpl::LivModelImpl(const ModelSpec& spec) : spec_(spec) {
  validate(spec_);
  for (TensorSpec& t : model_tensors(spec_)) {
    at::Tensor p = at::empty(t.shape, at::kFloat);
    init_tensor(p, t, nullptr, spec_.layers.size());
    std::string name = t.name;
    for (char& c : name)
      if (c == '.') c = '_';
    top_[t.name] = register_parameter(name, p);
  }
  produces_.assign(spec_.layers.size(), "");
  weights_.resize(spec_.layers.size());
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    const LayerSpec& l = spec_.layers[i];
    if (l.reuse_from >= 0) produces_[size_t(l.reuse_from)] = l.reuse_role;
    for (TensorSpec& t : owned_tensors(spec_, i)) {
      at::Tensor p = at::empty(t.shape, at::kFloat);
      init_tensor(p, t, &l, spec_.layers.size());
      weights_[i][t.name] = register_parameter(param_name(i, t.name), p);
    }
    if (l.tie_featurizer_to >= 0) {
      // The very same tensors as the owner's: one storage, one gradient, registered once.
      for (const TensorSpec& t : full_tensors(spec_, i)) {
        if (t.role != TensorRole::Featurizer || (l.reuse_from >= 0 && t.group == l.reuse_role)) continue;
        weights_[i][t.name] = weights_.at(size_t(l.tie_featurizer_to)).at(t.name);
      }
    }
  }
}

at::Tensor LivModelImpl::norm(const at::Tensor& x, const std::string& prefix, const TensorMap& w) const {
  const at::Tensor weight = w.at(prefix + "weight");
  if (spec_.norm == NormType::LayerNorm)
    return at::layer_norm(x, {spec_.width}, weight, w.at(prefix + "bias"), spec_.norm_eps);
  return rms_norm(x, weight, spec_.norm_eps);
}

at::Tensor LivModelImpl::hidden(const at::Tensor& tokens) {
  at::Tensor x = embed_tokens(top_.at("tok_emb.weight"), tokens);
  if (spec_.position == PositionEncoding::Learned)
    x = x + top_.at("pos_emb.weight").slice(0, 0, tokens.size(1)).unsqueeze(0);
  Features features;
  for (size_t i = 0; i < spec_.layers.size(); ++i) x = x + mix(i, norm(x, "norm.", weights_[i]), features);
  return norm(x, "final_norm.", top_);
}

at::Tensor LivModelImpl::logits(const at::Tensor& h) {
  return at::linear(h, spec_.tie_embeddings ? top_.at("tok_emb.weight") : top_.at("head.weight"));
}

at::Tensor LivModelImpl::forward(const at::Tensor& tokens) { return logits(hidden(tokens)); }

at::Tensor LivModelImpl::mix(size_t i, const at::Tensor& x, Features& features) {
  const LayerSpec& l = spec_.layers[i];
  const LivClass& cls = class_by_name(l.cls);
  const TensorMap& w = weights_[i];
  const int64_t B = x.size(0), L = x.size(1), d = spec_.width;
  const bool reuses = l.reuse_from >= 0;
  const std::vector<at::Tensor>* shared = reuses ? &features.by_layer.at(size_t(l.reuse_from)) : nullptr;
  std::vector<at::Tensor> produced;
  std::vector<at::Tensor> outputs;
  for (int b = 0; b < branches(cls); ++b) {
    const std::string p = cls.differential ? "b" + std::to_string(b) + "." : "";
    auto feature = [&](size_t k) { return (*shared).at(size_t(b) * (shared->size() / size_t(branches(cls))) + k); };
    at::Tensor y;
    switch (cls.family) {
      case Family::Attention: {
        const int64_t hd = l.hyper.head_dim, H = d / hd, KVH = H / l.hyper.kv_repeat;
        auto project = [&](const std::string& name, int64_t heads) {
          at::Tensor t = linear(w, p + name, x);
          if (l.hyper.short_conv) t = causal_conv(t, w.at(p + name + ".conv"));
          return t.view({B, L, heads, hd}).transpose(1, 2);
        };
        at::Tensor q = project("q", H), k, v;
        const bool rotary = spec_.position == PositionEncoding::RoPE;
        if (rotary) q = rotary_embedding(q, 0, spec_.rope_theta);
        if (reuses) {
          k = feature(0), v = feature(1);
        } else {
          k = project("k", KVH), v = project("v", KVH);
          if (rotary) k = rotary_embedding(k, 0, spec_.rope_theta);
          produced.insert(produced.end(), {k, v});
        }
        y = attend(q, k, v, true).transpose(1, 2).reshape({B, L, H * hd});
        break;
      }
      case Family::Recurrence: {
        const at::Tensor u = at::silu(causal_conv(linear(w, p + "u", x), w.at(p + "u.conv")));
        at::Tensor Bm, Cm;
        if (reuses) Bm = feature(0), Cm = feature(1);
        else Bm = linear(w, p + "B", u), Cm = linear(w, p + "C", u), produced.insert(produced.end(), {Bm, Cm});
        const at::Tensor dt = at::softplus(
            at::linear(at::linear(u, w.at(p + "dt_down.weight")), w.at(p + "dt_up.weight"), w.at(p + "dt_up.bias")));
        const at::Tensor log_a = -dt * w.at(p + "A_log").exp();
        const at::ScalarType st = wide(u);
        y = diagonal_scan(log_a.to(st), (dt * u).to(st), Bm.to(st), Cm.to(st)).to(x.dtype());
        y = (y + w.at(p + "D") * u) * at::silu(linear(w, p + "gate", x));
        break;
      }
      case Family::ShortConv: {
        at::Tensor bg, cg;
        if (reuses) bg = feature(0), cg = feature(1);
        else bg = linear(w, p + "b", x), cg = linear(w, p + "c", x), produced.insert(produced.end(), {bg, cg});
        y = gated_causal_conv(cg, bg, linear(w, p + "x", x), w.at(p + "kernel"), at::Tensor());
        break;
      }
      case Family::LongConv:
      case Family::HyenaSE:
      case Family::HyenaMR:
      case Family::HyenaLI: {
        auto project = [&](const std::string& name) { return causal_conv(linear(w, p + name, x), w.at(p + name + ".conv")); };
        const at::Tensor q = project("q");
        if (cls.family == Family::HyenaSE || cls.family == Family::HyenaMR) {
          at::Tensor kernel;
          if (reuses) kernel = feature(0);
          else kernel = explicit_filter(w, p, cls, d), produced.push_back(kernel);
          const at::Tensor skip = cls.family == Family::HyenaMR ? w.at(p + "D") : at::Tensor();
          y = gated_causal_conv(q, project("k"), project("v"), kernel, skip);  // q ⊙ (kernel ∗ z + D ⊙ z)
        } else {
          at::Tensor h;
          if (reuses) h = feature(0);
          else {
            h = cls.family == Family::LongConv ? implicit_filter(w, p, L, d, l.hyper.filter_emb)
                                               : modal_filter(w, p, L);
            produced.push_back(h);
          }
          y = gated_long_conv(q, project("k"), project("v"), h, w.at(p + "D"));
        }
        break;
      }
      case Family::SwiGLU:
        y = swiglu_layer(w, p, x, reuses ? feature(0) : at::Tensor(), !produces_[i].empty(), produced);
        break;
      case Family::Mlp: y = at::gelu(linear(w, p + "up", x), "tanh"); break;
    }
    outputs.push_back(y);
  }
  return finish(i, outputs, std::move(produced), features);
}

at::Tensor LivModelImpl::finish(size_t i, const std::vector<at::Tensor>& outputs, std::vector<at::Tensor> produced,
                                Features& features) {
  const LivClass& cls = class_by_name(spec_.layers[i].cls);
  const TensorMap& w = weights_[i];
  if (!produces_[i].empty()) features.by_layer[i] = std::move(produced);
  const at::Tensor y = cls.differential ? outputs[0] - w.at("lambda") * outputs[1] : outputs[0];
  return linear(w, output_projection(cls), y);
}

int64_t LivModelImpl::parameter_count() const {
  std::set<const void*> seen;
  int64_t n = 0;
  for (const at::Tensor& p : parameters())
    if (seen.insert(p.data_ptr()).second) n += p.numel();
  return n;
}

DecodeState LivModelImpl::start_decode(int64_t batch) const {
  DecodeState s;
  s.layers.resize(spec_.layers.size());
  auto opts = top_.at("tok_emb.weight").options();
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    const LayerSpec& l = spec_.layers[i];
    const LivClass& cls = class_by_name(l.cls);
    const int64_t d = spec_.width;
    const bool kv_reused = l.reuse_from >= 0 && l.reuse_role == "kv";
    for (int b = 0; b < branches(cls); ++b) {
      const std::string p = cls.differential ? "b" + std::to_string(b) + "." : "";
      auto history = [&](const std::string& name, int64_t channels, int64_t length) {
        s.layers[i][p + name] = at::zeros({batch, channels, length}, opts);
      };
      switch (cls.family) {
        case Family::Attention: {
          const int64_t hd = l.hyper.head_dim, H = d / hd, KVH = H / l.hyper.kv_repeat;
          if (!kv_reused) {
            s.layers[i][p + "k"] = at::zeros({batch, KVH, 0, hd}, opts);
            s.layers[i][p + "v"] = at::zeros({batch, KVH, 0, hd}, opts);
          }
          if (l.hyper.short_conv > 1) {
            history("q.conv", H * hd, l.hyper.short_conv - 1);
            if (!kv_reused) history("k.conv", KVH * hd, l.hyper.short_conv - 1), history("v.conv", KVH * hd, l.hyper.short_conv - 1);
          }
          break;
        }
        case Family::Recurrence:
          s.layers[i][p + "state"] = at::zeros({batch, d, l.hyper.state_expansion}, opts);
          history("u.conv", d, l.hyper.short_conv - 1);
          break;
        case Family::ShortConv: history("kernel.history", d, l.hyper.filter_length - 1); break;
        case Family::LongConv:
        case Family::HyenaSE:
        case Family::HyenaMR:
        case Family::HyenaLI:
          for (const char* name : {"q.conv", "k.conv", "v.conv"}) history(name, d, l.hyper.short_conv - 1);
          if (cls.family == Family::LongConv) history("filter.history", d, 0);
          else if (cls.family == Family::HyenaLI) s.layers[i][p + "modal.state"] = at::zeros({batch, d, l.hyper.state_expansion}, opts);
          else history("filter.history", d, l.hyper.filter_length - 1);
          break;
        case Family::SwiGLU:
        case Family::Mlp: break;
      }
    }
  }
  return s;
}

at::Tensor LivModelImpl::step(const at::Tensor& tokens, DecodeState& state) {
  at::Tensor x = embed_tokens(top_.at("tok_emb.weight"), tokens);  // [B, d]
  if (spec_.position == PositionEncoding::Learned) x = x + top_.at("pos_emb.weight")[state.position];
  Features features;
  for (size_t i = 0; i < spec_.layers.size(); ++i) x = x + mix_step(i, norm(x, "norm.", weights_[i]), state, features);
  ++state.position;
  return logits(norm(x, "final_norm.", top_));
}

at::Tensor LivModelImpl::mix_step(size_t i, const at::Tensor& x, DecodeState& state, Features& features) {
  const LayerSpec& l = spec_.layers[i];
  const LivClass& cls = class_by_name(l.cls);
  const TensorMap& w = weights_[i];
  TensorMap& st = state.layers[i];
  const int64_t B = x.size(0), d = spec_.width, t = state.position;
  const bool reuses = l.reuse_from >= 0;
  const std::vector<at::Tensor>* shared = reuses ? &features.by_layer.at(size_t(l.reuse_from)) : nullptr;
  std::vector<at::Tensor> produced, outputs;
  for (int b = 0; b < branches(cls); ++b) {
    const std::string p = cls.differential ? "b" + std::to_string(b) + "." : "";
    auto feature = [&](size_t k) { return (*shared).at(size_t(b) * (shared->size() / size_t(branches(cls))) + k); };
    auto conv = [&](const at::Tensor& v, const std::string& name) {
      return causal_conv_step(v, w.at(p + name + ".conv"), st.at(p + name + ".conv"));
    };
    at::Tensor y;
    switch (cls.family) {
      case Family::Attention: {
        const int64_t hd = l.hyper.head_dim, H = d / hd, KVH = H / l.hyper.kv_repeat;
        auto project = [&](const std::string& name, int64_t heads) {
          at::Tensor v = linear(w, p + name, x);
          if (l.hyper.short_conv) v = conv(v, name);
          return v.view({B, heads, 1, hd});
        };
        const bool rotary = spec_.position == PositionEncoding::RoPE;
        at::Tensor q = project("q", H), k, v;
        if (rotary) q = rotary_embedding(q, t, spec_.rope_theta);
        if (reuses) {
          k = feature(0), v = feature(1);
        } else {
          at::Tensor kn = project("k", KVH);
          if (rotary) kn = rotary_embedding(kn, t, spec_.rope_theta);
          k = st.at(p + "k") = at::cat({st.at(p + "k"), kn}, 2);
          v = st.at(p + "v") = at::cat({st.at(p + "v"), project("v", KVH)}, 2);
          produced.insert(produced.end(), {k, v});
        }
        y = attend(q, k, v, false).reshape({B, H * hd});
        break;
      }
      case Family::Recurrence: {
        const at::Tensor u = at::silu(conv(linear(w, p + "u", x), "u"));
        at::Tensor Bm, Cm;
        if (reuses) Bm = feature(0), Cm = feature(1);
        else Bm = linear(w, p + "B", u), Cm = linear(w, p + "C", u), produced.insert(produced.end(), {Bm, Cm});
        const at::Tensor dt = at::softplus(
            at::linear(at::linear(u, w.at(p + "dt_down.weight")), w.at(p + "dt_up.weight"), w.at(p + "dt_up.bias")));
        const at::Tensor a = at::exp(-dt * w.at(p + "A_log").exp());  // [B, d]
        at::Tensor& h = st.at(p + "state");                            // [B, d, e]
        h = a.unsqueeze(-1) * h + (dt * u).unsqueeze(-1) * Bm.unsqueeze(1);
        y = (h * Cm.unsqueeze(1)).sum(-1);
        y = (y + w.at(p + "D") * u) * at::silu(linear(w, p + "gate", x));
        break;
      }
      case Family::ShortConv: {
        at::Tensor bg, cg;
        if (reuses) bg = feature(0), cg = feature(1);
        else bg = linear(w, p + "b", x), cg = linear(w, p + "c", x), produced.insert(produced.end(), {bg, cg});
        y = cg * causal_conv_step(bg * linear(w, p + "x", x), w.at(p + "kernel"), st.at(p + "kernel.history"));
        break;
      }
      case Family::LongConv:
      case Family::HyenaSE:
      case Family::HyenaMR:
      case Family::HyenaLI: {
        const at::Tensor q = conv(linear(w, p + "q", x), "q");
        const at::Tensor z = conv(linear(w, p + "k", x), "k") * conv(linear(w, p + "v", x), "v");
        if (cls.family == Family::HyenaSE || cls.family == Family::HyenaMR) {
          at::Tensor kernel;
          if (reuses) kernel = feature(0);
          else kernel = explicit_filter(w, p, cls, d), produced.push_back(kernel);
          y = causal_conv_step(z, kernel, st.at(p + "filter.history"));
          if (cls.family == Family::HyenaMR) y = y + w.at(p + "D") * z;
        } else if (cls.family == Family::HyenaLI) {
          at::Tensor log_poles, residues;
          if (reuses) log_poles = feature(0), residues = feature(1);
          else log_poles = w.at(p + "filter.log_poles"), residues = w.at(p + "filter.residues"), produced.insert(produced.end(), {log_poles, residues});
          at::Tensor& s = st.at(p + "modal.state");  // [B, d, S]
          s = at::exp(-log_poles.exp()).unsqueeze(0) * s + z.unsqueeze(-1);
          y = (s * residues.unsqueeze(0)).sum(-1) + w.at(p + "D") * z;
        } else {
          at::Tensor h;
          if (reuses) h = feature(0);
          else h = implicit_filter(w, p, t + 1, d, l.hyper.filter_emb), produced.push_back(h);
          at::Tensor& hist = st.at(p + "filter.history");  // [B, d, t]
          hist = at::cat({hist, z.unsqueeze(-1)}, -1);
          y = (hist * h.slice(-1, 0, t + 1).flip(-1).unsqueeze(0)).sum(-1) + w.at(p + "D") * z;
        }
        y = q * y;
        break;
      }
      case Family::SwiGLU:
        y = swiglu_layer(w, p, x, reuses ? feature(0) : at::Tensor(), !produces_[i].empty(), produced);
        break;
      case Family::Mlp: y = at::gelu(linear(w, p + "up", x), "tanh"); break;
    }
    outputs.push_back(y);
  }
  return finish(i, outputs, std::move(produced), features);
}

}  // namespace starsynth
