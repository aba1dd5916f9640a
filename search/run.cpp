#include "search/run.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <pagmo/algorithm.hpp>
#include <pagmo/algorithms/moead.hpp>
#include <pagmo/algorithms/nsga2.hpp>
#include <pagmo/batch_evaluators/member_bfe.hpp>
#include <pagmo/bfe.hpp>
#include <pagmo/problem.hpp>
#include <pagmo/utils/hypervolume.hpp>
#include <pagmo/utils/multi_objective.hpp>

#include "genome/presets.h"
#include "genome/variation.h"
#include "proto/messages.h"
#include "search/problem.h"
#include "search/star.h"
#include "search/steady.h"

namespace starsynth {

namespace fs = std::filesystem;

namespace {

// A language-modelling corpus that cannot be read would fail every evaluation of the search, one
// by one: say so before anything starts or is written. (The driver reads the path; workers on
// other hosts are expected to see the same files.)
void require_readable_corpus(const SearchConfig& config, const std::string& source) {
  const std::string& kind = config.message.task().kind();
  if (kind.rfind("lm:", 0) != 0) return;
  const fs::path corpus = kind.substr(3);
  std::string why;
  if (std::FILE* f = std::fopen(corpus.c_str(), "rb")) {
    if (!fs::is_regular_file(corpus)) why = "not a regular file";
    std::fclose(f);
  } else {
    why = std::strerror(errno);
  }
  if (why.empty()) return;
  if (corpus.is_relative()) why += "; relative to " + fs::current_path().string();
  throw LoadError(source + ": task.kind: cannot read the corpus " + corpus.string() + " (" + why + ")");
}

// When every evaluation of the initial population ends in "error" (an exception, not a diverged,
// out-of-memory or timed-out network), the setup is at fault, not the architectures: stop rather
// than evolve on penalties. The ledger does not keep errors, so --resume evaluates them again.
void require_a_working_evaluation(const Engine& engine, const std::vector<Genome>& initial, const std::string& dir) {
  const pb::JournalRecord* first = nullptr;
  for (const Genome& g : initial) {
    const pb::JournalRecord* r = engine.find(engine.key(g));
    if (!r || r->status() != "error") return;
    if (!first) first = r;
  }
  if (!first) return;
  throw std::runtime_error(dir + ": every evaluation of the initial population failed with an error, the first on " +
                           first->worker() + ": " + first->message() +
                           "; fix the cause, then continue with `starsynth search --resume " + dir +
                           "` (failed evaluations are tried again)");
}

using Clock = std::chrono::steady_clock;

std::string deterministic(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  return out;
}

std::string hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = int64_t(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

std::vector<double> reference_from(const std::vector<pagmo::vector_double>& f) {
  std::vector<double> ref(f.empty() ? 0 : f[0].size(), 0.0);
  for (size_t k = 0; k < ref.size(); ++k) {
    double worst = -std::numeric_limits<double>::infinity();
    for (const auto& p : f)
      if (p[k] < Engine::kPenalty / 2) worst = std::max(worst, p[k]);
    if (!std::isfinite(worst)) worst = 1.0;
    // A margin beyond the worst initial value, so that the initial front counts.
    ref[k] = worst + 0.1 * std::abs(worst) + 1e-9;
  }
  return ref;
}

struct Paths {
  fs::path dir;
  fs::path config() const { return dir / "config.textproto"; }
  fs::path journal() const { return dir / "journal.bin"; }
  fs::path checkpoint() const { return dir / "checkpoint.pb"; }
  fs::path progress() const { return dir / "progress.tsv"; }
  fs::path front() const { return dir / "front.tsv"; }
};

double utilisation(const pb::Counters& c) { return c.pool_capacity_s() > 0 ? c.pool_busy_s() / c.pool_capacity_s() : 0; }

std::string progress_tsv(const pb::Checkpoint& c) {
  std::ostringstream s;
  s << "generation\thypervolume\tfront_size\tevaluated\treused\tfailed\tover_budget\telapsed_s\tevaluations_per_hour\tpool_utilisation\n";
  for (const auto& r : c.progress()) {
    const double per_hour = r.elapsed_s() > 0 ? double(r.counters().evaluated()) * 3600.0 / r.elapsed_s() : 0;
    s << r.generation() << '\t' << r.hypervolume() << '\t' << r.front_size() << '\t' << r.counters().evaluated() << '\t'
      << r.counters().reused() << '\t' << r.counters().failed() << '\t' << r.counters().over_budget() << '\t'
      << r.elapsed_s() << '\t' << per_hour << '\t' << utilisation(r.counters()) << '\n';
  }
  return s.str();
}

pb::Counters to_pb(const EngineCounters& c) {
  pb::Counters p;
  p.set_evaluated(c.evaluated);
  p.set_reused(c.reused);
  p.set_failed(c.failed);
  p.set_over_budget(c.over_budget);
  p.set_pool_busy_s(c.pool_busy_s);
  p.set_pool_capacity_s(c.pool_capacity_s);
  return p;
}

EngineCounters from_pb(const pb::Counters& p) {
  return {p.evaluated(), p.reused(), p.failed(), p.over_budget(), p.pool_busy_s(), p.pool_capacity_s()};
}

std::vector<size_t> first_front(const std::vector<pagmo::vector_double>& f) {
  if (f.empty()) return {};
  auto fronts = std::get<0>(pagmo::fast_non_dominated_sorting(f));
  return {fronts[0].begin(), fronts[0].end()};
}

// What a person needs after stopping a run: what is safe and how to continue.
std::string resume_hint(const std::string& dir, const std::string& what, int checkpointed) {
  return dir + ": " + what + "; every finished evaluation is in journal.bin" +
         (checkpointed >= 0 ? " and generation " + std::to_string(checkpointed) + " in checkpoint.pb" : "") +
         ": continue with `starsynth search --resume " + dir + "`";
}

}  // namespace

double hypervolume_of(const std::vector<std::vector<double>>& points, const std::vector<double>& reference) {
  std::vector<pagmo::vector_double> inside;
  for (const auto& p : points) {
    bool dominated = true;
    for (size_t k = 0; k < p.size(); ++k) dominated = dominated && p[k] < reference[k];
    if (dominated) inside.push_back(p);
  }
  if (inside.empty()) return 0;
  return pagmo::hypervolume(inside, true).compute(reference);
}

RunSummary run_search(const std::string& config_or_dir, const RunOptions& options,
                      const std::function<Runner(const SearchConfig&)>& make_runner) {
  std::ostream& log = options.log ? *options.log : std::cerr;
  Paths paths;
  SearchConfig config;
  if (options.resume) {
    paths.dir = config_or_dir;
    if (!fs::exists(paths.config()))
      throw std::runtime_error(paths.dir.string() + ": not a run directory (no config.textproto)");
    config = load_search_config(paths.config().string());
    require_readable_corpus(config, paths.config().string());
  } else {
    config = load_search_config(config_or_dir);
    require_readable_corpus(config, config_or_dir);
    paths.dir = !options.dir.empty() ? options.dir
                : !config.message.run_dir().empty() ? config.message.run_dir()
                                                    : "runs/" + fs::path(config_or_dir).stem().string();
    bool same_run = false;
    if (fs::exists(paths.config())) {
      const SearchConfig existing = load_search_config(paths.config().string());
      if (deterministic(existing.message) != deterministic(config.message))
        throw std::runtime_error(paths.dir.string() + ": belongs to another search config (" +
                                 paths.config().string() + " differs); choose a new --run directory");
      // The same search again: carry on from where it stands (or report it, when finished).
      same_run = true;
      log << "continuing the run in " << paths.dir.string() << " (same config)\n";
    }
    if (!same_run) {
      fs::create_directories(paths.dir);
      write_file_atomic(paths.config().string(), print_message(config.message, Format::Text));
    }
  }

  std::vector<pb::JournalRecord> own;
  auto journal = std::make_shared<Journal>(paths.journal().string(), &own);
  if (journal->dropped_bytes() > 0)
    log << "journal: dropped a torn last record (" << journal->dropped_bytes() << " bytes)\n";
  auto engine = std::make_shared<Engine>(config, make_runner(config), journal);
  // A live line on a terminal while a generation's evaluations finish; plain lines elsewhere.
  const bool live = !options.log && ::isatty(2);
  if (live)
    engine->on_progress([](size_t done, size_t total, const PoolState& pool) {
      const int width = 30, filled = int(double(width) * double(done) / double(std::max<size_t>(total, 1)));
      // One character per worker (B busy, . idle, x lost) while they fit on a line.
      const std::string workers = pool.slots.size() <= 64 ? " [" + pool.slots + "]" : "";
      std::fprintf(stderr, "\r  [%s%s] %zu/%zu evaluations  workers%s %d busy %d idle %d lost  pool %.0f%%   ",
                   std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), '.').c_str(), done,
                   total, workers.c_str(), pool.busy, pool.workers - pool.busy, pool.lost, 100 * pool.utilisation());
      if (done == total) std::fprintf(stderr, "\r%*s\r", 200, "");
    });
  for (const std::string& prior : config.message.prior_journals()) engine->load(Journal::read(prior));
  engine->load(own);

  const SearchSpace& space = config.space;
  pagmo::problem prob{GenomeProblem(engine)};
  pagmo::population pop{prob};
  pb::Checkpoint checkpoint;
  Rng rng(config.seed);
  const auto started = Clock::now();
  double elapsed_before = 0;
  const bool have_checkpoint = fs::exists(paths.checkpoint());
  if (have_checkpoint) {
    if (!checkpoint.ParseFromString(read_file(paths.checkpoint().string())))
      throw std::runtime_error(paths.checkpoint().string() + ": unreadable checkpoint");
    for (const auto& ind : checkpoint.population())
      pop.push_back(pagmo::vector_double(ind.genes().begin(), ind.genes().end()),
                    pagmo::vector_double(ind.fitness().begin(), ind.fitness().end()));
    std::istringstream state(checkpoint.rng_state());
    state >> rng;
    engine->set_counters(from_pb(checkpoint.counters()));
    elapsed_before = checkpoint.elapsed_s();
    log << "resuming " << paths.dir.string() << " after generation " << checkpoint.generation() << " ("
        << own.size() << " evaluations journaled)\n";
  } else {
    // Generation 0: seeds first, then random valid genomes within the budgets.
    std::vector<Genome> initial;
    for (const std::string& preset : config.message.seed_presets()) initial.push_back(canonical(space, preset_genome(space, preset)));
    for (const std::string& file : config.message.seed_genomes()) {
      const GenomeFile f = load_genome(file);
      if (format_space(f.space, Format::Text) != format_space(space, Format::Text))
        throw LoadError(file + ": space: the seed genome belongs to another search space");
      initial.push_back(canonical(space, f.genome));
    }
    while (int(initial.size()) < config.population) {
      Genome g = canonical(space, random_genome(space, rng));
      if (!engine->within_budget(g)) {
        engine->count_over_budget();
        continue;
      }
      initial.push_back(std::move(g));
    }
    initial.resize(size_t(config.population));
    engine->set_generation(0);
    std::vector<std::vector<double>> fitness;
    try {
      fitness = engine->evaluate(initial);
    } catch (const Interrupted& e) {
      throw Interrupted(resume_hint(paths.dir.string(), e.what(), -1));
    }
    require_a_working_evaluation(*engine, initial, paths.dir.string());
    for (size_t i = 0; i < initial.size(); ++i) {
      const std::vector<int64_t> genes = encode(initial[i]);
      pop.push_back(pagmo::vector_double(genes.begin(), genes.end()), fitness[i]);
    }
    if (config.message.reference_point_size())
      checkpoint.mutable_reference_point()->Assign(config.message.reference_point().begin(),
                                                   config.message.reference_point().end());
    else
      for (double v : reference_from(pop.get_f())) checkpoint.add_reference_point(v);
  }
  const std::vector<double> reference(checkpoint.reference_point().begin(), checkpoint.reference_point().end());

  auto save = [&](int generation) {
    checkpoint.set_generation(generation);
    checkpoint.clear_population();
    for (size_t i = 0; i < pop.size(); ++i) {
      auto* ind = checkpoint.add_population();
      for (double v : pop.get_x()[i]) ind->add_genes(int32_t(std::llround(v)));
      for (double v : pop.get_f()[i]) ind->add_fitness(v);
    }
    std::ostringstream state;
    state << rng;
    checkpoint.set_rng_state(state.str());
    *checkpoint.mutable_counters() = to_pb(engine->counters());
    const double elapsed = elapsed_before + std::chrono::duration<double>(Clock::now() - started).count();
    checkpoint.set_elapsed_s(elapsed);
    const std::vector<pagmo::vector_double> f = pop.get_f();
    auto* row = checkpoint.add_progress();
    row->set_generation(generation);
    row->set_hypervolume(hypervolume_of(std::vector<std::vector<double>>(f.begin(), f.end()), reference));
    std::set<pagmo::vector_double> distinct;  // the same network may fill several places
    for (size_t i : first_front(f)) distinct.insert(pop.get_x()[i]);
    row->set_front_size(int32_t(distinct.size()));
    *row->mutable_counters() = checkpoint.counters();
    row->set_elapsed_s(elapsed);
    std::string bytes;
    checkpoint.SerializeToString(&bytes);
    write_file_atomic(paths.checkpoint().string(), bytes);
    write_file_atomic(paths.progress().string(), progress_tsv(checkpoint));
    const double per_gen = generation > 0 ? elapsed / generation : 0;
    const EngineCounters& c = engine->counters();
    char line[256];
    std::snprintf(line, sizeof line,
                  "gen %3d/%d  hv %.6g  front %d  evaluated %lld  reused %lld  failed %lld  over budget %lld  "
                  "%.0f evals/h  pool %.0f%%  ETA %s\n",
                  generation, config.generations, row->hypervolume(), row->front_size(),
                  static_cast<long long>(c.evaluated), static_cast<long long>(c.reused),
                  static_cast<long long>(c.failed), static_cast<long long>(c.over_budget),
                  elapsed > 0 ? double(c.evaluated) * 3600.0 / elapsed : 0.0, 100 * utilisation(checkpoint.counters()),
                  generation > 0 ? hms(per_gen * (config.generations - generation)).c_str() : "?");
    log << line << std::flush;
  };
  if (!have_checkpoint) save(0);

  // The algorithm, one generation per call so that a checkpoint follows each.
  const int first = int(checkpoint.generation()) + 1;
  star uda;
  pagmo::algorithm algo;
  if (config.algorithm == "star" || config.algorithm == "random") {
    StarParams p;
    p.elites = config.elites;
    p.crossover_points = config.crossover_points;
    p.mutation_rate = config.mutation_rate;
    p.tournament_size = config.tournament_size;
    p.random_search = config.algorithm == "random";
    uda = star(p, 0, space, [engine](const Genome& g) { return engine->within_budget(g); },
               [engine] { engine->count_over_budget(); });
    uda.set_bfe(pagmo::bfe{pagmo::member_bfe{}});
  } else if (config.algorithm == "nsga2") {
    // pagmo2's generator state cannot be checkpointed: a resumed run reseeds from the generation.
    pagmo::nsga2 a(1, 0.95, 10., config.mutation_rate, 50., unsigned(config.seed + uint64_t(first)));
    a.set_bfe(pagmo::bfe{pagmo::member_bfe{}});
    algo = pagmo::algorithm{a};
  } else {
    // Weights from a low-discrepancy sequence: grid weights exist only for particular sizes.
    algo = pagmo::algorithm{pagmo::moead(1, "low discrepancy", "tchebycheff",
                                         unsigned(std::max(1, std::min(20, config.population - 1))), 1.0, 0.5, 20., 0.9,
                                         2, true, unsigned(config.seed + uint64_t(first)))};
  }
  // One generation of the configured algorithm.
  auto evolve = [&] {
    if (config.algorithm == "star" || config.algorithm == "random") {
      // The run's one generator drives the algorithm, so the checkpoint captures it whole.
      std::ostringstream state;
      state << rng;
      uda.set_rng_state(state.str());
      pop = uda.evolve(pop);
      std::istringstream back(uda.rng_state());
      back >> rng;
    } else {
      pop = algo.evolve(pop);
      // moead proposes fractional genes: store what the problem evaluated, the canonical genome.
      for (size_t i = 0; i < pop.size(); ++i) {
        const std::vector<int64_t> genes = encode(GenomeProblem(engine).genome_of(pop.get_x()[i]));
        pop.set_xf(i, pagmo::vector_double(genes.begin(), genes.end()), pop.get_f()[i]);
      }
    }
  };
  if (config.steady_state) {
    // Offspring stream through the runner; a checkpoint after every population - elites merges.
    std::vector<Genome> pending;
    for (const auto& ind : checkpoint.pending())
      pending.push_back(decode(space, std::vector<int64_t>(ind.genes().begin(), ind.genes().end())));
    const EngineCounters before = engine->counters();
    PoolState latest;
    auto on_merged = [&](const SteadyState& s) {
      if (s.merged() % s.per_generation() != 0) return;
      for (size_t i = 0; i < s.x().size(); ++i) pop.set_xf(i, s.x()[i], s.f()[i]);
      checkpoint.set_merged(s.merged());
      checkpoint.clear_pending();
      for (const Genome& g : s.pending()) {
        auto* ind = checkpoint.add_pending();
        for (int64_t v : encode(g)) ind->add_genes(int32_t(v));
      }
      EngineCounters c = engine->counters();
      c.pool_busy_s = before.pool_busy_s + latest.busy_s;
      c.pool_capacity_s = before.pool_capacity_s + double(latest.workers + latest.lost) * latest.wall_s;
      engine->set_counters(c);
      save(int(s.merged() / s.per_generation()));
    };
    SteadyState steady(*engine, pop.get_x(), pop.get_f(), checkpoint.merged(), pending, on_merged);
    if (steady.merged() < steady.total()) {
      engine->runner()(steady, [&](size_t id, EvalOutcome o, const PoolState& pool) {
        latest = pool;
        steady.finished(id, std::move(o));
      });
      if (steady.merged() < steady.total() && !stop_requested())
        throw std::logic_error("steady state: the runner returned with offspring unmerged");
      if (steady.merged() < steady.total())
        throw Interrupted(resume_hint(paths.dir.string(), "stopped on request", int(checkpoint.generation())));
    }
  }
  for (int g = first; g <= config.generations && !config.steady_state; ++g) {
    engine->set_generation(g);
    try {
      evolve();
    } catch (const Interrupted& e) {
      throw Interrupted(resume_hint(paths.dir.string(), e.what(), g - 1));
    }
    save(g);
    if (stop_requested() && g < config.generations)
      throw Interrupted(resume_hint(paths.dir.string(), "stopped on request", g));
  }

  RunSummary summary;
  summary.dir = paths.dir.string();
  summary.generation = std::max(config.generations, int(checkpoint.generation()));
  summary.counters = engine->counters();
  const auto f = pop.get_f();
  summary.hypervolume = hypervolume_of(std::vector<std::vector<double>>(f.begin(), f.end()), reference);
  std::set<std::string> seen;
  for (size_t i : first_front(f)) {
    std::vector<int64_t> genes;
    for (double v : pop.get_x()[i]) genes.push_back(std::llround(v));
    FrontMember m;
    m.genome = decode(space, genes);
    m.objectives = f[i];
    const std::string key = engine->key(m.genome);
    if (!seen.insert(key).second) continue;  // the same network twice in the population
    m.record = engine->ledger().at(key);
    summary.front.push_back(std::move(m));
  }
  std::sort(summary.front.begin(), summary.front.end(),
            [](const FrontMember& a, const FrontMember& b) { return a.objectives < b.objectives; });
  write_file_atomic(paths.front().string(), front_table(config, summary));
  return summary;
}

std::string front_table(const SearchConfig& config, const RunSummary& run) {
  std::ostringstream s;
  s << "rank\tgenes";
  for (const std::string& o : config.objectives) s << '\t' << o;
  s << "\tlayout\n";
  for (size_t i = 0; i < run.front.size(); ++i) {
    const FrontMember& m = run.front[i];
    s << i << '\t' << to_string(m.genome);
    for (double v : m.objectives) s << '\t' << v;
    s << '\t' << summary(compile(config.space, m.genome)) << '\n';
  }
  return s.str();
}

}  // namespace starsynth
