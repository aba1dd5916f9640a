// File formats: every struct survives a trip through protobuf text and JSON unchanged, files are
// written atomically, and loading reports the file and the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "genome/genome.h"
#include "genome/presets.h"
#include "genome/variation.h"
#include "proto/formats.h"

namespace starsynth {
namespace {

namespace fs = std::filesystem;

TEST(Formats, GenomesRoundTripThroughTextAndJson) {
  const SearchSpace s = load_space(std::string(STARSYNTH_SOURCE_DIR) + "/examples/spaces/mad-hybrid.textproto");
  Rng rng(4);
  for (int n = 0; n < 200; ++n) {
    const Genome g = random_genome(s, rng);
    for (Format f : {Format::Text, Format::Json}) {
      const GenomeFile back = parse_genome(format_genome(s, g, f), f == Format::Json ? "g.json" : "g.textproto");
      ASSERT_EQ(back.genome, g);
      ASSERT_EQ(format_space(back.space, Format::Text), format_space(s, Format::Text));
      ASSERT_EQ(compile(back.space, back.genome), compile(s, g));
    }
  }
}

TEST(Formats, ModelConfigsRoundTripThroughTextAndJson) {
  const SearchSpace s = preset_space(8, 256, 256);
  Rng rng(5);
  std::vector<ModelSpec> specs = {load_model_config(std::string(STARSYNTH_SOURCE_DIR) + "/examples/models/gpt2-124m.textproto")};
  for (const Preset& p : presets()) specs.push_back(compile(s, preset_genome(s, p.name)));
  for (int n = 0; n < 50; ++n) specs.push_back(compile(s, random_genome(s, rng)));
  for (ModelSpec& m : specs) {
    m.name = "round-trip";
    for (Format f : {Format::Text, Format::Json})
      ASSERT_EQ(parse_model_config(format_model_config(m, f), f == Format::Json ? "m.json" : "m.txtpb"), m);
  }
}

TEST(Formats, JsonModelConfigUsesPlainNumbersAndProtoFieldNames) {
  const SearchSpace s = preset_space(2, 128, 256);
  const std::string json = format_model_config(compile(s, preset_genome(s, "transformer++")), Format::Json);
  EXPECT_NE(json.find("\"vocab_size\": 256"), std::string::npos) << json;
  EXPECT_NE(json.find("\"version\": 1"), std::string::npos);
  EXPECT_NE(json.find("\"ffn_hidden\": 384"), std::string::npos);  // 8/3 · 128 rounded up to 64s
}

TEST(Formats, AGenomeFileIsValidatedAgainstItsOwnSpace) {
  const std::string text = R"(
    space { num_livs: 2 width: 128 vocab_size: 64 alphabet: ["SA-1", "Rec-1"] }
    livs { class: "SA-1" feature_group: 1 feature_strategy: 2 }
    livs { class: "Rec-1" feature_group: 1 feature_strategy: 2 }
  )";
  try {
    parse_genome(text, "pair.textproto");
    FAIL();
  } catch (const LoadError& e) {
    EXPECT_STREQ(e.what(),
                 "pair.textproto: livs[1].feature_strategy: incompatible sharing: LIV 1 (Rec-1, bc) cannot reuse the "
                 "features of LIV 0 (SA-1, kv) in feature group 1");
  }
  EXPECT_NO_THROW(parse_genome(text, "pair.textproto", false));
}

TEST(Formats, AtomicWriteReplacesWholeFilesAndLeavesNoTemporaries) {
  const fs::path dir = fs::temp_directory_path() / ("starsynth-formats-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "out.json").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second, longer");
  EXPECT_EQ(read_file(path), "second, longer");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  EXPECT_THROW(write_file_atomic((dir / "missing" / "x").string(), "y"), std::runtime_error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace starsynth
