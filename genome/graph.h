// The architecture graph: embedding → layers → head along the residual stream, plus an edge for
// every weight tie (owner → user) and every feature reuse (producer → consumer).
#pragma once

#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "genome/model_spec.h"

namespace starsynth {

enum class EdgeKind { Residual, Tie, Reuse };

struct ArchVertex {
  std::string name;  // "embed", "L3 SA-1", "head"
  std::string cls;   // empty for embed and head
  int layer = -1;    // -1 for embed and head
};

struct ArchEdge {
  EdgeKind kind = EdgeKind::Residual;
  std::string label;  // reused role for reuse edges
};

using ArchGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, ArchVertex, ArchEdge>;

ArchGraph build_graph(const ModelSpec& spec);

// The vertices in topological order; throws std::logic_error when the graph has a cycle or a
// sharing edge points backwards in depth (a consumer before its producer).
std::vector<size_t> check_order(const ArchGraph& g);

// Graphviz DOT: the residual stream top to bottom, one box per layer coloured by family, dashed
// arcs for weight ties and bold arcs for feature reuse.
std::string to_dot(const ModelSpec& spec);

}  // namespace starsynth
