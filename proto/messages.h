// The protobuf side of proto/: parsing and printing any message with file-and-field errors, and
// the conversions other parts need. Only for targets that never see LibTorch's include path.
#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "genome/space.h"
#include "proto/formats.h"
#include "proto/genome.pb.h"

namespace starsynth {

// Protobuf text or JSON (chosen as the loaders choose); throws LoadError naming `source`.
void parse_message(const std::string& content, const std::string& source, google::protobuf::Message* msg);
std::string print_message(const google::protobuf::Message& msg, Format format);

// Throws FieldError with paths under `at` ("space.width").
SearchSpace space_from_message(const pb::SearchSpace& message, const std::string& at);
pb::SearchSpace space_to_message(const SearchSpace& space);

}  // namespace starsynth
