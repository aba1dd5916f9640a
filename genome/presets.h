// Reference architectures at any width and depth, as genomes (no sharing), so they can seed a
// search and be measured with the same tools as evolved ones.
#pragma once

#include <string>
#include <vector>

#include "genome/genome.h"

namespace starsynth {

struct Preset {
  std::string name;
  std::string description;
};

const std::vector<Preset>& presets();
std::string known_preset_names();

// The class of each of `num_livs` LIVs; throws std::invalid_argument for an unknown name.
std::vector<std::string> preset_classes(const std::string& name, int num_livs);

// The preset as a genome of `space`; throws FieldError ("alphabet") when the space lacks a class.
Genome preset_genome(const SearchSpace& space, const std::string& name);

// A search space that holds every preset's classes with catalogue defaults: the STAR alphabet
// plus the StripedHyena 2 operators.
SearchSpace preset_space(int num_livs, int64_t width, int64_t vocab_size);

}  // namespace starsynth
