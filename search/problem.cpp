#include "search/problem.h"

#include <cmath>
#include <stdexcept>

namespace starsynth {

namespace {

const Engine& require(const std::shared_ptr<Engine>& e) {
  if (!e) throw std::logic_error("GenomeProblem used without an engine");
  return *e;
}

}  // namespace

Genome GenomeProblem::genome_of(const pagmo::vector_double& dv) const {
  const SearchSpace& space = require(engine_).config().space;
  const Bounds b = bounds(space);
  std::vector<int64_t> flat(dv.size());
  for (size_t i = 0; i < dv.size(); ++i)
    flat[i] = std::clamp<int64_t>(int64_t(std::llround(dv[i])), b.lower.at(i), b.upper.at(i));
  return canonical(space, decode(space, flat));
}

pagmo::vector_double GenomeProblem::fitness(const pagmo::vector_double& dv) const { return batch_fitness(dv); }

pagmo::vector_double GenomeProblem::batch_fitness(const pagmo::vector_double& dvs) const {
  const size_t n = get_bounds().first.size();
  std::vector<Genome> genomes;
  for (size_t at = 0; at < dvs.size(); at += n)
    genomes.push_back(genome_of(pagmo::vector_double(dvs.begin() + long(at), dvs.begin() + long(at + n))));
  pagmo::vector_double out;
  for (const auto& f : engine_->evaluate(genomes)) out.insert(out.end(), f.begin(), f.end());
  return out;
}

std::pair<pagmo::vector_double, pagmo::vector_double> GenomeProblem::get_bounds() const {
  const Bounds b = bounds(require(engine_).config().space);
  pagmo::vector_double lo(b.lower.begin(), b.lower.end()), hi(b.upper.begin(), b.upper.end());
  // pagmo's nsga2 refuses equal bounds; a gene with one legal value gets a second one that repair
  // maps back.
  for (size_t i = 0; i < lo.size(); ++i)
    if (hi[i] <= lo[i]) hi[i] = lo[i] + 1;
  return {lo, hi};
}

pagmo::vector_double::size_type GenomeProblem::get_nobj() const { return require(engine_).config().objectives.size(); }

pagmo::vector_double::size_type GenomeProblem::get_nix() const { return get_bounds().first.size(); }

}  // namespace starsynth
