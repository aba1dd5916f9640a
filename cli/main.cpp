// starsynth: the command-line front. Thin by design: parse, call the library, print.
// Exit status: 0 success, 2 bad input or usage (one line on stderr), 1 anything else.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/print.h"
#include "evaluator/evaluate.h"
#include "genome/errors.h"
#include "genome/graph.h"
#include "genome/metrics.h"
#include "genome/presets.h"
#include "genome/variation.h"
#include "proto/formats.h"
#include "cluster/mpi.h"
#include "search/inspect.h"
#include "search/report.h"
#include "search/run.h"
#include "search/synthetic.h"
#ifdef STARSYNTH_KERNELS
#include "kernels/ops.h"
#endif

namespace starsynth::cli {
namespace {

struct Command {
  std::string name;                 // "genome random"
  std::string usage;                // arguments after the name
  std::string help;                 // what it does
  std::set<std::string> valued;     // options taking a value
  std::set<std::string> switches;   // options taking none
  std::function<int(const Args&)> run;
};

// Output goes to --output (written atomically, only once everything succeeded) or stdout.
void emit(const Args& a, const std::string& content) {
  if (a.has("output")) write_file_atomic(a.get("output"), content);
  else std::cout << content;
}

Format output_format(const Args& a) {
  if (a.flag("json")) return Format::Json;
  if (a.flag("text")) return Format::Text;
  return a.has("output") ? format_for(a.get("output")) : Format::Text;
}

SearchSpace space_from(const Args& a) {
  if (a.has("space")) return load_space(a.get("space"));
  SearchSpace s = make_space(int(a.get_int("livs", 24)), a.get_int("width", 768), a.get_int("vocab", 50304), star_alphabet());
  validate(s);
  return s;
}

AnalyticMetrics metrics_of(const ModelSpec& spec, const Args& a) {
  return analyze(spec, a.get_int("context", 4096), a.get_int("bytes", 2));
}

int print_metrics(const ModelSpec& spec, const Args& a) {
  const AnalyticMetrics m = metrics_of(spec, a);
  emit(a, a.flag("json") ? metrics_json(spec, m) : metrics_text(spec, m));
  return 0;
}

// A genome file carries its search space ("livs" and "space"); anything else is a ModelConfig.
ModelSpec load_network(const std::string& path) {
  const std::string content = read_file(path);
  if (content.find("livs") != std::string::npos) {
    const GenomeFile f = parse_genome(content, path);
    return compile(f.space, f.genome);
  }
  return parse_model_config(content, path);
}

int run_eval(const Args& a) {
  const ModelSpec spec = load_network(a.positional_at(0, "genome or model config"));
  TaskSpec task;
  task.kind = a.get("task", "mad");
  task.mad.vocab_size = a.get_int("task-vocab", 0, 0);
  task.mad.seq_len = a.get_int("task-seq-len", 0, 0);
  task.mad.train_examples = a.get_int("task-train", 0, 0);
  task.mad.test_examples = a.get_int("task-test", 0, 0);
  task.lm_seq_len = a.get_int("lm-seq-len", 256);
  TrainSettings s;
  s.steps = a.get_int("steps", 200);
  s.tokens = a.get_int("tokens", 0, 0);
  s.batch = a.get_int("batch", 32);
  s.seed = uint64_t(a.get_int("seed", 12345, 0));
  s.device = a.get("device", "cpu");
  s.timeout_s = double(a.get_int("timeout", 0, 0));
  s.context = a.get_int("context", 4096);
  s.element_bytes = a.get_int("bytes", 2);
  if (a.has("lr")) {
    try {
      s.lr = std::stod(a.get("lr"));
    } catch (const std::exception&) {
      throw UsageError("--lr: expected a number, got \"" + a.get("lr") + "\"");
    }
  }
  const Metrics m = evaluate(spec, task, s);
  emit(a, a.flag("json") ? eval_json(m) : eval_text(m));
  return m.status == EvalStatus::Ok ? 0 : 3;
}

// Trains each genome with the evaluator under the search's task and training settings.
Evaluator training_evaluator(const SearchConfig& c, const std::string& device) {
  TaskSpec task;
  const auto& t = c.message.task();
  task.kind = t.kind();
  task.mad.vocab_size = t.vocab_size();
  task.mad.seq_len = t.seq_len();
  task.mad.train_examples = t.train_examples();
  task.mad.test_examples = t.test_examples();
  if (t.lm_seq_len()) task.lm_seq_len = t.lm_seq_len();
  TrainSettings s;
  const auto& tr = c.message.training();
  s.steps = tr.steps();
  s.batch = tr.batch();
  s.lr = tr.lr();
  s.device = device;
  s.timeout_s = tr.timeout_s();
  s.context = tr.context();
  s.element_bytes = tr.element_bytes();
  s.seed = c.seed;
  return [task, s](const ModelSpec& spec, const Genome&) {
    const Metrics m = evaluate(spec, task, s);
    EvalOutcome o;
    o.status = status_name(m.status);
    o.message = m.message;
    o.metrics = {{"quality", m.quality},
                 {"quality_higher_is_better", m.quality_name == "accuracy" ? 1.0 : 0.0},
                 {"params", double(m.params_total ? m.params_total : count_parameters(spec).total)},
                 {"cache", double(m.cache_bytes)},
                 {"flops", m.flops_per_token},
                 {"tokens_per_s", m.train_tokens_per_s},
                 {"peak_memory", double(m.peak_memory_bytes)}};
    o.wall_s = m.wall_s;
    return o;
  };
}

// Ctrl-C (SIGINT), or SIGTERM from mpirun or a batch system: the first asks the search to stop
// after the evaluations in flight (all journaled); a second stops at once, which loses only those.
extern "C" void on_stop_signal(int) {
  if (stop_requested()) _exit(130);
  request_stop();
  static const char message[] =
      "\nstopping: no new evaluations; waiting for those in flight (Ctrl-C again to stop at once)\n";
  [[maybe_unused]] const ssize_t n = ::write(2, message, sizeof message - 1);
}

// --stop-after: a wall-time budget for a search. When it is spent the search stops as on Ctrl-C
// (evaluations in flight finish and are journaled; --resume continues), but the exit status is 0:
// stopping there was the plan. Units: s (default), m, h.
double parse_duration_s(const std::string& text) {
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  const std::string unit = text.substr(std::min(used, text.size()));
  const double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (used == 0 || scale == 0 || !(value > 0))
    throw UsageError("--stop-after: expected a duration > 0 such as 900, 15m or 2h, got \"" + text + "\"");
  return value * scale;
}

std::atomic<bool> g_budget_spent{false};

// Every MPI rank keeps the budget (a worker then finishes its evaluation and waits for the
// driver's stop); only the driver says so.
void stop_after(double seconds, bool announce) {
  std::thread([seconds, announce] {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    if (stop_requested()) return;
    g_budget_spent = true;
    request_stop();
    if (announce)
      std::cerr << "\nstopping: the --stop-after budget of " << seconds
                << " s is spent; no new evaluations, waiting for those in flight\n";
  }).detach();
}

void stop_on_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int run_search_command(const Args& a) {
  RunOptions options;
  options.resume = a.has("resume");
  options.dir = a.get("run");
  const std::string source = options.resume ? a.get("resume") : a.positional_at(0, "search config");
  const double budget_s = a.has("stop-after") ? parse_duration_s(a.get("stop-after")) : 0;
  if (cluster::under_mpirun()) {
    // Every rank runs this: rank 0 drives, the others serve evaluations. Every rank takes the
    // first signal as a request (after MPI_Init, which sets handlers of its own): Ctrl-C on mpirun
    // signals them all, and a worker then finishes its evaluation and waits for the driver's stop.
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    stop_on_signals();
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (budget_s > 0) stop_after(budget_s, rank == 0);
    const int status = cluster::search(
        source, options,
        [](const SearchConfig& c, const std::string& device, int rank) {
          const bool synthetic = c.message.task().kind().rfind("synthetic:", 0) == 0;
          return synthetic ? synthetic_evaluator(c, rank) : training_evaluator(c, device);
        },
        &cuda_device_count, [](const SearchConfig& c, const RunSummary& run) { std::cout << front_text(c, run); });
    MPI_Finalize();
    return status == 130 && g_budget_spent ? 0 : status;
  }
  stop_on_signals();
  if (budget_s > 0) stop_after(budget_s, true);
  const RunSummary run = run_search(source, options, [](const SearchConfig& c) {
    const bool synthetic = c.message.task().kind().rfind("synthetic:", 0) == 0;
    return thread_pool_runner(synthetic ? synthetic_evaluator(c) : training_evaluator(c, c.message.training().device()),
                              c.workers);
  });
  const SearchConfig config = load_search_config(run.dir + "/config.textproto");
  std::cout << front_text(config, run);
  return 0;
}

int run_front(const Args& a) {
  const RunView run = open_run(a.positional_at(0, "run directory"));
  const std::vector<std::string> objectives = parse_objectives(a.get("objectives"), run);
  if (a.flag("json") && a.flag("csv")) throw UsageError("--json and --csv: choose one");
  const TableFormat f = a.flag("json") ? TableFormat::Json : a.flag("csv") ? TableFormat::Csv : TableFormat::Text;
  emit(a, front_view(run, objectives, front_of(run.records, objectives), f));
  return 0;
}

// Writes the picked evaluation's ModelConfig (JSON, or text for a .textproto name) and its graph
// beside it (same name, .dot).
int run_export(const Args& a) {
  const RunView run = open_run(a.positional_at(0, "run directory"));
  if (!a.has("output")) throw UsageError("-o FILE: where to write the model config");
  const pb::JournalRecord& r = run.records[pick(run, a.get("pick", "knee"))];
  const Genome g = decode(run.config.space, std::vector<int64_t>(r.genes().begin(), r.genes().end()));
  ModelSpec spec = compile(run.config.space, g);
  spec.name = std::filesystem::path(run.dir).filename().string() + "-" + std::to_string(r.sequence());
  const std::string out = a.get("output");
  const std::string dot = std::filesystem::path(out).replace_extension(".dot").string();
  write_file_atomic(out, format_model_config(spec, format_for(out)));
  write_file_atomic(dot, to_dot(spec));
  std::cout << "exported evaluation " << r.sequence() << " of " << run.dir << " (generation " << r.generation()
            << "): " << summary(spec) << "\n  model config " << out << "\n  graph        " << dot
            << "\n  weights      none: searches train briefly and keep no weights; train the config with "
               "`starsynth train "
            << out << "`\n";
  return 0;
}

int run_compare(const Args& a) {
  if (a.positional.size() < 2) throw UsageError("expected two or more run directories");
  std::vector<RunView> runs;
  for (const std::string& dir : a.positional) runs.push_back(open_run(dir));
  emit(a, compare_text(runs));
  return 0;
}

const std::set<std::string> kEvalOptions = {"task", "steps", "tokens", "batch", "lr", "seed", "device", "timeout",
                                            "task-vocab", "task-seq-len", "task-train", "task-test", "lm-seq-len",
                                            "context", "bytes", "output"};
const std::set<std::string> kSpaceOptions = {"space", "livs", "width", "vocab", "output"};
const std::set<std::string> kMetricOptions = {"context", "bytes", "output"};
const char* const kSpaceHelp =
    "  --space FILE        search space (protobuf text or JSON); without it, STAR's 17 classes with\n"
    "  --livs N --width D --vocab V   (defaults 24, 768, 50304)\n";
const char* const kMetricHelp =
    "  --context N         context length the cache is sized for, tokens (default 4096)\n"
    "  --bytes B           bytes per cached element (default 2)\n"
    "  --json              JSON instead of a table\n";

std::vector<Command> commands() {
  return {
      {"genome random", "[--seed S] [space options] [-o FILE] [--json]",
       "A random valid genome (each gene uniform over its legal values, then repaired).\n"
       "  --seed S            generator seed (default 1)\n" +
           std::string(kSpaceHelp),
       [] {
         auto o = kSpaceOptions;
         o.insert("seed");
         return o;
       }(),
       {"json", "text"},
       [](const Args& a) {
         const SearchSpace space = space_from(a);
         Rng rng(uint64_t(a.get_int("seed", 1, 0)));
         emit(a, format_genome(space, random_genome(space, rng), output_format(a)));
         return 0;
       }},
      {"genome preset", "NAME [space options] [-o FILE] [--json]",
       "A reference architecture as a genome. Presets: " + known_preset_names() +
           ".\nWithout --space the space holds STAR's classes plus Hyena-SE/MR/LI.\n" + kSpaceHelp,
       kSpaceOptions,
       {"json", "text"},
       [](const Args& a) {
         const std::string name = a.positional_at(0, "preset name");
         SearchSpace space = a.has("space") ? load_space(a.get("space"))
                                            : preset_space(int(a.get_int("livs", 24)), a.get_int("width", 768),
                                                           a.get_int("vocab", 50304));
         emit(a, format_genome(space, preset_genome(space, name), output_format(a)));
         return 0;
       }},
      {"genome show", "GENOME [-o FILE]", "The genes, canonical form, hash and per-LIV sharing of a genome file.",
       {"output"},
       {},
       [](const Args& a) {
         const GenomeFile f = load_genome(a.positional_at(0, "genome file"));
         emit(a, genome_text(f.space, f.genome));
         return 0;
       }},
      {"genome validate", "GENOME",
       "Checks a genome against its search space: gene ranges, sharing compatibility, order.", {}, {},
       [](const Args& a) {
         const std::string path = a.positional_at(0, "genome file");
         const GenomeFile f = load_genome(path);
         std::cout << path << ": valid genome of " << f.genome.livs.size() << " LIVs\n";
         return 0;
       }},
      {"genome canon", "GENOME [--repair] [-o FILE] [--json]",
       "The canonical form: groups relabelled by first appearance, no-op genes normalised.\n"
       "  --repair            repair an invalid genome first instead of refusing it\n",
       {"output"},
       {"repair", "json", "text"},
       [](const Args& a) {
         const std::string path = a.positional_at(0, "genome file");
         GenomeFile f = a.flag("repair") ? parse_genome(read_file(path), path, false) : load_genome(path);
         emit(a, format_genome(f.space, canonical(f.space, f.genome), output_format(a)));
         return 0;
       }},
      {"genome compile", "GENOME [--name NAME] [-o FILE] [--json]",
       "The ModelConfig a genome describes (every hyper-parameter explicit).", {"name", "output"}, {"json", "text"},
       [](const Args& a) {
         const GenomeFile f = load_genome(a.positional_at(0, "genome file"));
         ModelSpec m = compile(f.space, f.genome);
         m.name = a.get("name");
         emit(a, format_model_config(m, output_format(a)));
         return 0;
       }},
      {"genome dot", "GENOME [-o FILE]", "The architecture graph as Graphviz DOT (render with dot -Tsvg).", {"output"},
       {},
       [](const Args& a) {
         const GenomeFile f = load_genome(a.positional_at(0, "genome file"));
         emit(a, to_dot(compile(f.space, f.genome)));
         return 0;
       }},
      {"genome metrics", "GENOME [--context N] [--bytes B] [--json]",
       std::string("Parameters, inference-cache bytes and FLOPs per token, in total and per LIV.\n") + kMetricHelp,
       kMetricOptions,
       {"json"},
       [](const Args& a) {
         const GenomeFile f = load_genome(a.positional_at(0, "genome file"));
         return print_metrics(compile(f.space, f.genome), a);
       }},
      {"model metrics", "CONFIG [--context N] [--bytes B] [--json]",
       std::string("Parameters, inference-cache bytes and FLOPs per token of a ModelConfig.\n") + kMetricHelp,
       kMetricOptions,
       {"json"},
       [](const Args& a) { return print_metrics(load_model_config(a.positional_at(0, "model config")), a); }},
      {"model dot", "CONFIG [-o FILE]", "The architecture graph of a ModelConfig as Graphviz DOT.", {"output"}, {},
       [](const Args& a) {
         emit(a, to_dot(load_model_config(a.positional_at(0, "model config"))));
         return 0;
       }},
      {"presets", "[--livs N] [--width D] [--vocab V] [--context N] [--bytes B]",
       "Parameters, cache and FLOPs of every preset at one size (default STAR's 125M scale).",
       {"livs", "width", "vocab", "context", "bytes"},
       {},
       [](const Args& a) {
         const SearchSpace space =
             preset_space(int(a.get_int("livs", 24)), a.get_int("width", 768), a.get_int("vocab", 50304));
         validate(space);
         std::printf("%-16s %15s %15s %15s %12s  %s\n", "preset", "parameters", "non-embedding", "cache bytes",
                     "GFLOP/token", "layout");
         for (const Preset& p : presets()) {
           const ModelSpec m = compile(space, preset_genome(space, p.name));
           const AnalyticMetrics x = metrics_of(m, a);
           std::printf("%-16s %15s %15s %15s %12.4f  %s\n", p.name.c_str(), with_commas(x.params.total).c_str(),
                       with_commas(x.params.non_embedding).c_str(), with_commas(x.cache_bytes).c_str(),
                       x.flops_per_token / 1e9, summary(m).c_str());
         }
         std::printf("\n%d LIVs, width %lld, vocabulary %lld; cache per sequence at %lld tokens × %lld bytes\n",
                     space.num_livs, static_cast<long long>(space.width), static_cast<long long>(space.vocab_size),
                     static_cast<long long>(a.get_int("context", 4096)), static_cast<long long>(a.get_int("bytes", 2)));
         return 0;
       }},
      {"eval", "GENOME|MODEL_CONFIG [--task T] [--steps N | --tokens N] [--device D] [--json]",
       "Trains the network briefly on a task and prints measured metrics (exit 3 when the run failed:\n"
       "diverged, out of memory, timeout or error; the status says which).\n"
       "  --task T            mad (six MAD tasks), mad:<task>, mqar, lm:<text or FASTA file> (default mad)\n"
       "  --steps N           training steps per task (default 200); --tokens N sets a token budget\n"
       "  --batch B --lr X    batch size (32) and peak learning rate (1e-3)\n"
       "  --seed S            initialisation and data seed (12345)\n"
       "  --device D          cpu, cuda or cuda:N (cpu)\n"
       "  --timeout S         give up after S seconds (status timeout)\n"
       "  --task-vocab V --task-seq-len L --task-train N --task-test N   MAD/MQAR difficulty\n"
       "  --lm-seq-len L      byte-level LM window (256)\n"
       "  --context N --bytes B   context and element size of the cache figures (4096, 2)\n",
       kEvalOptions,
       {"json"},
       run_eval},
      {"search", "CONFIG [--run DIR] | --resume RUN",
       "Runs an evolutionary architecture search and prints the Pareto front it found.\n"
       "  --run DIR           run directory (default: the config's run_dir, else runs/<config name>)\n"
       "  --resume RUN        continue a run directory after a crash or kill; only evaluations that\n"
       "                      were in flight are redone\n"
       "  --stop-after T      wall-time budget (900, 15m, 2h): then stop as on Ctrl-C, after the\n"
       "                      evaluations in flight, and exit 0; --resume continues\n",
       {"run", "resume", "stop-after"},
       {},
       run_search_command},
      {"front", "RUN [--objectives A,B] [--json | --csv] [-o FILE]",
       "The non-dominated evaluations of a run directory (finished, running or crashed), sorted by\n"
       "the first objective, with metrics in their units and each architecture in one line.\n"
       "  --objectives A,B    the front over these (quality, params, cache, flops, tokens_per_s,\n"
       "                      peak_memory); default the run's own objectives\n"
       "  --json | --csv      for scripts\n",
       {"objectives", "output"},
       {"json", "csv"},
       run_front},
      {"report", "RUN -o report.html",
       "A self-contained HTML report of a run: every objective pair with its front and the presets,\n"
       "hypervolume per generation, the front's composition over generations, an architecture strip\n"
       "per front member and a sortable table.\n",
       {"output"},
       {},
       [](const Args& a) {
         const RunView run = open_run(a.positional_at(0, "run directory"));
         if (!a.has("output")) throw UsageError("-o FILE: where to write the report");
         emit(a, report_html(run));
         return 0;
       }},
      {"export", "RUN --pick ID|best:OBJECTIVE|knee -o model.json",
       "Writes the picked architecture as a ModelConfig (JSON, version 1; proto/genome.proto's\n"
       "ModelConfig is its schema) and its Graphviz graph beside it (model.dot).\n"
       "  --pick ID           an evaluation id (first column of `starsynth front`)\n"
       "  --pick best:O       the best evaluation on objective O\n"
       "  --pick knee         the front's knee: on objectives normalised over the front, the member\n"
       "                      farthest below the plane through its extremes (default)\n",
       {"pick", "output"},
       {},
       run_export},
      {"train", "MODEL_CONFIG [eval options]",
       "Trains an exported ModelConfig from the file alone and prints its measured metrics: the same\n"
       "options as eval (--task, --steps or --tokens, --batch, --lr, --seed, --device, --json).\n",
       kEvalOptions,
       {"json"},
       run_eval},
      {"results", "RUN [-o FILE]",
       "The front against the presets the run evaluated (Transformer++ as the reference): a Markdown\n"
       "table of quality, parameters and cache, evaluations per hour, and what the run found.\n",
       {"output"},
       {},
       [](const Args& a) {
         emit(a, results_markdown(open_run(a.positional_at(0, "run directory"))));
         return 0;
       }},
      {"compare", "RUN RUN... [-o FILE]",
       "Fronts and hypervolume of several runs side by side, under one reference point.\n",
       {"output"},
       {},
       run_compare},
      {"classes", "", "The LIV catalogue: every class, its family, operator genome and reusable groups.", {}, {},
       [](const Args&) {
         std::cout << catalog_text();
         return 0;
       }},
  };
}

void print_overview(std::ostream& out) {
  out << "starsynth: evolutionary synthesis of sequence-model architectures (STAR-style).\n\nusage:\n";
  for (const Command& c : commands()) out << "  starsynth " << c.name << (c.usage.empty() ? "" : " " + c.usage) << "\n";
  out << "\n`starsynth COMMAND --help` explains one command.\n";
}

int run(int argc, char** argv) {
  const std::vector<Command> all = commands();
  // Match the longest command name: "genome random" before a hypothetical "genome".
  const Command* cmd = nullptr;
  int consumed = 0;
  for (const Command& c : all) {
    std::vector<std::string> words;
    for (size_t at = 0, next; at <= c.name.size(); at = next + 1) {
      next = c.name.find(' ', at);
      if (next == std::string::npos) next = c.name.size();
      words.push_back(c.name.substr(at, next - at));
    }
    if (int(words.size()) >= argc) continue;
    bool match = true;
    for (size_t k = 0; k < words.size(); ++k) match = match && words[k] == argv[k + 1];
    if (match && int(words.size()) > consumed) cmd = &c, consumed = int(words.size());
  }
  if (!cmd) {
    const bool asked = argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h");
    print_overview(asked ? std::cout : std::cerr);
    return asked ? 0 : 2;
  }
  for (int i = consumed + 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << "usage: starsynth " << cmd->name << " " << cmd->usage << "\n\n" << cmd->help << "\n";
      return 0;
    }
  try {
    return cmd->run(parse_args(argc, argv, consumed + 1, cmd->valued, cmd->switches));
  } catch (const UsageError& e) {
    std::cerr << "starsynth " << cmd->name << ": " << e.what() << " (usage: starsynth " << cmd->name << " "
              << cmd->usage << ")\n";
    return 2;
  }
}

}  // namespace
}  // namespace starsynth::cli

int main(int argc, char** argv) {
  using namespace starsynth;
#ifdef STARSYNTH_KERNELS
  kernels::install();
#endif
  try {
    return cli::run(argc, argv);
  } catch (const Interrupted& e) {
    std::cerr << "stopped: " << e.what() << "\n";
    return cli::g_budget_spent ? 0 : 130;
  } catch (const LoadError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::invalid_argument& e) {  // FieldError and unknown names
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
