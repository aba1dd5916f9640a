// Search runs end to end with the synthetic surrogate evaluator: kill and resume give the same
// front and journal as an uninterrupted run, the ledger reuses earlier runs' results, budgets are
// enforced before training, run directories are guarded, and bad configs name their field.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <fstream>
#include <set>
#include <thread>

#include "genome/metrics.h"
#include "genome/presets.h"
#include "proto/formats.h"
#include "search/config.h"
#include "search/journal.h"
#include "search/run.h"
#include "search/synthetic.h"

namespace starsynth {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("starsynth-search-" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

std::string config_text(int population, int generations, double delay, const std::string& extra = "") {
  return "space { num_livs: 8 width: 64 vocab_size: 64 }\n"
         "task { kind: \"synthetic:surrogate\" synthetic_delay_s: " +
         std::to_string(delay) + " }\nobjectives: [\"quality\", \"params\", \"cache\"]\nalgorithm { population: " +
         std::to_string(population) + " generations: " + std::to_string(generations) +
         " }\nseed: 11\nseed_presets: [\"transformer++\"]\n" + extra;
}

fs::path write_config(const std::string& name, const std::string& text) {
  const fs::path p = scratch(name + ".textproto");
  std::ofstream(p) << text;
  return p;
}

std::ostringstream quiet;

RunSummary run(const std::string& source, const std::string& dir, bool resume = false) {
  RunOptions o;
  o.dir = dir;
  o.resume = resume;
  o.log = &quiet;
  return run_search(source, o, [](const SearchConfig& c) { return thread_pool_runner(synthetic_evaluator(c), c.workers); });
}

// `starsynth search` in a child process, its output discarded: a new run of `config` in `dir`, or
// the resumption of the run `dir` already holds.
pid_t start_search(const fs::path& config, const fs::path& dir) {
  const bool resume = fs::exists(dir / "config.textproto");
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    const std::string d = dir.string(), c = config.string();
    if (resume)
      execl(STARSYNTH_CLI, STARSYNTH_CLI, "search", "--resume", d.c_str(), static_cast<char*>(nullptr));
    else
      execl(STARSYNTH_CLI, STARSYNTH_CLI, "search", c.c_str(), "--run", d.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// What must not change between an interrupted and an uninterrupted run: every record's key,
// status, objectives and metrics (not its completion order, wall time or sequence number).
std::set<std::string> journal_content(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& r : Journal::read((dir / "journal.bin").string())) {
    std::ostringstream s;
    s << r.key() << ' ' << r.status();
    for (double v : r.objectives()) s << ' ' << v;
    for (const auto& [k, v] : std::map<std::string, double>(r.metrics().begin(), r.metrics().end())) s << ' ' << k << '=' << v;
    out.insert(s.str());
  }
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(SearchRun, KilledAtRandomPointsAndResumedItEndsAsIfNeverInterrupted) {
  // About 2 s of evaluations: kills land during and between generations, and in the middle of
  // journal writes now and then.
  const fs::path cfg = write_config("kill", config_text(8, 20, 0.03, "workers: 2\n"));
  const fs::path whole = scratch("whole"), killed = scratch("killed");
  const RunSummary reference = run(cfg.string(), whole.string());
  ASSERT_EQ(reference.generation, 20);

  const size_t total = Journal::read((whole / "journal.bin").string()).size();
  std::mt19937 rng(5);
  int kills = 0, torn = 0, mid_run = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const pid_t pid = start_search(cfg, killed);
    // Start-up (about 0.6 s, far more on a loaded machine) is not what this test is about: wait
    // for the process to journal something new, then kill at a random moment of its work.
    const auto journal_bytes = [&] { return fs::exists(killed / "journal.bin") ? fs::file_size(killed / "journal.bin") : 0; };
    const uintmax_t before = journal_bytes();
    int status = 0;
    bool exited = false;
    for (int waited = 0; waited < 3000 && journal_bytes() == before && !exited; ++waited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      exited = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 700)(rng)));
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    kills += WIFSIGNALED(status);
    const size_t held = fs::exists(killed / "journal.bin") ? Journal::read((killed / "journal.bin").string()).size() : 0;
    mid_run += held > 0 && held < total;
    std::printf("launch %d: %s, journal holds %zu of %zu evaluations\n", attempt,
                WIFSIGNALED(status) ? "killed" : "finished", held, total);
    // Now and then a torn record, as if the kill had hit the middle of a write.
    if (attempt % 3 == 1 && fs::exists(killed / "journal.bin")) {
      std::ofstream(killed / "journal.bin", std::ios::app) << std::string("\x40\x00\x00\x00garbage", 11);
      ++torn;
    }
  }
  ASSERT_GE(kills, 3);
  ASSERT_GE(mid_run, 2);  // killed with part of the work journaled
  const RunSummary resumed = run(killed.string(), "", true);
  EXPECT_EQ(slurp(killed / "front.tsv"), slurp(whole / "front.tsv"));
  EXPECT_EQ(journal_content(killed), journal_content(whole));
  EXPECT_EQ(resumed.hypervolume, reference.hypervolume);
  EXPECT_GT(torn, 0);
}

// An evaluator that fails for every network (it throws, as a missing GPU or corpus would) stops the
// search after the initial population, naming the first error; once the cause is fixed, --resume
// evaluates those networks again and the run ends as one that never failed.
TEST(SearchRun, AnEvaluatorFailingEverywhereStopsTheSearchAndResumeTriesAgain) {
  const fs::path cfg = write_config("failing", config_text(8, 2, 0));
  const fs::path dir = scratch("failing-run"), whole = scratch("failing-whole");
  RunOptions o;
  o.dir = dir.string();
  o.log = &quiet;
  const Evaluator broken = [](const ModelSpec&, const Genome&) -> EvalOutcome {
    throw std::runtime_error("CUDA is not available here");
  };
  try {
    run_search(cfg.string(), o, [&](const SearchConfig&) { return thread_pool_runner(broken, 1); });
    FAIL() << "the search should have stopped";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir.string() + ": every evaluation of the initial population failed with an error, the first on "
                             "thread-0: CUDA is not available here; fix the cause, then continue with `starsynth "
                             "search --resume " + dir.string() + "` (failed evaluations are tried again)");
  }
  EXPECT_FALSE(fs::exists(dir / "checkpoint.pb"));
  ASSERT_EQ(Journal::read((dir / "journal.bin").string()).size(), 8u);

  run(dir.string(), dir.string(), /*resume=*/true);
  run(cfg.string(), whole.string());
  std::set<std::string> resumed;
  for (const std::string& r : journal_content(dir))
    if (r.find(" error") == std::string::npos) resumed.insert(r);
  EXPECT_EQ(resumed, journal_content(whole));
  EXPECT_EQ(journal_content(dir).size(), resumed.size() + 8);
  EXPECT_EQ(slurp(dir / "front.tsv"), slurp(whole / "front.tsv"));

  // A few failures among working evaluations are the networks' own business: the search goes on.
  const fs::path mixed = scratch("failing-mixed");
  o.dir = mixed.string();
  auto count = std::make_shared<std::atomic<int>>(0);
  const SearchConfig config = load_search_config(cfg.string());
  const Evaluator sometimes = [count, good = synthetic_evaluator(config)](const ModelSpec& spec, const Genome& g) {
    if (++*count % 3 == 0) throw std::runtime_error("flaky");
    return good(spec, g);
  };
  EXPECT_EQ(run_search(cfg.string(), o, [&](const SearchConfig&) { return thread_pool_runner(sometimes, 1); }).generation, 2);
}

// Ctrl-C: the search hands out nothing new, waits for the evaluations in flight (journaled, so
// the journal ends on a whole record), says how to continue and exits 130; resumed, the run ends
// as if never interrupted.
TEST(SearchRun, CtrlCStopsAfterTheEvaluationsInFlightAndTheRunResumes) {
  const fs::path cfg = write_config("ctrl-c", config_text(8, 20, 0.03, "workers: 2\n"));
  const fs::path whole = scratch("ctrl-c-whole"), stopped = scratch("ctrl-c-stopped"), err = scratch("ctrl-c.err");
  run(cfg.string(), whole.string());
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    const std::string dir = stopped.string(), config = cfg.string();
    execl(STARSYNTH_CLI, STARSYNTH_CLI, "search", config.c_str(), "--run", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Mid-run: a few generations checkpointed, evaluations running.
  for (int waited = 0; slurp(stopped / "progress.tsv").find("\n3\t") == std::string::npos; ++waited) {
    ASSERT_LT(waited, 6000) << "the search never reached generation 3: " << slurp(err);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const std::string said = slurp(err);
  EXPECT_NE(said.find("stopping: no new evaluations; waiting for those in flight"), std::string::npos) << said;
  EXPECT_NE(said.find("stopped: " + stopped.string() + ": "), std::string::npos) << said;
  EXPECT_NE(said.find("continue with `starsynth search --resume " + stopped.string() + "`"), std::string::npos) << said;
  int64_t whole_bytes = 0;
  const size_t held = Journal::read((stopped / "journal.bin").string(), &whole_bytes).size();
  EXPECT_EQ(whole_bytes, int64_t(fs::file_size(stopped / "journal.bin")));  // no torn record
  EXPECT_LT(held, Journal::read((whole / "journal.bin").string()).size());
  run(stopped.string(), "", true);
  EXPECT_EQ(slurp(stopped / "front.tsv"), slurp(whole / "front.tsv"));
  EXPECT_EQ(journal_content(stopped), journal_content(whole));
}

// --stop-after: a wall-time budget. Spent, the search stops as on Ctrl-C (nothing in flight lost,
// --resume continues to the same end) but exits 0, since stopping there was the plan.
TEST(SearchRun, StopAfterEndsTheSearchOnTimeAndTheRunResumes) {
  const fs::path cfg = write_config("stop-after", config_text(8, 20, 0.05, "workers: 2\n"));
  const fs::path whole = scratch("stop-after-whole"), stopped = scratch("stop-after-run"), err = scratch("stop-after.err");
  run(cfg.string(), whole.string());
  const std::string command = std::string(STARSYNTH_CLI) + " search " + cfg.string() + " --run " + stopped.string() +
                              " --stop-after 1s >" + err.string() + " 2>&1";
  const int status = std::system(command.c_str());  // uninterrupted: (8 + 20 × 8) × 0.05 s / 2 workers ≈ 4 s
  ASSERT_TRUE(WIFEXITED(status)) << slurp(err);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(err);
  const std::string said = slurp(err);
  EXPECT_NE(said.find("stopping: the --stop-after budget of 1 s is spent"), std::string::npos) << said;
  EXPECT_NE(said.find("continue with `starsynth search --resume " + stopped.string() + "`"), std::string::npos) << said;
  EXPECT_LT(Journal::read((stopped / "journal.bin").string()).size(),
            Journal::read((whole / "journal.bin").string()).size());
  run(stopped.string(), "", true);
  EXPECT_EQ(slurp(stopped / "front.tsv"), slurp(whole / "front.tsv"));
  EXPECT_EQ(journal_content(stopped), journal_content(whole));

  const std::string bad = std::string(STARSYNTH_CLI) + " search " + cfg.string() + " --stop-after 5x 2>" + err.string();
  const int rc = std::system(bad.c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  EXPECT_NE(slurp(err).find("--stop-after: expected a duration > 0 such as 900, 15m or 2h, got \"5x\""),
            std::string::npos)
      << slurp(err);
}

// The steady-state mode breeds each offspring from a population fixed by the offspring's index, so
// neither timing nor the number of workers changes what it finds, and a run killed at random
// moments resumes to the very same journal and front.
TEST(SteadyState, TheSameRunWhateverTheWorkersAndAfterKills) {
  const std::string steady = "algorithm { population: 8 generations: 12 steady_state: true lag: 12 }\n";
  std::string one = config_text(8, 12, 0.02, "workers: 1\n"), three = config_text(8, 12, 0.02, "workers: 3\n");
  for (std::string* text : {&one, &three}) text->replace(text->find("algorithm {"), text->find('\n', text->find("algorithm {")) - text->find("algorithm {") + 1, steady);
  const fs::path cfg1 = write_config("steady-1", one), cfg3 = write_config("steady-3", three);
  const fs::path a = scratch("steady-a"), b = scratch("steady-b"), killed = scratch("steady-killed");
  const RunSummary ra = run(cfg1.string(), a.string());
  run(cfg3.string(), b.string());
  ASSERT_EQ(ra.generation, 12);
  EXPECT_EQ(slurp(a / "front.tsv"), slurp(b / "front.tsv"));
  EXPECT_EQ(journal_content(a), journal_content(b));
  // 8 initial evaluations and 6 offspring per generation (population - 2 elites), less those the
  // ledger answered.
  const auto& c = ra.counters;
  EXPECT_EQ(c.evaluated + c.reused, 8 + 12 * 6);

  std::mt19937 rng(9);
  int mid_run = 0;
  const size_t total = Journal::read((b / "journal.bin").string()).size();
  for (int attempt = 0; attempt < 5; ++attempt) {
    const pid_t pid = start_search(cfg3, killed);
    // Once the search runs (start-up takes a while on a loaded machine), at a random moment.
    for (int waited = 0; waited < 3000 && !fs::exists(killed / "checkpoint.pb"); ++waited)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    const size_t held = fs::exists(killed / "journal.bin") ? Journal::read((killed / "journal.bin").string()).size() : 0;
    mid_run += held > 0 && held < total;
  }
  EXPECT_GE(mid_run, 2);
  run(killed.string(), "", true);
  EXPECT_EQ(slurp(killed / "front.tsv"), slurp(b / "front.tsv"));
  EXPECT_EQ(journal_content(killed), journal_content(b));
}

TEST(SearchRun, TheLedgerReusesEarlierRunsAndNeverTrainsTwice) {
  const fs::path cfg = write_config("ledger", config_text(8, 4, 0));
  const fs::path first = scratch("first"), second = scratch("second");
  const RunSummary a = run(cfg.string(), first.string());
  EXPECT_GT(a.counters.evaluated, 8);
  // Every record of a run has a distinct key: nothing was trained twice.
  std::set<std::string> keys;
  for (const auto& r : Journal::read((first / "journal.bin").string())) EXPECT_TRUE(keys.insert(r.key()).second);
  const fs::path cfg2 =
      write_config("ledger2", config_text(8, 4, 0, "prior_journals: [\"" + (first / "journal.bin").string() + "\"]\n"));
  const RunSummary b = run(cfg2.string(), second.string());
  EXPECT_EQ(b.counters.evaluated, 0);
  EXPECT_EQ(slurp(second / "front.tsv"), slurp(first / "front.tsv"));
}

TEST(SearchRun, OffspringOverBudgetAreNeverTrained) {
  // A parameter budget below Transformer++'s (the seed preset is dropped: seeds obey no budget).
  const std::string seeds = "seed_presets: [\"transformer++\"]\n";
  std::string text = config_text(8, 6, 0);
  const SearchConfig probe = parse_search_config(text, "probe");
  const int64_t limit = count_parameters(compile(probe.space, preset_genome(probe.space, "transformer++"))).total * 9 / 10;
  text.replace(text.find(seeds), seeds.size(), "budgets { max_params: " + std::to_string(limit) + " }\n");
  const fs::path cfg = write_config("budget", text);
  const fs::path dir = scratch("budget-run");
  const RunSummary r = run(cfg.string(), dir.string());
  EXPECT_GT(r.counters.over_budget, 0);
  const auto records = Journal::read((dir / "journal.bin").string());
  EXPECT_GT(records.size(), 8u);
  for (const auto& rec : records) EXPECT_LE(rec.metrics().at("params"), double(limit));
}

TEST(SearchRun, PagmosAlgorithmsAndRandomSearchRunOnTheSameProblem) {
  for (const std::string name : {"nsga2", "moead", "random"}) {
    const fs::path cfg = write_config("alg-" + name, config_text(8, 3, 0, "") + "");
    std::string text = slurp(cfg);
    text.replace(text.find("algorithm { "), 12, "algorithm { name: \"" + name + "\" ");
    std::ofstream(cfg) << text;
    const RunSummary r = run(cfg.string(), scratch("alg-run-" + name).string());
    EXPECT_EQ(r.generation, 3) << name;
    EXPECT_FALSE(r.front.empty()) << name;
    EXPECT_GT(r.hypervolume, 0) << name;
  }
}

TEST(SearchRun, ARunDirectoryIsGuarded) {
  const fs::path cfg = write_config("guard", config_text(8, 1, 0));
  const fs::path dir = scratch("guard-run");
  const RunSummary first = run(cfg.string(), dir.string());
  // The same config again continues the run, here already finished: nothing is evaluated.
  const RunSummary again = run(cfg.string(), dir.string());
  EXPECT_EQ(again.hypervolume, first.hypervolume);
  EXPECT_EQ(again.counters.evaluated, first.counters.evaluated);
  const fs::path other = write_config("guard-other", config_text(8, 2, 0));
  try {
    run(other.string(), dir.string());
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), dir.string() + ": belongs to another search config (" + dir.string() +
                                         "/config.textproto differs); choose a new --run directory");
  }
  EXPECT_THROW(run(scratch("nothing").string(), "", true), std::runtime_error);
}

// Two workers, three evaluations of 0.3 s: the batch takes two rounds (0.6 s), the workers are busy
// 0.9 of the 1.2 worker-seconds offered, so the pool's utilisation is 3/4, the rest lost to the
// generational barrier. The last report shows every worker idle again.
TEST(PoolState, AThreadPoolReportsItsWorkersAndItsUtilisation) {
  const Evaluator sleeper = [](const ModelSpec&, const Genome&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return EvalOutcome{};
  };
  const SearchSpace space = preset_space(4, 64, 64);
  const Genome g = preset_genome(space, "transformer++");
  const std::vector<std::pair<ModelSpec, Genome>> jobs(3, {compile(space, g), g});
  std::vector<PoolState> seen;
  run_batch(thread_pool_runner(sleeper, 2), jobs, [&](size_t, EvalOutcome, const PoolState& p) { seen.push_back(p); });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].workers, 2);
  EXPECT_EQ(seen[0].busy, 1);  // the other evaluation of the first round still runs
  EXPECT_EQ(seen[0].slots.size(), 2u);
  EXPECT_EQ(std::count(seen[0].slots.begin(), seen[0].slots.end(), 'B'), 1);
  const PoolState& last = seen.back();
  EXPECT_EQ(last.busy, 0);
  EXPECT_EQ(last.slots, "..");
  EXPECT_NEAR(last.busy_s, 0.9, 0.1);
  EXPECT_NEAR(last.utilisation(), 0.75, 0.08);
}

TEST(SearchConfigErrors, EachBadConfigNamesItsField) {
  const std::string space = "space { num_livs: 4 width: 64 vocab_size: 64 }\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"task { kind: \"mad\" }", "space: missing: the search space (num_livs, width, vocab_size, alphabet)"},
      {space + "objectives: [\"accuracy\"]",
       "objectives[0]: expected one of quality, params, cache, flops, tokens_per_s, peak_memory, got \"accuracy\""},
      {space + "objectives: [\"params\", \"params\"]", "objectives[0]: objective \"params\" is listed twice"},
      {space + "algorithm { name: \"cmaes\" }",
       "algorithm.name: expected \"star\", \"nsga2\", \"moead\" or \"random\", got \"cmaes\""},
      {space + "algorithm { name: \"nsga2\" population: 10 }",
       "algorithm.population: expected a multiple of 4 of at least 8 for nsga2, got 10"},
      {space + "algorithm { population: 4 elites: 4 }", "algorithm.elites: expected 0 to population - 1 (3), got 4"},
      {space + "algorithm { mutation_rate: 1.5 }", "algorithm.mutation_rate: expected a probability in [0, 1]"},
      {space + "training { steps: -5 }", "training.steps: expected a positive number of steps"},
      {space + "task { kind: \"imagenet\" }",
       "task.kind: expected mad, mad:<task>, mqar, lm:<file> or synthetic:<name>, got \"imagenet\""},
      {space + "budgets { max_params: -1 }", "budgets.max_params: expected 0 (no limit) or a positive count"},
      {space + "reference_point: [1, 2, 3]", "reference_point: expected one value per objective (2), got 3"},
      {space + "seed_presets: [\"gpt5\"]",
       "seed_presets[0]: unknown preset \"gpt5\" (known: transformer++, striped-mamba, striped-hyena2, recurrent)"},
      {"space { num_livs: 4 width: 0 vocab_size: 64 }", "space.width: expected a positive width, got 0"},
      {space + "workers: -2", "workers: expected at least 1"},
      {space + "algorithm { name: \"nsga2\" population: 8 steady_state: true }",
       "algorithm.steady_state: only the star algorithm has a steady-state mode, not \"nsga2\""},
      {space + "algorithm { steady_state: true lag: -3 }", "algorithm.lag: expected at least 1, got -3"},
  };
  for (const auto& [text, expected] : cases) {
    try {
      parse_search_config(text, "c.textproto");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const LoadError& e) {
      EXPECT_EQ(std::string(e.what()), "c.textproto: " + expected);
    }
  }
}

}  // namespace
}  // namespace starsynth
