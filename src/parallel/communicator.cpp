// Backend-independent parts of Communicator: descriptions, argument checks, the host
// helpers built on the collectives, and the identity communicator of one process.
#include "parallel/communicator.h"

#include <numeric>

#include "parallel/comm_checks.h"

namespace ternion::parallel {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

std::string Communicator::describe() const {
  std::string s = "group " + name_ + " (world ranks ";
  for (size_t i = 0; i < world_ranks_.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(world_ranks_[i]);
  }
  return s + ")";
}

// ---- checks ----

void check_tensor(const Communicator& c, const char* op, const Tensor& t) {
  TN_CHECK(t.defined(), op, "undefined tensor in ", c.describe());
  TN_CHECK(t.is_contiguous(), op, "needs a contiguous tensor, got ", t.str(), " with strides ",
           shape_str(t.strides()), " in ", c.describe());
}

static void check_pair(const Communicator& c, const char* op, const Tensor& in, const Tensor& out) {
  check_tensor(c, op, in);
  check_tensor(c, op, out);
  TN_CHECK(in.dtype() == out.dtype(), op, "dtype mismatch: in ", in.str(), ", out ", out.str());
  TN_CHECK(in.device() == out.device(), op, "device mismatch: in on ", in.device().str(),
           ", out on ", out.device().str());
}

void check_reduce_scatter(const Communicator& c, const Tensor& in, const Tensor& out) {
  check_pair(c, "reduce_scatter", in, out);
  TN_CHECK(in.numel() == c.size() * out.numel(), "reduce_scatter", "in ", in.str(),
           " must hold size()=", c.size(), " blocks of out ", out.str(), " in ", c.describe());
}

void check_all_gather(const Communicator& c, const Tensor& in, const Tensor& out) {
  check_pair(c, "all_gather", in, out);
  TN_CHECK(out.numel() == c.size() * in.numel(), "all_gather", "out ", out.str(),
           " must hold size()=", c.size(), " blocks of in ", in.str(), " in ", c.describe());
}

void check_all_gather_v(const Communicator& c, const Tensor& in, const Tensor& out,
                        const std::vector<int64_t>& counts) {
  check_pair(c, "all_gather_v", in, out);
  TN_CHECK(static_cast<int>(counts.size()) == c.size(), "all_gather_v", counts.size(),
           " counts for ", c.describe(), " of size ", c.size());
  int64_t total = 0;
  for (int64_t n : counts) {
    TN_CHECK(n >= 0, "all_gather_v", "negative count ", n);
    total += n;
  }
  TN_CHECK(in.numel() == counts[c.rank()], "all_gather_v", "rank ", c.rank(), " contributes ",
           in.str(), " but counts[", c.rank(), "] = ", counts[c.rank()]);
  TN_CHECK(out.numel() == total, "all_gather_v", "out ", out.str(), " must hold sum(counts) = ",
           total, " elements");
}

void check_group_rank(const Communicator& c, const char* op, int r, bool is_peer) {
  TN_CHECK(r >= 0 && r < c.size(), op, is_peer ? "peer " : "root ", r, " outside ",
           c.describe(), " of size ", c.size());
  TN_CHECK(!is_peer || r != c.rank(), op, "peer ", r, " is this rank");
}

void check_p2p(const Communicator& c, const std::vector<P2POp>& ops) {
  for (const P2POp& op : ops) {
    const char* name = op.kind == P2POp::Kind::kSend ? "send" : "recv";
    check_tensor(c, name, op.tensor);
    check_group_rank(c, name, op.peer, true);
    TN_CHECK(op.tag >= 0 && op.tag <= kMaxTag, name, "tag ", op.tag, " outside [0, ", kMaxTag, "] in ",
             c.describe());
  }
}

const char* p2p_name(const std::vector<P2POp>& ops) {
  if (ops.size() != 1) return "exchange";
  return ops[0].kind == P2POp::Kind::kSend ? "send" : "recv";
}

// ---- the public calls: check, count, skip what moves nothing, then the backend ----

namespace {

class DoneWork final : public Work {
 public:
  void wait() override {}
  bool test() override { return true; }
};

std::unique_ptr<Work> done() { return std::make_unique<DoneWork>(); }

// A blocking call's result: waits for whatever the backend left running.
void finish(std::unique_ptr<Work> w) {
  if (w) w->wait();
}

}  // namespace

void Communicator::count(int64_t bytes) {
  if (size() > 1) bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
}

int64_t Communicator::bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }

double Communicator::blocking_seconds() const { return 1e-9 * static_cast<double>(blocking_ns_.load()); }

// Adds the wall time of its scope to the group's blocking time.
class Communicator::BlockingTimer {
 public:
  explicit BlockingTimer(Communicator& c) : c_(c), t0_(std::chrono::steady_clock::now()) {}
  ~BlockingTimer() {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_);
    if (c_.size() > 1) c_.blocking_ns_.fetch_add(ns.count(), std::memory_order_relaxed);
  }
  BlockingTimer(const BlockingTimer&) = delete;
  BlockingTimer& operator=(const BlockingTimer&) = delete;

 private:
  Communicator& c_;
  std::chrono::steady_clock::time_point t0_;
};

// nccl-tests' bus bytes: all-reduce 2(n-1)/n·S; gathers and scatters (n-1)/n of the full buffer.
static int64_t all_reduce_bytes(int n, int64_t s) { return 2 * (n - 1) * s / n; }
static int64_t gather_bytes(int n, int64_t full) { return (n - 1) * full / n; }

void Communicator::all_reduce(Tensor& t, ReduceOp op) {
  check_tensor(*this, "all_reduce", t);
  count(all_reduce_bytes(size(), static_cast<int64_t>(t.nbytes())));
  BlockingTimer timer(*this);
  if (t.numel()) finish(do_all_reduce(t, op, true));
}

std::unique_ptr<Work> Communicator::all_reduce_async(Tensor& t, ReduceOp op) {
  check_tensor(*this, "all_reduce", t);
  count(all_reduce_bytes(size(), static_cast<int64_t>(t.nbytes())));
  return t.numel() ? do_all_reduce(t, op, false) : done();
}

void Communicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  check_reduce_scatter(*this, in, out);
  count(gather_bytes(size(), static_cast<int64_t>(in.nbytes())));
  BlockingTimer timer(*this);
  if (out.numel()) finish(do_reduce_scatter(in, out, op, true));
}

std::unique_ptr<Work> Communicator::reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op) {
  check_reduce_scatter(*this, in, out);
  count(gather_bytes(size(), static_cast<int64_t>(in.nbytes())));
  return out.numel() ? do_reduce_scatter(in, out, op, false) : done();
}

void Communicator::all_gather(const Tensor& in, Tensor& out) {
  check_all_gather(*this, in, out);
  count(gather_bytes(size(), static_cast<int64_t>(out.nbytes())));
  BlockingTimer timer(*this);
  if (in.numel()) finish(do_all_gather(in, out, true));
}

std::unique_ptr<Work> Communicator::all_gather_async(const Tensor& in, Tensor& out) {
  check_all_gather(*this, in, out);
  count(gather_bytes(size(), static_cast<int64_t>(out.nbytes())));
  return in.numel() ? do_all_gather(in, out, false) : done();
}

void Communicator::all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) {
  check_all_gather_v(*this, in, out, counts);
  count(gather_bytes(size(), static_cast<int64_t>(out.nbytes())));
  BlockingTimer timer(*this);
  if (out.numel()) do_all_gather_v(in, out, counts);
}

void Communicator::broadcast(Tensor& t, int root) {
  check_tensor(*this, "broadcast", t);
  check_group_rank(*this, "broadcast", root, false);
  count(static_cast<int64_t>(t.nbytes()));
  BlockingTimer timer(*this);
  if (t.numel()) do_broadcast(t, root);
}

void Communicator::send(const Tensor& t, int peer, int tag) { send_async(t, peer, tag)->wait(); }
void Communicator::recv(Tensor& t, int peer, int tag) { recv_async(t, peer, tag)->wait(); }

std::unique_ptr<Work> Communicator::send_async(const Tensor& t, int peer, int tag) {
  return exchange({P2POp{P2POp::Kind::kSend, t, peer, tag}});
}

std::unique_ptr<Work> Communicator::recv_async(Tensor& t, int peer, int tag) {
  return exchange({P2POp{P2POp::Kind::kRecv, t, peer, tag}});
}

std::unique_ptr<Work> Communicator::exchange(const std::vector<P2POp>& ops) {
  check_p2p(*this, ops);
  std::vector<P2POp> moving;
  int64_t sent = 0;
  for (const P2POp& op : ops) {
    if (op.kind == P2POp::Kind::kSend) sent += static_cast<int64_t>(op.tensor.nbytes());
    if (op.tensor.numel()) moving.push_back(op);  // the peer drops its empty match too
  }
  count(sent);
  return moving.empty() ? done() : do_exchange(moving);
}

void Communicator::barrier() { do_barrier(); }

// ---- host helpers ----

std::vector<std::string> Communicator::all_gather_strings(const std::string& s) {
  Tensor len = Tensor::full({1}, static_cast<double>(s.size()), DType::i64);
  Tensor lens = Tensor::empty({size()}, DType::i64);
  all_gather(len, lens);
  std::vector<int64_t> counts = lens.to_vector<int64_t>();
  // One byte per u16 element: the strings are short (config hashes, names).
  std::vector<uint16_t> mine(s.begin(), s.end());
  for (size_t i = 0; i < s.size(); ++i) mine[i] = static_cast<unsigned char>(s[i]);
  Tensor in = Tensor::empty({static_cast<int64_t>(s.size())}, DType::u16);
  if (!s.empty()) std::copy(mine.begin(), mine.end(), in.data<uint16_t>());
  Tensor out = Tensor::empty({std::accumulate(counts.begin(), counts.end(), int64_t{0})}, DType::u16);
  all_gather_v(in, out, counts);
  std::vector<std::string> result;
  const uint16_t* p = out.numel() ? out.data<uint16_t>() : nullptr;
  for (int64_t n : counts) {
    std::string r(static_cast<size_t>(n), '\0');
    for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = static_cast<char>(p[i]);
    p += n;
    result.push_back(std::move(r));
  }
  return result;
}

bool Communicator::all_true(bool b) {
  Tensor any_false = Tensor::full({1}, b ? 0.0 : 1.0, DType::i32);
  all_reduce(any_false, ReduceOp::kMax);
  return any_false.data<int32_t>()[0] == 0;
}

double Communicator::all_reduce_scalar(double v, ReduceOp op) {
  Tensor t = Tensor::full({1}, v, DType::f64);
  all_reduce(t, op);
  return t.data<double>()[0];
}

// ---- the identity group ----

namespace {

class SelfCommunicator final : public Communicator {
 public:
  SelfCommunicator(std::string name, int world_rank)
      : Communicator(std::move(name), {world_rank}, 0) {}

 protected:
  std::unique_ptr<Work> do_all_reduce(Tensor&, ReduceOp, bool) override { return done(); }
  std::unique_ptr<Work> do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp, bool) override {
    copy(in, out);
    return done();
  }
  std::unique_ptr<Work> do_all_gather(const Tensor& in, Tensor& out, bool) override {
    copy(in, out);
    return done();
  }
  void do_all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>&) override { copy(in, out); }
  void do_broadcast(Tensor&, int) override {}
  // Unreachable: every peer is refused by check_p2p (a group of one has no other rank).
  std::unique_ptr<Work> do_exchange(const std::vector<P2POp>&) override { return done(); }
  void do_barrier() override {}

 private:
  static void copy(const Tensor& in, Tensor& out) {
    if (in.impl_ptr() != out.impl_ptr()) out.copy_(in.view(out.shape()));
  }
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator(std::string name, int world_rank) {
  return std::make_unique<SelfCommunicator>(std::move(name), world_rank);
}

}  // namespace ternion::parallel
