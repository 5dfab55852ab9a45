// `ternion plot RUN_DIR [--output DIR]`: PNG plots of a run's metrics.jsonl drawn by gnuplot
// (loss.png: train and validation loss; throughput.png: tokens/s; lr.png: learning rate),
// with the data and the gnuplot script beside them so a plot can be redrawn by hand.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"

extern char** environ;

namespace ternion::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: ternion plot RUN_DIR [--output DIR]\n"
    "Draws loss.png (train and validation), throughput.png and lr.png from RUN_DIR/metrics.jsonl\n"
    "into DIR (default RUN_DIR/plots) with gnuplot.\n";

// One metrics.jsonl line: a flat object of numbers, {"step": 0, "loss": 5.5, ...}.
std::map<std::string, double> parse_line(const std::string& line, const std::string& where) {
  std::map<std::string, double> out;
  size_t i = line.find('{');
  TN_CHECK(i != std::string::npos, "plot", where, ": not a JSON object");
  while (true) {
    const size_t k0 = line.find('"', i);
    if (k0 == std::string::npos) break;
    const size_t k1 = line.find('"', k0 + 1);
    const size_t colon = line.find(':', k1);
    TN_CHECK(k1 != std::string::npos && colon != std::string::npos, "plot", where, ": bad key");
    char* end = nullptr;
    const double v = std::strtod(line.c_str() + colon + 1, &end);
    TN_CHECK(end != line.c_str() + colon + 1, "plot", where, ": key '",
             line.substr(k0 + 1, k1 - k0 - 1), "' is not a number");
    out[line.substr(k0 + 1, k1 - k0 - 1)] = v;
    i = static_cast<size_t>(end - line.c_str());
  }
  return out;
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
  if (argc < 2 || std::string(argv[1]).rfind("--", 0) == 0) {
    std::fputs(kUsage, argc >= 2 && std::string(argv[1]) == "--help" ? stdout : stderr);
    return argc >= 2 && std::string(argv[1]) == "--help" ? 0 : 2;
  }
  const fs::path run_dir = argv[1];
  Args args(argc - 1, argv + 1, {"output"});
  const fs::path out_dir = args.get("output", (run_dir / "plots").string());
  const fs::path metrics = run_dir / "metrics.jsonl";

  std::ifstream in(metrics);
  TN_CHECK(in, "plot", "no metrics in ", run_dir.string(), ": cannot read ", metrics.string(),
           " (is it a run directory, i.e. the config's run.dir?)");
  std::vector<std::map<std::string, double>> rows;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find_first_not_of(" \t\r") != std::string::npos)
      rows.push_back(parse_line(line, metrics.string() + ":" + std::to_string(n)));
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
