#include "parallel/pipeline_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "core/error.h"

namespace ternion::parallel {
namespace {

using AK = ActionKind;
constexpr Schedule kSchedules[] = {Schedule::kGpipe, Schedule::kOneFOneB, Schedule::kInterleaved};

bool is_send(AK k) { return k == AK::kSendActivation || k == AK::kSendGrad; }

struct Shape {
  Schedule kind;
  int p, m, v;
  std::string str() const { return str_cat(schedule_name(kind), " p=", p, " m=", m, " v=", v); }
};

// Every shape the header promises for: p 1..8, m 1..16, v 1..4 where the schedule accepts them.
std::vector<Shape> all_shapes() {
  std::vector<Shape> out;
  for (Schedule kind : kSchedules)
    for (int p = 1; p <= 8; ++p)
      for (int m = 1; m <= 16; ++m)
        for (int v = 1; v <= 4; ++v)
          if (kind == Schedule::kInterleaved ? m % p == 0 : v == 1) out.push_back({kind, p, m, v});
  return out;
}

// The warm-up of the header's compute order.
int warmup(const Shape& sh, int s) {
  if (sh.kind == Schedule::kGpipe) return sh.m;
  if (sh.kind == Schedule::kOneFOneB) return std::min(sh.p - s - 1, sh.m);
  const int n = sh.v * sh.m;
  return sh.m == sh.p ? n : std::min(n, 2 * (sh.p - s - 1) + (sh.v - 1) * sh.p);
}

// The header's compute order written out again from its text: "F3.1" = forward of micro-batch 3,
// chunk 1.
std::vector<std::string> documented_order(const Shape& sh, int s) {
  const int n = sh.v * sh.m, w = warmup(sh, s), pv = sh.p * sh.v;
  auto slot = [&](bool f, int j) {
    int mb = j, c = 0;
    if (sh.kind == Schedule::kInterleaved) {
      mb = j / pv * sh.p + j % sh.p;
      c = f ? j % pv / sh.p : sh.v - 1 - j % pv / sh.p;
    }
    return str_cat(f ? "F" : "B", mb, ".", c);
  };
  std::vector<std::string> out;
  for (int j = 0; j < w; ++j) out.push_back(slot(true, j));
  for (int i = 0; i < n - w; ++i) {
    out.push_back(slot(true, w + i));
    out.push_back(slot(false, i));
  }
  for (int j = n - w; j < n; ++j) out.push_back(slot(false, j));
  return out;
}

std::vector<std::string> computes(const std::vector<Action>& list) {
  std::vector<std::string> out;
  for (const Action& a : list)
    if (!is_communication(a.kind)) out.push_back(str_cat(action_kind_name(a.kind), a.micro_batch, ".", a.chunk));
  return out;
}

// The list as text with each group of communication in braces.
std::string show(const std::vector<Action>& list) {
  std::string out;
  bool in_group = false;
  for (const Action& a : list) {
    const bool comm = is_communication(a.kind);
    out += comm && in_group ? ", " : comm ? (out.empty() ? "{" : " {") : in_group ? "} " : out.empty() ? "" : " ";
    out += a.str();
    in_group = comm;
  }
  return in_group ? out + "}" : out;
}

// Every invariant of one shape's lists, without running them: each (micro-batch, chunk) has one
// forward and, later, one backward; each receive and send exists exactly where the header says,
// names the right neighbour, and sits before its consumer (after its producer) with at most one
// compute between (none for gpipe; none before a 1f1b send); between two stages, in each
// direction, the n-th send and the n-th receive are the same message.
void check_lists(const Shape& sh, const std::vector<std::vector<Action>>& lists) {
  SCOPED_TRACE(sh.str());
  const int p = sh.p, last = p * sh.v - 1;
  using Key = std::tuple<AK, int, int>;  // kind, micro-batch, chunk
  // (from, to) -> the messages in issue order as (activation?, micro-batch, virtual stage sent from)
  std::map<std::pair<int, int>, std::vector<std::tuple<bool, int, int>>> sent, received;
  for (int s = 0; s < p; ++s) {
    SCOPED_TRACE(str_cat("stage ", s));
    const std::vector<Action>& list = lists[s];
    ASSERT_EQ(computes(list), documented_order(sh, s));
    std::map<Key, int> at;      // where each action is
    std::vector<int> before{0};  // computes before position i
    for (int i = 0; i < static_cast<int>(list.size()); ++i) {
      const Action& a = list[i];
      ASSERT_TRUE(a.micro_batch >= 0 && a.micro_batch < sh.m && a.chunk >= 0 && a.chunk < sh.v) << a.str();
      ASSERT_TRUE(at.emplace(Key{a.kind, a.micro_batch, a.chunk}, i).second) << "twice: " << a.str();
      before.push_back(before.back() + !is_communication(a.kind));
      if (!is_communication(a.kind)) {
        ASSERT_EQ(a.peer_stage, -1);
        continue;
      }
      ASSERT_GT(p, 1) << "a single stage talks to no one: " << a.str();
      const bool act = a.kind == AK::kSendActivation || a.kind == AK::kRecvActivation;
      const int k = a.chunk * p + s;
      ASSERT_EQ(a.peer_stage, (act == is_send(a.kind) ? s + 1 : s + p - 1) % p) << a.str();
      const int from = is_send(a.kind) ? s : a.peer_stage, to = is_send(a.kind) ? a.peer_stage : s;
      const int k_from = is_send(a.kind) ? k : act ? k - 1 : k + 1;
      (is_send(a.kind) ? sent : received)[{from, to}].emplace_back(act, a.micro_batch, k_from);
    }
    ASSERT_EQ(before.back(), 2 * sh.v * sh.m);
    const int recv_slack = sh.kind == Schedule::kGpipe ? 0 : 1;
    const int send_slack = sh.kind == Schedule::kInterleaved ? 1 : 0;
    for (int mb = 0; mb < sh.m; ++mb)
      for (int c = 0; c < sh.v; ++c) {
        const int k = c * p + s, f = at.at({AK::kForward, mb, c}), b = at.at({AK::kBackward, mb, c});
        ASSERT_LT(f, b) << "mb " << mb << " chunk " << c;
        // (receive kind, consumer, present?), (send kind, producer, present?)
        const std::tuple<AK, int, bool> recvs[] = {{AK::kRecvActivation, f, p > 1 && k > 0},
                                                   {AK::kRecvGrad, b, p > 1 && k < last}};
        const std::tuple<AK, int, bool> sends[] = {{AK::kSendActivation, f, p > 1 && k < last},
                                                   {AK::kSendGrad, b, p > 1 && k > 0}};
        for (const auto& [kind, use, present] : recvs) {
          const auto it = at.find({kind, mb, c});
          ASSERT_EQ(it != at.end(), present) << action_kind_name(kind) << " mb " << mb << " chunk " << c;
          if (!present) continue;
          ASSERT_LT(it->second, use);
          ASSERT_LE(before[use] - before[it->second], recv_slack) << list[it->second].str();
        }
        for (const auto& [kind, make, present] : sends) {
          const auto it = at.find({kind, mb, c});
          ASSERT_EQ(it != at.end(), present) << action_kind_name(kind) << " mb " << mb << " chunk " << c;
          if (!present) continue;
          ASSERT_GT(it->second, make);
          ASSERT_LE(before[it->second] - before[make + 1], send_slack) << list[it->second].str();
        }
      }
  }
  ASSERT_EQ(sent.size(), received.size());
  for (const auto& [dir, msgs] : sent) {
    SCOPED_TRACE(str_cat("from stage ", dir.first, " to ", dir.second));
    ASSERT_EQ(msgs, received[dir]);  // same messages, same order
  }
}

TEST(PipelineSchedule, EveryShapeIsAScheduleAndRunsInTheIdealTime) {
  int checked = 0;
  for (const Shape& sh : all_shapes()) {
    std::vector<std::vector<Action>> lists;
    for (int s = 0; s < sh.p; ++s) lists.push_back(pipeline_schedule(sh.kind, sh.p, sh.m, sh.v, s));
    check_lists(sh, lists);
    if (HasFatalFailure()) return;
    const int n = sh.kind == Schedule::kInterleaved ? sh.v * sh.m : sh.m;
    const double ideal = ideal_bubble_fraction(sh.kind, sh.p, sh.m, sh.v);
    EXPECT_DOUBLE_EQ(ideal, (sh.p - 1.0) / (n + sh.p - 1));
    for (const SimOptions costs : {SimOptions{1, 1}, SimOptions{1, 2}, SimOptions{2, 1}}) {
      SCOPED_TRACE(str_cat(sh.str(), " f=", costs.forward, " b=", costs.backward));
      const SimResult r = simulate(sh.kind, sh.p, sh.m, sh.v, costs);
      ASSERT_FALSE(r.deadlock) << r.blocked;
      const double fb = costs.forward + costs.backward;
      ASSERT_EQ(r.makespan, (n + sh.p - 1) * fb);  // small integers: exact in double
      for (int s = 0; s < sh.p; ++s) {
        EXPECT_EQ(r.busy[s], sh.v * sh.m * fb);
        EXPECT_NEAR(r.bubble[s], ideal, 1e-12) << "stage " << s;
        const int expected_peak = sh.kind == Schedule::kGpipe      ? sh.m
                                  : sh.kind == Schedule::kOneFOneB ? std::min(sh.p - s, sh.m)
                                                                   : std::min(sh.v * sh.m, warmup(sh, s) + 1);
        EXPECT_EQ(r.peak_held[s], expected_peak) << "stage " << s;
      }
      if (HasFailure()) return;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 128 + 128 + 168);
}

TEST(PipelineSchedule, LargeInterleavedPipeline) {
  const Shape sh{Schedule::kInterleaved, 16, 64, 4};
  std::vector<std::vector<Action>> lists;
  for (int s = 0; s < sh.p; ++s) lists.push_back(pipeline_schedule(sh.kind, sh.p, sh.m, sh.v, s));
  check_lists(sh, lists);
  const SimResult r = simulate(sh.kind, sh.p, sh.m, sh.v, {1, 2});
  ASSERT_FALSE(r.deadlock) << r.blocked;
  EXPECT_EQ(r.makespan, (4 * 64 + 15) * 3);
  EXPECT_EQ(r.peak_held[0], 2 * 15 + 3 * 16 + 1);  // 1/4 of a stage each: 19.75 stages' worth
}

TEST(PipelineSchedule, OneFOneBOnTwoStagesInFull) {
  EXPECT_EQ(show(pipeline_schedule(Schedule::kOneFOneB, 2, 2, 1, 0)),
            "F(mb 0, chunk 0) {send-act(mb 0, chunk 0) to 1} F(mb 1, chunk 0) {send-act(mb 1, chunk 0) to 1, "
            "recv-grad(mb 0, chunk 0) from 1} B(mb 0, chunk 0) {recv-grad(mb 1, chunk 0) from 1} B(mb 1, chunk 0)");
  // The last stage takes mb 1's activation while it runs mb 0, a step early (stage 0 sent it then).
  EXPECT_EQ(show(pipeline_schedule(Schedule::kOneFOneB, 2, 2, 1, 1)),
            "{recv-act(mb 0, chunk 0) from 0} F(mb 0, chunk 0) {recv-act(mb 1, chunk 0) from 0} B(mb 0, chunk 0) "
            "{send-grad(mb 0, chunk 0) to 0} F(mb 1, chunk 0) B(mb 1, chunk 0) {send-grad(mb 1, chunk 0) to 0}");
  const SimResult r = simulate(Schedule::kOneFOneB, 2, 2, 1);
  EXPECT_EQ(r.makespan, 6);
  EXPECT_EQ(r.peak_held, (std::vector<int>{2, 1}));
  EXPECT_EQ(r.bubble, (std::vector<double>{1.0 / 3, 1.0 / 3}));
}

// Megatron-LM's forward_backward_pipelining_with_interleaving, traced by hand for p=2, m=4, v=2:
// warm-up 4 and 2 slots, then F/B pairs.
TEST(PipelineSchedule, InterleavedOrderIsMegatrons) {
  auto joined = [](int s) {
    std::string out;
    for (const std::string& c : computes(pipeline_schedule(Schedule::kInterleaved, 2, 4, 2, s))) out += c + " ";
    return out;
  };
  EXPECT_EQ(joined(0), "F0.0 F1.0 F0.1 F1.1 F2.0 B0.1 F3.0 B1.1 F2.1 B0.0 F3.1 B1.0 B2.1 B3.1 B2.0 B3.0 ");
  EXPECT_EQ(joined(1), "F0.0 F1.0 F0.1 B0.1 F1.1 B1.1 F2.0 B0.0 F3.0 B1.0 F2.1 B2.1 F3.1 B3.1 B2.0 B3.0 ");
  // A steady step sends both results in one group, to the one neighbour at p = 2.
  EXPECT_NE(show(pipeline_schedule(Schedule::kInterleaved, 2, 4, 2, 0))
                .find("F(mb 2, chunk 0) B(mb 0, chunk 1) {send-act(mb 2, chunk 0) to 1, send-grad(mb 0, chunk 1) to 1, "
                      "recv-grad(mb 1, chunk 1) from 1}"),
            std::string::npos);
}

TEST(PipelineSchedule, OneStageHasNoCommunicationAndNoBubble) {
  for (const Shape sh : {Shape{Schedule::kGpipe, 1, 5, 1}, Shape{Schedule::kOneFOneB, 1, 5, 1},
                         Shape{Schedule::kInterleaved, 1, 5, 3}}) {
    SCOPED_TRACE(sh.str());
    for (const Action& a : pipeline_schedule(sh.kind, 1, sh.m, sh.v, 0)) EXPECT_FALSE(is_communication(a.kind));
    const SimResult r = simulate(sh.kind, 1, sh.m, sh.v);
    EXPECT_EQ(r.bubble, std::vector<double>{0.0});
    EXPECT_EQ(ideal_bubble_fraction(sh.kind, 1, sh.m, sh.v), 0.0);
  }
}

TEST(PipelineSchedule, OneBlockingCallPerActionDeadlocks) {
  SimOptions one_at_a_time;
  one_at_a_time.grouped = false;
  const SimResult r = simulate(Schedule::kOneFOneB, 2, 3, 1, one_at_a_time);
  EXPECT_TRUE(r.deadlock);
  EXPECT_EQ(r.blocked, "stage 0 waits in {send-act(mb 2, chunk 0) to 1}; stage 1 waits in {send-grad(mb 1, chunk 0) to 0}");
  EXPECT_EQ(r.makespan, 0);
  EXPECT_FALSE(simulate(Schedule::kOneFOneB, 2, 3, 1).deadlock);
}

// The same computes with each receive right before its consumer and each send right after its
// producer (the placement of Megatron-LM's non-interleaved 1F1B): fine for 1f1b, but the
// interleaved schedule deadlocks, hence the timeline placement.
std::vector<std::vector<Action>> receive_just_in_time(const Shape& sh) {
  std::vector<std::vector<Action>> lists(sh.p);
  for (int s = 0; s < sh.p; ++s)
    for (const Action& a : pipeline_schedule(sh.kind, sh.p, sh.m, sh.v, s)) {
      if (is_communication(a.kind)) continue;
      const int k = a.chunk * sh.p + s, last = sh.p * sh.v - 1;
      const int next = (s + 1) % sh.p, prev = (s + sh.p - 1) % sh.p;
      const bool f = a.kind == AK::kForward;
      const Action recv{f ? AK::kRecvActivation : AK::kRecvGrad, a.micro_batch, a.chunk, f ? prev : next};
      const Action send{f ? AK::kSendActivation : AK::kSendGrad, a.micro_batch, a.chunk, f ? next : prev};
      if (f ? k > 0 : k < last) lists[s].push_back(recv);
      lists[s].push_back(a);
      if (f ? k < last : k > 0) lists[s].push_back(send);
    }
  return lists;
}

TEST(PipelineSchedule, ReceivingJustInTimeDeadlocksTheInterleavedSchedule) {
  EXPECT_FALSE(simulate_plans(receive_just_in_time({Schedule::kOneFOneB, 4, 8, 1})).deadlock);
  const SimResult r = simulate_plans(receive_just_in_time({Schedule::kInterleaved, 2, 4, 2}));
  EXPECT_TRUE(r.deadlock);
  EXPECT_EQ(r.blocked, "stage 0 waits in {send-grad(mb 0, chunk 1) to 1}; stage 1 waits in "
                       "{send-grad(mb 1, chunk 1) to 0, recv-act(mb 2, chunk 0) from 0}");
}

TEST(PipelineSchedule, SimulatorCatchesBadLists) {
  const Action f0{AK::kForward, 0, 0, -1}, b0{AK::kBackward, 0, 0, -1}, f1{AK::kForward, 1, 0, -1};
  // Stage 0 sends its activation only after the backward that needs stage 1's gradient.
  const SimResult r = simulate_plans({{f0, {AK::kRecvGrad, 0, 0, 1}, b0, {AK::kSendActivation, 0, 0, 1}},
                                      {{AK::kRecvActivation, 0, 0, 0}, f0, b0, {AK::kSendGrad, 0, 0, 0}}});
  EXPECT_TRUE(r.deadlock);
  EXPECT_EQ(r.blocked, "stage 0 waits in {recv-grad(mb 0, chunk 0) from 1}; stage 1 waits in {recv-act(mb 0, chunk 0) from 0}");
  // Receives in another order than the sends: the communicator would pair mb 0 with mb 1.
  try {
    simulate_plans({{f0, {AK::kSendActivation, 0, 0, 1}, f1, {AK::kSendActivation, 1, 0, 1}},
                    {{AK::kRecvActivation, 1, 0, 0}, f1, {AK::kRecvActivation, 0, 0, 0}, f0}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[pipeline] simulate: the 1st send from stage 0 to stage 1, send-act(mb 0, chunk 0) to 1 "
                           "(virtual stage 0), meets recv-act(mb 1, chunk 0) from 0 (virtual stage 1); receives "
                           "match sends in issue order");
  }
  EXPECT_THROW(simulate_plans({{f0, {AK::kSendActivation, 0, 0, 0}}}), Error);  // to itself
  EXPECT_THROW(simulate_plans({{f0, {AK::kSendActivation, 0, 0, 2}}, {}}), Error);
}

std::string error_of(Schedule kind, int p, int m, int v, int stage = 0) {
  try {
    pipeline_schedule(kind, p, m, v, stage);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PipelineSchedule, BadShapesNameTheArgumentAndTheRule) {
  EXPECT_EQ(error_of(Schedule::kGpipe, 0, 4, 1), "[pipeline] pipeline stages p = 0 must be >= 1");
  EXPECT_EQ(error_of(Schedule::kOneFOneB, 2, 0, 1), "[pipeline] micro-batches m = 0 must be >= 1");
  EXPECT_EQ(error_of(Schedule::kInterleaved, 2, 4, 0), "[pipeline] chunks per stage v = 0 must be >= 1");
  EXPECT_EQ(error_of(Schedule::kOneFOneB, 2, 4, 2),
            "[pipeline] chunks per stage v = 2 needs the interleaved schedule (1f1b runs one chunk per stage)");
  EXPECT_EQ(error_of(Schedule::kInterleaved, 4, 6, 2),
            "[pipeline] the interleaved schedule needs micro-batches m = 6 to be a multiple of pipeline stages p = 4");
  EXPECT_EQ(error_of(Schedule::kGpipe, 4, 6, 1, 4), "[pipeline] stage 4 outside 0 … p-1 = 3");
  EXPECT_EQ(error_of(Schedule::kGpipe, 4, 6, 1, -1), "[pipeline] stage -1 outside 0 … p-1 = 3");
  EXPECT_EQ(error_of(Schedule::kInterleaved, 4, 8, 2, 3), "");
  EXPECT_THROW(simulate(Schedule::kInterleaved, 4, 6, 2), Error);
  EXPECT_THROW(ideal_bubble_fraction(Schedule::kGpipe, 4, 6, 2), Error);
  EXPECT_THROW(simulate(Schedule::kGpipe, 2, 2, 1, {-1, 1}), Error);
}

TEST(PipelineSchedule, ParsesTheThreeNames) {
  for (Schedule s : kSchedules) EXPECT_EQ(parse_schedule(schedule_name(s)), s);
  try {
    parse_schedule("1F1B");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[pipeline] unknown pipeline schedule '1F1B' (valid: gpipe, 1f1b, interleaved)");
  }
}

TEST(PipelineSchedule, IdealBubble) {
  EXPECT_DOUBLE_EQ(ideal_bubble_fraction(Schedule::kGpipe, 4, 8, 1), 3.0 / 11);
  EXPECT_DOUBLE_EQ(ideal_bubble_fraction(Schedule::kOneFOneB, 4, 8, 1), 3.0 / 11);
  EXPECT_DOUBLE_EQ(ideal_bubble_fraction(Schedule::kInterleaved, 4, 8, 2), 3.0 / 19);
}

}  // namespace
}  // namespace ternion::parallel
