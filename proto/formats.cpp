#include "proto/formats.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "genome/errors.h"
#include "proto/genome.pb.h"
#include "proto/messages.h"

namespace starsynth {

namespace {

namespace gp = google::protobuf;

// Keeps the first syntax error of a text-format parse.
// Keeps the first syntax error of a text-format parse, with the offending line quoted: protobuf's
// own message ("Expected integer, got: ...") does not name the field, the line does.
class FirstError : public gp::io::ErrorCollector {
 public:
  explicit FirstError(const std::string& content) : content_(content) {}
  void AddError(int line, gp::io::ColumnNumber column, const std::string& message) override {
    if (!text.empty()) return;
    text = std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
    std::string quoted = line_at(line);
    if (!quoted.empty()) text += " (in `" + quoted + "`)";
  }
  std::string text;

 private:
  std::string line_at(int line) const {
    size_t at = 0;
    for (int i = 0; i < line && at != std::string::npos; ++i) {
      at = content_.find('\n', at);
      if (at != std::string::npos) ++at;
    }
    if (at == std::string::npos || at >= content_.size()) return "";
    std::string s = content_.substr(at, content_.find('\n', at) - at);
    const size_t first = s.find_first_not_of(" \t"), last = s.find_last_not_of(" \t\r");
    return first == std::string::npos ? "" : s.substr(first, std::min<size_t>(last - first + 1, 80));
  }
  const std::string& content_;
};

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Format sniff(const std::string& content, const std::string& source) {
  if (ends_with(source, ".json")) return Format::Json;
  for (const char* ext : {".textproto", ".txtpb", ".pbtxt", ".txt"})
    if (ends_with(source, ext)) return Format::Text;
  const size_t first = content.find_first_not_of(" \t\r\n");
  return first != std::string::npos && content[first] == '{' ? Format::Json : Format::Text;
}

}  // namespace

void parse_message(const std::string& content, const std::string& source, gp::Message* msg) {
  const std::string type = msg->GetDescriptor()->name();
  if (blank(content)) throw LoadError(source + ": empty file, expected a " + type + " in protobuf text or JSON");
  if (sniff(content, source) == Format::Json) {
    gp::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    const auto status = gp::util::JsonStringToMessage(content, msg, options);
    if (!status.ok()) {
      // The parser appends the offending text and a caret on further lines: keep one line.
      std::string why(status.message());
      throw LoadError(source + ": invalid " + type + " JSON: " + why.substr(0, why.find('\n')));
    }
    return;
  }
  FirstError errors(content);
  gp::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(content, msg))
    throw LoadError(source + ":" + (errors.text.empty() ? "invalid " + type : errors.text));
}

std::string print_message(const gp::Message& msg, Format format) {
  std::string out;
  if (format == Format::Json) {
    gp::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.preserve_proto_field_names = true;
    const auto status = gp::util::MessageToJsonString(msg, &out, options);
    if (!status.ok()) throw std::runtime_error("cannot print JSON: " + std::string(status.message()));
    return out;
  }
  gp::TextFormat::PrintToString(msg, &out);
  return out;
}

namespace {

// ---- plain struct <-> message ---------------------------------------------------------------

LivHyper from_pb(const pb::Hyper& p, const std::string& at) {
  auto nonneg = [&](int32_t v, const char* name) -> int64_t {
    if (v < 0) throw FieldError(at + name, "expected a positive integer or 0 (default), got " + std::to_string(v));
    return v;
  };
  LivHyper h;
  h.head_dim = nonneg(p.head_dim(), "head_dim");
  h.kv_repeat = nonneg(p.kv_repeat(), "kv_repeat");
  h.short_conv = nonneg(p.short_conv(), "short_conv");
  h.state_expansion = nonneg(p.state_expansion(), "state_expansion");
  h.filter_length = nonneg(p.filter_length(), "filter_length");
  h.filter_group = nonneg(p.filter_group(), "filter_group");
  h.filter_order = nonneg(p.filter_order(), "filter_order");
  h.filter_emb = nonneg(p.filter_emb(), "filter_emb");
  h.ffn_hidden = nonneg(p.ffn_hidden(), "ffn_hidden");
  if (p.ffn_multiplier() < 0) throw FieldError(at + "ffn_multiplier", "expected a positive number");
  h.ffn_multiplier = p.ffn_multiplier();
  h.ffn_multiple_of = nonneg(p.ffn_multiple_of(), "ffn_multiple_of");
  h.dt_rank = nonneg(p.dt_rank(), "dt_rank");
  return h;
}

pb::Hyper to_pb(const LivHyper& h) {
  pb::Hyper p;
  p.set_head_dim(int32_t(h.head_dim));
  p.set_kv_repeat(int32_t(h.kv_repeat));
  p.set_short_conv(int32_t(h.short_conv));
  p.set_state_expansion(int32_t(h.state_expansion));
  p.set_filter_length(int32_t(h.filter_length));
  p.set_filter_group(int32_t(h.filter_group));
  p.set_filter_order(int32_t(h.filter_order));
  p.set_filter_emb(int32_t(h.filter_emb));
  p.set_ffn_hidden(int32_t(h.ffn_hidden));
  p.set_ffn_multiplier(h.ffn_multiplier);
  p.set_ffn_multiple_of(int32_t(h.ffn_multiple_of));
  p.set_dt_rank(int32_t(h.dt_rank));
  return p;
}

NormType norm_from(const std::string& s, const std::string& path) {
  if (s.empty() || s == "rmsnorm") return NormType::RMSNorm;
  if (s == "layernorm") return NormType::LayerNorm;
  throw FieldError(path, "expected \"rmsnorm\" or \"layernorm\", got \"" + s + "\"");
}

PositionEncoding position_from(const std::string& s, const std::string& path) {
  if (s.empty() || s == "rope") return PositionEncoding::RoPE;
  if (s == "learned") return PositionEncoding::Learned;
  if (s == "none") return PositionEncoding::None;
  throw FieldError(path, "expected \"rope\", \"learned\" or \"none\", got \"" + s + "\"");
}

}  // namespace

SearchSpace space_from_message(const pb::SearchSpace& p, const std::string& at) {
  std::vector<std::string> alphabet(p.alphabet().begin(), p.alphabet().end());
  if (alphabet.empty()) alphabet = star_alphabet();
  std::map<std::string, LivHyper> overrides;
  for (int i = 0; i < p.classes_size(); ++i) {
    const std::string path = at + "classes[" + std::to_string(i) + "]";
    const auto& c = p.classes(i);
    if (std::find(alphabet.begin(), alphabet.end(), c.name()) == alphabet.end())
      throw FieldError(path + ".name", "expected a class of the alphabet, got \"" + c.name() + "\"");
    if (!overrides.emplace(c.name(), from_pb(c.hyper(), path + ".hyper.")).second)
      throw FieldError(path + ".name", "class \"" + c.name() + "\" is set twice");
  }
  SearchSpace s = make_space(p.num_livs(), p.width(), p.vocab_size(), alphabet, overrides);
  s.allow_featurizer_sharing = !p.has_featurizer_sharing() || p.featurizer_sharing();
  s.allow_feature_sharing = !p.has_feature_sharing() || p.feature_sharing();
  s.norm = norm_from(p.norm(), at + "norm");
  s.position = position_from(p.position(), at + "position");
  s.max_positions = p.max_positions();
  if (p.rope_theta() < 0) throw FieldError(at + "rope_theta", "expected a positive number");
  s.rope_theta = p.rope_theta() > 0 ? p.rope_theta() : 10000.0;
  s.tie_embeddings = !p.has_tie_embeddings() || p.tie_embeddings();
  s.bias = p.bias();
  try {
    validate(s);
  } catch (const FieldError& e) {
    throw FieldError(at + e.path(), std::string(e.what()).substr(e.path().size() + 2));
  }
  return s;
}

pb::SearchSpace space_to_message(const SearchSpace& s) {
  pb::SearchSpace p;
  p.set_num_livs(s.num_livs);
  p.set_width(int32_t(s.width));
  p.set_vocab_size(int32_t(s.vocab_size));
  for (const auto& name : s.alphabet) {
    p.add_alphabet(name);
    auto* c = p.add_classes();
    c->set_name(name);
    *c->mutable_hyper() = to_pb(s.hyper_of(name));
  }
  p.set_featurizer_sharing(s.allow_featurizer_sharing);
  p.set_feature_sharing(s.allow_feature_sharing);
  p.set_norm(std::string(norm_name(s.norm)));
  p.set_position(std::string(position_name(s.position)));
  p.set_max_positions(int32_t(s.max_positions));
  p.set_rope_theta(s.rope_theta);
  p.set_tie_embeddings(s.tie_embeddings);
  p.set_bias(s.bias);
  return p;
}

namespace {

ModelSpec from_pb(const pb::ModelConfig& p) {
  if (p.version() != kModelConfigVersion)
    throw FieldError("version", "expected " + std::to_string(kModelConfigVersion) +
                                    " (the ModelConfig format this build reads), got " + std::to_string(p.version()));
  ModelSpec m;
  m.name = p.name();
  m.vocab_size = p.vocab_size();
  m.width = p.width();
  m.norm = norm_from(p.norm(), "norm");
  m.norm_eps = p.norm_eps() != 0 ? p.norm_eps() : 1e-5;
  m.position = position_from(p.position(), "position");
  m.max_positions = p.max_positions();
  m.rope_theta = p.rope_theta() != 0 ? p.rope_theta() : 10000.0;
  m.tie_embeddings = p.tie_embeddings();
  m.bias = p.bias();
  for (int i = 0; i < p.layers_size(); ++i) {
    const auto& l = p.layers(i);
    const std::string at = "layers[" + std::to_string(i) + "].";
    LayerSpec layer;
    layer.cls = l.class_();
    layer.hyper = from_pb(l.hyper(), at + "hyper.");
    layer.tie_featurizer_to = l.has_tie_featurizer_to() ? l.tie_featurizer_to() : -1;
    layer.reuse_from = l.has_reuse_from() ? l.reuse_from() : -1;
    layer.reuse_role = l.reuse();
    m.layers.push_back(std::move(layer));
  }
  validate(m);
  return m;
}

pb::ModelConfig to_pb(const ModelSpec& m) {
  pb::ModelConfig p;
  p.set_version(kModelConfigVersion);
  p.set_name(m.name);
  p.set_vocab_size(int32_t(m.vocab_size));
  p.set_width(int32_t(m.width));
  p.set_norm(std::string(norm_name(m.norm)));
  p.set_norm_eps(m.norm_eps);
  p.set_position(std::string(position_name(m.position)));
  p.set_max_positions(int32_t(m.max_positions));
  p.set_rope_theta(m.rope_theta);
  p.set_tie_embeddings(m.tie_embeddings);
  p.set_bias(m.bias);
  for (const LayerSpec& l : m.layers) {
    auto* x = p.add_layers();
    x->set_class_(l.cls);
    *x->mutable_hyper() = to_pb(l.hyper);
    if (l.tie_featurizer_to >= 0) x->set_tie_featurizer_to(l.tie_featurizer_to);
    if (l.reuse_from >= 0) x->set_reuse_from(l.reuse_from), x->set_reuse(l.reuse_role);
  }
  return p;
}

template <typename Fn>
auto in_file(const std::string& source, Fn&& fn) {
  try {
    return fn();
  } catch (const FieldError& e) {
    throw LoadError(source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw LoadError(source + ": " + e.what());
  }
}

}  // namespace

Format format_for(const std::string& path) {
  for (const char* ext : {".textproto", ".txtpb", ".pbtxt", ".txt"})
    if (ends_with(path, ext)) return Format::Text;
  return Format::Json;
}

SearchSpace parse_space(const std::string& content, const std::string& source) {
  pb::SearchSpace p;
  parse_message(content, source, &p);
  return in_file(source, [&] { return space_from_message(p, ""); });
}

GenomeFile parse_genome(const std::string& content, const std::string& source, bool check_valid) {
  pb::Genome p;
  parse_message(content, source, &p);
  return in_file(source, [&] {
    if (!p.has_space()) throw FieldError("space", "missing: a genome file carries its search space");
    GenomeFile f;
    f.space = space_from_message(p.space(), "space.");
    for (int i = 0; i < p.livs_size(); ++i) {
      const auto& l = p.livs(i);
      const std::string at = "livs[" + std::to_string(i) + "].";
      auto it = std::find(f.space.alphabet.begin(), f.space.alphabet.end(), l.class_());
      if (it == f.space.alphabet.end()) {
        std::string names;
        for (const auto& n : f.space.alphabet) names += (names.empty() ? "" : ", ") + n;
        throw FieldError(at + "class", "expected a class of the space's alphabet (" + names + "), got \"" + l.class_() + "\"");
      }
      LivGene g;
      g.cls = int(it - f.space.alphabet.begin()) + 1;
      g.feat_group = l.has_featurizer_group() ? l.featurizer_group() : 1;
      g.feat_strategy = l.has_featurizer_strategy() ? l.featurizer_strategy() : 1;
      g.fg_group = l.has_feature_group() ? l.feature_group() : 1;
      g.fg_strategy = l.has_feature_strategy() ? l.feature_strategy() : 1;
      f.genome.livs.push_back(g);
    }
    if (check_valid) validate(f.space, f.genome);
    return f;
  });
}

ModelSpec parse_model_config(const std::string& content, const std::string& source) {
  pb::ModelConfig p;
  parse_message(content, source, &p);
  return in_file(source, [&] { return from_pb(p); });
}

SearchSpace load_space(const std::string& path) { return parse_space(read_file(path), path); }
GenomeFile load_genome(const std::string& path) { return parse_genome(read_file(path), path); }
ModelSpec load_model_config(const std::string& path) { return parse_model_config(read_file(path), path); }

std::string format_space(const SearchSpace& space, Format format) { return print_message(space_to_message(space), format); }

std::string format_genome(const SearchSpace& space, const Genome& genome, Format format) {
  pb::Genome p;
  *p.mutable_space() = space_to_message(space);
  for (const LivGene& g : genome.livs) {
    auto* l = p.add_livs();
    l->set_class_(space.cls(g.cls).name);
    l->set_featurizer_group(g.feat_group);
    l->set_featurizer_strategy(g.feat_strategy);
    l->set_feature_group(g.fg_group);
    l->set_feature_strategy(g.fg_strategy);
  }
  return print_message(p, format);
}

std::string format_model_config(const ModelSpec& spec, Format format) { return print_message(to_pb(spec), format); }

std::string read_file(const std::string& path) {
  std::ostringstream s;
  if (path == "-") {
    s << std::cin.rdbuf();
    return s.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LoadError(path + ": cannot read (" + std::strerror(errno) + ")");
  s << in.rdbuf();
  return s.str();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) throw std::runtime_error(path + ": cannot create a temporary file (" + std::strerror(errno) + ")");
  // mkstemp creates 0600; give the file the permissions an ordinary create would.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(path + ": cannot write (" + why + ")");
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": cannot write (" + why + ")");
  }
  // The rename is durable only once the folder's entry is on disk too.
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace starsynth
