// Hand-written SVG charts for the HTML report: text and number formatting, the LIV class palette,
// axes with round ticks (linear or decades), legends, and the frame of a figure. Nothing here knows
// about runs; search/report.cpp draws runs with it.
#pragma once

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starsynth::chart {

std::string esc(std::string_view s);

std::string fixed(double v, int decimals);

std::string px(double v);  // an SVG coordinate

// Three significant digits without an exponent: how values read in labels and tables.
std::string sig3(double v);

std::string superscript(int e);

// Hypervolumes multiply raw units (parameters × bytes): far outside what fixed notation reads well.
int exponent_of(double v);

std::string with_exponent(double v);

// The fill of a LIV class: one hue per family, shades for variants, differential variants darker
// and hatched; an unknown class gets a neutral colour.
std::string class_fill(const std::string& cls);

// Family by family, each differential variant after its base: the order of legends and stacks.
void sort_classes(std::vector<std::string>& classes);

// Fill patterns and arrowheads live in one hidden SVG; every figure of the page refers to them.
std::string shared_defs();

struct Axis {
  double lo = 0, hi = 1;  // domain, in shown units
  bool log = false;
  double p0 = 0, p1 = 1;  // pixels of lo and hi (p1 < p0 on a vertical axis)
  std::vector<double> ticks, minor;
  int decimals = 0;
  std::string label;
  double at(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return p0 + t * (p1 - p0);
  }
  std::string tick_label(double v) const {
    if (!log) return fixed(v, decimals);
    return fixed(v, std::max(0, -int(std::floor(std::log10(v) + 1e-9))));
  }
};

// `ceiling`: a bound the quantity cannot pass (100 %), so no tick is drawn beyond it.
Axis linear_axis(double lo, double hi, int count, double ceiling = HUGE_VAL);

// Decades, with 2 and 5 labelled too when the data spans only a decade or two.
Axis log_axis(double lo, double hi);

// Generations: whole numbers, the first and last at the ends of the axis.
Axis generation_axis(int first, int last);

void draw_axes(std::ostream& o, const Axis& x, const Axis& y);

struct LegendItem {
  std::string kind;  // dot, front, preset, swatch, tie, reuse; break starts a new row
  std::string fill;
  std::string label;
};

// Items left to right from (x, y), wrapped at `right`; returns the height used. `columns` gives
// every item the widest one's width, so long lists (LIV classes) line up as a table.
double draw_legend(std::ostream& o, const std::vector<LegendItem>& items, double x, double y, double right, bool columns = false);

double legend_height(const std::vector<LegendItem>& items, double width, bool columns = false);

std::string open_figure(const std::string& id, double w, double h, const std::string& title);

}  // namespace starsynth::chart
