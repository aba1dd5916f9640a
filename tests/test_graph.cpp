// The architecture graph: sharing edges point forward in depth, the order is topological, and
// Graphviz accepts the DOT output.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "genome/genome.h"
#include "genome/graph.h"
#include "genome/presets.h"
#include "genome/variation.h"

namespace starsynth {
namespace {

ModelSpec shared_example() {
  const SearchSpace s = make_space(4, 256, 256, {"SA-1", "SA-2", "SA-3", "SA-4"});
  Genome g;
  g.livs = {{2, 1, 2, 1, 1}, {3, 1, 1, 1, 2}, {2, 1, 2, 2, 1}, {3, 2, 1, 1, 2}};
  return compile(s, g);
}

TEST(ArchGraph, HasResidualTieAndReuseEdgesInTopologicalOrder) {
  const ArchGraph g = build_graph(shared_example());
  EXPECT_EQ(boost::num_vertices(g), 6u);      // embed, 4 layers, head
  EXPECT_EQ(boost::num_edges(g), 5u + 2u);    // residual stream + one tie + one reuse
  const std::vector<size_t> order = check_order(g);
  EXPECT_EQ(g[order.front()].name, "embed");
  EXPECT_EQ(g[order.back()].name, "head");
}

TEST(ArchGraph, ASharingEdgePointingBackwardsIsRejected) {
  ArchGraph g = build_graph(shared_example());
  const auto l0 = boost::vertex(1, g), l3 = boost::vertex(4, g);
  boost::add_edge(l3, l0, ArchEdge{EdgeKind::Reuse, "kv"}, g);
  try {
    check_order(g);
    FAIL();
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "sharing edge from L3 SA-3 to L0 SA-2 does not point forward in depth");
  }
}

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return status == 0 ? out : "exit " + std::to_string(status) + ": " + out;
}

TEST(ArchGraph, GraphvizRendersTheDotOutput) {
  namespace fs = std::filesystem;
  // The GPU machine has no Graphviz; CI (which installs it) sets STARSYNTH_REQUIRE_GRAPHVIZ so that
  // a missing `dot` fails there instead of skipping.
  if (std::system("command -v dot >/dev/null 2>&1") != 0 && !std::getenv("STARSYNTH_REQUIRE_GRAPHVIZ"))
    GTEST_SKIP() << "Graphviz's dot is not installed";
  const fs::path dir = fs::temp_directory_path() / ("starsynth-dot-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const SearchSpace s = preset_space(12, 256, 256);
  Rng rng(21);
  std::vector<ModelSpec> specs = {shared_example(), compile(s, preset_genome(s, "striped-hyena2"))};
  for (int n = 0; n < 3; ++n) specs.push_back(compile(s, random_genome(s, rng)));
  for (size_t i = 0; i < specs.size(); ++i) {
    const fs::path dot = dir / ("g" + std::to_string(i) + ".dot");
    std::ofstream(dot) << to_dot(specs[i]);
    const std::string svg = run("dot -Tsvg " + dot.string() + " 2>&1");
    EXPECT_NE(svg.find("<svg"), std::string::npos) << svg.substr(0, 400);
    EXPECT_NE(svg.find("L0 "), std::string::npos);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace starsynth
