#include "parallel/pipeline_schedule.h"

#include <algorithm>
#include <cstddef>

#include "core/error.h"

namespace ternion::parallel {
namespace {

constexpr const char* kOp = "pipeline";

bool is_send(ActionKind k) { return k == ActionKind::kSendActivation || k == ActionKind::kSendGrad; }

void check_args(Schedule kind, int p, int m, int v) {
  TN_CHECK(p >= 1, kOp, "pipeline stages p = ", p, " must be >= 1");
  TN_CHECK(m >= 1, kOp, "micro-batches m = ", m, " must be >= 1");
  TN_CHECK(v >= 1, kOp, "chunks per stage v = ", v, " must be >= 1");
  TN_CHECK(v == 1 || kind == Schedule::kInterleaved, kOp, "chunks per stage v = ", v,
           " needs the interleaved schedule (", schedule_name(kind), " runs one chunk per stage)");
  TN_CHECK(kind != Schedule::kInterleaved || m % p == 0, kOp,
           "the interleaved schedule needs micro-batches m = ", m,
           " to be a multiple of pipeline stages p = ", p);
}

struct Compute {
  bool forward;
  int micro_batch, chunk;
  int step;  // computes of one step run back to back; their sends go out after the step
};

// Forward or backward slot j of the interleaved order: groups of p micro-batches, each group
// through every chunk in turn (backward: the chunks in reverse).
Compute interleaved_slot(bool forward, int j, int p, int v) {
  const int group = j / (p * v), r = j % (p * v), c = r / p;
  return {forward, group * p + r % p, forward ? c : v - 1 - c, 0};
}

// The compute order of the header: w warm-up forwards, steady F/B pairs, cool-down backwards.
// Steps: one compute each, except an interleaved steady pair, which is one step.
std::vector<Compute> compute_order(Schedule kind, int p, int m, int v, int s) {
  const bool il = kind == Schedule::kInterleaved;
  const int n = v * m;  // forward slots, and as many backward slots
  int w = m;            // gpipe: every forward first
  if (kind == Schedule::kOneFOneB) w = std::min(p - s - 1, m);
  if (il) w = m == p ? n : std::min(n, 2 * (p - s - 1) + (v - 1) * p);
  std::vector<Compute> order;
  order.reserve(2 * n);
  int step = 0;
  auto add = [&](bool forward, int j) {
    Compute c = il ? interleaved_slot(forward, j, p, v) : Compute{forward, j, 0, 0};
    c.step = step;
    order.push_back(c);
  };
  for (int j = 0; j < w; ++j, ++step) add(true, j);
  for (int i = 0; i < n - w; ++i, ++step) {
    add(true, w + i);
    if (!il) ++step;
    add(false, i);
  }
  for (int j = n - w; j < n; ++j, ++step) add(false, j);
  return order;
}

// The unit-time timeline: every step takes one slot, the earliest its stage's previous step
// and its inputs from other stages (sent after the slot that made them) allow.
// tau(fwd, mb, k) is the slot of the step computing (micro-batch mb, virtual stage k).
class Timeline {
 public:
  Timeline(const std::vector<std::vector<Compute>>& orders, int m, int v)
      : p_(static_cast<int>(orders.size())), vs_(p_ * v), slot_(2 * m * vs_, -1) {
    std::vector<size_t> pos(p_, 0);
    std::vector<int> free(p_, 0);  // a stage's first free slot
    for (bool moved = true; moved;) {
      moved = false;
      for (int s = 0; s < p_; ++s)
        while (pos[s] < orders[s].size() && run_step(orders[s], s, pos[s], free[s])) moved = true;
    }
    for (int s = 0; s < p_; ++s)
      TN_CHECK(pos[s] == orders[s].size(), kOp, "internal: stage ", s, "'s compute order cannot run");
  }
  int tau(bool forward, int mb, int k) const { return slot_[index(forward, mb, k)]; }

 private:
  // Places the step starting at order[pos] if its inputs are placed; advances pos past it.
  bool run_step(const std::vector<Compute>& order, int s, size_t& pos, int& free) {
    size_t end = pos;
    int at = free;
    for (; end < order.size() && order[end].step == order[pos].step; ++end) {
      const Compute& c = order[end];
      const int k = c.chunk * p_ + s;
      if (c.forward ? k == 0 : k == vs_ - 1) continue;  // reads data / computes the loss
      const int dep_k = c.forward ? k - 1 : k + 1;
      const int dep = tau(c.forward, c.micro_batch, dep_k);
      if (p_ == 1) {  // the input comes from this stage's own earlier compute
        if (dep < 0 && !in_step(order, pos, end, c.forward, c.micro_batch, dep_k)) return false;
        continue;
      }
      if (dep < 0) return false;
      at = std::max(at, dep + 1);
    }
    for (size_t i = pos; i < end; ++i)
      slot_[index(order[i].forward, order[i].micro_batch, order[i].chunk * p_ + s)] = at;
    pos = end;
    free = at + 1;
    return true;
  }
  // Whether order[from, to) computes (fwd, mb, k) (p = 1, so k is the chunk).
  static bool in_step(const std::vector<Compute>& order, size_t from, size_t to, bool fwd, int mb, int k) {
    for (size_t i = from; i < to; ++i)
      if (order[i].forward == fwd && order[i].micro_batch == mb && order[i].chunk == k) return true;
    return false;
  }
  size_t index(bool forward, int mb, int k) const {
    return (static_cast<size_t>(mb) * vs_ + k) * 2 + forward;
  }
  int p_, vs_;
  std::vector<int> slot_;
};

// Stage s's list: its computes in order; the sends of a step right after it; each receive at
// its send's slot boundary (after the receiver's steps of slots <= tau, before later ones);
// at one boundary the sends first, then activations received, then gradients.
std::vector<Action> place(const std::vector<std::vector<Compute>>& orders, const Timeline& tl, int v,
                          int s) {
  const int p = static_cast<int>(orders.size()), last = p * v - 1;
  struct Timed {
    int tau, rank;  // rank: 0 compute, 1 send, 2 receive-activation, 3 receive-grad
    Action a;
    bool operator<(const Timed& o) const { return tau != o.tau ? tau < o.tau : rank < o.rank; }
  };
  std::vector<Timed> items;
  const int next = (s + 1) % p, prev = (s + p - 1) % p;
  for (const Compute& c : orders[s]) {
    const int k = c.chunk * p + s, mb = c.micro_batch, t = tl.tau(c.forward, mb, k);
    items.push_back({t, 0, {c.forward ? ActionKind::kForward : ActionKind::kBackward, mb, c.chunk, -1}});
    if (p == 1) continue;  // chunks hand over locally
    if (c.forward && k > 0)
      items.push_back({tl.tau(true, mb, k - 1), 2, {ActionKind::kRecvActivation, mb, c.chunk, prev}});
    if (c.forward && k < last) items.push_back({t, 1, {ActionKind::kSendActivation, mb, c.chunk, next}});
    if (!c.forward && k < last)
      items.push_back({tl.tau(false, mb, k + 1), 3, {ActionKind::kRecvGrad, mb, c.chunk, next}});
    if (!c.forward && k > 0) items.push_back({t, 1, {ActionKind::kSendGrad, mb, c.chunk, prev}});
  }
  std::stable_sort(items.begin(), items.end());
  std::vector<Action> out;
  out.reserve(items.size());
  for (const Timed& t : items) out.push_back(t.a);
  return out;
}

std::vector<std::vector<Action>> all_plans(Schedule kind, int p, int m, int v) {
  std::vector<std::vector<Compute>> orders;
  for (int s = 0; s < p; ++s) orders.push_back(compute_order(kind, p, m, v, s));
  const Timeline tl(orders, m, v);
  std::vector<std::vector<Action>> plans;
  for (int s = 0; s < p; ++s) plans.push_back(place(orders, tl, v, s));
  return plans;
}

}  // namespace

const char* schedule_name(Schedule kind) {
  switch (kind) {
    case Schedule::kGpipe: return "gpipe";
    case Schedule::kOneFOneB: return "1f1b";
    case Schedule::kInterleaved: return "interleaved";
  }
  return "?";
}

Schedule parse_schedule(const std::string& name) {
  for (Schedule s : {Schedule::kGpipe, Schedule::kOneFOneB, Schedule::kInterleaved})
    if (name == schedule_name(s)) return s;
  fail(kOp, str_cat("unknown pipeline schedule '", name, "' (valid: gpipe, 1f1b, interleaved)"));
}

const char* action_kind_name(ActionKind kind) {
  switch (kind) {
    case ActionKind::kForward: return "F";
    case ActionKind::kBackward: return "B";
    case ActionKind::kSendActivation: return "send-act";
    case ActionKind::kRecvActivation: return "recv-act";
    case ActionKind::kSendGrad: return "send-grad";
    case ActionKind::kRecvGrad: return "recv-grad";
  }
  return "?";
}

bool is_communication(ActionKind kind) {
  return kind != ActionKind::kForward && kind != ActionKind::kBackward;
}

std::string Action::str() const {
  std::string s = str_cat(action_kind_name(kind), "(mb ", micro_batch, ", chunk ", chunk, ")");
  if (is_send(kind)) return str_cat(s, " to ", peer_stage);
  if (is_communication(kind)) return str_cat(s, " from ", peer_stage);
  return s;
}

std::vector<Action> pipeline_schedule(Schedule kind, int p, int m, int v, int stage) {
  check_args(kind, p, m, v);
  TN_CHECK(stage >= 0 && stage < p, kOp, "stage ", stage, " outside 0 … p-1 = ", p - 1);
  return all_plans(kind, p, m, v)[stage];
}

double ideal_bubble_fraction(Schedule kind, int p, int m, int v) {
  check_args(kind, p, m, v);
  const int slots = kind == Schedule::kInterleaved ? v * m : m;
  return static_cast<double>(p - 1) / (slots + p - 1);
}

namespace {

// A send or receive issued by a stage: plans[stage][index], issued at time `at`.
struct Issued {
  int stage, index;
  double at;
};

// Between two stages, one direction: the n-th send matches the n-th receive.
struct Channel {
  std::vector<Issued> sends, recvs;
};

// One of a stage's issued-but-unfinished group's actions: its channel, side and position.
struct Pending {
  int channel;
  bool send;
  size_t pos;
};

struct StageState {
  size_t pc = 0;         // next action
  size_t group_end = 0;  // > pc while the group starting at pc is issued
  std::vector<Pending> pending;
  double t = 0, busy = 0;
  int held = 0, peak = 0;
};

std::string ordinal(size_t n) {
  const size_t k = n + 1;
  if (k % 100 / 10 == 1) return str_cat(k, "th");
  return str_cat(k, k % 10 == 1 ? "st" : k % 10 == 2 ? "nd" : k % 10 == 3 ? "rd" : "th");
}

class Simulator {
 public:
  Simulator(const std::vector<std::vector<Action>>& plans, SimOptions options)
      : plans_(plans), opt_(options), p_(static_cast<int>(plans.size())), channels_(p_ * p_),
        st_(p_) {}

  SimResult run() {
    for (bool moved = true; moved;) {
      moved = false;
      for (int s = 0; s < p_; ++s)
        while (advance(s)) moved = true;
    }
    SimResult r;
    for (int s = 0; s < p_; ++s) {
      r.peak_held.push_back(st_[s].peak);
      r.busy.push_back(st_[s].busy);
      if (st_[s].pc < plans_[s].size()) {
        r.deadlock = true;
        r.blocked += str_cat(r.blocked.empty() ? "" : "; ", "stage ", s, " waits in {", group_str(s),
                             "}");
      }
      r.makespan = std::max(r.makespan, st_[s].t);
    }
    if (r.deadlock) r.makespan = 0;
    for (int s = 0; s < p_; ++s)
      r.bubble.push_back(r.makespan > 0 ? (r.makespan - r.busy[s]) / r.makespan : 0.0);
    return r;
  }

 private:
  // Runs stage s's next action, or issues its next group; false when it can do neither.
  bool advance(int s) {
    StageState& st = st_[s];
    const std::vector<Action>& plan = plans_[s];
    if (st.pc == plan.size()) return false;
    const Action& a = plan[st.pc];
    if (!is_communication(a.kind)) {
      const bool fwd = a.kind == ActionKind::kForward;
      const double cost = fwd ? opt_.forward : opt_.backward;
      st.t += cost;
      st.busy += cost;
      st.held += fwd ? 1 : -1;
      st.peak = std::max(st.peak, st.held);
      ++st.pc;
      return true;
    }
    bool issued_now = false;
    if (st.group_end <= st.pc) {
      size_t e = st.pc;
      for (; e < plan.size() && is_communication(plan[e].kind) && (opt_.grouped || e == st.pc); ++e) {
        const Action& c = plan[e];
        const bool send = is_send(c.kind);
        const int ch = send ? s * p_ + c.peer_stage : c.peer_stage * p_ + s;
        std::vector<Issued>& side = send ? channels_[ch].sends : channels_[ch].recvs;
        st.pending.push_back({ch, send, side.size()});
        side.push_back({s, static_cast<int>(e), st.t});
      }
      st.group_end = e;
      issued_now = true;
    }
    double done = st.t;
    for (const Pending& q : st.pending) {
      const Channel& c = channels_[q.channel];
      const std::vector<Issued>& other = q.send ? c.recvs : c.sends;
      if (q.pos >= other.size()) return issued_now;
      done = std::max(done, other[q.pos].at);
      check_match(q.channel, q.pos);
    }
    st.t = done;
    st.pc = st.group_end;
    st.pending.clear();
    return true;
  }

  // The pos-th send and the pos-th receive of a channel must be the same message.
  void check_match(int channel, size_t pos) const {
    const Issued& is = channels_[channel].sends[pos];
    const Issued& ir = channels_[channel].recvs[pos];
    const Action& snd = plans_[is.stage][is.index];
    const Action& rcv = plans_[ir.stage][ir.index];
    const bool act = snd.kind == ActionKind::kSendActivation;
    const int ks = snd.chunk * p_ + is.stage, kr = rcv.chunk * p_ + ir.stage;
    const bool ok = rcv.kind == (act ? ActionKind::kRecvActivation : ActionKind::kRecvGrad) &&
                    rcv.micro_batch == snd.micro_batch && kr == ks + (act ? 1 : -1);
    TN_CHECK(ok, kOp, "simulate: the ", ordinal(pos), " send from stage ", is.stage, " to stage ",
             ir.stage, ", ", snd.str(), " (virtual stage ", ks, "), meets ", rcv.str(),
             " (virtual stage ", kr, "); receives match sends in issue order");
  }

  std::string group_str(int s) const {
    std::string out;
    for (size_t i = st_[s].pc; i < st_[s].group_end; ++i)
      out += str_cat(i == st_[s].pc ? "" : ", ", plans_[s][i].str());
    return out;
  }

  const std::vector<std::vector<Action>>& plans_;
  const SimOptions opt_;
  const int p_;
  std::vector<Channel> channels_;  // src * p + dst
  std::vector<StageState> st_;
};

}  // namespace

SimResult simulate_plans(const std::vector<std::vector<Action>>& plans, SimOptions options) {
  const int p = static_cast<int>(plans.size());
  TN_CHECK(p >= 1, kOp, "simulate: no stages");
  TN_CHECK(options.forward >= 0 && options.backward >= 0, kOp,
           "simulate: costs must be >= 0, got forward ", options.forward, " backward ", options.backward);
  for (int s = 0; s < p; ++s)
    for (const Action& a : plans[s])
      TN_CHECK(!is_communication(a.kind) || (a.peer_stage >= 0 && a.peer_stage < p && a.peer_stage != s),
               kOp, "simulate: stage ", s, "'s ", a.str(), " needs a peer in 0 … ", p - 1,
               " other than itself");
  return Simulator(plans, options).run();
}

SimResult simulate(Schedule kind, int p, int m, int v, SimOptions options) {
  check_args(kind, p, m, v);
  return simulate_plans(all_plans(kind, p, m, v), options);
}

}  // namespace ternion::parallel
