// The visual report of a run: one self-contained HTML file (inline SVG, a few lines of script for
// sorting the table, nothing fetched from the network) that a researcher can open, print or put
// beside a paper draft.
#pragma once

#include <string>

#include "search/inspect.h"

namespace starsynth {

// The report of `run` as it stands (finished, running or crashed).
std::string report_html(const RunView& run);

}  // namespace starsynth
