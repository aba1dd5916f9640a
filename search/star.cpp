#include "search/star.h"

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include <pagmo/utils/multi_objective.hpp>

#include "genome/variation.h"

namespace starsynth {

namespace {

std::vector<int64_t> as_ints(const pagmo::vector_double& x) {
  std::vector<int64_t> v(x.size());
  for (size_t i = 0; i < x.size(); ++i) v[i] = std::llround(x[i]);
  return v;
}

pagmo::vector_double as_doubles(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

void rank_and_crowd(const std::vector<pagmo::vector_double>& f, std::vector<size_t>& rank, std::vector<double>& crowd) {
  const auto sorted = pagmo::fast_non_dominated_sorting(f);
  const auto& fronts = std::get<0>(sorted);
  rank.assign(f.size(), 0);
  crowd.assign(f.size(), 0.0);
  for (size_t r = 0; r < fronts.size(); ++r) {
    const auto& front = fronts[r];
    for (auto i : front) rank[i] = r;
    if (front.size() < 3) {
      for (auto i : front) crowd[i] = std::numeric_limits<double>::infinity();
      continue;
    }
    std::vector<pagmo::vector_double> pts;
    for (auto i : front) pts.push_back(f[i]);
    const auto d = pagmo::crowding_distance(pts);
    for (size_t k = 0; k < front.size(); ++k) crowd[front[k]] = d[k];
  }
}

star::star(StarParams params, uint64_t seed, std::optional<SearchSpace> space, std::function<bool(const Genome&)> accept,
           std::function<void()> rejected)
    : params_(params), rng_(seed), space_(std::move(space)), accept_(std::move(accept)), rejected_(std::move(rejected)) {}

std::string star::get_extra_info() const {
  std::ostringstream s;
  s << "elites " << params_.elites << ", " << params_.crossover_points << "-point crossover, mutation rate "
    << params_.mutation_rate << ", tournament " << params_.tournament_size;
  return s.str();
}

std::string star::rng_state() const {
  std::ostringstream s;
  s << rng_;
  return s.str();
}

void star::set_rng_state(const std::string& state) {
  std::istringstream s(state);
  s >> rng_;
  if (!s) throw std::runtime_error("checkpoint: unreadable generator state");
}

// Per-gene mutation of a plain integer vector: half the time a uniform reset, half a small creep,
// so that both jumps and refinement happen on wide integer ranges.
pagmo::vector_double star::child_variation(const pagmo::vector_double& x, const pagmo::vector_double& lo,
                                           const pagmo::vector_double& hi) const {
  pagmo::vector_double y = x;
  for (size_t i = 0; i < y.size(); ++i) {
    if (uniform01(rng_) >= params_.mutation_rate) continue;
    const auto l = int64_t(lo[i]), h = int64_t(hi[i]);
    if (uniform01(rng_) < 0.5) {
      y[i] = double(uniform_int(rng_, l, h));
    } else {
      const int64_t step = std::max<int64_t>(1, (h - l) / 20);
      const int64_t delta = uniform_int(rng_, 1, step) * (uniform01(rng_) < 0.5 ? -1 : 1);
      y[i] = double(std::clamp<int64_t>(int64_t(std::llround(y[i])) + delta, l, h));
    }
  }
  return y;
}

pagmo::population star::evolve(pagmo::population pop) const {
  const pagmo::problem& prob = pop.get_problem();
  const size_t n = pop.size();
  if (n < 2) throw std::invalid_argument("STAR needs a population of at least 2");
  const auto [lo, hi] = prob.get_bounds();
  const size_t target = n - size_t(std::clamp(params_.elites, 0, int(n) - 1));
  for (unsigned gen = 0; gen < params_.generations; ++gen) {
    const auto xs = pop.get_x();
    const auto fs = pop.get_f();
    std::vector<size_t> rank;
    std::vector<double> crowd;
    rank_and_crowd(fs, rank, crowd);
    // Tournament entrants come from a reshuffled order (tournaments without replacement, as in
    // NSGA-II's implementations): every member enters as often as any other, so selection pressure
    // comes from the comparisons, not from the luck of the draw. On the surrogate benchmark this
    // took the median hypervolume from 0.450 to 0.460 (40 seeds; BENCHMARKS.md).
    std::vector<size_t> order;
    size_t cursor = 0;
    auto next_entrant = [&] {
      if (cursor == order.size()) {
        order.resize(n);
        for (size_t i = 0; i < n; ++i) order[i] = i;
        shuffle(order, rng_);
        cursor = 0;
      }
      return order[cursor++];
    };
    auto tournament = [&] {
      size_t best = next_entrant();
      for (int k = 1; k < params_.tournament_size; ++k) {
        const size_t c = next_entrant();
        if (rank[c] < rank[best] || (rank[c] == rank[best] && crowd[c] > crowd[best])) best = c;
      }
      return best;
    };
    std::vector<pagmo::vector_double> children;
    // A child identical to a parent or a sibling would only be answered from the ledger: draw
    // again, unless the space seems exhausted.
    std::set<pagmo::vector_double> seen(xs.begin(), xs.end());
    size_t duplicates = 0;
    auto offer = [&](pagmo::vector_double child) {
      if (children.size() >= target) return;
      if (seen.count(child) && duplicates++ < 100 * target) return;
      if (space_ && accept_ && !accept_(decode(*space_, as_ints(child)))) {
        if (rejected_) rejected_();
        return;
      }
      seen.insert(child);
      children.push_back(std::move(child));
    };
    for (size_t attempts = 0; children.size() < target; ++attempts) {
      if (attempts > 1000 * target) throw std::runtime_error("no offspring within the budgets after many draws");
      if (params_.random_search) {
        if (space_) offer(as_doubles(encode(canonical(*space_, random_genome(*space_, rng_)))));
        else {
          pagmo::vector_double x(lo.size());
          for (size_t i = 0; i < x.size(); ++i) x[i] = double(uniform_int(rng_, int64_t(lo[i]), int64_t(hi[i])));
          offer(x);
        }
        continue;
      }
      const auto& a = xs[tournament()];
      const auto& b = xs[tournament()];
      if (space_) {
        auto [c1, c2] = crossover(*space_, decode(*space_, as_ints(a)), decode(*space_, as_ints(b)),
                                  params_.crossover_points, rng_);
        offer(as_doubles(encode(canonical(*space_, mutate(*space_, c1, params_.mutation_rate, rng_)))));
        offer(as_doubles(encode(canonical(*space_, mutate(*space_, c2, params_.mutation_rate, rng_)))));
      } else {
        // k-point crossover on the vectors, then per-gene mutation.
        std::vector<int64_t> cuts;
        for (int k = 0; k < params_.crossover_points; ++k) cuts.push_back(uniform_int(rng_, 1, int64_t(a.size()) - 1));
        std::sort(cuts.begin(), cuts.end());
        pagmo::vector_double c1 = a, c2 = b;
        bool swap = false;
        size_t next = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          while (next < cuts.size() && size_t(cuts[next]) == i) swap = !swap, ++next;
          if (swap) c1[i] = b[i], c2[i] = a[i];
        }
        offer(child_variation(c1, lo, hi));
        offer(child_variation(c2, lo, hi));
      }
    }
    // One batch through the bfe (the engine's thread pool or MPI workers).
    pagmo::vector_double flat;
    for (const auto& c : children) flat.insert(flat.end(), c.begin(), c.end());
    pagmo::vector_double fit_flat;
    if (bfe_) fit_flat = (*bfe_)(prob, flat);
    else
      for (const auto& c : children) {
        const auto f = prob.fitness(c);
        fit_flat.insert(fit_flat.end(), f.begin(), f.end());
      }
    const size_t nobj = prob.get_nobj();
    std::vector<pagmo::vector_double> all_x = xs, all_f = fs;
    for (size_t k = 0; k < children.size(); ++k) {
      all_x.push_back(children[k]);
      all_f.emplace_back(fit_flat.begin() + long(k * nobj), fit_flat.begin() + long((k + 1) * nobj));
    }
    // Survivors from parents and offspring together by rank, then crowding (μ + λ).
    const auto best = pagmo::select_best_N_mo(all_f, n);
    for (size_t i = 0; i < n; ++i) pop.set_xf(i, all_x[best[i]], all_f[best[i]]);
  }
  return pop;
}

}  // namespace starsynth
