// Evaluators that train nothing, for tests, benchmarks and dry runs of a search configuration:
// task kind "synthetic:surrogate" scores a genome with a deterministic stand-in for quality (see
// synthetic.cpp) beside its analytic size, cache and FLOPs. TaskConfig's synthetic_delay_s makes
// each evaluation take that long, so that a run can be interrupted mid-generation.
#pragma once

#include "search/engine.h"

namespace starsynth {

// Throws LoadError-style std::invalid_argument for an unknown synthetic task.
Evaluator synthetic_evaluator(const SearchConfig& config);

// The surrogate's quality in [0, 1] (higher is better).
double surrogate_quality(const ModelSpec& spec);

}  // namespace starsynth
