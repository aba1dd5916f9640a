// The STAR algorithm on benchmark problems with known Pareto fronts, integer-encoded, through the
// same pagmo::bfe batch path the genome search uses: at the conventional budget it must reach a
// hypervolume within 2% of the true front's, for each of 5 seeds.
#include <gtest/gtest.h>

#include <cmath>

#include <pagmo/algorithm.hpp>
#include <pagmo/algorithms/nsga2.hpp>
#include <pagmo/batch_evaluators/member_bfe.hpp>
#include <pagmo/bfe.hpp>
#include <pagmo/problem.hpp>
#include <pagmo/utils/hypervolume.hpp>
#include <pagmo/utils/multi_objective.hpp>

#include "search/star.h"

namespace starsynth {
namespace {

constexpr double kScale = 1000.0;  // x_i = k_i / 1000, k_i integer in [0, 1000]

// ZDT1, ZDT2 (30 variables, 2 objectives) and DTLZ2 (12 variables, 3 objectives) on integers.
struct IntegerBenchmark {
  int kind = 1;  // 1: ZDT1, 2: ZDT2, 3: DTLZ2
  size_t dim() const { return kind == 3 ? 12 : 30; }
  pagmo::vector_double fitness(const pagmo::vector_double& k) const {
    std::vector<double> x(k.size());
    for (size_t i = 0; i < k.size(); ++i) x[i] = k[i] / kScale;
    if (kind == 3) {
      double g = 0;
      for (size_t i = 2; i < x.size(); ++i) g += (x[i] - 0.5) * (x[i] - 0.5);
      const double a = x[0] * M_PI / 2, b = x[1] * M_PI / 2;
      return {(1 + g) * std::cos(a) * std::cos(b), (1 + g) * std::cos(a) * std::sin(b), (1 + g) * std::sin(a)};
    }
    double g = 0;
    for (size_t i = 1; i < x.size(); ++i) g += x[i];
    g = 1 + 9 * g / double(x.size() - 1);
    const double r = x[0] / g;
    return {x[0], g * (1 - (kind == 1 ? std::sqrt(r) : r * r))};
  }
  pagmo::vector_double batch_fitness(const pagmo::vector_double& dvs) const {
    pagmo::vector_double out;
    for (size_t at = 0; at < dvs.size(); at += dim()) {
      const auto f = fitness(pagmo::vector_double(dvs.begin() + long(at), dvs.begin() + long(at + dim())));
      out.insert(out.end(), f.begin(), f.end());
    }
    return out;
  }
  bool has_batch_fitness() const { return true; }
  std::pair<pagmo::vector_double, pagmo::vector_double> get_bounds() const {
    return {pagmo::vector_double(dim(), 0.0), pagmo::vector_double(dim(), kScale)};
  }
  pagmo::vector_double::size_type get_nobj() const { return kind == 3 ? 3 : 2; }
  pagmo::vector_double::size_type get_nix() const { return dim(); }
};

double hypervolume(const pagmo::population& pop, size_t nobj) {
  const pagmo::vector_double ref(nobj, 1.1);
  std::vector<pagmo::vector_double> inside;
  for (const auto& f : pop.get_f())
    if (std::all_of(f.begin(), f.end(), [](double v) { return v < 1.1; })) inside.push_back(f);
  if (inside.empty()) return 0;
  return pagmo::hypervolume(inside, true).compute(ref);
}

// The reference hypervolumes, against (1.1, 1.1[, 1.1]). ZDT1 and ZDT2: the true fronts',
// 0.1 + 2/3 + 0.11 and 0.1 + 1/3 + 0.11 (100 points cover a 2-D front almost fully). DTLZ2's true
// front (the unit sphere's octant, 1.1³ − π/6 = 0.8074 as a continuum) is not within reach of 100
// points kept by non-dominated rank and crowding: there the reference is what an independent
// NSGA-II (pagmo2's own, SBX and polynomial mutation) attains on the same integer problem at the
// same budget, averaged over the same five seeds (about 0.708, i.e. 88 % of the continuum).
double reference_hv(int kind, const IntegerBenchmark& udp) {
  if (kind == 1) return 0.1 + 2.0 / 3.0 + 0.11;
  if (kind == 2) return 0.1 + 1.0 / 3.0 + 0.11;
  double sum = 0;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    pagmo::population pop{pagmo::problem{udp}, 100, seed};
    pagmo::algorithm nsga{pagmo::nsga2(250, 0.95, 10., 1.0 / double(udp.dim()), 50., seed)};
    sum += hypervolume(nsga.evolve(pop), 3);
  }
  return sum / 5;
}

class KnownFronts : public ::testing::TestWithParam<int> {};

TEST_P(KnownFronts, ReachHypervolumeWithinTwoPercentForFiveSeeds) {
  const int kind = GetParam();
  // The conventional NSGA-II budget: population 100 for 250 generations (25,000 evaluations);
  // mutation rate 1/dimension.
  const IntegerBenchmark udp{kind};
  const double ref = reference_hv(kind, udp);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    pagmo::problem prob{udp};
    pagmo::population pop{prob, 100, static_cast<unsigned>(seed)};
    StarParams p;
    p.generations = 250;
    p.elites = 0;
    p.mutation_rate = 1.0 / double(udp.dim());
    star uda(p, seed);
    uda.set_bfe(pagmo::bfe{pagmo::member_bfe{}});
    pagmo::algorithm algo{uda};
    pop = algo.evolve(pop);
    const double hv = hypervolume(pop, udp.get_nobj());
    EXPECT_GE(hv, 0.98 * ref) << "problem " << kind << " seed " << seed << ": " << hv << " of " << ref;
    std::printf("problem %d seed %llu: hypervolume %.5f = %.2f %% of the reference\n", kind,
                static_cast<unsigned long long>(seed), hv, 100 * hv / ref);
  }
}

INSTANTIATE_TEST_SUITE_P(ZdtAndDtlz, KnownFronts, ::testing::Values(1, 2, 3), [](const auto& info) {
  return std::string(info.param == 1 ? "ZDT1" : info.param == 2 ? "ZDT2" : "DTLZ2");
});

}  // namespace
}  // namespace starsynth
