#include "search/config.h"

#include <algorithm>

#include "genome/errors.h"
#include "genome/presets.h"
#include "proto/messages.h"

namespace starsynth {

namespace {

void require(bool ok, const std::string& path, const std::string& expected) {
  if (!ok) throw FieldError(path, expected);
}

void fill_defaults(pb::SearchConfig& c) {
  auto* a = c.mutable_algorithm();
  if (a->name().empty()) a->set_name("star");
  if (!a->population()) a->set_population(16);
  if (!a->has_generations()) a->set_generations(18);
  if (!a->elites() && a->name() == "star") a->set_elites(2);
  if (!a->crossover_points()) a->set_crossover_points(2);
  if (a->mutation_rate() == 0) a->set_mutation_rate(0.1);
  if (!a->tournament_size()) a->set_tournament_size(3);
  if (a->steady_state() && !a->lag()) a->set_lag(4 * a->population());
  auto* t = c.mutable_training();
  if (!t->steps()) t->set_steps(200);
  if (!t->batch()) t->set_batch(32);
  if (t->lr() == 0) t->set_lr(1e-3);
  if (t->device().empty()) t->set_device("cpu");
  if (!t->context()) t->set_context(4096);
  if (!t->element_bytes()) t->set_element_bytes(2);
  if (c.task().kind().empty()) c.mutable_task()->set_kind("mad");
  if (c.objectives().empty()) c.add_objectives("quality"), c.add_objectives("params");
  if (!c.workers()) c.set_workers(1);
}

SearchConfig convert(const pb::SearchConfig& given) {
  SearchConfig c;
  c.message = given;
  fill_defaults(c.message);
  const pb::SearchConfig& m = c.message;
  require(m.has_space(), "space", "missing: the search space (num_livs, width, vocab_size, alphabet)");
  c.space = space_from_message(m.space(), "space.");
  const auto& names = objective_names();
  for (int i = 0; i < m.objectives_size(); ++i) {
    const std::string& o = m.objectives(i);
    require(std::find(names.begin(), names.end(), o) != names.end(), "objectives[" + std::to_string(i) + "]",
            "expected one of quality, params, cache, flops, tokens_per_s, peak_memory, got \"" + o + "\"");
    require(std::count(m.objectives().begin(), m.objectives().end(), o) == 1, "objectives[" + std::to_string(i) + "]",
            "objective \"" + o + "\" is listed twice");
    c.objectives.push_back(o);
  }
  const auto& a = m.algorithm();
  c.algorithm = a.name();
  require(c.algorithm == "star" || c.algorithm == "nsga2" || c.algorithm == "moead" || c.algorithm == "random",
          "algorithm.name", "expected \"star\", \"nsga2\", \"moead\" or \"random\", got \"" + c.algorithm + "\"");
  c.population = a.population();
  c.generations = a.generations();
  c.elites = a.elites();
  c.crossover_points = a.crossover_points();
  c.mutation_rate = a.mutation_rate();
  c.tournament_size = a.tournament_size();
  require(c.population >= 2, "algorithm.population", "expected at least 2, got " + std::to_string(c.population));
  if (c.algorithm == "nsga2")
    require(c.population >= 8 && c.population % 4 == 0, "algorithm.population",
            "expected a multiple of 4 of at least 8 for nsga2, got " + std::to_string(c.population));
  require(c.generations >= 0, "algorithm.generations", "expected 0 or more");
  require(c.elites >= 0 && c.elites < c.population, "algorithm.elites",
          "expected 0 to population - 1 (" + std::to_string(c.population - 1) + "), got " + std::to_string(c.elites));
  require(c.crossover_points >= 1, "algorithm.crossover_points", "expected at least 1");
  c.steady_state = a.steady_state();
  c.lag = a.lag();
  require(!c.steady_state || c.algorithm == "star", "algorithm.steady_state",
          "only the star algorithm has a steady-state mode, not \"" + c.algorithm + "\"");
  require(!c.steady_state || c.lag >= 1, "algorithm.lag", "expected at least 1, got " + std::to_string(c.lag));
  require(c.mutation_rate >= 0 && c.mutation_rate <= 1, "algorithm.mutation_rate", "expected a probability in [0, 1]");
  require(c.tournament_size >= 1 && c.tournament_size <= c.population, "algorithm.tournament_size",
          "expected 1 to the population size");
  const auto& t = m.training();
  require(t.steps() > 0, "training.steps", "expected a positive number of steps");
  require(t.batch() > 0, "training.batch", "expected a positive batch size");
  require(t.lr() > 0, "training.lr", "expected a positive learning rate");
  require(t.timeout_s() >= 0, "training.timeout_s", "expected 0 (none) or a positive number of seconds");
  const std::string& kind = m.task().kind();
  require(kind == "mad" || kind == "mqar" || kind.rfind("mad:", 0) == 0 || kind.rfind("lm:", 0) == 0 ||
              kind.rfind("synthetic:", 0) == 0,
          "task.kind", "expected mad, mad:<task>, mqar, lm:<file> or synthetic:<name>, got \"" + kind + "\"");
  require(m.budgets().max_params() >= 0, "budgets.max_params", "expected 0 (no limit) or a positive count");
  require(m.budgets().max_cache_bytes() >= 0, "budgets.max_cache_bytes", "expected 0 (no limit) or a positive size");
  require(m.budgets().max_flops_per_token() >= 0, "budgets.max_flops_per_token", "expected 0 (no limit) or more");
  require(m.reference_point_size() == 0 || m.reference_point_size() == int(c.objectives.size()), "reference_point",
          "expected one value per objective (" + std::to_string(c.objectives.size()) + "), got " +
              std::to_string(m.reference_point_size()));
  for (int i = 0; i < m.seed_presets_size(); ++i) {
    try {
      preset_genome(c.space, m.seed_presets(i));
    } catch (const std::invalid_argument& e) {
      throw FieldError("seed_presets[" + std::to_string(i) + "]", e.what());
    }
  }
  require(m.workers() >= 1, "workers", "expected at least 1");
  c.seed = uint64_t(m.seed());
  c.workers = m.workers();
  // Everything that changes an evaluation's result, and nothing that does not (not the device's
  // index, the worker count or the algorithm).
  pb::SearchConfig key;
  *key.mutable_space() = m.space();
  *key.mutable_task() = m.task();
  *key.mutable_training() = m.training();
  key.mutable_training()->clear_device();
  key.mutable_training()->clear_timeout_s();
  key.set_seed(m.seed());
  c.settings_key = key.SerializeAsString();
  return c;
}

}  // namespace

SearchConfig parse_search_config(const std::string& content, const std::string& source) {
  pb::SearchConfig m;
  parse_message(content, source, &m);
  try {
    return convert(m);
  } catch (const FieldError& e) {
    throw LoadError(source + ": " + e.what());
  }
}

SearchConfig load_search_config(const std::string& path) { return parse_search_config(read_file(path), path); }

}  // namespace starsynth
