// Evaluators that train nothing, for tests, benchmarks and dry runs of a search configuration:
// task kind "synthetic:surrogate" scores a genome with a deterministic stand-in for quality (see
// synthetic.cpp) beside its analytic size, cache and FLOPs. TaskConfig's synthetic_delay_s makes
// each evaluation take that long, so that a run can be interrupted mid-generation.
#pragma once

#include "search/engine.h"

namespace starsynth {

// Throws std::invalid_argument for an unknown synthetic task. `rank` is the MPI rank evaluating (0
// in-process): the config's test-only `faults` for that rank are acted out (throw, nan, timeout,
// hang, kill) on the chosen evaluation.
Evaluator synthetic_evaluator(const SearchConfig& config, int rank = 0);

// The surrogate's quality in [0, 1] (higher is better).
double surrogate_quality(const ModelSpec& spec);

}  // namespace starsynth
