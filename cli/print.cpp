#include "cli/print.h"

#include <cstdio>
#include <sstream>

#include "genome/catalog.h"
#include "genome/tensors.h"

namespace starsynth::cli {

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string pad(const std::string& s, size_t width, bool right = false) {
  // Count code points, not bytes, so "×" pads like one character.
  size_t shown = 0;
  for (unsigned char c : s) shown += (c & 0xC0) != 0x80;
  if (shown >= width) return s;
  return right ? std::string(width - shown, ' ') + s : s + std::string(width - shown, ' ');
}

std::string sharing_text(const LayerSpec& l) {
  std::string s;
  if (l.tie_featurizer_to >= 0) s += "tied to L" + std::to_string(l.tie_featurizer_to);
  if (l.reuse_from >= 0) s += std::string(s.empty() ? "" : ", ") + "reuses " + l.reuse_role + " of L" + std::to_string(l.reuse_from);
  return s;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string metrics_text(const ModelSpec& spec, const AnalyticMetrics& m) {
  std::ostringstream s;
  s << "model       " << (spec.name.empty() ? "(unnamed)" : spec.name) << ": " << spec.layers.size() << " LIVs, width "
    << spec.width << ", vocabulary " << spec.vocab_size << "\n";
  s << "layout      " << summary(spec) << "\n";
  s << "parameters  " << with_commas(m.params.total) << " (" << with_commas(m.params.embedding) << " embedding, "
    << with_commas(m.params.non_embedding) << " non-embedding)\n";
  s << "cache       " << with_commas(m.cache_bytes) << " bytes (" << fixed(double(m.cache_bytes) / 1e6, 2)
    << " MB) per sequence at " << m.context << " tokens × " << m.element_bytes << " bytes/element\n";
  s << "compute     " << fixed(m.flops_per_token / 1e9, 4) << " GFLOP per token (forward, " << m.context
    << "-token context)\n\n";
  s << pad("layer", 6) << pad("class", 13) << pad("parameters", 14, true) << pad("cache bytes", 16, true)
    << pad("MFLOP/token", 13, true) << "  sharing\n";
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerMetrics& l = m.layers[i];
    s << pad("L" + std::to_string(i), 6) << pad(spec.layers[i].cls, 13) << pad(with_commas(l.params), 14, true)
      << pad(with_commas(l.cache_elements * m.element_bytes), 16, true) << pad(fixed(l.flops / 1e6, 3), 13, true)
      << "  " << sharing_text(spec.layers[i]) << "\n";
  }
  return s.str();
}

std::string metrics_json(const ModelSpec& spec, const AnalyticMetrics& m) {
  std::ostringstream s;
  s << "{\n  \"name\": \"" << json_escape(spec.name) << "\",\n  \"summary\": \"" << json_escape(summary(spec))
    << "\",\n  \"parameters\": {\"total\": " << m.params.total << ", \"embedding\": " << m.params.embedding
    << ", \"non_embedding\": " << m.params.non_embedding << "},\n  \"context_tokens\": " << m.context
    << ",\n  \"element_bytes\": " << m.element_bytes << ",\n  \"cache_bytes\": " << m.cache_bytes
    << ",\n  \"flops_per_token\": " << fixed(m.flops_per_token, 1) << ",\n  \"layers\": [\n";
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    s << "    {\"class\": \"" << l.cls << "\", \"parameters\": " << m.layers[i].params
      << ", \"cache_bytes\": " << m.layers[i].cache_elements * m.element_bytes << ", \"flops_per_token\": "
      << fixed(m.layers[i].flops, 1) << ", \"tie_featurizer_to\": " << l.tie_featurizer_to
      << ", \"reuse_from\": " << l.reuse_from << ", \"reuse\": \"" << l.reuse_role << "\"}"
      << (i + 1 < spec.layers.size() ? "," : "") << "\n";
  }
  s << "  ]\n}\n";
  return s.str();
}

std::string genome_text(const SearchSpace& space, const Genome& g) {
  std::ostringstream s;
  s << "search space  " << space.num_livs << " LIVs, width " << space.width << ", vocabulary " << space.vocab_size
    << ", alphabet of " << space.alphabet.size() << " classes\n";
  s << "genes         " << to_string(g) << "\n";
  s << "canonical     " << to_string(canonical(space, g)) << "\n";
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(genome_hash(space, g)));
  s << "hash          " << hash << "\n";
  const ModelSpec m = compile(space, g);
  s << "layout        " << summary(m) << "\n\n";
  s << pad("LIV", 5) << pad("class", 13) << pad("genes", 14) << "sharing\n";
  for (size_t i = 0; i < g.livs.size(); ++i) {
    const LivGene& v = g.livs[i];
    const std::string genes = std::to_string(v.cls) + "." + std::to_string(v.feat_group) + "." +
                              std::to_string(v.feat_strategy) + "." + std::to_string(v.fg_group) + "." +
                              std::to_string(v.fg_strategy);
    s << pad(std::to_string(i), 5) << pad(m.layers[i].cls, 13) << pad(genes, 14) << sharing_text(m.layers[i]) << "\n";
  }
  return s.str();
}

std::string catalog_text() {
  std::ostringstream s;
  s << pad("id", 4) << pad("class", 13) << pad("family", 12) << pad("operator", 10) << pad("STAR", 6)
    << pad("feature groups", 34) << "reusable\n";
  for (const LivClass& c : catalog()) {
    std::string groups;
    for (const auto& f : c.feature_groups)
      groups += (groups.empty() ? "" : " ") + f.role + (f.repeat > 1 ? "/r" + std::to_string(f.repeat) : "");
    std::string shareable;
    for (const auto& r : c.shareable) shareable += (shareable.empty() ? "" : " ") + r;
    s << pad(std::to_string(c.id), 4) << pad(c.name, 13) << pad(std::string(family_name(c.family)), 12)
      << pad(c.op.code(), 10) << pad(c.in_star_pool ? "yes" : "ext", 6) << pad(groups, 34)
      << (shareable.empty() ? "-" : shareable) << "\n";
  }
  return s.str();
}

std::string eval_text(const Metrics& m) {
  std::ostringstream s;
  s << "status        " << status_name(m.status) << (m.message.empty() ? "" : ": " + m.message) << "\n";
  for (const TaskQuality& q : m.tasks)
    s << "task          " << pad(q.task, 26) << " accuracy " << fixed(100 * q.accuracy, 2) << " %   loss "
      << fixed(q.loss, 4) << " nats/token\n";
  if (!m.quality_name.empty()) s << "quality       " << m.quality_name << " " << fixed(m.quality, 4) << "\n";
  if (m.perplexity > 0) s << "perplexity    " << fixed(m.perplexity, 3) << " (per byte)\n";
  s << "parameters    " << with_commas(m.params_total) << " (" << with_commas(m.params_non_embedding)
    << " non-embedding)\n";
  s << "cache         " << with_commas(m.cache_bytes) << " bytes analytic, " << with_commas(m.cache_bytes_measured)
    << " bytes measured by decoding\n";
  s << "compute       " << fixed(m.flops_per_token / 1e6, 3) << " MFLOP per token (forward)\n";
  s << "training      " << with_commas(m.train_tokens) << " tokens in " << m.steps << " steps, "
    << fixed(m.train_tokens_per_s, 0) << " tokens/s\n";
  s << "peak memory   " << fixed(double(m.peak_memory_bytes) / 1e6, 1) << " MB\n";
  s << "wall time     " << fixed(m.wall_s, 2) << " s on " << m.device << ", seed " << m.seed << "\n";
  return s.str();
}

std::string eval_json(const Metrics& m) {
  std::ostringstream s;
  s << "{\n  \"status\": \"" << status_name(m.status) << "\",\n  \"message\": \"" << json_escape(m.message)
    << "\",\n  \"tasks\": [";
  for (size_t i = 0; i < m.tasks.size(); ++i)
    s << (i ? ", " : "") << "{\"task\": \"" << m.tasks[i].task << "\", \"accuracy\": " << fixed(m.tasks[i].accuracy, 6)
      << ", \"loss\": " << fixed(m.tasks[i].loss, 6) << "}";
  s << "],\n  \"quality_name\": \"" << m.quality_name << "\",\n  \"quality\": " << fixed(m.quality, 6)
    << ",\n  \"perplexity\": " << fixed(m.perplexity, 6) << ",\n  \"params_total\": " << m.params_total
    << ",\n  \"params_non_embedding\": " << m.params_non_embedding << ",\n  \"cache_bytes\": " << m.cache_bytes
    << ",\n  \"cache_bytes_measured\": " << m.cache_bytes_measured << ",\n  \"flops_per_token\": "
    << fixed(m.flops_per_token, 1) << ",\n  \"train_tokens_per_s\": " << fixed(m.train_tokens_per_s, 1)
    << ",\n  \"train_tokens\": " << m.train_tokens << ",\n  \"steps\": " << m.steps
    << ",\n  \"peak_memory_bytes\": " << m.peak_memory_bytes << ",\n  \"wall_s\": " << fixed(m.wall_s, 3)
    << ",\n  \"seed\": " << m.seed << ",\n  \"device\": \"" << m.device << "\"\n}\n";
  return s.str();
}

std::string front_text(const SearchConfig& config, const RunSummary& run) {
  std::ostringstream s;
  s << "\nPareto front of " << run.dir << " after " << run.generation << " generations: " << run.front.size()
    << " members, hypervolume " << run.hypervolume << "\n";
  s << "evaluations: " << run.counters.evaluated << " trained, " << run.counters.reused << " reused, "
    << run.counters.failed << " failed, " << run.counters.over_budget << " over budget (never trained)\n\n";
  s << pad("#", 4) << pad("quality", 18) << pad("parameters", 14, true) << pad("cache MB", 11, true)
    << pad("MFLOP/token", 13, true) << "  layout\n";
  for (size_t i = 0; i < run.front.size(); ++i) {
    const auto& r = run.front[i].record;
    auto metric = [&](const char* name) {
      auto it = r.metrics().find(name);
      return it == r.metrics().end() ? 0.0 : it->second;
    };
    const bool accuracy = metric("quality_higher_is_better") > 0;
    const std::string quality = r.status() != "ok" ? r.status()
                                : accuracy       ? fixed(100 * metric("quality"), 2) + " % acc"
                                                 : fixed(metric("quality"), 4) + " nats/B";
    s << pad(std::to_string(i), 4) << pad(quality, 18) << pad(with_commas(int64_t(metric("params"))), 14, true)
      << pad(fixed(metric("cache") / 1e6, 3), 11, true) << pad(fixed(metric("flops") / 1e6, 3), 13, true) << "  "
      << summary(compile(config.space, run.front[i].genome)) << "\n";
  }
  return s.str();
}

}  // namespace starsynth::cli
