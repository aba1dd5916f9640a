// The genome space as a pagmo2 user-defined problem: an all-integer decision vector with the
// genome layer's bounds, one minimised objective per configured metric, evaluated in batches by
// the engine. Never stochastic: the engine's ledger makes every genome's result final.
#pragma once

#include <memory>
#include <string>

#include <pagmo/types.hpp>

#include "search/engine.h"

namespace starsynth {

class GenomeProblem {
 public:
  GenomeProblem() = default;  // pagmo requires it; an engine-less problem cannot evaluate
  explicit GenomeProblem(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}

  pagmo::vector_double fitness(const pagmo::vector_double& dv) const;
  pagmo::vector_double batch_fitness(const pagmo::vector_double& dvs) const;
  bool has_batch_fitness() const { return true; }
  std::pair<pagmo::vector_double, pagmo::vector_double> get_bounds() const;
  pagmo::vector_double::size_type get_nobj() const;
  pagmo::vector_double::size_type get_nix() const;
  std::string get_name() const { return "STAR genome space"; }

  // The canonical genome a decision vector stands for: rounded, clamped, repaired (pagmo's moead
  // proposes fractional values).
  Genome genome_of(const pagmo::vector_double& dv) const;
  const std::shared_ptr<Engine>& engine() const { return engine_; }

 private:
  std::shared_ptr<Engine> engine_;
};

}  // namespace starsynth
