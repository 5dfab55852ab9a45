// describe_timeout(): what a rank whose call timed out learnt, as one message. See
// roll_call.h. Pure (no MPI), so every case is tested in roll_call_test.cpp.
#include <algorithm>
#include <cstdio>
#include <map>

#include "parallel/roll_call.h"

namespace ternion::parallel {
namespace {

std::string seconds(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

// "world rank 3" or "world ranks 1,5": the members' world ranks, in order.
std::string world(const TimeoutFacts& f, const std::vector<int>& members) {
  std::vector<int> w;
  for (int m : members) w.push_back(f.world_ranks[static_cast<size_t>(m)]);
  std::sort(w.begin(), w.end());
  return (w.size() == 1 ? "world rank " : "world ranks ") + rank_list(w);
}

const char* verb(const std::vector<int>& members, const char* one, const char* many) {
  return members.size() == 1 ? one : many;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

template <typename Pred>
std::vector<int> members_where(const TimeoutFacts& f, Pred pred) {
  std::vector<int> out;
  for (int m = 0; m < static_cast<int>(f.peers.size()); ++m)
    if (m != f.self && pred(f.peers[static_cast<size_t>(m)])) out.push_back(m);
  return out;
}

std::string where(const TimeoutFacts& f) {
  return f.group + (f.call > 0 ? " at call #" + std::to_string(f.call) : std::string());
}

// Collective: who did not arrive, who issued something else, who waited.
std::string collective_findings(const TimeoutFacts& f) {
  using Peer = TimeoutFacts::Peer;
  const auto arrived = [&](const Peer& p) {
    return (p.answered || p.ended == Ending::kTimeout) && p.reached >= f.call;
  };
  std::vector<std::string> clauses;
  const std::vector<int> silent =
      members_where(f, [](const Peer& p) { return p.asked && !p.answered && p.ended == Ending::kNo; });
  if (!silent.empty()) {
    clauses.push_back(world(f, silent) + " did not arrive (no answer within " +
                      seconds(f.answer_wait) + ": stalled or dead)");
  }
  std::map<int64_t, std::vector<int>> behind;  // by the number of calls issued
  for (int m : members_where(f, [&](const Peer& p) { return p.answered && p.reached < f.call; }))
    behind[f.peers[static_cast<size_t>(m)].reached].push_back(m);
  for (const auto& [reached, ms] : behind) {
    clauses.push_back(world(f, ms) + " did not arrive (" + verb(ms, "it answers but has", "they answer but have") +
                      " issued only " + std::to_string(reached) +
                      " of this group's calls: computing, or waiting elsewhere: in a send or receive, or in "
                      "another group)");
  }
  const std::vector<int> ended_before = members_where(
      f, [&](const Peer& p) { return !p.answered && p.ended == Ending::kTimeout && p.reached < f.call; });
  if (!ended_before.empty()) {
    clauses.push_back(world(f, ended_before) +
                      " did not arrive (it ended the job, having timed out in a call before this one)");
  }
  std::map<std::string, std::vector<int>> other_call;
  for (int m : members_where(f, [&](const Peer& p) {
         return arrived(p) && !p.call_name.empty() && p.call_name != f.op;
       }))
    other_call[f.peers[static_cast<size_t>(m)].call_name].push_back(m);
  for (const auto& [name, ms] : other_call) {
    clauses.push_back(world(f, ms) + " issued " + name + " as call #" + std::to_string(f.call) + ", not " + f.op +
                      " (the ranks issue this group's calls in different orders)");
  }
  if (clauses.empty()) {
    clauses.push_back("every member reached this call, yet it did not complete (a network fault, or sizes or "
                      "roots that differ between the ranks)");
  }
  const std::vector<int> waiting =
      members_where(f, [&](const Peer& p) { return arrived(p) && (p.call_name.empty() || p.call_name == f.op); });
  clauses.push_back(waiting.empty() ? "this rank was waiting" : "this rank and " + world(f, waiting) + " were waiting");
  return join(clauses, "; ");
}

// Point to point: which parts did not complete, and what each peer said.
std::string p2p_findings(const TimeoutFacts& f) {
  std::vector<int> peers;
  for (const P2PPart& p : f.parts)
    if (std::find(peers.begin(), peers.end(), p.peer) == peers.end()) peers.push_back(p.peer);
  std::vector<std::string> parts;
  for (int peer : peers) {
    bool send = false, recv = false;
    for (const P2PPart& p : f.parts) {
      if (p.peer != peer) continue;
      (p.recv ? recv : send) = true;
    }
    const std::string w = world(f, {peer});
    parts.push_back(send && recv ? "the send to and receive from " + w
                    : recv       ? "the receive from " + w
                                 : "the send to " + w);
  }
  std::string s = join(parts, " and ") + " did not complete";
  using Peer = TimeoutFacts::Peer;
  const auto of = [&](auto pred) {
    std::vector<int> out;
    for (int peer : peers)
      if (pred(f.peers[static_cast<size_t>(peer)])) out.push_back(peer);
    return out;
  };
  const std::vector<int> silent = of([](const Peer& p) { return !p.answered && p.ended == Ending::kNo; });
  const std::vector<int> ended = of([](const Peer& p) { return !p.answered && p.ended == Ending::kTimeout; });
  const std::vector<int> alive = of([](const Peer& p) { return p.answered; });
  if (!silent.empty()) {
    s += "; " + world(f, silent) + " did not answer within " + seconds(f.answer_wait) +
         " (stalled or dead)";
  }
  if (!ended.empty()) s += "; " + world(f, ended) + " ended the job, having timed out too";
  if (!alive.empty()) {
    s += "; " + world(f, alive) + verb(alive, " answers but has", " answer but have") +
         " not posted the matching side (busy elsewhere, or sends and receives between the two in different "
         "orders or sizes)";
  }
  return s;
}

}  // namespace

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!s.empty()) s += ",";
    if (j >= i + 2) {
      s += std::to_string(ranks[i]) + "-" + std::to_string(ranks[j]);
    } else {
      s += std::to_string(ranks[i]);
      if (j == i + 1) s += "," + std::to_string(ranks[j]);
    }
    i = j + 1;
  }
  return s;
}

std::string describe_timeout(const TimeoutFacts& f) {
  using Peer = TimeoutFacts::Peer;
  const std::string op = "[" + f.op + "] ";
  // Someone else's error ends the job: this rank's wait is a consequence, not a timeout.
  const std::vector<int> failed = members_where(f, [](const Peer& p) { return p.ended == Ending::kError; });
  if (!failed.empty()) {
    return op + "in " + where(f) + ": stopped waiting: " + world(f, failed) + " failed with an error (see " +
           verb(failed, "its", "their") + " message)";
  }
  // Peers gave up on this rank before it arrived: it is the one to explain, not them.
  const std::vector<int> late = members_where(f, [](const Peer& p) { return p.gave_up_on_us; });
  if (!late.empty()) {
    std::string s = op + "in " + where(f) + ": this rank arrived late: " + world(f, late) +
                    " had already timed out waiting for it";
    if (f.stalled >= std::chrono::seconds(1)) {
      char paused[32];
      std::snprintf(paused, sizeof(paused), "%.1f s", static_cast<double>(f.stalled.count()) / 1000.0);
      s += std::string(" (this process was not running for ") + paused +
           ": stopped, by SIGSTOP or a debugger, or starved of CPU)";
    }
    return s;
  }
  const std::string head = op + "timed out after " + seconds(f.timeout) + " in " + where(f) + ": ";
  return head + (f.call > 0 ? collective_findings(f) : p2p_findings(f));
}

}  // namespace ternion::parallel
