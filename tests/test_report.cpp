// The HTML report of a real (synthetic) run: self-contained, every section present with one mark
// per front member, presets named, and it renders in a headless browser without a script error —
// also for a run whose journal ends in a torn record and for one not yet checkpointed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "search/inspect.h"
#include "search/report.h"
#include "search/run.h"
#include "search/synthetic.h"

namespace starsynth {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("starsynth-report-" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

// A finished run of 3 generations, seeded with transformer++ (made once per test process).
const fs::path& finished_run() {
  static const fs::path dir = [] {
    const fs::path config = scratch("config.textproto");
    std::ofstream(config) << "space { num_livs: 8 width: 64 vocab_size: 64 }\n"
                             "task { kind: \"synthetic:surrogate\" }\n"
                             "objectives: [\"quality\", \"params\", \"cache\"]\n"
                             "algorithm { population: 8 generations: 3 }\n"
                             "seed: 11\nseed_presets: [\"transformer++\"]\n";
    const fs::path d = scratch("run");
    std::ostringstream quiet;
    RunOptions o;
    o.dir = d.string();
    o.log = &quiet;
    run_search(config.string(), o, [](const SearchConfig& c) { return thread_pool_runner(synthetic_evaluator(c), c.workers); });
    return d;
  }();
  return dir;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

fs::path write_report(const fs::path& run, const std::string& name) {
  const fs::path out = scratch(name + ".html");
  std::ofstream(out) << report_html(open_run(run.string()));
  return out;
}

std::optional<std::string> chromium_binary() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    const std::string probe = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return std::string(name);
  }
  return std::nullopt;
}

// The DOM after scripts ran, as headless Chromium dumps it.
std::string rendered_dom(const std::string& chromium, const fs::path& html) {
  const std::string command = "timeout 120 " + chromium +
                              " --headless=new --no-sandbox --disable-gpu --virtual-time-budget=2000 --dump-dom 'file://" +
                              fs::absolute(html).string() + "' 2>/dev/null";
  std::string dom;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[65536];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) dom.append(buffer, n);
    ::pclose(pipe);
  }
  return dom;
}

TEST(Report, FinishedRunIsSelfContainedWithEverySection) {
  const RunView run = open_run(finished_run().string());
  ASSERT_TRUE(run.finished());
  const std::string html = report_html(run);

  // Nothing fetched: the only URLs are SVG namespace names, which browsers never load.
  const std::string xmlns = "xmlns=\"http://www.w3.org/2000/svg\"";
  EXPECT_EQ(count(html, "http://"), count(html, xmlns));
  EXPECT_EQ(count(html, "https://"), 0u);
  EXPECT_EQ(count(html, "<link"), 0u);
  EXPECT_EQ(count(html, " src="), 0u);
  EXPECT_EQ(count(html, "@import"), 0u);

  // Three objectives: three pairs, then hypervolume, composition and the architecture strips.
  EXPECT_EQ(count(html, "<svg class=\"figure\""), 6u);
  for (const char* id : {"scatter-quality-params", "scatter-quality-cache", "scatter-params-cache", "hypervolume", "composition", "strips"})
    EXPECT_EQ(count(html, std::string("id=\"") + id + "\""), 1u) << id;
  size_t ok = 0;
  for (const auto& r : run.records) ok += r.status() == "ok";
  EXPECT_EQ(count(html, "class=\"mark dot\""), 3 * ok);  // every successful evaluation in every scatter
  size_t pair_front_points = 0;
  for (const auto& pair : std::vector<std::vector<std::string>>{{"params", "quality"}, {"cache", "quality"}, {"cache", "params"}})
    pair_front_points += front_of(run.records, pair).size();
  EXPECT_EQ(count(html, "class=\"mark front-pt\""), pair_front_points);
  EXPECT_EQ(count(html, "<path class=\"mark hv-line\""), 1u);
  EXPECT_EQ(count(html, "class=\"mark bar\"") > 0, true);

  const std::vector<size_t> front = front_of(run.records, run.config.objectives);
  ASSERT_FALSE(front.empty());
  EXPECT_EQ(count(html, "<g class=\"strip\""), front.size());
  EXPECT_EQ(count(html, "<tr class=\"front-row\""), front.size());
  for (size_t i : front) {
    const std::string id = std::to_string(run.records[i].sequence());
    EXPECT_EQ(count(html, "id=\"strip-" + id + "\""), 1u) << id;
    EXPECT_EQ(count(html, "<tr class=\"front-row\" id=\"row-" + id + "\">"), 1u) << id;
  }

  // The seeded preset, marked and named in each scatter.
  EXPECT_EQ(count(html, "data-preset=\"transformer++\""), 3u);
  EXPECT_EQ(count(html, "class=\"preset-label\""), 3u);
  EXPECT_EQ(count(html, ">transformer++</text>"), 3u);

  // Header facts and axis labels with units.
  EXPECT_NE(html.find("3 done of 3 configured"), std::string::npos);
  EXPECT_NE(html.find(">finished<"), std::string::npos);
  EXPECT_NE(html.find(std::to_string(run.records.size()) + " (" + std::to_string(ok) + " ok, "), std::string::npos);
  EXPECT_NE(html.find("parameters (millions)"), std::string::npos);
  EXPECT_NE(html.find("inference cache (MB)"), std::string::npos);
  EXPECT_NE(html.find(">generation</text>"), std::string::npos);
  // No coordinate or value printed as nan/inf (the self-check script itself names them: cut it).
  const std::string marks = html.substr(0, html.rfind("<script>"));
  EXPECT_EQ(count(marks, "nan"), 0u);
  EXPECT_EQ(count(marks, "inf\""), 0u);
}

TEST(Report, TornJournalIsReported) {
  const fs::path torn = scratch("torn");
  fs::copy(finished_run(), torn, fs::copy_options::recursive);
  std::ofstream(torn / "journal.bin", std::ios::app) << std::string("\x40\x00\x00\x00garbage", 11);
  const RunView run = open_run(torn.string());
  ASSERT_EQ(run.torn_bytes, 11);
  const std::string html = report_html(run);
  EXPECT_NE(html.find("journal ends in a torn record (11 bytes"), std::string::npos);
  EXPECT_EQ(count(html, "<svg class=\"figure\""), 6u);
}

TEST(Report, RunWithoutCheckpointSaysSo) {
  const fs::path early = scratch("early");
  fs::create_directories(early);
  fs::copy_file(finished_run() / "config.textproto", early / "config.textproto");
  fs::copy_file(finished_run() / "journal.bin", early / "journal.bin");
  const std::string html = report_html(open_run(early.string()));
  EXPECT_NE(html.find("id=\"no-checkpoint\""), std::string::npos);
  EXPECT_NE(html.find("no generation checkpointed yet"), std::string::npos);
  EXPECT_NE(html.find("0 done of 3 configured"), std::string::npos);
  EXPECT_EQ(count(html, "id=\"hypervolume\""), 0u);
  EXPECT_EQ(count(html, "<svg class=\"figure\""), 5u);  // the journal still gives scatters, composition and strips

  const fs::path empty = scratch("empty");
  fs::create_directories(empty);
  fs::copy_file(finished_run() / "config.textproto", empty / "config.textproto");
  const std::string none = report_html(open_run(empty.string()));
  EXPECT_EQ(count(none, "<svg class=\"figure\""), 0u);
  EXPECT_NE(none.find("No successful evaluation journaled yet"), std::string::npos);
}

TEST(Report, RendersInAHeadlessBrowserWithoutErrors) {
  const std::optional<std::string> chromium = chromium_binary();
  if (!chromium) {
    if (std::getenv("STARSYNTH_REQUIRE_CHROMIUM")) FAIL() << "STARSYNTH_REQUIRE_CHROMIUM is set but no chromium binary is on PATH";
    GTEST_SKIP() << "no chromium or chromium-browser on PATH";
  }
  const fs::path torn = scratch("torn-render"), early = scratch("early-render");
  fs::copy(finished_run(), torn, fs::copy_options::recursive);
  std::ofstream(torn / "journal.bin", std::ios::app) << std::string("\x40\x00\x00\x00garbage", 11);
  fs::create_directories(early);
  fs::copy_file(finished_run() / "config.textproto", early / "config.textproto");
  fs::copy_file(finished_run() / "journal.bin", early / "journal.bin");
  for (const auto& [dir, figures] : std::vector<std::pair<fs::path, int>>{{finished_run(), 6}, {torn, 6}, {early, 5}}) {
    const fs::path html = write_report(dir, dir.filename().string());
    const std::string dom = rendered_dom(*chromium, html);
    ASSERT_FALSE(dom.empty()) << "chromium printed nothing for " << html;
    EXPECT_NE(dom.find("data-check=\"ok " + std::to_string(figures) + " figures\""), std::string::npos)
        << html << ": " << dom.substr(0, std::min<size_t>(dom.size(), 600));
    EXPECT_EQ(dom.find("data-errors"), std::string::npos) << html;
  }
}

}  // namespace
}  // namespace starsynth
