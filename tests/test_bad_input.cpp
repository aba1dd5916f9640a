// Malformed genome, search-space and model files through the real CLI: each gives exit status 2,
// exactly one line on stderr that names the file and the field, nothing on stdout, and no output
// file.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct Case {
  const char* name;
  const char* command;   // starsynth subcommand taking the file as its next argument
  const char* file;      // file name (its extension selects the format)
  const char* content;
  const char* expected;  // stderr after "error: FILE" (":" and the rest), exactly
};

const char* const kSpace = "space { num_livs: 2 width: 128 vocab_size: 64 alphabet: [\"SA-1\", \"Rec-1\", \"GMemless\"] }\n";

std::string genome(const std::string& livs) { return std::string(kSpace) + livs; }

const std::string kModelHead = "version: 1\nvocab_size: 64\nwidth: 128\n";
const std::string kAttention = "layers { class: \"SA-1\" hyper { head_dim: 32 kv_repeat: 1 } }\n";
const std::string kSwiGLU = "layers { class: \"GMemless\" hyper { ffn_hidden: 256 } }\n";

std::vector<Case> cases() {
  static const std::string g_ok_livs = "livs { class: \"SA-1\" } livs { class: \"GMemless\" }\n";
  static const std::vector<std::string> text = {
      genome("livs { class: \"SA-1\" } livs { class: \"Mamba\" }\n"),
      genome("livs { class: \"SA-1\" }\n"),
      genome("livs { class: \"SA-1\" featurizer_group: 99 } livs { class: \"GMemless\" }\n"),
      genome("livs { class: \"SA-1\" featurizer_strategy: 3 } livs { class: \"GMemless\" }\n"),
      genome("livs { class: \"SA-1\" feature_group: 1 feature_strategy: 2 }\n"
             "livs { class: \"Rec-1\" feature_group: 1 feature_strategy: 2 }\n"),
      genome("livs { class: \"SA-1\" featurizer_group: 1 featurizer_strategy: 2 }\n"
             "livs { class: \"Rec-1\" featurizer_group: 1 featurizer_strategy: 2 }\n"),
      "space { num_livs: 2 width: 0 vocab_size: 64 }\n" + g_ok_livs,
      "space { num_livs: \"two\" width: 128 vocab_size: 64 }\n",
      genome("livs { class: \"SA-1\" colour: \"red\" }\n"),
      genome("livs { class: \"SA-1\" } livs { class: \"GMe"),
      g_ok_livs,
      kModelHead + kAttention + "layers { class: \"SA-1\" hyper { head_dim: 32 kv_repeat: 1 } reuse_from: 3 reuse: \"kv\" }\n",
      kModelHead + kAttention + kSwiGLU + "layers { class: \"SA-1\" hyper { head_dim: 32 kv_repeat: 1 } reuse_from: 1 reuse: \"kv\" }\n",
      kModelHead + kAttention + "layers { class: \"GMemless\" hyper { ffn_hidden: 0 } }\n",
      kModelHead + "layers { class: \"SA-1\" hyper { head_dim: -4 } }\n",
      "vocab_size: 64\nwidth: 128\n" + kAttention,
      kModelHead,
      kModelHead + "layers { class: \"SA-1\" hyper { head_dim: 48 kv_repeat: 1 } }\n",
      "num_livs: 4\nwidth: 128\nvocab_size: 64\nalphabet: [\"SA-1\", \"Foo\"]\n",
      "num_livs: 4\nwidth: 128\nvocab_size: 64\nalphabet: [\"SA-1\", \"SA-1\"]\n",
      "num_livs: 4\nwidth: 128\nvocab_size: 64\nalphabet: [\"SA-1\"]\nclasses { name: \"SA-1\" hyper { head_dim: 100 } }\n",
      "num_livs: 4\nwidth: 128\nvocab_size: 64\nnorm: \"batchnorm\"\n",
      "num_livs: 0\nwidth: 128\nvocab_size: 64\n",
  };
  return {
      {"unknown class", "genome validate", "g.textproto", text[0].c_str(),
       ": livs[1].class: expected a class of the space's alphabet (SA-1, Rec-1, GMemless), got \"Mamba\""},
      {"too few LIVs", "genome compile", "g.textproto", text[1].c_str(),
       ": livs: expected 2 LIVs (the search space's num_livs), got 1"},
      {"group label out of range", "genome metrics", "g.textproto", text[2].c_str(),
       ": livs[0].featurizer_group: expected 1..2 (a group label, at most the number of LIVs), got 99"},
      {"strategy out of range", "genome compile", "g.textproto", text[3].c_str(),
       ": livs[0].featurizer_strategy: expected 1..2 (1 none, 2 all featurizer weights), got 3"},
      {"incompatible feature reuse", "genome compile", "g.textproto", text[4].c_str(),
       ": livs[1].feature_strategy: incompatible sharing: LIV 1 (Rec-1, bc) cannot reuse the features of LIV 0 "
       "(SA-1, kv) in feature group 1"},
      {"incompatible weight tying", "genome dot", "g.textproto", text[5].c_str(),
       ": livs[1].featurizer_strategy: incompatible sharing: LIV 1 (Rec-1) cannot tie featurizer weights with LIV 0 "
       "(SA-1): their featurizers have different shapes"},
      {"zero width", "genome compile", "g.textproto", text[6].c_str(),
       ": space.width: expected a positive width, got 0"},
      {"wrong type", "genome compile", "g.textproto", text[7].c_str(),
       ":1:19: Expected integer, got: \"two\" (in `space { num_livs: \"two\" width: 128 vocab_size: 64 }`)"},
      {"unknown field", "genome compile", "g.textproto", text[8].c_str(),
       ":2:28: Message type \"starsynth.pb.Liv\" has no field named \"colour\". (in `livs { class: \"SA-1\" "
       "colour: \"red\" }`)"},
      {"truncated", "genome compile", "g.textproto", text[9].c_str(),
       ":2:42: Unexpected end of string. (in `livs { class: \"SA-1\" } livs { class: \"GMe`)"},
      {"genome without its space", "genome compile", "g.textproto", text[10].c_str(),
       ": space: missing: a genome file carries its search space"},
      {"empty genome", "genome compile", "g.textproto", "",
       ": empty file, expected a Genome in protobuf text or JSON"},
      {"json unknown field", "genome compile", "g.json", "{\"space\": {\"num_livs\": 2}, \"colour\": 1}",
       ": invalid Genome JSON: colour: Cannot find field."},
      {"json wrong type", "model metrics", "m.json", "{\"version\": 1, \"width\": \"wide\"}",
       ": invalid ModelConfig JSON: (width): invalid value \"wide\" for type TYPE_INT32"},
      {"json truncated", "model metrics", "m.json", "{\"version\": 1, \"width\": 12",
       ": invalid ModelConfig JSON: Unexpected end of string. Expected , or } after key:value pair."},
      {"reuse from a later layer", "model metrics", "m.textproto", text[11].c_str(),
       ": layers[1].reuse_from: expected an earlier layer index in [0, 1)"},
      {"reuse of a group the producer lacks", "model metrics", "m.textproto", text[12].c_str(),
       ": layers[2].reuse_from: incompatible sharing: layer 1 (GMemless) has no feature group \"kv\" of the shape "
       "SA-1 needs"},
      {"zero hidden size", "model metrics", "m.textproto", text[13].c_str(),
       ": layers[1].hyper.ffn_hidden: expected a positive integer, got 0"},
      {"negative head size", "model dot", "m.textproto", text[14].c_str(),
       ": layers[0].hyper.head_dim: expected a positive integer or 0 (default), got -4"},
      {"missing version", "model metrics", "m.textproto", text[15].c_str(),
       ": version: expected 1 (the ModelConfig format this build reads), got 0"},
      {"no layers", "model metrics", "m.textproto", text[16].c_str(), ": layers: expected at least one layer"},
      {"head size not dividing the width", "model metrics", "m.textproto", text[17].c_str(),
       ": layers[0].hyper.head_dim: expected a divisor of the width 128, got 48"},
      {"unknown class in alphabet", "genome random --space", "s.textproto", text[18].c_str(), nullptr},
      {"class twice in alphabet", "genome random --space", "s.textproto", text[19].c_str(),
       ": alphabet[1]: class \"SA-1\" appears twice"},
      {"override breaking a class", "genome random --space", "s.textproto", text[20].c_str(),
       ": classes[SA-1].hyper.head_dim: expected a divisor of the width 128, got 100"},
      {"unknown norm", "genome random --space", "s.textproto", text[21].c_str(),
       ": norm: expected \"rmsnorm\" or \"layernorm\", got \"batchnorm\""},
      {"no LIVs", "genome random --space", "s.textproto", text[22].c_str(),
       ": num_livs: expected a positive number of LIVs, got 0"},
      {"missing file", "genome show", "absent.textproto", nullptr, ": cannot read (No such file or directory)"},
  };
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(BadInput, EachMalformedFileGivesOneLineNamingTheFieldAndWritesNothing) {
  const fs::path dir = fs::temp_directory_path() / ("starsynth-bad-input-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto all = cases();
  ASSERT_GE(all.size(), 15u);
  for (size_t i = 0; i < all.size(); ++i) {
    const Case& c = all[i];
    SCOPED_TRACE(c.name);
    const fs::path case_dir = dir / std::to_string(i);
    fs::create_directories(case_dir);
    const fs::path input = case_dir / c.file;
    if (c.content) std::ofstream(input) << c.content;
    const fs::path out = case_dir / "out.json";
    // Every command that writes a result is asked to write it to a file, which must not appear.
    const bool writes = std::string(c.command) != "genome validate";
    const std::string cmd = std::string(STARSYNTH_CLI) + " " + c.command + " " + input.string() +
                            (writes ? " -o " + out.string() : "") + " >" + (case_dir / "stdout").string() + " 2>" + (case_dir / "stderr").string();
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
    const std::string err = slurp(case_dir / "stderr");
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    const std::string prefix = "error: " + input.string();
    ASSERT_EQ(err.rfind(prefix, 0), 0u) << err;
    if (c.expected) EXPECT_EQ(err.substr(prefix.size()), std::string(c.expected) + "\n");
    else EXPECT_NE(err.find(": alphabet[1]: expected one of SA-1, SA-2"), std::string::npos) << err;
    EXPECT_EQ(slurp(case_dir / "stdout"), "");
    EXPECT_FALSE(fs::exists(out));
    // Nothing else appeared beside the input either (no temporary left behind).
    EXPECT_EQ(std::distance(fs::directory_iterator(case_dir), fs::directory_iterator()), c.content ? 3 : 2);
  }
  fs::remove_all(dir);
}

// A language-modelling corpus that cannot be read stops `search` before it starts: one line naming
// the config, the field and the path, exit status 2, no run directory (the alternative was a whole
// search of failed evaluations).
TEST(BadInput, AnUnreadableCorpusStopsTheSearchBeforeItStarts) {
  const fs::path dir = fs::temp_directory_path() / ("starsynth-bad-corpus-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& [corpus, why] : {std::pair<std::string, std::string>{"/nonexistent/corpus.fasta", "No such file or directory"},
                                    {dir.string(), "not a regular file"}}) {
    const fs::path config = dir / "lm.textproto", run = dir / "run";
    std::ofstream(config) << "space { num_livs: 2 width: 32 vocab_size: 256 }\ntask { kind: \"lm:" << corpus << "\" }\n";
    const std::string cmd = std::string(STARSYNTH_CLI) + " search " + config.string() + " --run " + run.string() +
                            " >" + (dir / "stdout").string() + " 2>" + (dir / "stderr").string();
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
    EXPECT_EQ(slurp(dir / "stderr"),
              "error: " + config.string() + ": task.kind: cannot read the corpus " + corpus + " (" + why + ")\n");
    EXPECT_FALSE(fs::exists(run));
  }
  fs::remove_all(dir);
}

TEST(BadInput, UsageErrorsExitWithStatusTwo) {
  for (const char* args : {"genome", "genome metrics", "genome random --seed x", "model metrics --bogus"}) {
    const std::string cmd = std::string(STARSYNTH_CLI) + " " + args + " >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 2) << args;
  }
}

}  // namespace
