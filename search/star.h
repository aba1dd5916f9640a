// STAR's evolutionary algorithm as a pagmo2 user-defined algorithm (STAR.md §3): NSGA-II ranking
// and crowding from pagmo's utilities, tournament pairing, k-point crossover and per-gene
// mutation, every child repaired and made canonical, budgets checked before anything trains, and
// offspring evaluated as one batch through a pagmo::bfe.
//
// Over a genome space the variation is the genome layer's; without one (benchmark problems such as
// ZDT) it is the same k-point crossover and per-gene mutation on plain integer vectors.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <pagmo/bfe.hpp>
#include <pagmo/population.hpp>

#include "genome/genome.h"
#include "genome/rng.h"

namespace starsynth {

// NSGA-II's rank (lower is better) and crowding distance (higher is better) of every individual,
// from pagmo2's utilities; fronts of one or two members get infinite crowding.
void rank_and_crowd(const std::vector<pagmo::vector_double>& f, std::vector<size_t>& rank, std::vector<double>& crowd);

struct StarParams {
  unsigned generations = 1;  // per evolve() call (the driver checkpoints between calls)
  int elites = 2;            // places kept for parents: population - elites offspring per generation
  int crossover_points = 2;
  double mutation_rate = 0.1;
  int tournament_size = 3;  // STAR.md: the re-implementation's; 2 loses hypervolume (BENCHMARKS.md)
  bool random_search = false;  // offspring drawn at random instead of bred (the baseline)
};

class star {
 public:
  star() = default;
  // `accept` says whether a child fits the budgets; rejected children are resampled and reported
  // to `rejected`.
  star(StarParams params, uint64_t seed, std::optional<SearchSpace> space = std::nullopt,
       std::function<bool(const Genome&)> accept = {}, std::function<void()> rejected = {});

  pagmo::population evolve(pagmo::population pop) const;
  void set_bfe(const pagmo::bfe& b) { bfe_ = b; }
  std::string get_name() const { return params_.random_search ? "random search" : "STAR"; }
  std::string get_extra_info() const;

  // The generator's full state, for checkpoints.
  std::string rng_state() const;
  void set_rng_state(const std::string& state);

 private:
  pagmo::vector_double child_variation(const pagmo::vector_double& x, const pagmo::vector_double& lo,
                                       const pagmo::vector_double& hi) const;

  StarParams params_;
  mutable Rng rng_;
  std::optional<SearchSpace> space_;
  std::function<bool(const Genome&)> accept_;
  std::function<void()> rejected_;
  std::optional<pagmo::bfe> bfe_;
};

}  // namespace starsynth
