// Pipeline-parallel schedules: the ordered list of actions one stage runs in a training step.
// Pure functions of (schedule, p stages, m micro-batches, v chunks per stage, stage s): no MPI,
// no tensors; checked by a simulator of all stages for hundreds of shapes in milliseconds.
//
// Chunks. Stage s holds v model chunks; its chunk c is virtual stage k = c·p + s of the p·v
// (v = 1: k = s). Activations flow from k to k+1, i.e. from stage k mod p to stage (k+1) mod p
// (interleaved: stage p-1's chunk c feeds stage 0's chunk c+1); gradients flow back. Virtual
// stage 0 reads the data; virtual stage p·v-1 computes the loss.
//
// Compute order, F/B = forward/backward of one (micro-batch, chunk):
//   gpipe        F0 … F(m-1), then B0 … B(m-1).
//   1f1b         (PipeDream-flush, Megatron-LM's non-interleaved) w = min(p-s-1, m) warm-up
//                forwards F0 … F(w-1); m-w steady pairs F(w+i) B(i); cool-down B(m-w) … B(m-1).
//   interleaved  (Megatron-LM's interleaved 1F1B; needs m % p == 0) forward slot j = 0 … v·m-1
//                runs micro-batch ⌊j/(p·v)⌋·p + j mod p of chunk ⌊(j mod p·v)/p⌋: p micro-batches
//                through chunk 0, the same p through chunk 1, …, then the next p. Backward slot j
//                is the same micro-batch of chunk v-1-⌊(j mod p·v)/p⌋. Warm-up: w = v·m forward
//                slots if m == p, else w = min(v·m, 2(p-s-1) + (v-1)·p); then steady pairs
//                F(w+i) B(i); then the remaining backward slots. v = 1 is allowed.
//
// Communication. F(mb, c) needs kRecvActivation(mb, c) from stage (k-1) mod p unless k = 0,
// and is followed by kSendActivation(mb, c) to (k+1) mod p unless k = p·v-1; B(mb, c) needs
// kRecvGrad(mb, c) from (k+1) mod p unless k = p·v-1, and is followed by kSendGrad(mb, c) to
// (k-1) mod p unless k = 0. An action's chunk is this stage's own (a receive names the chunk
// that consumes it). p = 1 has no communication: the hand-off between chunks is local.
//
// Where they go. Computes come in steps: one compute each, except that an interleaved steady
// F/B pair is one step (as in Megatron-LM, whose steady state sends after both). Give every
// step a unit slot, the earliest its stage's previous step and its inputs allow (an input is
// usable the slot after the one that made it): slot τ. A step's sends follow it, the
// forward's before the backward's. A message made in slot τ is received at boundary τ: after
// the receiver's steps of slots <= τ, before its later ones; at one boundary, sends first,
// then activation receives, then gradient receives. So a receive precedes its consumer with
// at most one compute between them, and a send follows its producer with at most the other
// compute of its step between (gpipe: neither; 1f1b: no compute before a send). An executor
// keeps what arrived by (kind, micro-batch, chunk) until its compute runs.
//
// How an executor runs the list (the rule simulate() models). A maximal run of consecutive
// communication actions is one group: issue it whole, as one Communicator::exchange (NCCL
// group semantics), and wait for all of it before the next compute. A send and its receive
// complete together, once both sides have issued them. Matching is the communicator's:
// between two stages, in each direction, the n-th send meets the n-th receive. Why this
// cannot deadlock, whatever the compute times: each stage's groups come in boundary order and
// an action matches one at the same boundary, so by induction on τ every group is reached
// and completes; and per direction the messages of one boundary (two at most, at p = 2: an
// activation then a gradient) are sent and received in the same order, so the n-th send is
// the n-th receive. Issuing a group's actions as separate blocking calls can deadlock (1f1b
// with p = 2, m = 3 does): two neighbours that both send first wait for each other.
//
// Bubble. With forward cost f and backward cost b per (micro-batch, chunk) and free
// communication, stage s is busy v·m·(f+b) of the step's makespan T (from the start to the
// last stage's end); its bubble fraction is (T - busy)/T. Ideal:
//   gpipe, 1f1b   (p-1)/(m+p-1)     T = (m+p-1)(f+b)
//   interleaved   (p-1)/(v·m+p-1)   T = (v·m+p-1)(f+b)
// simulate() reproduces T exactly for every shape the tests run (p <= 8, m <= 16, v <= 4) with
// b/f = 1/2, 1 and 2. Peak activations held (forward done, backward not yet), counted in
// (micro-batch, chunk) units, a chunk being 1/v of a stage's layers:
//   gpipe m; 1f1b min(p-s, m); interleaved min(v·m, w+1), w the warm-up above.
#pragma once

#include <string>
#include <vector>

namespace ternion::parallel {

enum class Schedule { kGpipe, kOneFOneB, kInterleaved };
const char* schedule_name(Schedule kind);  // "gpipe", "1f1b", "interleaved"
// "gpipe" | "1f1b" | "interleaved"; throws Error listing the valid names otherwise.
Schedule parse_schedule(const std::string& name);

enum class ActionKind { kForward, kBackward, kSendActivation, kRecvActivation, kSendGrad, kRecvGrad };
const char* action_kind_name(ActionKind kind);  // "F", "B", "send-act", "recv-act", ...
bool is_communication(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::kForward;
  int micro_batch = 0;  // 0 … m-1
  int chunk = 0;        // this stage's model chunk, 0 … v-1 (virtual stage chunk·p + stage)
  int peer_stage = -1;  // sends and receives: the other stage; -1 for compute
  bool operator==(const Action&) const = default;
  std::string str() const;  // "F(mb 3, chunk 1)", "send-act(mb 3, chunk 1) to 2"
};

// The actions stage `stage` runs in one step, in order. Throws Error naming the argument and
// the rule unless p, m, v >= 1, v == 1 for gpipe and 1f1b, m % p == 0 for interleaved, and
// 0 <= stage < p. Places the receives from every stage's timeline: O(p·v·m) time.
std::vector<Action> pipeline_schedule(Schedule kind, int p, int m, int v, int stage);

// The ideal bubble fraction above; the same argument checks.
double ideal_bubble_fraction(Schedule kind, int p, int m, int v);

struct SimOptions {
  double forward = 1;   // f, the cost of one (micro-batch, chunk) forward
  double backward = 1;  // b, of its backward
  // false: every send and receive is a group of its own, as one blocking call per action
  // would run them (the executor must not; tests show it deadlocks).
  bool grouped = true;
};

struct SimResult {
  bool deadlock = false;        // some stage waits in a group that can never complete
  std::string blocked;          // on deadlock: each stuck stage and the group it waits in
  double makespan = 0;          // T: when the last stage finishes (0 on deadlock)
  std::vector<int> peak_held;   // per stage: most (micro-batch, chunk) activations held
  std::vector<double> busy;     // per stage: compute time
  std::vector<double> bubble;   // per stage: (T - busy) / T (0 when T is 0)
};

// Runs every stage's pipeline_schedule list together under the group rule above, compute
// taking its cost and communication none. Throws Error on a bad shape or a negative cost.
SimResult simulate(Schedule kind, int p, int m, int v, SimOptions options = {});
// The same for any lists, one per stage (p = plans.size()). Throws Error on a list that
// cannot be a schedule: a peer out of range or itself, or a send matched (n-th to n-th) with
// a receive of another kind, micro-batch or virtual stage. A send never received is a deadlock.
SimResult simulate_plans(const std::vector<std::vector<Action>>& plans, SimOptions options = {});

}  // namespace ternion::parallel
