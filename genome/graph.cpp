#include "genome/graph.h"

#include <sstream>
#include <stdexcept>

#include <boost/graph/graphviz.hpp>
#include <boost/graph/topological_sort.hpp>

namespace starsynth {

namespace {

// One colour per family, so that stripes of a hybrid are visible at a glance.
const char* family_colour(Family f) {
  switch (f) {
    case Family::Attention: return "#4e79a7";
    case Family::Recurrence: return "#f28e2b";
    case Family::ShortConv: return "#59a14f";
    case Family::LongConv: return "#8cd17d";
    case Family::SwiGLU: return "#bab0ac";
    case Family::Mlp: return "#d7d2cf";
    case Family::HyenaSE: return "#e15759";
    case Family::HyenaMR: return "#ff9d9a";
    case Family::HyenaLI: return "#b07aa1";
  }
  return "#ffffff";
}

}  // namespace

ArchGraph build_graph(const ModelSpec& spec) {
  ArchGraph g;
  const auto embed = boost::add_vertex(ArchVertex{"embed", "", -1}, g);
  std::vector<ArchGraph::vertex_descriptor> layer;
  auto previous = embed;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const auto v = boost::add_vertex(ArchVertex{"L" + std::to_string(i) + " " + l.cls, l.cls, int(i)}, g);
    boost::add_edge(previous, v, ArchEdge{EdgeKind::Residual, ""}, g);
    if (l.tie_featurizer_to >= 0) boost::add_edge(layer.at(size_t(l.tie_featurizer_to)), v, ArchEdge{EdgeKind::Tie, "tie"}, g);
    if (l.reuse_from >= 0) boost::add_edge(layer.at(size_t(l.reuse_from)), v, ArchEdge{EdgeKind::Reuse, l.reuse_role}, g);
    layer.push_back(v);
    previous = v;
  }
  boost::add_edge(previous, boost::add_vertex(ArchVertex{"head", "", -1}, g), ArchEdge{EdgeKind::Residual, ""}, g);
  return g;
}

std::vector<size_t> check_order(const ArchGraph& g) {
  for (auto [e, end] = boost::edges(g); e != end; ++e) {
    const ArchVertex& from = g[boost::source(*e, g)];
    const ArchVertex& to = g[boost::target(*e, g)];
    if (g[*e].kind != EdgeKind::Residual && from.layer >= to.layer)
      throw std::logic_error("sharing edge from " + from.name + " to " + to.name + " does not point forward in depth");
  }
  std::vector<size_t> reversed;
  try {
    boost::topological_sort(g, std::back_inserter(reversed));
  } catch (const boost::not_a_dag&) {
    throw std::logic_error("the architecture graph has a cycle");
  }
  return {reversed.rbegin(), reversed.rend()};
}

std::string to_dot(const ModelSpec& spec) {
  const ArchGraph g = build_graph(spec);
  check_order(g);
  std::ostringstream out;
  auto vertex_writer = [&](std::ostream& os, ArchGraph::vertex_descriptor v) {
    const ArchVertex& x = g[v];
    if (x.cls.empty()) {
      os << "[label=\"" << x.name << "\", shape=ellipse]";
      return;
    }
    os << "[label=\"" << x.name << "\", shape=box, style=filled, fillcolor=\""
       << family_colour(class_by_name(x.cls).family) << "\"]";
  };
  auto edge_writer = [&](std::ostream& os, ArchGraph::edge_descriptor e) {
    const ArchEdge& x = g[e];
    switch (x.kind) {
      case EdgeKind::Residual: os << "[weight=10]"; break;
      case EdgeKind::Tie: os << "[style=dashed, color=\"#555555\", constraint=false, label=\"tie\"]"; break;
      case EdgeKind::Reuse: os << "[style=bold, color=\"#c0392b\", constraint=false, label=\"" << x.label << "\"]"; break;
    }
  };
  auto graph_writer = [&](std::ostream& os) {
    os << "label=\"" << (spec.name.empty() ? "model" : spec.name) << " (width " << spec.width << ", "
       << spec.layers.size() << " LIVs)\";\nrankdir=TB;\nnode [fontname=\"Helvetica\"];\n";
  };
  boost::write_graphviz(out, g, vertex_writer, edge_writer, graph_writer);
  return out.str();
}

}  // namespace starsynth
