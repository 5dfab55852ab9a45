// `ternion plot RUN_DIR [--output DIR]`: PNG plots of a run's metrics.jsonl drawn by gnuplot
// (loss.png: train and validation loss; throughput.png: tokens/s; lr.png: learning rate),
// with the data and the gnuplot script beside them so a plot can be redrawn by hand.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"

extern char** environ;

namespace ternion::cli {
namespace {

namespace fs = std::filesystem;

// One metrics.jsonl line (docs/metrics.md): an object of numbers, booleans (1/0), null
// (NaN: gnuplot skips it) and nested objects, flattened as "comm_bytes.dp".
class LineParser {
 public:
  LineParser(const std::string& line, const std::string& where) : s_(line), where_(where) {}
  std::map<std::string, double> parse() {
    std::map<std::string, double> out;
    skip();
    object("", out);
    skip();
    TN_CHECK(p_ == s_.size(), "plot", where_, ": unexpected text after the object at column ", p_ + 1);
    return out;
  }

 private:
  void skip() {
    while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_;
  }
  void expect(char c) {
    skip();
    TN_CHECK(p_ < s_.size() && s_[p_] == c, "plot", where_, ": expected '", std::string(1, c), "' at column ", p_ + 1,
             " (a truncated or corrupt line?)");
    ++p_;
  }
  std::string key() {
    expect('"');
    const size_t end = s_.find('"', p_);
    TN_CHECK(end != std::string::npos, "plot", where_, ": unterminated key at column ", p_ + 1);
    std::string k = s_.substr(p_, end - p_);
    p_ = end + 1;
    return k;
  }
  bool word(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(p_, n, w) != 0) return false;
    p_ += n;
    return true;
  }
  void object(const std::string& prefix, std::map<std::string, double>& out) {
    expect('{');
    skip();
    if (p_ < s_.size() && s_[p_] == '}') {
      ++p_;
      return;
    }
    while (true) {
      const std::string k = prefix + key();
      expect(':');
      skip();
      if (p_ < s_.size() && s_[p_] == '{') {
        object(k + ".", out);
      } else if (word("null")) {
        out[k] = std::nan("");
      } else if (word("true")) {
        out[k] = 1;
      } else if (word("false")) {
        out[k] = 0;
      } else {
        char* end = nullptr;
        const double v = std::strtod(s_.c_str() + p_, &end);
        TN_CHECK(end != s_.c_str() + p_, "plot", where_, ": key '", k, "' is not a number");
        out[k] = v;
        p_ = static_cast<size_t>(end - s_.c_str());
      }
      skip();
      if (p_ < s_.size() && s_[p_] == ',') {
        ++p_;
        continue;
      }
      expect('}');
      return;
    }
  }
  const std::string& s_;
  const std::string& where_;
  size_t p_ = 0;
};

std::map<std::string, double> parse_line(const std::string& line, const std::string& where) {
  std::map<std::string, double> row = LineParser(line, where).parse();
  TN_CHECK(row.count("step"), "plot", where, ": the object has no \"step\"");
  return row;
}

// Every row of metrics.jsonl. A last line that does not parse is what a run killed while
// writing it leaves behind: skipped with a warning. Any other bad line is an error.
std::vector<std::map<std::string, double>> read_rows(std::istream& in, const std::string& path) {
  std::vector<std::pair<int, std::string>> lines;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.emplace_back(n, std::move(line));
  std::vector<std::map<std::string, double>> rows;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = path + ":" + std::to_string(lines[i].first);
    if (i + 1 < lines.size()) {
      rows.push_back(parse_line(lines[i].second, where));
      continue;
    }
    try {
      rows.push_back(parse_line(lines[i].second, where));
    } catch (const Error& e) {
      std::fprintf(stderr, "ternion plot: warning: skipping the last line of %s, which is incomplete "
                   "(a run stopped while writing it?): %s\n", path.c_str(), e.what());
    }
  }
  return rows;
}

std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const fs::path p = fs::path(dirs.substr(start, end - start)) / "gnuplot";
    if (!p.parent_path().empty() && access(p.c_str(), X_OK) == 0) return p.string();
    start = end + 1;
  }
  return "";
}

// gnuplot single-quoted string: only ' needs escaping (doubled).
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

int run_plot(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]).rfind("--", 0) == 0) {  // main() answers --help
    std::fputs(kPlotUsage, stderr);
    return 2;
  }
  const fs::path run_dir = argv[1];
  Args args(argc - 1, argv + 1, {"output"});
  const fs::path out_dir = args.get("output", (run_dir / "plots").string());
  const fs::path metrics = run_dir / "metrics.jsonl";

  std::ifstream in(metrics);
  TN_CHECK(in, "plot", "no metrics in ", run_dir.string(), ": cannot read ", metrics.string(),
           " (is it a run directory, i.e. the config's run.dir?)");
  const std::vector<std::map<std::string, double>> rows = read_rows(in, metrics.string());
  TN_CHECK(!rows.empty(), "plot", metrics.string(), " has no rows: the run logged no step yet");

  const std::string gnuplot = find_gnuplot();
  TN_CHECK(!gnuplot.empty(), "plot", "gnuplot not found on PATH; install it (Debian package "
           "gnuplot-nox, which scripts/setup.sh installs)");

  fs::create_directories(out_dir);
  // Columns: step loss lr tokens_per_sec val_loss ("NaN" where not evaluated, which gnuplot
  // skips); steps counted from 1 as the console log does.
  const fs::path data = out_dir / "metrics.dat";
  {
    std::ofstream d(data);
    d << "# step loss lr tokens_per_sec val_loss\n";
    auto col = [](const std::map<std::string, double>& r, const char* k) {
      auto it = r.find(k);
      return it == r.end() ? std::string("NaN") : std::to_string(it->second);
    };
    for (const auto& r : rows)
      d << r.at("step") + 1 << ' ' << col(r, "loss") << ' ' << col(r, "lr") << ' '
        << col(r, "tokens_per_sec") << ' ' << col(r, "val_loss") << '\n';
    TN_CHECK(d.good(), "plot", "cannot write ", data.string());
  }
  const bool has_val = std::any_of(rows.begin(), rows.end(),
                                   [](const auto& r) { return r.count("val_loss") > 0; });
  const std::string title = run_dir.filename().empty() ? run_dir.parent_path().filename().string()
                                                       : run_dir.filename().string();
  const fs::path script = out_dir / "plots.gp";
  {
    std::ofstream g(script);
    g << "# Redraw with: gnuplot " << script.string() << "\n"
      << "set terminal pngcairo size 800,480 font 'sans,10'\n"
      << "set datafile missing 'NaN'\nset grid\nset key top right\nset xlabel 'step'\n"
      << "dat = " << gp_quote(data.string()) << "\n"
      << "set output " << gp_quote((out_dir / "loss.png").string()) << "\n"
      << "set title " << gp_quote(title + ": loss") << "\nset ylabel 'cross-entropy (nats)'\n"
      << "plot dat using 1:2 with lines lw 1.5 title 'train'"
      << (has_val ? ", dat using 1:5 with linespoints pt 7 ps 0.6 lw 1.5 title 'validation'" : "")
      << "\n"
      << "set output " << gp_quote((out_dir / "throughput.png").string()) << "\n"
      << "set title " << gp_quote(title + ": throughput") << "\nset ylabel 'tokens/s'\n"
      << "set yrange [0:*]\nplot dat using 1:4 with lines lw 1.5 notitle\nset autoscale y\n"
      << "set output " << gp_quote((out_dir / "lr.png").string()) << "\n"
      << "set title " << gp_quote(title + ": learning rate") << "\nset ylabel 'learning rate'\n"
      << "set format y '%.1e'\nplot dat using 1:3 with lines lw 1.5 notitle\n";
    TN_CHECK(g.good(), "plot", "cannot write ", script.string());
  }

  std::vector<std::string> argv_s = {gnuplot, script.string()};
  std::vector<char*> child_argv;
  for (auto& a : argv_s) child_argv.push_back(a.data());
  child_argv.push_back(nullptr);
  pid_t pid = 0;
  TN_CHECK(posix_spawn(&pid, gnuplot.c_str(), nullptr, nullptr, child_argv.data(), environ) == 0,
           "plot", "cannot start ", gnuplot);
  int status = 0;
  waitpid(pid, &status, 0);
  TN_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "plot", gnuplot, " failed on ",
           script.string(), " (its messages are above)");
  for (const char* name : {"loss.png", "throughput.png", "lr.png"})
    std::printf("plot: %s\n", (out_dir / name).c_str());
  return 0;
}

}  // namespace ternion::cli
