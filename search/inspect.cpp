#include "search/inspect.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "genome/presets.h"
#include "proto/formats.h"
#include "search/engine.h"
#include "search/journal.h"

namespace starsynth {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kObjectives = {"quality", "params", "cache", "flops", "tokens_per_s", "peak_memory"};

double metric(const pb::JournalRecord& r, const std::string& name) {
  auto it = r.metrics().find(name);
  return it == r.metrics().end() ? 0.0 : it->second;
}

bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool better = false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
    better = better || a[k] < b[k];
  }
  return better;
}

}  // namespace

RunView open_run(const std::string& dir) {
  if (!fs::is_directory(dir)) throw LoadError(dir + ": no such run directory");
  const fs::path config = fs::path(dir) / "config.textproto";
  if (!fs::exists(config)) throw LoadError(dir + ": not a run directory (no config.textproto)");
  RunView run;
  run.dir = dir;
  run.config = load_search_config(config.string());
  const fs::path journal = fs::path(dir) / "journal.bin";
  if (fs::exists(journal)) {
    int64_t valid = 0;
    run.records = Journal::read(journal.string(), &valid);
    run.torn_bytes = int64_t(fs::file_size(journal)) - valid;
  }
  const fs::path checkpoint = fs::path(dir) / "checkpoint.pb";
  if (fs::exists(checkpoint)) {
    if (!run.checkpoint.ParseFromString(read_file(checkpoint.string())))
      throw LoadError(checkpoint.string() + ": unreadable checkpoint");
    run.has_checkpoint = true;
  }
  return run;
}

ObjectiveInfo objective_info(const std::string& name, bool accuracy) {
  if (name == "quality")
    return accuracy ? ObjectiveInfo{name, "accuracy (%)", 100, true} : ObjectiveInfo{name, "loss (nats/byte)", 1, false};
  if (name == "params") return {name, "parameters (millions)", 1e-6, false};
  if (name == "cache") return {name, "inference cache (MB)", 1e-6, false};
  if (name == "flops") return {name, "forward FLOPs (M/token)", 1e-6, false};
  if (name == "tokens_per_s") return {name, "training speed (k tokens/s)", 1e-3, true};
  if (name == "peak_memory") return {name, "peak memory (MB)", 1e-6, false};
  std::string known;
  for (const auto& k : kObjectives) known += (known.empty() ? "" : ", ") + k;
  throw LoadError("objective: unknown \"" + name + "\"; expected one of " + known);
}

std::vector<std::string> parse_objectives(const std::string& list, const RunView& run) {
  if (list.empty()) return run.config.objectives;
  std::vector<std::string> names;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    objective_info(name, false);  // throws for an unknown name
    names.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (names.size() < 2) throw LoadError("--objectives: expected two or more names separated by commas, got \"" + list + "\"");
  return names;
}

bool quality_is_accuracy(const RunView& run) {
  for (const auto& r : run.records)
    if (r.status() == "ok") return metric(r, "quality_higher_is_better") > 0;
  return run.config.message.task().kind().rfind("lm:", 0) != 0;
}

double shown(const pb::JournalRecord& r, const ObjectiveInfo& info) { return metric(r, info.name) * info.scale; }

std::vector<size_t> front_after(const std::vector<pb::JournalRecord>& records, const std::vector<std::string>& objectives,
                                int generation) {
  std::vector<size_t> candidates;
  std::set<std::string> keys;
  for (size_t i = 0; i < records.size(); ++i)
    if (records[i].status() == "ok" && records[i].generation() <= generation && keys.insert(records[i].key()).second)
      candidates.push_back(i);
  auto point = [&](size_t i) {
    std::vector<double> p;
    for (const auto& o : objectives) p.push_back(minimised(records[i], o));
    return p;
  };
  std::vector<std::vector<double>> points;
  for (size_t i : candidates) points.push_back(point(i));
  std::vector<std::pair<std::vector<double>, size_t>> members;
  std::set<std::vector<double>> taken;  // equal points: the first evaluated stands for them all
  for (size_t a = 0; a < candidates.size(); ++a) {
    bool dominated = false;
    for (size_t b = 0; b < candidates.size() && !dominated; ++b) dominated = b != a && dominates(points[b], points[a]);
    if (!dominated && taken.insert(points[a]).second) members.emplace_back(points[a], candidates[a]);
  }
  std::sort(members.begin(), members.end());  // by the objectives; distinct points, so never by index
  std::vector<size_t> front;
  for (const auto& m : members) front.push_back(m.second);
  return front;
}

std::vector<size_t> front_of(const std::vector<pb::JournalRecord>& records, const std::vector<std::string>& objectives) {
  return front_after(records, objectives, std::numeric_limits<int>::max());
}

std::map<size_t, std::string> preset_records(const RunView& run) {
  std::map<size_t, std::string> found;
  std::istringstream names(known_preset_names());
  for (std::string name; std::getline(names, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    std::vector<int64_t> genes;
    try {
      genes = encode(canonical(run.config.space, preset_genome(run.config.space, name)));
    } catch (const std::exception&) {
      continue;  // the preset needs a class this space lacks
    }
    for (size_t i = 0; i < run.records.size(); ++i) {
      const auto& g = run.records[i].genes();
      if (run.records[i].status() == "ok" && std::equal(g.begin(), g.end(), genes.begin(), genes.end())) {
        found[i] += (found[i].empty() ? "" : " / ") + name;
        break;
      }
    }
  }
  return found;
}

size_t pick(const RunView& run, const std::string& how) {
  const std::vector<std::string>& objectives = run.config.objectives;
  const std::vector<size_t> front = front_of(run.records, objectives);
  if (how.rfind("best:", 0) == 0) {
    const std::string name = how.substr(5);
    objective_info(name, false);
    const auto ok = [&](size_t i) { return run.records[i].status() == "ok"; };
    std::vector<size_t> all(run.records.size());
    std::iota(all.begin(), all.end(), 0);
    all.erase(std::remove_if(all.begin(), all.end(), [&](size_t i) { return !ok(i); }), all.end());
    if (all.empty()) throw LoadError(run.dir + ": --pick " + how + ": the run has no successful evaluation yet");
    // Ties on the objective go to the member better on the run's other objectives, then the earliest.
    return *std::min_element(all.begin(), all.end(), [&](size_t a, size_t b) {
      std::vector<double> pa{minimised(run.records[a], name)}, pb{minimised(run.records[b], name)};
      for (const auto& o : objectives) pa.push_back(minimised(run.records[a], o)), pb.push_back(minimised(run.records[b], o));
      pa.push_back(double(a)), pb.push_back(double(b));
      return pa < pb;
    });
  }
  if (how == "knee") {
    if (front.empty()) throw LoadError(run.dir + ": --pick knee: the run has no successful evaluation yet");
    std::vector<double> lo(objectives.size(), 1e300), hi(objectives.size(), -1e300);
    for (size_t i : front)
      for (size_t k = 0; k < objectives.size(); ++k) {
        const double v = minimised(run.records[i], objectives[k]);
        lo[k] = std::min(lo[k], v), hi[k] = std::max(hi[k], v);
      }
    size_t best = front.front();
    double best_sum = 1e300;
    for (size_t i : front) {
      double sum = 0;
      for (size_t k = 0; k < objectives.size(); ++k)
        if (hi[k] > lo[k]) sum += (minimised(run.records[i], objectives[k]) - lo[k]) / (hi[k] - lo[k]);
      if (sum < best_sum) best_sum = sum, best = i;
    }
    return best;
  }
  char* end = nullptr;
  const long long id = std::strtoll(how.c_str(), &end, 10);
  if (how.empty() || *end != '\0')
    throw LoadError("--pick: expected an evaluation id, best:OBJECTIVE or knee, got \"" + how + "\"");
  for (size_t i = 0; i < run.records.size(); ++i)
    if (run.records[i].sequence() == id) {
      if (run.records[i].status() != "ok")
        throw LoadError(run.dir + ": evaluation " + how + " failed (" + run.records[i].status() + "): nothing to export");
      return i;
    }
  throw LoadError(run.dir + ": no evaluation with id " + how + " (ids are the first column of `starsynth front`)");
}

}  // namespace starsynth
