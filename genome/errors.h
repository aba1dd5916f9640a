// The one error type for bad input anywhere in the genome layer: it names the field path (for
// example "layers[3].ffn_hidden") and says what was expected. Loaders prefix the file name.
#pragma once

#include <stdexcept>
#include <string>

namespace starsynth {

class FieldError : public std::invalid_argument {
 public:
  FieldError(std::string path, const std::string& expected)
      : std::invalid_argument(path + ": " + expected), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace starsynth
