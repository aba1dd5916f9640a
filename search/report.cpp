// The HTML report: one file with everything inline, so that it opens offline, survives being
// mailed or archived beside a paper draft, and prints. Figures are hand-written SVG: the search
// library links nothing that draws, and the figures are simple enough not to need it.
#include "search/report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "genome/genome.h"
#include "genome/model_spec.h"
#include "genome/presets.h"
#include "search/chart.h"
#include "search/run.h"

namespace starsynth {
namespace {

using namespace chart;

// A value with its unit, short enough for a label beside an architecture.
std::string value_with_unit(const ObjectiveInfo& info, double v) {
  if (info.name == "quality") return info.higher_is_better ? "accuracy " + sig3(v) + " %" : "loss " + sig3(v) + " nats/byte";
  if (info.name == "params") return sig3(v) + " M params";
  if (info.name == "cache") return sig3(v) + " MB cache";
  if (info.name == "flops") return sig3(v) + " MFLOP/token";
  if (info.name == "tokens_per_s") return sig3(v) + " k tokens/s";
  return sig3(v) + " MB peak memory";
}

// Sizes spread over orders of magnitude read on a log scale; everything else linearly.
Axis data_axis(const ObjectiveInfo& info, const std::vector<double>& values) {
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const bool size_like = info.name == "params" || info.name == "cache" || info.name == "flops";
  if (size_like && *lo > 0 && *hi / *lo > 20) return log_axis(*lo, *hi);
  return linear_axis(*lo, *hi, 5, info.name == "quality" && info.higher_is_better ? 100 : HUGE_VAL);
}

// ---------------------------------------------------------------- run facts

std::optional<ModelSpec> spec_of(const SearchSpace& space, const pb::JournalRecord& r) {
  try {
    const std::vector<int64_t> genes(r.genes().begin(), r.genes().end());
    return compile(space, decode(space, genes));
  } catch (const std::exception&) {
    return std::nullopt;  // a record from another space version: shown without its architecture
  }
}

int last_generation(const RunView& run) {
  int g = run.has_checkpoint ? int(run.checkpoint.generation()) : 0;
  if (!run.has_checkpoint)  // before the first checkpoint the journal is all there is
    for (const auto& r : run.records) g = std::max(g, int(r.generation()));
  return g;
}

std::string figure_html(int& number, const std::string& svg, const std::string& caption) {
  return "<figure>" + svg + "<figcaption><b>Figure " + std::to_string(++number) + ".</b> " + caption + "</figcaption></figure>\n";
}

// ---------------------------------------------------------------- sections

std::string header_section(const RunView& run, bool accuracy) {
  int ok = 0, failed = 0;
  for (const auto& r : run.records) (r.status() == "ok" ? ok : failed)++;
  std::string status = run.finished() ? "finished" : run.has_checkpoint ? "in progress (or stopped) after generation " + std::to_string(run.checkpoint.generation()) : "in progress: no generation checkpointed yet";
  if (run.torn_bytes > 0)
    status += "; the journal ends in a torn record (" + std::to_string(run.torn_bytes) + " bytes after the last whole record: a crash, or a write in progress)";
  std::string objectives;
  for (const auto& name : run.config.objectives) objectives += (objectives.empty() ? "" : ", ") + objective_info(name, accuracy).label;
  std::string hv = "none yet (no checkpoint)";
  if (run.has_checkpoint && run.checkpoint.progress_size() > 0) {
    const auto& row = *run.checkpoint.progress().rbegin();
    hv = with_exponent(row.hypervolume()) + " (generation " + std::to_string(row.generation()) + ")";
  } else if (run.has_checkpoint) {
    std::vector<std::vector<double>> f;
    for (const auto& ind : run.checkpoint.population()) f.emplace_back(ind.fitness().begin(), ind.fitness().end());
    hv = with_exponent(hypervolume_of(f, {run.checkpoint.reference_point().begin(), run.checkpoint.reference_point().end()}));
  }
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"run directory", run.dir},
      {"task", run.config.message.task().kind()},
      {"objectives", objectives},
      {"algorithm", run.config.algorithm + ", population " + std::to_string(run.config.population) + ", seed " + std::to_string(run.config.seed)},
      {"generations", std::to_string(run.has_checkpoint ? run.checkpoint.generation() : 0) + " done of " + std::to_string(run.config.generations) + " configured"},
      {"evaluations journaled", std::to_string(run.records.size()) + " (" + std::to_string(ok) + " ok, " + std::to_string(failed) + " failed)"},
      {"status", status},
      {"hypervolume", hv}};
  std::ostringstream o;
  o << "<section id=\"sec-run\"><h2>1. Run</h2><table class=\"facts\">\n";
  for (const auto& [key, value] : rows)
    o << "<tr><th>" << esc(key) << "</th><td" << (key == "status" ? " id=\"status\"" : "") << (key == "status" && run.torn_bytes > 0 ? " class=\"warn\"" : "")
      << ">" << esc(value) << "</td></tr>\n";
  o << "</table></section>\n";
  return o.str();
}

// ---------------------------------------------------------------- scatter plots

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& b) const { return x0 < b.x1 && b.x0 < x1 && y0 < b.y1 && b.y0 < y1; }
};
struct Obstacle {
  double x, y, weight;
};
struct Label {
  double x, y, leader_x;
  std::string anchor;
};

// A name beside its mark at (cx, cy): of a few spots around it, the one inside the plot that
// hides the fewest marks and no name already placed (which joins `placed`).
Label place_label(const std::string& name, double cx, double cy, double left, double top, double right, double bottom,
                  const std::vector<Obstacle>& obstacles, std::vector<Box>& placed) {
  const double w = 6.8 * double(name.size()) + 4;
  struct Spot {
    double dx, dy;  // of the text's anchor from the mark; dx < 0: text ends there
  };
  const Spot spots[] = {{10, 4},   {-10, 4},  {10, -12}, {-10, -12}, {10, 20},  {-10, 20}, {0, -12},
                        {0, 21},   {10, -26}, {-10, -26}, {10, 34},  {-10, 34}, {0, -30},  {0, 38}};
  double best_cost = HUGE_VAL;
  Label best{cx + 10, cy + 4, cx, "start"};
  Box best_box{};
  for (size_t k = 0; k < std::size(spots); ++k) {
    const Spot& s = spots[k];
    const double x0 = s.dx > 0 ? cx + s.dx : s.dx < 0 ? cx + s.dx - w : cx - w / 2, y = cy + s.dy;
    const Box box{x0, y - 10, x0 + w, y + 3};
    double cost = 0.05 * double(k);  // nearer spots first, all else equal
    if (box.x0 < left || box.x1 > right || box.y0 < top || box.y1 > bottom) cost += 1000;
    for (const Box& b : placed) cost += b.overlaps(box) ? 500 : 0;
    for (const Obstacle& p : obstacles)
      if (p.x > box.x0 - 3 && p.x < box.x1 + 3 && p.y > box.y0 - 3 && p.y < box.y1 + 3 && std::hypot(p.x - cx, p.y - cy) > 0.5)
        cost += p.weight;
    if (cost < best_cost)
      best_cost = cost, best_box = box,
      best = {s.dx > 0 ? cx + s.dx : s.dx < 0 ? cx + s.dx : cx, y, s.dx > 0 ? box.x0 : s.dx < 0 ? box.x1 : cx,
              s.dx > 0 ? "start" : s.dx < 0 ? "end" : "middle"};
  }
  placed.push_back(best_box);
  return best;
}

// One objective pair: every successful evaluation, the pair's own front as an attainment staircase,
// and the presets by name, so that evolved architectures read against known designs.
std::string scatter(const RunView& run, bool accuracy, const std::string& a, const std::string& b,
                    const std::map<size_t, std::string>& presets, int& number) {
  const ObjectiveInfo yi = objective_info(a, accuracy), xi = objective_info(b, accuracy);
  std::vector<size_t> ok;
  for (size_t i = 0; i < run.records.size(); ++i)
    if (run.records[i].status() == "ok") ok.push_back(i);
  std::vector<double> xs, ys;
  for (size_t i : ok) xs.push_back(shown(run.records[i], xi)), ys.push_back(shown(run.records[i], yi));
  std::vector<size_t> front = front_of(run.records, {b, a});  // sorted by x, minimised
  const std::string front_colour = "#c62828", preset_colour = "#111";
  const std::vector<LegendItem> legend = {{"dot", "#8c8c8c", "evaluations (" + std::to_string(ok.size()) + ")"},
                                          {"front", front_colour, "non-dominated (" + std::to_string(front.size()) + ")"},
                                          {"preset", preset_colour, "preset"}};
  const double w = 420, plot_w = 330, top = 30 + legend_height(legend, w - 20) + 8, plot_h = 250;
  Axis x = data_axis(xi, xs), y = data_axis(yi, ys);
  x.p0 = 72, x.p1 = 72 + plot_w, y.p0 = top + plot_h, y.p1 = top;
  x.label = xi.label + (x.log ? ", log scale" : ""), y.label = yi.label + (y.log ? ", log scale" : "");
  const std::string title = yi.label.substr(0, yi.label.find(" (")) + " vs " + xi.label.substr(0, xi.label.find(" ("));
  std::ostringstream o;
  o << open_figure("scatter-" + a + "-" + b, w, top + plot_h + 48, title);
  draw_legend(o, legend, 10, 38, w - 10);
  draw_axes(o, x, y);
  auto point = [&](size_t i) { return std::make_pair(x.at(shown(run.records[i], xi)), y.at(shown(run.records[i], yi))); };
  auto tooltip = [&](size_t i) {
    return "<title>#" + std::to_string(run.records[i].sequence()) + " (generation " + std::to_string(run.records[i].generation()) +
           "): " + esc(value_with_unit(yi, shown(run.records[i], yi))) + ", " + esc(value_with_unit(xi, shown(run.records[i], xi))) + "</title>";
  };
  o << "<g class=\"evaluations\" fill=\"#8c8c8c\" fill-opacity=\"0.45\">";
  for (size_t i : ok) o << "<circle class=\"mark dot\" cx=\"" << px(point(i).first) << "\" cy=\"" << px(point(i).second) << "\" r=\"2.6\">" << tooltip(i) << "</circle>";
  std::vector<std::pair<double, double>> staircase;  // with the corner both neighbours dominate between them
  for (size_t k = 0; k < front.size(); ++k) {
    if (k > 0) staircase.push_back({point(front[k]).first, point(front[k - 1]).second});
    staircase.push_back(point(front[k]));
  }
  o << "</g>\n<path class=\"mark front-line\" fill=\"none\" stroke=\"" << front_colour << "\" stroke-width=\"1.6\" d=\"";
  for (size_t k = 0; k < staircase.size(); ++k) o << (k ? " L" : "M") << px(staircase[k].first) << "," << px(staircase[k].second);
  o << "\"/>\n<g class=\"front\" fill=\"" << front_colour << "\" stroke=\"#fff\" stroke-width=\"1\">";
  for (size_t i : front) o << "<circle class=\"mark front-pt\" cx=\"" << px(point(i).first) << "\" cy=\"" << px(point(i).second) << "\" r=\"4\">" << tooltip(i) << "</circle>";
  o << "</g>\n<g class=\"presets\" font-size=\"11\" font-weight=\"bold\">";
  std::vector<Obstacle> obstacles;
  for (size_t i : ok) obstacles.push_back({point(i).first, point(i).second, 1});
  for (size_t k = 1; k < staircase.size(); ++k) {  // the line itself, sampled every few pixels
    const auto [x0, y0] = staircase[k - 1];
    const auto [x1, y1] = staircase[k];
    const int n = std::max(1, int(std::hypot(x1 - x0, y1 - y0) / 4));
    for (int t = 1; t < n; ++t) obstacles.push_back({x0 + (x1 - x0) * t / n, y0 + (y1 - y0) * t / n, 0.5});
  }
  for (size_t i : front) obstacles.push_back({point(i).first, point(i).second, 3});
  for (const auto& [i, name] : presets) obstacles.push_back({point(i).first, point(i).second, 4});
  std::vector<Box> placed;
  for (const auto& [i, name] : presets) {
    const auto [cx, cy] = point(i);
    // Open, so that a preset on the front still shows its red point inside.
    o << "<path class=\"mark preset\" data-preset=\"" << esc(name) << "\" d=\"M" << px(cx) << "," << px(cy - 7) << " l7,7 l-7,7 l-7,-7 Z\" fill=\"none\""
      << " stroke=\"" << preset_colour << "\" stroke-width=\"1.6\">" << tooltip(i) << "</path>";
    const Label l = place_label(name, cx, cy, x.p0, y.p1, x.p1, y.p0, obstacles, placed);
    if (std::fabs(l.y - 4 - cy) > 12)  // far from its diamond: a leader line says whose name it is
      o << "<line x1=\"" << px(cx) << "\" y1=\"" << px(cy + (l.y < cy ? -7 : 7)) << "\" x2=\"" << px(l.leader_x) << "\" y2=\""
        << px(l.y < cy ? l.y + 2 : l.y - 10) << "\" stroke=\"#555\" stroke-width=\"0.8\"/>";
    o << "<text class=\"preset-label\" x=\"" << px(l.x) << "\" y=\"" << px(l.y) << "\" text-anchor=\"" << l.anchor
      << "\" fill=\"#111\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">" << esc(name) << "</text>";
  }
  o << "</g>\n</svg>";
  const std::string better = std::string(yi.higher_is_better ? "up" : "down") + " and " + (xi.higher_is_better ? "right" : "left");
  return figure_html(number, o.str(),
                     esc(title) + ": all " + std::to_string(ok.size()) + " successful evaluations (grey), the " + std::to_string(front.size()) +
                         " non-dominated on these two objectives (red, with the staircase they dominate) and the seeded presets (◇). Better is " +
                         better + ".");
}

std::string hypervolume_chart(const RunView& run, int& number) {
  std::vector<double> gens, hvs;
  for (const auto& row : run.checkpoint.progress()) gens.push_back(row.generation()), hvs.push_back(row.hypervolume());
  const int e = exponent_of(*std::max_element(hvs.begin(), hvs.end()));
  for (double& v : hvs) v /= std::pow(10.0, e);
  Axis x = generation_axis(int(gens.front()), int(gens.back()));
  Axis y = linear_axis(*std::min_element(hvs.begin(), hvs.end()), *std::max_element(hvs.begin(), hvs.end()), 5);
  const double top = 34, plot_h = 220;
  x.p0 = 72, x.p1 = 72 + 330, y.p0 = top + plot_h, y.p1 = top;
  x.label = "generation", y.label = "hypervolume" + (e ? " (× 10" + superscript(e) + ")" : std::string());
  std::ostringstream o;
  o << open_figure("hypervolume", 420, top + plot_h + 48, "Hypervolume per generation");
  draw_axes(o, x, y);
  o << "<path class=\"mark hv-line\" fill=\"none\" stroke=\"#1f4e79\" stroke-width=\"2\" d=\"";
  for (size_t k = 0; k < gens.size(); ++k) o << (k ? " L" : "M") << px(x.at(gens[k])) << "," << px(y.at(hvs[k]));
  o << "\"/><g fill=\"#1f4e79\">";
  for (size_t k = 0; k < gens.size(); ++k)
    o << "<circle class=\"mark\" cx=\"" << px(x.at(gens[k])) << "\" cy=\"" << px(y.at(hvs[k])) << "\" r=\"3.5\"><title>generation "
      << int(gens[k]) << ": " << with_exponent(hvs[k] * std::pow(10.0, e)) << "</title></circle>";
  o << "</g></svg>";
  std::string objectives;
  for (const auto& name : run.config.objectives) objectives += (objectives.empty() ? "" : ", ") + name;
  return figure_html(number, o.str(),
                     "Hypervolume of the population after each generation, on the minimised objectives (" + esc(objectives) +
                         ") in stored units (quality as error or loss, sizes in parameters and bytes) against the run's reference point. "
                         "Higher is better.");
}

// How the front's layers split over LIV classes as the search proceeds: which operators it keeps.
std::string composition_chart(const RunView& run, std::map<size_t, std::optional<ModelSpec>>& specs, int& number) {
  const int generations = last_generation(run);
  std::vector<std::map<std::string, int>> counts(size_t(generations + 1));
  std::vector<size_t> front_size(counts.size());
  std::set<std::string> seen;
  for (int g = 0; g <= generations; ++g) {
    const std::vector<size_t> front = front_after(run.records, run.config.objectives, g);
    front_size[size_t(g)] = front.size();
    for (size_t i : front) {
      if (!specs.count(i)) specs[i] = spec_of(run.config.space, run.records[i]);
      if (specs[i])
        for (const LayerSpec& l : specs[i]->layers) ++counts[size_t(g)][l.cls], seen.insert(l.cls);
    }
  }
  std::vector<std::string> classes(seen.begin(), seen.end());
  sort_classes(classes);
  const double slot = std::clamp(400.0 / double(counts.size()), 8.0, 48.0), bar = slot * 0.7;
  const double left = 72, plot_w = slot * double(counts.size()), top = 52, plot_h = 240, legend_x = left + plot_w + 24;
  Axis y;
  y.lo = 0, y.hi = 100, y.ticks = {0, 25, 50, 75, 100};
  y.p0 = top + plot_h, y.p1 = top, y.label = "share of front layers (%)";
  Axis x;  // categorical: labels drawn per bar below
  x.p0 = left, x.p1 = left + plot_w, x.label = "generation";
  const double h = std::max(top + plot_h + 48, top + 17.0 * double(classes.size()) + 20);
  std::ostringstream o;
  o << open_figure("composition", legend_x + 130, h, "Front composition by LIV class");
  draw_axes(o, x, y);
  const int label_every = std::max(1, int(std::ceil(28.0 / slot)));
  for (size_t g = 0; g < counts.size(); ++g) {
    int total = 0;
    for (const auto& [cls, n] : counts[g]) total += n;
    const double bx = left + slot * double(g) + (slot - bar) / 2;
    if (g % size_t(label_every) == 0)
      o << "<text x=\"" << px(bx + bar / 2) << "\" y=\"" << px(top + plot_h + 17) << "\" font-size=\"11\" text-anchor=\"middle\">" << g << "</text>";
    o << "<text x=\"" << px(bx + bar / 2) << "\" y=\"" << px(top - 10) << "\" font-size=\"10\" fill=\"#555\" text-anchor=\"middle\">"
      << front_size[g] << "</text>";
    double acc = 0;
    for (const std::string& cls : classes) {
      const int n = counts[g].count(cls) ? counts[g].at(cls) : 0;
      if (n == 0 || total == 0) continue;
      const double share = 100.0 * n / total;
      o << "<rect class=\"mark bar\" x=\"" << px(bx) << "\" y=\"" << px(y.at(acc + share)) << "\" width=\"" << px(bar) << "\" height=\""
        << px(y.at(acc) - y.at(acc + share)) << "\" fill=\"" << class_fill(cls) << "\" stroke=\"#fff\" stroke-width=\"0.5\"><title>generation "
        << g << ": " << esc(cls) << " " << fixed(share, 1) << " % (" << n << " of " << total << " layers)</title></rect>";
      acc += share;
    }
  }
  o << "<text x=\"" << px(left - 8) << "\" y=\"" << px(top - 10) << "\" font-size=\"10\" fill=\"#555\" text-anchor=\"end\">front size</text>";
  std::vector<LegendItem> items;
  for (auto it = classes.rbegin(); it != classes.rend(); ++it) items.push_back({"swatch", class_fill(*it), *it});  // top to bottom as stacked
  for (size_t k = 0; k < items.size(); ++k) draw_legend(o, {items[k]}, legend_x, top + 6 + 17.0 * double(k), legend_x + 130);
  o << "</svg>";
  return figure_html(number, o.str(),
                     "Share of each LIV class among all layers of the non-dominated set over all objectives, as it stood after each "
                     "generation (the number above a bar is the front size). Differential variants are hatched.");
}

// One architecture per row: layers in order, weight tying arced above, feature reuse below.
std::string strips(const RunView& run, bool accuracy, const std::vector<size_t>& front, const std::map<size_t, std::string>& presets,
                   std::map<size_t, std::optional<ModelSpec>>& specs, int& number) {
  std::set<std::string> seen;
  size_t depth = 1;
  bool ties = false, reuses = false;
  for (size_t i : front) {
    if (!specs.count(i)) specs[i] = spec_of(run.config.space, run.records[i]);
    if (specs[i]) {
      depth = std::max(depth, specs[i]->layers.size());
      for (const LayerSpec& l : specs[i]->layers)
        seen.insert(l.cls), ties = ties || l.tie_featurizer_to >= 0, reuses = reuses || l.reuse_from >= 0;
    }
  }
  std::vector<std::string> classes(seen.begin(), seen.end());
  sort_classes(classes);
  std::vector<LegendItem> legend;
  for (const std::string& cls : classes) legend.push_back({"swatch", class_fill(cls), cls});
  if (ties || reuses) legend.push_back({"break", "", ""});
  if (ties) legend.push_back({"tie", "#333", "weight tying: layer uses an earlier layer's featurizer weights (above)"});
  if (reuses) legend.push_back({"reuse", "#7b1fa2", "feature reuse: layer reads an earlier layer's features, with their role (below)"});
  const double label_w = 310, cell = std::clamp(560.0 / double(depth), 14.0, 40.0), strip_x = 10 + label_w, w = strip_x + cell * double(depth) + 20;
  // Room for arcs only where some member has them: rows stay compact otherwise.
  const double above = ties ? 30 : 10, below = reuses ? 34 : 12, row_h = above + 24 + below;
  const double width = std::max(w, 700.0), legend_h = legend_height(legend, width - 20, true);
  double y0 = 40 + legend_h;
  std::ostringstream o;
  o << open_figure("strips", width, y0 + row_h * double(front.size()) + 8, "Architectures on the front (layer 1 at the left)");
  draw_legend(o, legend, 10, 40, width - 10, true);
  for (size_t i : front) {
    const pb::JournalRecord& r = run.records[i];
    o << "<g class=\"strip\" id=\"strip-" << r.sequence() << "\">";
    o << "<text x=\"10\" y=\"" << px(y0 + above + 8) << "\" font-size=\"12\" font-weight=\"bold\">#" << r.sequence()
      << " <tspan font-weight=\"normal\" fill=\"#555\">(generation " << r.generation() << ")</tspan>"
      << (presets.count(i) ? " <tspan font-weight=\"normal\">· preset " + esc(presets.at(i)) + "</tspan>" : "") << "</text>";
    std::string values;
    for (const auto& name : run.config.objectives) {
      const ObjectiveInfo info = objective_info(name, accuracy);
      values += (values.empty() ? "" : " · ") + value_with_unit(info, shown(r, info));
    }
    o << "<text x=\"10\" y=\"" << px(y0 + above + 24) << "\" font-size=\"11\" fill=\"#333\">" << esc(values) << "</text>";
    const double top = y0 + above;
    if (!specs[i]) o << "<text x=\"" << px(strip_x) << "\" y=\"" << px(top + 16) << "\" font-size=\"11\">(genome does not decode in this space)</text>";
    const auto& layers = specs[i] ? specs[i]->layers : std::vector<LayerSpec>{};
    auto centre = [&](int k) { return strip_x + cell * (k + 0.5); };
    for (size_t k = 0; k < layers.size(); ++k)
      o << "<rect class=\"mark cell\" x=\"" << px(strip_x + cell * double(k) + 1) << "\" y=\"" << px(top) << "\" width=\"" << px(cell - 2)
        << "\" height=\"24\" rx=\"2\" fill=\"" << class_fill(layers[k].cls) << "\"><title>layer " << k + 1 << ": " << esc(layers[k].cls)
        << "</title></rect>";
    for (size_t k = 0; k < layers.size(); ++k) {
      const LayerSpec& l = layers[k];
      const double x1 = centre(int(k));
      if (l.tie_featurizer_to >= 0) {
        const double x0 = centre(l.tie_featurizer_to), h = std::min(above - 4, 8 + 4.0 * double(int(k) - l.tie_featurizer_to));
        o << "<path class=\"tie\" d=\"M" << px(x0) << "," << px(top - 1) << " Q" << px((x0 + x1) / 2) << "," << px(top - 1 - 2 * h) << " "
          << px(x1) << "," << px(top - 1) << "\" fill=\"none\" stroke=\"#333\" stroke-width=\"1.4\" marker-end=\"url(#arrow-tie)\"><title>layer "
          << k + 1 << " uses the featurizer weights of layer " << l.tie_featurizer_to + 1 << "</title></path>";
      }
      if (l.reuse_from >= 0) {
        const double x0 = centre(l.reuse_from), h = std::min(28.0, 8 + 4.0 * double(int(k) - l.reuse_from)), bottom = top + 25;
        o << "<path class=\"reuse\" d=\"M" << px(x0) << "," << px(bottom) << " Q" << px((x0 + x1) / 2) << "," << px(bottom + 2 * h) << " "
          << px(x1) << "," << px(bottom) << "\" fill=\"none\" stroke=\"#7b1fa2\" stroke-width=\"1.4\" stroke-dasharray=\"4 2\" "
          << "marker-end=\"url(#arrow-reuse)\"><title>layer " << k + 1 << " reads the " << esc(l.reuse_role) << " features of layer "
          << l.reuse_from + 1 << "</title></path>";
        o << "<text x=\"" << px((x0 + x1) / 2) << "\" y=\"" << px(bottom + h + 10) << "\" font-size=\"9\" fill=\"#7b1fa2\" text-anchor=\"middle\">"
          << esc(l.reuse_role) << "</text>";
      }
    }
    o << "</g>\n";
    y0 += row_h;
  }
  o << "</svg>";
  const std::string arcs = ties || reuses ? "; solid arcs above join a layer to the earlier layer whose featurizer weights it uses, dashed "
                                             "arcs below to the earlier layer whose computed features it reads, labelled with their role."
                                           : "; no member ties featurizer weights or reuses features.";
  return figure_html(number, o.str(),
                     "Every member of the non-dominated set over all objectives, by evaluation id: one cell per LIV layer coloured by class "
                     "(hover for its name)" + arcs);
}

std::string front_table(const RunView& run, bool accuracy, const std::vector<size_t>& front, const std::map<size_t, std::string>& presets,
                        std::map<size_t, std::optional<ModelSpec>>& specs) {
  std::vector<ObjectiveInfo> columns;
  for (const auto& name : run.config.objectives) columns.push_back(objective_info(name, accuracy));
  for (const char* size : {"params", "cache"})  // sizes always shown, once
    if (std::find(run.config.objectives.begin(), run.config.objectives.end(), size) == run.config.objectives.end())
      columns.push_back(objective_info(size, accuracy));
  std::ostringstream o;
  o << "<table class=\"sortable\" id=\"front-table\"><thead><tr><th class=\"num\">id</th><th class=\"num\">generation</th>";
  for (const auto& c : columns) o << "<th class=\"num\">" << esc(c.label) << "</th>";
  o << "<th>architecture</th></tr></thead><tbody>\n";
  for (size_t i : front) {
    const pb::JournalRecord& r = run.records[i];
    if (!specs.count(i)) specs[i] = spec_of(run.config.space, r);
    o << "<tr class=\"front-row\" id=\"row-" << r.sequence() << "\"><td class=\"num\" data-v=\"" << r.sequence() << "\">" << r.sequence() << "</td><td class=\"num\" data-v=\""
      << r.generation() << "\">" << r.generation() << "</td>";
    for (const auto& c : columns) o << "<td class=\"num\" data-v=\"" << shown(r, c) << "\">" << sig3(shown(r, c)) << "</td>";
    o << "<td class=\"summary\">" << esc(specs[i] ? summary(*specs[i]) : "(does not decode)")
      << (presets.count(i) ? " <i>(preset " + esc(presets.at(i)) + ")</i>" : "") << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  return o.str();
}

const char* kStyle = R"(<style>
body { font-family: "Helvetica Neue", Helvetica, Arial, "Liberation Sans", "DejaVu Sans", sans-serif; font-size: 14px;
       color: #111; margin: 24px 32px; max-width: 1400px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.sub { color: #555; margin: 0 0 12px; }
svg.figure text { font-family: inherit; }
.row { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
figure { margin: 0 0 8px; } figcaption { font-size: 12px; color: #333; max-width: 420px; margin-top: 2px; }
.wide figcaption { max-width: 760px; }
table { border-collapse: collapse; font-size: 13px; }
table.facts th { text-align: left; font-weight: normal; color: #555; padding: 2px 18px 2px 0; vertical-align: top; }
table.facts td { padding: 2px 0; }
table.sortable th { cursor: pointer; text-align: left; vertical-align: bottom; border-bottom: 2px solid #333; padding: 4px 10px; user-select: none; white-space: nowrap; }
table.sortable th[data-dir="asc"]::after { content: " \25B2"; font-size: 10px; }
table.sortable th[data-dir="desc"]::after { content: " \25BC"; font-size: 10px; }
table.sortable td { padding: 3px 10px; border-bottom: 1px solid #eee; } table.sortable .num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #555; font-style: italic; }
td.warn { color: #b71c1c; }
@media print { figure, tr { break-inside: avoid; } }
</style>
)";

// Records any script error where a headless browser's DOM dump shows it.
const char* kErrorHook =
    "<script>window.onerror = function (message, source, line) { var b = document.body;"
    " b.dataset.errors = (b.dataset.errors || '') + message + ' (line ' + line + '); '; };</script>\n";

const char* kScript = R"(<script>
// Sorting: numbers by value (data-v), text with digits in numeric order.
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.dataset.dir !== 'asc', body = table.tBodies[0], rows = Array.from(body.rows);
      table.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? 'asc' : 'desc';
      var key = function (r) { var c = r.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = Number(x), ny = Number(y);
        var d = (x !== '' && y !== '' && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y, undefined, {numeric: true});
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
// Self-check, read by the tests from a headless browser: every figure draws something, and no
// coordinate is NaN or infinite.
window.addEventListener('load', function () {
  var figures = document.querySelectorAll('svg.figure'), problems = [];
  figures.forEach(function (f) {
    if (!f.querySelector('.mark')) problems.push(f.id + ' has no marks');
    f.querySelectorAll('*').forEach(function (e) {
      for (var k = 0; k < e.attributes.length; ++k)
        if (/NaN|Infinity|\bnan\b|\binf\b/.test(e.attributes[k].value) && e.attributes[k].name !== 'aria-label')
          problems.push(f.id + ': ' + e.tagName + ' ' + e.attributes[k].name + '=' + e.attributes[k].value);
    });
  });
  document.body.dataset.check = problems.length ? 'fail: ' + problems.slice(0, 3).join('; ') : 'ok ' + figures.length + ' figures';
});
</script>
)";

}  // namespace

std::string report_html(const RunView& run) {
  const bool accuracy = quality_is_accuracy(run);
  const std::vector<std::string>& objectives = run.config.objectives;
  const std::map<size_t, std::string> presets = preset_records(run);
  const std::vector<size_t> front = front_of(run.records, objectives);
  const bool any_ok = std::any_of(run.records.begin(), run.records.end(), [](const auto& r) { return r.status() == "ok"; });
  std::map<size_t, std::optional<ModelSpec>> specs;  // compiled once, shared by the sections
  int figure = 0;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>starsynth report: " << esc(run.dir) << "</title>\n"
    << kStyle << "</head>\n<body>\n" << kErrorHook << shared_defs();
  o << "<h1>starsynth search report</h1>\n<p class=\"sub\">" << esc(run.dir) << " · " << esc(run.config.message.task().kind()) << "</p>\n";
  o << header_section(run, accuracy);

  o << "<section id=\"sec-tradeoffs\"><h2>2. Trade-offs between objectives</h2>\n";
  if (!any_ok) o << "<p class=\"note\">No successful evaluation journaled yet.</p>\n";
  else {
    o << "<div class=\"row\">\n";
    for (size_t p = 0; p < objectives.size(); ++p)
      for (size_t q = p + 1; q < objectives.size(); ++q) o << scatter(run, accuracy, objectives[p], objectives[q], presets, figure);
    o << "</div>\n";
  }
  o << "</section>\n<section id=\"sec-hypervolume\"><h2>3. Hypervolume</h2>\n";
  if (!run.has_checkpoint || run.checkpoint.progress_size() == 0)
    o << "<p class=\"note\" id=\"no-checkpoint\">No checkpoint yet: no generation has completed, so there is no hypervolume history.</p>\n";
  else o << "<div class=\"row\">" << hypervolume_chart(run, figure) << "</div>\n";

  o << "</section>\n<section id=\"sec-composition\"><h2>4. Front composition over generations</h2>\n";
  if (!any_ok) o << "<p class=\"note\">No front yet.</p>\n";
  else o << "<div class=\"row\">" << composition_chart(run, specs, figure) << "</div>\n";

  o << "</section>\n<section id=\"sec-architectures\"><h2>5. Architectures on the front</h2>\n";
  if (front.empty()) o << "<p class=\"note\">No front yet.</p>\n";
  else o << "<div class=\"row wide\">" << strips(run, accuracy, front, presets, specs, figure) << "</div>\n";

  o << "</section>\n<section id=\"sec-members\"><h2>6. Front members</h2>\n";
  if (front.empty()) o << "<p class=\"note\">No front yet.</p>\n";
  else o << "<p class=\"sub\">The " << front.size() << " non-dominated evaluations over all objectives; click a column to sort.</p>\n"
         << front_table(run, accuracy, front, presets, specs);
  o << "</section>\n" << kScript << "</body></html>\n";
  return o.str();
}

}  // namespace starsynth
