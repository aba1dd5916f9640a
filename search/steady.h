// STAR's evolution without the generational barrier, for pools of workers large enough that a
// generation mostly waits for its slowest evaluation (bench/driver_simulation: 41 % efficiency at
// 1,024 workers when the population equals the pool).
//
// Offspring are numbered. Results are merged into the population strictly in offspring order,
// each by NSGA-II's (μ + 1) survival (pagmo2's select_best_N_mo); offspring k is bred (tournament,
// crossover, mutation, repair, canonical form, budgets) from the population as it stood after
// k - lag + 1 merges, with a generator seeded by k alone. Which offspring exist therefore depends on
// neither timing nor the number of workers, so runs are reproducible and resume exactly; workers
// wait only when the evaluation `lag` places back is still running.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <pagmo/types.hpp>

#include "search/engine.h"

namespace starsynth {

class SteadyState : public JobSource {
 public:
  // `x`, `f`: the population after `merged` merges; `pending`: the offspring created but not
  // merged then (offspring merged, merged + 1, ...), as a checkpoint keeps them. `on_merged` is
  // called after every merge (the run checkpoints every population - elites merges), from the
  // constructor too when results are already in the ledger.
  using OnMerged = std::function<void(const SteadyState&)>;
  SteadyState(Engine& engine, std::vector<pagmo::vector_double> x, std::vector<pagmo::vector_double> f, int64_t merged,
              const std::vector<Genome>& pending, OnMerged on_merged);

  std::optional<Job> next() override;
  bool exhausted() const override;
  // A runner's result for offspring `id`: journaled, then merged when its turn comes.
  void finished(size_t id, EvalOutcome outcome);

  const std::vector<pagmo::vector_double>& x() const { return x_; }
  const std::vector<pagmo::vector_double>& f() const { return f_; }
  int64_t merged() const { return merged_; }
  std::vector<Genome> pending() const;  // created, not merged, in offspring order
  int64_t total() const { return total_; }
  int64_t per_generation() const { return per_generation_; }

 private:
  struct Offspring {
    Genome genome;
    std::string key;
    std::optional<std::vector<double>> fitness;  // known once evaluated or found in the ledger
  };
  void add(int64_t k, Genome genome);
  Genome breed(int64_t k);
  void merge_ready();

  Engine& engine_;
  std::vector<pagmo::vector_double> x_, f_;
  int64_t merged_ = 0, created_ = 0, total_ = 0, per_generation_ = 1;
  std::map<int64_t, Offspring> offspring_;  // created, not merged
  std::deque<int64_t> to_evaluate_;         // created, neither handed out nor in the ledger
  OnMerged on_merged_;
};

}  // namespace starsynth
