// Variation operators on genomes. Every child is repaired, so every result is valid; all
// randomness comes from the generator passed in.
#pragma once

#include <utility>

#include "genome/genome.h"
#include "genome/rng.h"

namespace starsynth {

// Each gene drawn uniformly from its legal values, then repaired.
Genome random_genome(const SearchSpace& space, Rng& rng);

// Each gene, independently with probability `rate`, replaced by a different legal value (the class
// gene first, so that a LIV's feature strategy is drawn from its new class's legal set); repaired.
Genome mutate(const SearchSpace& space, const Genome& g, double rate, Rng& rng);

// k-point crossover on the flat encoding: k distinct cut points, segments alternate between the
// parents; both children repaired.
std::pair<Genome, Genome> crossover(const SearchSpace& space, const Genome& a, const Genome& b, int points, Rng& rng);

}  // namespace starsynth
