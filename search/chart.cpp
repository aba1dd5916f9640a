#include "search/chart.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace starsynth::chart {

// ---------------------------------------------------------------- text and numbers

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

std::string fixed(double v, int decimals) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(decimals) << (std::fabs(v) < 1e-12 ? 0.0 : v);  // never "-0.0"
  return o.str();
}

// Coordinates: a tenth of a pixel is below what a screen or printer shows.
std::string px(double v) { return fixed(v, 1); }

// Three significant digits without an exponent: how values read in labels and tables.
std::string sig3(double v) {
  if (!std::isfinite(v) || v == 0) return std::isfinite(v) ? "0" : "n/a";
  const int magnitude = int(std::floor(std::log10(std::fabs(v))));
  return fixed(v, std::clamp(2 - magnitude, 0, 6));
}

std::string superscript(int e) {
  static const char* digits[] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
  std::string s = e < 0 ? "⁻" : "";
  for (char c : std::to_string(std::abs(e))) s += digits[c - '0'];
  return s;
}

// Hypervolumes multiply raw units (parameters × bytes): far outside what fixed notation reads well.
int exponent_of(double v) {
  if (!std::isfinite(v) || v == 0 || (std::fabs(v) >= 1e-2 && std::fabs(v) < 1e4)) return 0;
  return int(std::floor(std::log10(std::fabs(v))));
}

std::string with_exponent(double v) {
  const int e = exponent_of(v);
  return e == 0 ? sig3(v) : sig3(v / std::pow(10.0, e)) + " × 10" + superscript(e);
}

// ---------------------------------------------------------------- LIV class colours

// One hue per family so that a glance separates attention from recurrence from convolution; shades
// within a hue separate the variants. Memoryless layers are grey: they carry no token mixing.
static const std::vector<std::pair<std::string, std::string>>& base_palette() {
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"SA-1", "#08306b"},    {"SA-2", "#2171b5"},    {"SA-3", "#4292c6"},     {"SA-4", "#9ecae1"},
      {"Rec-1", "#a63603"},   {"Rec-2", "#f16913"},   {"GConv-1", "#006d2c"},  {"GConv-2", "#41ab5d"},
      {"Hyena-SE", "#00695c"}, {"Hyena-MR", "#26a69a"}, {"Hyena-LI", "#80cbc4"}, {"GMemless", "#737373"},
      {"MLP", "#bdbdbd"}};
  return p;
}

static bool is_differential(const std::string& cls) { return cls.size() > 5 && cls.compare(cls.size() - 5, 5, "-Diff") == 0; }
static std::string base_of(const std::string& cls) { return is_differential(cls) ? cls.substr(0, cls.size() - 5) : cls; }

static bool in_palette(const std::string& cls) {
  const auto& p = base_palette();
  return std::any_of(p.begin(), p.end(), [&](const auto& entry) { return entry.first == cls; });
}

static std::string base_colour(const std::string& cls) {
  for (const auto& [name, colour] : base_palette())
    if (name == cls) return colour;
  return "#c994c7";  // a class added to the catalogue after this palette
}

// Differential variants: the base hue darkened, then hatched, so they stay legible in greyscale.
static std::string darker(const std::string& hex) {
  std::ostringstream o;
  o << '#' << std::hex << std::setfill('0');
  for (int k = 0; k < 3; ++k) o << std::setw(2) << int(std::stoi(hex.substr(size_t(1 + 2 * k), 2), nullptr, 16) * 0.7);
  return o.str();
}

std::string class_fill(const std::string& cls) {
  return is_differential(cls) && in_palette(base_of(cls)) ? "url(#hatch-" + cls + ")" : base_colour(base_of(cls));
}

// Legends and stacks list classes family by family, each differential variant after its base.
static int class_rank(const std::string& cls) {
  const auto& p = base_palette();
  for (size_t k = 0; k < p.size(); ++k)
    if (p[k].first == base_of(cls)) return int(2 * k) + is_differential(cls);
  return 1000;
}

void sort_classes(std::vector<std::string>& classes) {
  std::sort(classes.begin(), classes.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(class_rank(a), a) < std::make_pair(class_rank(b), b);
  });
}

// Fill patterns and arrowheads live in one hidden SVG; every figure of the page refers to them.
std::string shared_defs() {
  std::ostringstream o;
  o << "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>\n";
  for (const auto& [name, colour] : base_palette())
    o << "<pattern id=\"hatch-" << esc(name) << "-Diff\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\""
      << " patternTransform=\"rotate(45)\"><rect width=\"5\" height=\"5\" fill=\"" << darker(colour) << "\"/>"
      << "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#ffffff\" stroke-width=\"1.6\" stroke-opacity=\"0.6\"/></pattern>\n";
  for (const char* kind : {"tie", "reuse"})
    o << "<marker id=\"arrow-" << kind << "\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\""
      << " orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 Z\" fill=\"" << (std::string(kind) == "tie" ? "#333" : "#7b1fa2")
      << "\"/></marker>\n";
  o << "</defs></svg>\n";
  return o.str();
}

// ---------------------------------------------------------------- axes

// Steps of 1, 2 or 5 × 10^k, about `count` of them across the range.
static double nice_step(double range, int count) {
  const double raw = range / count, magnitude = std::pow(10.0, std::floor(std::log10(raw))), n = raw / magnitude;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * magnitude;
}

// `ceiling`: a bound the quantity cannot pass (100 %), so no tick is drawn beyond it.
Axis linear_axis(double lo, double hi, int count, double ceiling) {
  if (!(hi > lo)) {
    const double pad = std::max(std::fabs(lo) * 0.1, 1e-6);
    lo -= pad, hi += pad;
  }
  const double pad = (hi - lo) * 0.05;
  const double padded_lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;  // never a negative tick for a size
  const double padded_hi = hi <= ceiling ? std::min(hi + pad, ceiling) : hi + pad;
  Axis a;
  const double step = nice_step(padded_hi - padded_lo, count);
  const long first = long(std::floor(padded_lo / step + 1e-9)), last = long(std::ceil(padded_hi / step - 1e-9));
  for (long k = first; k <= last; ++k) a.ticks.push_back(double(k) * step);  // k·step: no drift from adding
  a.lo = a.ticks.front(), a.hi = a.ticks.back();
  a.decimals = std::max(0, -int(std::floor(std::log10(step) + 1e-9)));
  return a;
}

// Decades, with 2 and 5 labelled too when the data spans only a decade or two.
Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  const int d0 = int(std::floor(std::log10(lo / 1.1))), d1 = int(std::ceil(std::log10(hi * 1.1)));
  a.lo = std::pow(10.0, d0), a.hi = std::pow(10.0, d1);
  const int label_every = std::max(1, (d1 - d0 + 5) / 6);
  for (int d = d0; d <= d1; ++d) {
    const double decade = std::pow(10.0, d);
    if ((d - d0) % label_every == 0) a.ticks.push_back(decade);
    else a.minor.push_back(decade);
    if (d == d1) break;
    for (int m = 2; m <= 9; ++m) {
      const bool labelled = d1 - d0 <= 2 && (m == 2 || m == 5);
      (labelled ? a.ticks : a.minor).push_back(m * decade);
    }
  }
  return a;
}

// Generations: whole numbers, the first and last at the ends of the axis.
Axis generation_axis(int first, int last) {
  Axis a;
  a.lo = first, a.hi = std::max(last, first + 1);
  const double step = std::max(1.0, std::round(nice_step(a.hi - a.lo, 8)));
  for (double g = a.lo; g <= a.hi + 1e-9; g += step) a.ticks.push_back(g);
  return a;
}

void draw_axes(std::ostream& o, const Axis& x, const Axis& y) {
  const double left = x.p0, right = x.p1, bottom = y.p0, top = y.p1;
  o << "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">";
  for (double t : x.ticks) o << "<line x1=\"" << px(x.at(t)) << "\" x2=\"" << px(x.at(t)) << "\" y1=\"" << px(top) << "\" y2=\"" << px(bottom) << "\"/>";
  for (double t : y.ticks) o << "<line y1=\"" << px(y.at(t)) << "\" y2=\"" << px(y.at(t)) << "\" x1=\"" << px(left) << "\" x2=\"" << px(right) << "\"/>";
  o << "</g>\n<g class=\"axes\" stroke=\"#333\" stroke-width=\"1\">";
  o << "<line x1=\"" << px(left) << "\" x2=\"" << px(right) << "\" y1=\"" << px(bottom) << "\" y2=\"" << px(bottom) << "\"/>";
  o << "<line x1=\"" << px(left) << "\" x2=\"" << px(left) << "\" y1=\"" << px(top) << "\" y2=\"" << px(bottom) << "\"/>";
  for (double t : x.ticks) o << "<line x1=\"" << px(x.at(t)) << "\" x2=\"" << px(x.at(t)) << "\" y1=\"" << px(bottom) << "\" y2=\"" << px(bottom + 5) << "\"/>";
  for (double t : x.minor) o << "<line x1=\"" << px(x.at(t)) << "\" x2=\"" << px(x.at(t)) << "\" y1=\"" << px(bottom) << "\" y2=\"" << px(bottom + 3) << "\"/>";
  for (double t : y.ticks) o << "<line y1=\"" << px(y.at(t)) << "\" y2=\"" << px(y.at(t)) << "\" x1=\"" << px(left - 5) << "\" x2=\"" << px(left) << "\"/>";
  for (double t : y.minor) o << "<line y1=\"" << px(y.at(t)) << "\" y2=\"" << px(y.at(t)) << "\" x1=\"" << px(left - 3) << "\" x2=\"" << px(left) << "\"/>";
  o << "</g>\n<g class=\"ticks\" font-size=\"11\" fill=\"#333\">";
  for (double t : x.ticks) o << "<text x=\"" << px(x.at(t)) << "\" y=\"" << px(bottom + 17) << "\" text-anchor=\"middle\">" << x.tick_label(t) << "</text>";
  for (double t : y.ticks) o << "<text x=\"" << px(left - 8) << "\" y=\"" << px(y.at(t) + 4) << "\" text-anchor=\"end\">" << y.tick_label(t) << "</text>";
  o << "</g>\n<g class=\"labels\" font-size=\"12\" fill=\"#111\">";
  o << "<text x=\"" << px((left + right) / 2) << "\" y=\"" << px(bottom + 38) << "\" text-anchor=\"middle\">" << esc(x.label) << "</text>";
  o << "<text transform=\"translate(" << px(left - 52) << "," << px((top + bottom) / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << esc(y.label) << "</text></g>\n";
}

// ---------------------------------------------------------------- legends

static double legend_item_width(const LegendItem& item) { return 24 + 6.3 * double(item.label.size()) + 14; }

// Items left to right from (x, y), wrapped at `right`; returns the height used. `columns` gives
// every item the widest one's width, so long lists (LIV classes) line up as a table.
double draw_legend(std::ostream& o, const std::vector<LegendItem>& items, double x, double y, double right, bool columns) {
  double cx = x, cy = y, widest = 0;
  for (const LegendItem& item : items)
    if (item.kind == "swatch") widest = std::max(widest, legend_item_width(item));
  o << "<g class=\"legend\" font-size=\"11\" fill=\"#222\">";
  for (const LegendItem& item : items) {
    if (item.kind == "break") {
      if (cx > x) cx = x, cy += 17;
      continue;
    }
    const double own = legend_item_width(item), w = columns && widest > 0 ? widest * std::ceil(own / widest) : own;
    if (cx > x && cx + w > right) cx = x, cy += 17;
    const std::string mx = px(cx + 8), my = px(cy);
    if (item.kind == "dot") o << "<circle cx=\"" << mx << "\" cy=\"" << my << "\" r=\"3\" fill=\"" << item.fill << "\" opacity=\"0.7\"/>";
    if (item.kind == "front")
      o << "<line x1=\"" << px(cx) << "\" x2=\"" << px(cx + 16) << "\" y1=\"" << my << "\" y2=\"" << my << "\" stroke=\"" << item.fill
        << "\" stroke-width=\"1.5\"/><circle cx=\"" << mx << "\" cy=\"" << my << "\" r=\"4\" fill=\"" << item.fill << "\" stroke=\"#fff\"/>";
    if (item.kind == "preset")
      o << "<path d=\"M" << mx << "," << px(cy - 7) << " l7,7 l-7,7 l-7,-7 Z\" fill=\"none\" stroke=\"" << item.fill << "\" stroke-width=\"1.6\"/>";
    if (item.kind == "swatch")
      o << "<rect x=\"" << px(cx + 1) << "\" y=\"" << px(cy - 6) << "\" width=\"14\" height=\"12\" fill=\"" << item.fill << "\"/>";
    if (item.kind == "tie" || item.kind == "reuse")
      o << "<path d=\"M" << px(cx) << "," << px(cy + 4) << " Q" << mx << "," << px(cy - 8) << " " << px(cx + 16) << "," << px(cy + 4)
        << "\" fill=\"none\" stroke=\"" << item.fill << "\" stroke-width=\"1.5\"" << (item.kind == "reuse" ? " stroke-dasharray=\"4 2\"" : "") << "/>";
    o << "<text x=\"" << px(cx + 22) << "\" y=\"" << px(cy + 4) << "\">" << esc(item.label) << "</text>";
    cx += w;
  }
  o << "</g>\n";
  return cy - y + 17;
}

double legend_height(const std::vector<LegendItem>& items, double width, bool columns) {
  std::ostringstream sink;
  return draw_legend(sink, items, 0, 0, width, columns);
}

std::string open_figure(const std::string& id, double w, double h, const std::string& title) {
  std::ostringstream o;
  o << "<svg class=\"figure\" id=\"" << esc(id) << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(w) << "\" height=\""
    << px(h) << "\" viewBox=\"0 0 " << px(w) << ' ' << px(h) << "\" role=\"img\" aria-label=\"" << esc(title) << "\">\n";
  o << "<text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\" fill=\"#111\">" << esc(title) << "</text>\n";
  return o.str();
}

}  // namespace starsynth::chart
