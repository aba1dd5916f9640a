#include "search/steady.h"

#include <algorithm>
#include <set>

#include <pagmo/utils/multi_objective.hpp>

#include "genome/rng.h"
#include "genome/variation.h"
#include "search/star.h"

namespace starsynth {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

pagmo::vector_double as_doubles(const Genome& g) {
  const std::vector<int64_t> v = encode(g);
  return {v.begin(), v.end()};
}

}  // namespace

SteadyState::SteadyState(Engine& engine, std::vector<pagmo::vector_double> x, std::vector<pagmo::vector_double> f,
                         int64_t merged, const std::vector<Genome>& pending, OnMerged on_merged)
    : engine_(engine), x_(std::move(x)), f_(std::move(f)), merged_(merged), on_merged_(std::move(on_merged)) {
  const SearchConfig& c = engine_.config();
  per_generation_ = std::max(1, c.population - c.elites);
  total_ = int64_t(c.generations) * per_generation_;
  created_ = merged_;
  for (const Genome& g : pending) add(created_++, g);
  while (created_ < std::min(total_, merged_ + c.lag)) {
    const int64_t k = created_++;
    add(k, breed(k));
  }
  merge_ready();
}

void SteadyState::add(int64_t k, Genome genome) {
  Offspring o{std::move(genome), "", std::nullopt};
  o.key = engine_.key(o.genome);
  if (const pb::JournalRecord* r = engine_.find(o.key)) {
    o.fitness = engine_.objectives(*r);
    engine_.count_reused();
  } else {
    to_evaluate_.push_back(k);
  }
  offspring_.emplace(k, std::move(o));
}

// Tournament pairing on the current population, the genome layer's crossover and mutation, repair
// and canonical form; children over budget are counted and drawn again, and so (a while) are
// children that repeat a population member or an offspring not yet merged.
Genome SteadyState::breed(int64_t k) {
  const SearchConfig& c = engine_.config();
  Rng rng(splitmix64(c.seed ^ splitmix64(uint64_t(k))));
  std::vector<size_t> rank;
  std::vector<double> crowd;
  rank_and_crowd(f_, rank, crowd);
  const int64_t n = int64_t(x_.size());
  auto tournament = [&] {
    size_t best = size_t(uniform_int(rng, 0, n - 1));
    for (int t = 1; t < c.tournament_size; ++t) {
      const size_t other = size_t(uniform_int(rng, 0, n - 1));
      if (rank[other] < rank[best] || (rank[other] == rank[best] && crowd[other] > crowd[best])) best = other;
    }
    return best;
  };
  std::set<pagmo::vector_double> taken(x_.begin(), x_.end());
  for (const auto& [index, o] : offspring_) taken.insert(as_doubles(o.genome));
  for (int attempt = 0;; ++attempt) {
    if (attempt > 1000) throw std::runtime_error("no offspring within the budgets after many draws");
    const auto as_genome = [&](const pagmo::vector_double& v) {
      return decode(c.space, std::vector<int64_t>(v.begin(), v.end()));
    };
    auto children = crossover(c.space, as_genome(x_[tournament()]), as_genome(x_[tournament()]), c.crossover_points, rng);
    Genome child = canonical(c.space, mutate(c.space, children.first, c.mutation_rate, rng));
    if (!engine_.within_budget(child)) {
      engine_.count_over_budget();
      continue;
    }
    if (taken.count(as_doubles(child)) && attempt < 100) continue;
    return child;
  }
}

std::optional<Job> SteadyState::next() {
  if (to_evaluate_.empty()) return std::nullopt;
  const int64_t k = to_evaluate_.front();
  to_evaluate_.pop_front();
  const Genome& g = offspring_.at(k).genome;
  return Job{size_t(k), compile(engine_.config().space, g), g};
}

bool SteadyState::exhausted() const { return to_evaluate_.empty() && created_ >= total_; }

void SteadyState::finished(size_t id, EvalOutcome outcome) {
  Offspring& o = offspring_.at(int64_t(id));
  const int generation = int(int64_t(id) / per_generation_) + 1;
  o.fitness = engine_.objectives(engine_.record(o.genome, o.key, generation, std::move(outcome)));
  merge_ready();
}

// Merges, in offspring order, every result that is in; each merge lets one more offspring be bred.
void SteadyState::merge_ready() {
  for (auto it = offspring_.find(merged_); it != offspring_.end() && it->second.fitness; it = offspring_.find(merged_)) {
    std::vector<pagmo::vector_double> all_x = x_, all_f = f_;
    all_x.push_back(as_doubles(it->second.genome));
    all_f.push_back(*it->second.fitness);
    const auto best = pagmo::select_best_N_mo(all_f, x_.size());
    for (size_t i = 0; i < best.size(); ++i) x_[i] = all_x[best[i]], f_[i] = all_f[best[i]];
    offspring_.erase(it);
    ++merged_;
    while (created_ < std::min(total_, merged_ + int64_t(engine_.config().lag))) {
      const int64_t k = created_++;
      add(k, breed(k));
    }
    if (on_merged_) on_merged_(*this);
  }
}

std::vector<Genome> SteadyState::pending() const {
  std::vector<Genome> out;
  for (const auto& [k, o] : offspring_) out.push_back(o.genome);
  return out;
}

}  // namespace starsynth
