// How the CLI shows genomes, models and their metrics: aligned text for people, JSON for scripts.
#pragma once

#include <string>

#include "evaluator/evaluate.h"
#include "genome/genome.h"
#include "genome/metrics.h"
#include "genome/model_spec.h"
#include "search/inspect.h"
#include "search/run.h"

namespace starsynth::cli {

std::string with_commas(int64_t v);
std::string metrics_text(const ModelSpec& spec, const AnalyticMetrics& m);
std::string metrics_json(const ModelSpec& spec, const AnalyticMetrics& m);
std::string genome_text(const SearchSpace& space, const Genome& g);
std::string catalog_text();
std::string eval_text(const Metrics& m);
std::string eval_json(const Metrics& m);
std::string front_text(const SearchConfig& config, const RunSummary& run);

// `starsynth front`: the members `front` (indices into run.records) under `objectives`.
enum class TableFormat { Text, Csv, Json };
std::string front_view(const RunView& run, const std::vector<std::string>& objectives, const std::vector<size_t>& front,
                       TableFormat format);
// `starsynth results`: the front against the presets the run evaluated, as a Markdown table, and
// what it found in one paragraph.
std::string results_markdown(const RunView& run);
// `starsynth compare`: one row per run, then each front.
std::string compare_text(const std::vector<RunView>& runs);

}  // namespace starsynth::cli
