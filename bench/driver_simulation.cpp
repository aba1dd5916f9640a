// The MPI driver's loop as a discrete-event simulation, calibrated on measurements, to say how a
// search would use 1,024 workers with 60 s evaluations — more ranks than any machine here has.
//
// Model (cluster/mpi.cpp's mpi_runner): one generation is a batch of P evaluations; the driver is
// a single server that spends `overhead` per evaluation (half handing it out, half taking its
// result: receive, ledger, journal append with fsync — the measured 0.82 ms per evaluation covers
// selection and checkpoints too); each idle worker gets the next evaluation (dynamic dispatch); the
// next generation starts when the batch's last result is in (the generational barrier).
// Evaluation times are drawn from a journal of real evaluations (their wall_s, rescaled to the
// chosen mean) or from a log-normal of a given coefficient of variation.
//
//   driver_simulation [--journal FILE]... [--mean S] [--cv X] [--overhead-ms MS] [--generations G]
//   driver_simulation --check FILE --workers W --population P   (replays a measured run)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "search/journal.h"

namespace {

struct Result {
  double efficiency;   // worker-seconds evaluating / worker-seconds offered
  double driver_busy;  // fraction of the wall time the driver spent on its own work
  double wall_s;
};

// `durations` draws one evaluation time.
template <class Draw>
Result simulate(int workers, int population, int generations, double overhead_s, Draw&& durations) {
  double t = 0, driver_free = 0, evaluating = 0, driver_work = 0;
  const double half = overhead_s / 2;
  for (int g = 0; g < generations; ++g) {
    // (finish time) of each evaluation running; the driver hands out the first min(W, P) in turn.
    std::priority_queue<double, std::vector<double>, std::greater<>> running;
    int next = 0;
    auto hand_out = [&](double when) {
      driver_free = std::max(driver_free, when) + half;
      driver_work += half;
      const double d = durations();
      evaluating += d;
      running.push(driver_free + d);
      ++next;
    };
    while (next < std::min(workers, population)) hand_out(t);
    while (!running.empty()) {
      const double done = running.top();
      running.pop();
      driver_free = std::max(driver_free, done) + half;  // take the result
      driver_work += half;
      if (next < population) hand_out(driver_free);
    }
    t = driver_free;  // the barrier: the next generation starts after the last result
  }
  return {evaluating / (double(workers) * t), driver_work / t, t};
}

// The steady-state mode (search/steady.h): results merge in offspring order; offspring k exists
// once k - lag + 1 results are merged, so a worker waits only when the evaluation `lag` places back
// is still running. `total` offspring in all.
template <class Draw>
Result simulate_steady(int workers, int64_t lag, int64_t total, double overhead_s, Draw&& durations) {
  const double half = overhead_s / 2;
  double driver_free = 0, evaluating = 0, driver_work = 0;
  std::priority_queue<std::pair<double, int64_t>, std::vector<std::pair<double, int64_t>>, std::greater<>> running;
  std::vector<char> arrived(size_t(total), 0);
  int64_t merged = 0, dispatched = 0;
  int idle = workers;
  auto dispatch = [&](double when) {
    while (idle > 0 && dispatched < std::min(total, merged + lag)) {
      driver_free = std::max(driver_free, when) + half;
      driver_work += half;
      const double d = durations();
      evaluating += d;
      running.push({driver_free + d, dispatched++});
      --idle;
    }
  };
  dispatch(0);
  while (!running.empty()) {
    const auto [done, k] = running.top();
    running.pop();
    driver_free = std::max(driver_free, done) + half;
    driver_work += half;
    ++idle;
    arrived[size_t(k)] = 1;
    while (merged < total && arrived[size_t(merged)]) ++merged;
    dispatch(driver_free);
  }
  return {evaluating / (double(workers) * driver_free), driver_work / driver_free, driver_free};
}

std::vector<double> journal_durations(const std::vector<std::string>& files) {
  std::vector<double> d;
  for (const auto& f : files)
    for (const auto& r : starsynth::Journal::read(f))
      if (r.status() == "ok" && r.wall_s() > 0) d.push_back(r.wall_s());
  return d;
}

double arg(int argc, char** argv, const char* name, double fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return std::atof(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> journals;
  std::string check;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--journal") journals.push_back(argv[i + 1]);
    if (std::string(argv[i]) == "--check") check = argv[i + 1];
  }
  const double overhead_s = arg(argc, argv, "--overhead-ms", 0.82) / 1000;
  std::mt19937_64 rng(uint64_t(arg(argc, argv, "--seed", 1)));

  if (!check.empty()) {
    // Replays a measured run: its own evaluation times, its workers and population.
    const std::vector<double> d = journal_durations({check});
    const int workers = int(arg(argc, argv, "--workers", 1)), population = int(arg(argc, argv, "--population", 16));
    const int generations = int(std::lround(double(d.size()) / population));
    size_t k = 0;
    const Result r = simulate(workers, population, generations, overhead_s, [&] { return d[k++ % d.size()]; });
    std::printf("%s: %zu evaluations, %d workers, population %d: simulated pool utilisation %.1f %%\n", check.c_str(),
                d.size(), workers, population, 100 * r.efficiency);
    return 0;
  }

  const double mean = arg(argc, argv, "--mean", 60);
  const int generations = int(arg(argc, argv, "--generations", 18));
  std::vector<double> measured = journal_durations(journals);
  double cv = arg(argc, argv, "--cv", 0.3);
  std::string source;
  if (!measured.empty()) {
    double m = 0, v = 0;
    for (double x : measured) m += x;
    m /= double(measured.size());
    for (double& x : measured) v += (x - m) * (x - m), x *= mean / m;
    cv = std::sqrt(v / double(measured.size())) / m;
    source = std::to_string(measured.size()) + " measured evaluation times rescaled to a mean of " +
             std::to_string(int(mean)) + " s (coefficient of variation " + std::to_string(cv).substr(0, 4) + ")";
  } else {
    source = "log-normal evaluation times, mean " + std::to_string(int(mean)) + " s, coefficient of variation " +
             std::to_string(cv).substr(0, 4);
  }
  const double sigma = std::sqrt(std::log(1 + cv * cv)), mu = std::log(mean) - sigma * sigma / 2;
  std::lognormal_distribution<double> lognormal(mu, sigma);
  std::uniform_int_distribution<size_t> pick(0, measured.empty() ? 0 : measured.size() - 1);
  auto draw = [&] { return measured.empty() ? lognormal(rng) : measured[pick(rng)]; };

  std::printf("driver overhead %.2f ms per evaluation; %s; %d generations\n\n", overhead_s * 1000, source.c_str(),
              generations);
  std::printf("%8s %11s %10s %12s %12s %14s\n", "workers", "population", "pop/work", "efficiency", "driver busy",
              "hours/search");
  for (int workers : {16, 64, 256, 1024})
    for (int ratio : {1, 2, 4, 8, 16}) {
      const Result r = simulate(workers, workers * ratio, generations, overhead_s, draw);
      std::printf("%8d %11d %10d %11.1f%% %11.2f%% %14.1f\n", workers, workers * ratio, ratio, 100 * r.efficiency,
                  100 * r.driver_busy, r.wall_s / 3600);
    }
  // The steady-state mode (algorithm { steady_state: true lag: L }), population = workers, the same
  // number of offspring as the generational rows with population = workers.
  std::printf("\nsteady state (population = workers, %d x population offspring):\n", generations);
  std::printf("%8s %8s %12s %12s %14s\n", "workers", "lag", "efficiency", "driver busy", "hours/search");
  for (int workers : {16, 64, 256, 1024})
    for (int lag_ratio : {1, 2, 4}) {
      const Result r = simulate_steady(workers, int64_t(lag_ratio) * workers, int64_t(generations) * workers, overhead_s, draw);
      std::printf("%8d %8d %11.1f%% %11.2f%% %14.1f\n", workers, lag_ratio * workers, 100 * r.efficiency,
                  100 * r.driver_busy, r.wall_s / 3600);
    }
  // Where the driver itself becomes the limit: evaluations so short that W / mean exceeds 1 / overhead.
  std::printf("the driver saturates near %.0f evaluations per second (1 / overhead): at %.0f s per evaluation "
              "that is %.0f workers\n",
              1 / overhead_s, mean, mean / overhead_s);
  return 0;
}
