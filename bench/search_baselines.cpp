// STAR's algorithm against random search and pagmo2's nsga2 at an equal evaluation budget, on the
// genome-space surrogate (analytic parameters and cache plus the deterministic synthetic quality):
// median hypervolume over seeds, against one fixed reference point.
//
//   search_baselines [--seeds 10] [--livs 24] [--width 768] [--rate 0.1] [--lag 64 (steady state)]
//                    [--tournament 3 (STAR's default)]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "genome/metrics.h"
#include "genome/presets.h"
#include "proto/formats.h"
#include "search/run.h"
#include "search/synthetic.h"

using namespace starsynth;
namespace fs = std::filesystem;

namespace {

std::string option(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int seeds = std::stoi(option(argc, argv, "seeds", "10"));
  const int livs = std::stoi(option(argc, argv, "livs", "24"));
  const int width = std::stoi(option(argc, argv, "width", "768"));
  // One reference point for every run: no architecture is worse than quality 0, and none of this
  // space exceeds twice the Transformer++ preset's size or cache by much.
  const SearchSpace probe = make_space(livs, width, 256, star_alphabet());
  const AnalyticMetrics tpp = analyze(compile(probe, preset_genome(probe, "transformer++")), 4096, 2);
  std::ostringstream ref;
  ref << "reference_point: [1.0, " << 2.5 * double(tpp.params.total) << ", " << 2.5 * double(tpp.cache_bytes) << "]\n";
  const fs::path dir = fs::temp_directory_path() / "starsynth-search-baselines";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::printf("%-8s %s\n", "", "hypervolume per seed (quality error × parameters × cache bytes, fraction of the reference box)");
  const double box = 1.0 * 2.5 * double(tpp.params.total) * 2.5 * double(tpp.cache_bytes);
  for (const std::string variant : {"star", "star-steady", "nsga2", "random"}) {
    const bool steady = variant == "star-steady";
    const std::string algorithm = steady ? "star" : variant;
    std::vector<double> hv;
    for (int seed = 1; seed <= seeds; ++seed) {
      // Equal budgets: 16 initial evaluations plus 16 proposals in each of 18 generations.
      std::ostringstream cfg;
      cfg << "space { num_livs: " << livs << " width: " << width << " vocab_size: 256 }\n"
          << "task { kind: \"synthetic:surrogate\" }\nobjectives: [\"quality\", \"params\", \"cache\"]\n"
          << "algorithm { name: \"" << algorithm << "\" population: 16 generations: 18 elites: 0 mutation_rate: " << option(argc, argv, "rate", "0.1")
          << (steady ? " steady_state: true lag: " + option(argc, argv, "lag", "64") : "")
          << (algorithm == "star" ? " tournament_size: " + option(argc, argv, "tournament", "3") : "") << " }\n"
          << "seed: " << seed << "\n"
          << ref.str();
      const fs::path file = dir / (variant + "-" + std::to_string(seed) + ".textproto");
      write_file_atomic(file.string(), cfg.str());
      std::ostringstream quiet;
      RunOptions o;
      o.dir = (dir / (variant + "-" + std::to_string(seed))).string();
      o.log = &quiet;
      const RunSummary r = run_search(file.string(), o, [](const SearchConfig& c) {
        return thread_pool_runner(synthetic_evaluator(c), 1);
      });
      hv.push_back(r.hypervolume / box);
    }
    std::vector<double> sorted = hv;
    std::sort(sorted.begin(), sorted.end());
    const double median = seeds % 2 ? sorted[size_t(seeds / 2)] : 0.5 * (sorted[size_t(seeds / 2 - 1)] + sorted[size_t(seeds / 2)]);
    std::printf("%-12s median %.5f  min %.5f  max %.5f  [", variant.c_str(), median, sorted.front(), sorted.back());
    for (double v : hv) std::printf(" %.4f", v);
    std::printf(" ]\n");
  }
  std::printf("\n%d LIVs, width %d, %d seeds; reference point %s", livs, width, seeds, ref.str().c_str());
  return 0;
}
