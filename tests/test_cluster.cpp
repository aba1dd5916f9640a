// `mpirun -np 4 starsynth search` on the CPU with the synthetic evaluator: the same front and
// journal as the in-process run with the same seed; a worker that throws, diverges, times out or
// hangs is recorded with its cause and the search completes; a killed rank ends the job, and the
// run resumes from its directory with nothing lost.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "search/journal.h"

namespace starsynth {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("starsynth-cluster-" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a shell command; returns its exit status, its output in `out`.
int sh(const std::string& command, std::string* out = nullptr) {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  const fs::path log = scratch("sh.log");
  const int status = std::system((command + " >" + log.string() + " 2>&1").c_str());
  if (out) *out = slurp(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string mpirun(int ranks) {
  return std::string(STARSYNTH_MPIEXEC) + " --oversubscribe -np " + std::to_string(ranks) + " " + STARSYNTH_CLI;
}

fs::path config(const std::string& name, const std::string& extra) {
  const fs::path p = scratch(name + ".textproto");
  std::ofstream(p) << "space { num_livs: 8 width: 64 vocab_size: 64 }\n"
                      "task { kind: \"synthetic:surrogate\" synthetic_delay_s: 0.01 }\n"
                      "training { timeout_s: 0.05 }\n"
                      "objectives: [\"quality\", \"params\", \"cache\"]\n"
                      "algorithm { population: 8 generations: 5 }\nseed: 3\n"
                   << extra;
  return p;
}

std::set<std::string> journal_content(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& r : Journal::read((dir / "journal.bin").string())) {
    std::ostringstream s;
    s << r.key() << ' ' << r.status();
    for (double v : r.objectives()) s << ' ' << v;
    out.insert(s.str());
  }
  return out;
}

TEST(Cluster, FourRanksFindTheSameFrontAsTheInProcessRun) {
  const fs::path cfg = config("same", ""), ranks = scratch("ranks"), local = scratch("local");
  std::string out;
  ASSERT_EQ(sh(mpirun(4) + " search " + cfg.string() + " --run " + ranks.string(), &out), 0) << out;
  ASSERT_EQ(sh(std::string(STARSYNTH_CLI) + " search " + cfg.string() + " --run " + local.string(), &out), 0) << out;
  EXPECT_EQ(slurp(ranks / "front.tsv"), slurp(local / "front.tsv"));
  EXPECT_EQ(journal_content(ranks), journal_content(local));
  // Dynamic dispatch really spread the work: every worker rank evaluated something.
  std::set<std::string> workers;
  for (const auto& r : Journal::read((ranks / "journal.bin").string())) workers.insert(r.worker().substr(0, 6));
  EXPECT_EQ(workers, (std::set<std::string>{"rank 1", "rank 2", "rank 3"}));
}

// The steady-state mode streams offspring to the workers with no generational barrier; what it
// finds depends on neither timing nor the number of ranks.
TEST(Cluster, TheSteadyStateModeFindsTheSameFrontAsTheInProcessRun) {
  fs::path cfg = config("steady", "");
  std::string text = slurp(cfg);
  text.replace(text.find("generations: 5 }"), 16, "generations: 8 steady_state: true lag: 16 }");
  std::ofstream(cfg) << text;
  const fs::path ranks = scratch("steady-ranks"), local = scratch("steady-local");
  std::string out;
  ASSERT_EQ(sh(mpirun(4) + " search " + cfg.string() + " --run " + ranks.string(), &out), 0) << out;
  ASSERT_EQ(sh(std::string(STARSYNTH_CLI) + " search " + cfg.string() + " --run " + local.string(), &out), 0) << out;
  EXPECT_EQ(slurp(ranks / "front.tsv"), slurp(local / "front.tsv"));
  EXPECT_EQ(journal_content(ranks), journal_content(local));
  EXPECT_NE(slurp(ranks / "progress.tsv").find("\n8\t"), std::string::npos);
}

TEST(Cluster, FailingWorkersAreRecordedWithTheirCauseAndTheSearchCompletes) {
  const fs::path cfg = config("faults",
                              "cluster { deadline_s: 1.5 }\n"
                              "faults { rank: 1 on_evaluation: 2 kind: \"throw\" }\n"
                              "faults { rank: 2 on_evaluation: 1 kind: \"nan\" }\n"
                              "faults { rank: 3 on_evaluation: 2 kind: \"timeout\" }\n"
                              "faults { rank: 2 on_evaluation: 3 kind: \"hang\" }\n");
  const fs::path run = scratch("faults-run");
  std::string out;
  // A lost worker can never be told to stop, so the job ends with MPI_Abort once the run is
  // complete; mpirun's exit status then reflects the teardown (sometimes a rank's signal), not the
  // search. What counts is that the run finished and says so.
  sh(mpirun(4) + " search " + cfg.string() + " --run " + run.string(), &out);
  EXPECT_NE(out.find("some workers were lost and cannot be stopped: ending the MPI job"), std::string::npos) << out;
  EXPECT_NE(out.find("worker rank 2 silent for more than 1.5 s: marked lost"), std::string::npos) << out;
  EXPECT_NE(out.find("Pareto front of " + run.string() + " after 5 generations"), std::string::npos) << out;
  std::map<std::string, std::string> by_status;
  std::set<std::string> keys;
  for (const auto& r : Journal::read((run / "journal.bin").string())) {
    if (r.status() != "ok") by_status[r.status()] = r.worker() + ": " + r.message();
    EXPECT_TRUE(keys.insert(r.key()).second) << "evaluated twice: " << r.key();
  }
  EXPECT_EQ(by_status["error"], "rank 1 cpu: injected fault on evaluation 2: the evaluator threw");
  EXPECT_EQ(by_status["diverged"], "rank 2 cpu: loss is nan at step 0 (injected fault on evaluation 1)");
  EXPECT_EQ(by_status["timeout"].rfind("rank 3 cpu: time limit of 0.050000 s reached", 0), 0u) << by_status["timeout"];
  // The hung evaluation was given to another worker: every generation is complete.
  EXPECT_EQ(slurp(run / "progress.tsv").find("\n5\t") != std::string::npos, true);
}

TEST(Cluster, AKilledRankEndsTheJobAndTheRunResumesWithNothingLost) {
  const fs::path cfg = config("kill", "faults { rank: 2 on_evaluation: 4 kind: \"kill\" }\n");
  const fs::path run = scratch("kill-run"), whole = scratch("kill-whole");
  std::string out;
  EXPECT_NE(sh(mpirun(4) + " search " + cfg.string() + " --run " + run.string(), &out), 0) << out;
  const size_t journaled = Journal::read((run / "journal.bin").string()).size();
  EXPECT_GT(journaled, 0u);
  // Resumed without mpirun: rank 0 alone, where no fault is injected.
  ASSERT_EQ(sh(std::string(STARSYNTH_CLI) + " search --resume " + run.string(), &out), 0) << out;
  EXPECT_NE(out.find("resuming " + run.string()), std::string::npos) << out;
  // Compared with a run that never failed (faults only ever hit rank 2, absent here).
  ASSERT_EQ(sh(std::string(STARSYNTH_CLI) + " search " + cfg.string() + " --run " + whole.string(), &out), 0) << out;
  EXPECT_EQ(slurp(run / "front.tsv"), slurp(whole / "front.tsv"));
  EXPECT_EQ(journal_content(run), journal_content(whole));
}

// Stopping by signal. To the driver alone: it waits for the evaluations in flight, stops the
// workers and exits 130 with nothing lost. Ctrl-C on mpirun: Open MPI signals every rank, and
// kills them a moment later (1 s by default); workers finish what they evaluate within that and
// the driver stops the same way. Either way the run resumes to the front of a run never stopped.
TEST(Cluster, SignalsStopTheSearchAndTheRunResumes) {
  const fs::path cfg = config("signal", "");
  std::string text = slurp(cfg);
  text.replace(text.find("generations: 5"), 14, "generations: 40");
  text.replace(text.find("synthetic_delay_s: 0.01"), 23, "synthetic_delay_s: 0.02");
  std::ofstream(cfg) << text;
  const fs::path run = scratch("signal-run"), whole = scratch("signal-whole"), log = scratch("signal.log");
  std::string out;
  ASSERT_EQ(sh(std::string(STARSYNTH_CLI) + " search " + cfg.string() + " --run " + whole.string(), &out), 0) << out;
  const size_t total = Journal::read((whole / "journal.bin").string()).size();

  // Starts mpirun in the background; returns its pid once the run has checkpointed generation `g`.
  auto launch = [&](const std::string& args, int g) {
    const pid_t pid = fork();
    if (pid == 0) {
      const std::string command = mpirun(4) + " " + args + " >" + log.string() + " 2>&1";
      execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int waited = 0; slurp(run / "progress.tsv").find("\n" + std::to_string(g) + "\t") == std::string::npos; ++waited) {
      EXPECT_LT(waited, 6000) << slurp(log);
      if (waited >= 6000) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pid;
  };
  auto wait_exit = [](pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  };

  // 1. SIGINT to the driver, whose pid it prints.
  pid_t mpi = launch("search " + cfg.string() + " --run " + run.string(), 3);
  std::smatch m;
  const std::string started = slurp(log);
  ASSERT_TRUE(std::regex_search(started, m, std::regex("rank 0 \\(pid (\\d+)\\) drives 3 workers"))) << started;
  ::kill(pid_t(std::stol(m[1])), SIGINT);
  EXPECT_EQ(wait_exit(mpi), 130) << slurp(log);
  EXPECT_NE(slurp(log).find("stopped: " + run.string() + ": "), std::string::npos) << slurp(log);
  int64_t whole_bytes = 0;
  const size_t first = Journal::read((run / "journal.bin").string(), &whole_bytes).size();
  EXPECT_EQ(whole_bytes, int64_t(fs::file_size(run / "journal.bin")));
  EXPECT_LT(first, total);

  // 2. Resumed under mpirun, then Ctrl-C on mpirun itself.
  const std::string progress = slurp(run / "progress.tsv");
  const int checkpointed = std::stoi(progress.substr(progress.rfind('\n', progress.size() - 2) + 1));
  mpi = launch("search --resume " + run.string(), checkpointed + 2);
  ::kill(mpi, SIGINT);
  const int status = wait_exit(mpi);
  EXPECT_NE(status, 0);
  // mpirun passes the signal to every rank: the workers finish their evaluations (short enough
  // here for Open MPI's grace period) and the driver stops as cleanly as in 1.
  EXPECT_NE(slurp(log).find("stopped: " + run.string() + ": "), std::string::npos) << status << slurp(log);
  const size_t second = Journal::read((run / "journal.bin").string()).size();
  EXPECT_GT(second, first);
  EXPECT_LT(second, total);

  // 3. Resumed to the end: the same front and journal as the run never stopped.
  ASSERT_EQ(sh(mpirun(4) + " search --resume " + run.string(), &out), 0) << out;
  EXPECT_EQ(slurp(run / "front.tsv"), slurp(whole / "front.tsv"));
  EXPECT_EQ(journal_content(run), journal_content(whole));
}

}  // namespace
}  // namespace starsynth
