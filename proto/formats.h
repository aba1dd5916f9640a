// Reading and writing the genome layer's files (search spaces, genomes, model configs) as
// protobuf text or JSON, converted to and from the plain structs of genome/. Protobuf types stay
// inside proto/: nothing here needs a generated header.
#pragma once

#include <stdexcept>
#include <string>

#include "genome/genome.h"
#include "genome/model_spec.h"
#include "genome/space.h"

namespace starsynth {

inline constexpr int kModelConfigVersion = 1;

enum class Format { Text, Json };

// Bad input in a file: "FILE: FIELD: what was expected" (or "FILE:LINE:COL: ..." for syntax).
class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GenomeFile {
  SearchSpace space;
  Genome genome;
};

// `path` "-" reads standard input. The format follows the extension (.json → JSON; .textproto,
// .txtpb, .pbtxt → text), else the first non-blank character ('{' → JSON).
SearchSpace load_space(const std::string& path);
GenomeFile load_genome(const std::string& path);  // also checks validity against its space
ModelSpec load_model_config(const std::string& path);

// Parses text already read; `source` names it in errors.
SearchSpace parse_space(const std::string& content, const std::string& source);
GenomeFile parse_genome(const std::string& content, const std::string& source, bool check_valid = true);
ModelSpec parse_model_config(const std::string& content, const std::string& source);

std::string format_space(const SearchSpace& space, Format format);
std::string format_genome(const SearchSpace& space, const Genome& genome, Format format);
std::string format_model_config(const ModelSpec& spec, Format format);

// Chooses the format from a file name as the loaders do (JSON unless it ends in a text suffix).
Format format_for(const std::string& path);

// Writes through a temporary file in the same folder, fsync'd, then renamed over `path`: a
// reader sees the old file or the whole new one, never a part.
void write_file_atomic(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

}  // namespace starsynth
