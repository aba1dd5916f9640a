#include "cli/print.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "genome/catalog.h"
#include "genome/tensors.h"
#include "proto/formats.h"

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

namespace {

std::string run_state(const RunView& run) {
  std::string s = run.finished() ? "finished"
                  : run.has_checkpoint ? "in progress after generation " + std::to_string(run.checkpoint.generation()) +
                                             " of " + std::to_string(run.config.generations)
                                       : "in progress, generation 0";
  if (run.torn_bytes > 0) s += "; the journal ends in a torn record (" + std::to_string(run.torn_bytes) + " bytes ignored)";
  return s;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string front_view(const RunView& run, const std::vector<std::string>& objectives, const std::vector<size_t>& front,
                       TableFormat format) {
  const bool accuracy = quality_is_accuracy(run);
  std::vector<ObjectiveInfo> info;
  for (const auto& o : objectives) info.push_back(objective_info(o, accuracy));
  // Parameters and cache always show: they are what a person trades quality against.
  for (const char* extra : {"params", "cache"})
    if (std::find(objectives.begin(), objectives.end(), extra) == objectives.end()) info.push_back(objective_info(extra, accuracy));
  auto layout = [&](const pb::JournalRecord& r) {
    return summary(compile(run.config.space, decode(run.config.space, std::vector<int64_t>(r.genes().begin(), r.genes().end()))));
  };
  std::ostringstream s;
  if (format == TableFormat::Json) {
    s << "{\"run\": \"" << json_escape(run.dir) << "\", \"state\": \"" << json_escape(run_state(run))
      << "\", \"objectives\": [";
    for (size_t k = 0; k < objectives.size(); ++k) s << (k ? ", " : "") << '"' << objectives[k] << '"';
    s << "], \"evaluations\": " << run.records.size() << ", \"front\": [";
    for (size_t n = 0; n < front.size(); ++n) {
      const auto& r = run.records[front[n]];
      s << (n ? ",\n  " : "\n  ") << "{\"id\": " << r.sequence() << ", \"generation\": " << r.generation();
      for (const auto& i : info) s << ", \"" << i.name << "\": " << number(r.metrics().count(i.name) ? r.metrics().at(i.name) : 0);
      s << ", \"layout\": \"" << json_escape(layout(r)) << "\"}";
    }
    s << (front.empty() ? "" : "\n") << "]}\n";
    return s.str();
  }
  if (format == TableFormat::Csv) {
    s << "id,generation";
    for (const auto& i : info) s << ',' << csv_field(i.label);
    s << ",layout\n";
    for (size_t n : front) {
      const auto& r = run.records[n];
      s << r.sequence() << ',' << r.generation();
      for (const auto& i : info) s << ',' << number(shown(r, i));
      s << ',' << csv_field(layout(r)) << '\n';
    }
    return s.str();
  }
  size_t ok = 0;
  for (const auto& r : run.records) ok += r.status() == "ok";
  s << "Pareto front of " << run.dir << " over ";
  for (size_t k = 0; k < objectives.size(); ++k) s << (k ? ", " : "") << objectives[k];
  s << ": " << front.size() << " of " << ok << " successful evaluations (" << run.records.size() - ok << " failed); "
    << run_state(run) << "\n\n";
  s << pad("id", 6) << pad("gen", 5);
  for (const auto& i : info) s << pad(i.label, std::max<size_t>(14, i.label.size() + 2), true);
  s << "  layout\n";
  for (size_t n : front) {
    const auto& r = run.records[n];
    s << pad(std::to_string(r.sequence()), 6) << pad(std::to_string(r.generation()), 5);
    for (const auto& i : info) s << pad(fixed(shown(r, i), i.name == "quality" ? (accuracy ? 2 : 4) : 3), std::max<size_t>(14, i.label.size() + 2), true);
    s << "  " << layout(r) << "\n";
  }
  return s.str();
}

namespace {
// A magnitude in whole percent, but just short of 100 with one decimal, rounded down, so that 99.8
// or 99.97 % less cache does not read as all of it.
std::string percent_of(double magnitude) {
  if (magnitude >= 99.5 && magnitude < 100) return fixed(std::floor(magnitude * 10) / 10, 1);
  return fixed(magnitude, 0);
}
}  // namespace

std::string results_markdown(const RunView& run) {
  const bool accuracy = quality_is_accuracy(run);
  const ObjectiveInfo q = objective_info("quality", accuracy), p = objective_info("params", accuracy),
                      c = objective_info("cache", accuracy);
  const std::vector<size_t> front = front_of(run.records, run.config.objectives);
  std::vector<std::pair<std::string, size_t>> rows;
  const pb::JournalRecord* baseline = nullptr;  // Transformer++, the paper's reference
  const std::map<size_t, std::string> presets = preset_records(run);
  for (const auto& [i, name] : presets) {
    const bool on_front = std::find(front.begin(), front.end(), i) != front.end();
    rows.push_back({name + " (preset" + (on_front ? ", on the front)" : ")"), i});
    if (name == "transformer++") baseline = &run.records[i];
  }
  for (size_t i : front)
    if (!presets.count(i)) rows.push_back({"#" + std::to_string(run.records[i].sequence()), i});
  auto relative = [](double v, double base) {
    if (base <= 0) return std::string();
    const double percent = 100 * (v / base - 1);
    return std::abs(percent) < 0.5 ? std::string("0 %") : (percent < 0 ? "−" : "+") + percent_of(std::abs(percent)) + " %";
  };
  std::ostringstream s;
  s << "| architecture | " << q.label << " | " << p.label << " | " << c.label
    << (baseline ? " | parameters vs Transformer++ | cache vs Transformer++" : "") << " | layout |\n|---|---|---|---|"
    << (baseline ? "---|---|" : "") << "---|\n";
  for (const auto& [label, i] : rows) {
    const auto& r = run.records[i];
    s << "| " << label << " | " << fixed(shown(r, q), accuracy ? 1 : 4) << " | " << fixed(shown(r, p), 3) << " | "
      << fixed(shown(r, c), 3);
    if (baseline)
      s << " | " << relative(r.metrics().at("params"), baseline->metrics().at("params")) << " | "
        << relative(r.metrics().at("cache"), baseline->metrics().at("cache"));
    s << " | " << summary(compile(run.config.space, decode(run.config.space, std::vector<int64_t>(r.genes().begin(), r.genes().end()))))
      << " |\n";
  }
  const pb::Counters& n = run.checkpoint.counters();
  const double hours = run.checkpoint.elapsed_s() / 3600;
  s << "\n" << n.evaluated() << " evaluations trained (" << n.reused() << " answered from the ledger, " << n.failed()
    << " failed) in " << fixed(run.checkpoint.elapsed_s(), 0) << " s: "
    << fixed(hours > 0 ? double(n.evaluated()) / hours : 0, 0) << " evaluations per hour, workers busy "
    << fixed(n.pool_capacity_s() > 0 ? 100 * n.pool_busy_s() / n.pool_capacity_s() : 0, 0) << " % of the time; "
    << run_state(run) << ".\n";
  if (!baseline) return s.str() + "\nTransformer++ was not evaluated in this run: nothing to set the front against.\n";
  // What the paper claims of its evolved backbones: at least Transformer++'s quality with fewer
  // parameters and less cache. Say whether this run found such a member.
  const double base_q = minimised(*baseline, "quality");
  const pb::JournalRecord* fewest_params = nullptr;
  const pb::JournalRecord* least_cache = nullptr;
  for (size_t i : front) {
    const auto& r = run.records[i];
    if (&r == baseline || minimised(r, "quality") > base_q) continue;
    if (!fewest_params || r.metrics().at("params") < fewest_params->metrics().at("params")) fewest_params = &r;
    if (!least_cache || r.metrics().at("cache") < least_cache->metrics().at("cache")) least_cache = &r;
  }
  s << "\n";
  if (!fewest_params) {
    s << "No front member other than Transformer++ itself matched its " << (accuracy ? "accuracy" : "loss") << " ("
      << fixed(shown(*baseline, q), accuracy ? 1 : 4) << (accuracy ? " %" : " nats/byte") << "): this run found nothing that beats it on quality.\n";
  } else {
    const double dp = 100 * (1 - fewest_params->metrics().at("params") / baseline->metrics().at("params"));
    const double dc = 100 * (1 - least_cache->metrics().at("cache") / baseline->metrics().at("cache"));
    s << "Matching or beating Transformer++'s " << (accuracy ? "accuracy" : "loss") << " ("
      << fixed(shown(*baseline, q), accuracy ? 1 : 4) << (accuracy ? " %" : " nats/byte") << "): #" << fewest_params->sequence() << " with "
      << percent_of(std::abs(dp)) << (dp >= 0 ? " % fewer" : " % more") << " parameters, and #" << least_cache->sequence()
      << " with " << percent_of(std::abs(dc)) << (dc >= 0 ? " % less" : " % more") << " cache (the STAR paper reports "
      << "up to 13 % fewer parameters and up to 90 % less cache at 125M-1B scale).\n";
  }
  return s.str();
}

std::string compare_text(const std::vector<RunView>& runs) {
  // One reference point for all: the worst value each objective reached in any run's reference,
  // so that the hypervolumes compare.
  const std::vector<std::string>& objectives = runs.front().config.objectives;
  for (const auto& r : runs)
    if (r.config.objectives != objectives)
      throw LoadError(r.dir + ": objectives differ from " + runs.front().dir + "'s; compare runs of the same objectives");
  std::vector<double> reference(objectives.size(), -1e300);
  for (const auto& r : runs)
    for (size_t k = 0; k < objectives.size() && k < size_t(r.checkpoint.reference_point_size()); ++k)
      reference[k] = std::max(reference[k], r.checkpoint.reference_point(int(k)));
  for (const auto& r : runs) {
    std::vector<double> worst(objectives.size(), -1e300);
    for (const auto& rec : r.records)
      if (rec.status() == "ok")
        for (size_t k = 0; k < objectives.size(); ++k) worst[k] = std::max(worst[k], minimised(rec, objectives[k]));
    for (size_t k = 0; k < objectives.size(); ++k)
      if (reference[k] < -1e299) reference[k] = worst[k] + std::abs(worst[k]) * 0.1 + 1e-12;
  }
  std::ostringstream s;
  s << "reference point (minimised objectives " ;
  for (size_t k = 0; k < objectives.size(); ++k) s << (k ? ", " : "") << objectives[k];
  s << "):";
  for (double v : reference) s << ' ' << number(v);
  s << "\n\n" << pad("run", 32) << pad("state", 16) << pad("evaluations", 13, true) << pad("failed", 8, true)
    << pad("front", 7, true) << pad("hypervolume", 14, true) << "\n";
  for (const auto& r : runs) {
    const std::vector<size_t> front = front_of(r.records, objectives);
    std::vector<std::vector<double>> points;
    for (size_t i : front) {
      points.emplace_back();
      for (const auto& o : objectives) points.back().push_back(minimised(r.records[i], o));
    }
    size_t failed = 0;
    for (const auto& rec : r.records) failed += rec.status() != "ok";
    s << pad(r.dir, 32) << pad(r.finished() ? "finished" : r.has_checkpoint ? "gen " + std::to_string(r.checkpoint.generation()) : "gen 0", 16)
      << pad(std::to_string(r.records.size()), 13, true) << pad(std::to_string(failed), 8, true)
      << pad(std::to_string(front.size()), 7, true) << pad(number(hypervolume_of(points, reference)), 14, true) << "\n";
  }
  for (const auto& r : runs) s << "\n" << front_view(r, objectives, front_of(r.records, objectives), TableFormat::Text);
  return s.str();
}

}  // namespace starsynth::cli
