// A small command-line parser: positionals, `--name value` options and `--flag` switches, with
// errors that say which option was wrong and what it expected.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace starsynth::cli {

// Wrong usage: the message is printed with the command's usage line, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;

  bool flag(const std::string& name) const { return flags.count(name) > 0; }
  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
  int64_t get_int(const std::string& name, int64_t fallback, int64_t min_value = 1) const {
    auto it = options.find(name);
    if (it == options.end()) return fallback;
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != it->second.size() || v < min_value)
      throw UsageError("--" + name + ": expected an integer >= " + std::to_string(min_value) + ", got \"" + it->second + "\"");
    return v;
  }
  const std::string& positional_at(size_t i, const char* what) const {
    if (i >= positional.size()) throw UsageError(std::string("missing ") + what);
    return positional[i];
  }
};

// `valued` options take the next word; `switches` take none; anything else starting with "--" is
// an error. "-o" is accepted as "--output".
inline Args parse_args(int argc, char** argv, int first, const std::set<std::string>& valued,
                       const std::set<std::string>& switches) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "-o") word = "--output";
    if (word.size() > 2 && word.rfind("--", 0) == 0) {
      const std::string name = word.substr(2);
      if (switches.count(name)) {
        a.flags.insert(name);
      } else if (valued.count(name)) {
        if (i + 1 >= argc) throw UsageError("--" + name + ": expected a value");
        a.options[name] = argv[++i];
      } else {
        throw UsageError("unknown option --" + name);
      }
    } else {
      a.positional.push_back(word);
    }
  }
  return a;
}

}  // namespace starsynth::cli
