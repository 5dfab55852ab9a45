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

class DoneWork final : public Work {
 public:
  void wait() override {}
  bool test() override { return true; }
};

class SelfCommunicator final : public Communicator {
 public:
  SelfCommunicator(std::string name, int world_rank)
      : Communicator(std::move(name), {world_rank}, 0) {}

  void all_reduce(Tensor& t, ReduceOp) override { check_tensor(*this, "all_reduce", t); }
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) override {
    all_reduce(t, op);
    return std::make_unique<DoneWork>();
  }
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp) override {
    check_reduce_scatter(*this, in, out);
    if (in.impl_ptr() != out.impl_ptr()) out.copy_(in.view(out.shape()));
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check_all_gather(*this, in, out);
    if (in.impl_ptr() != out.impl_ptr()) out.copy_(in.view(out.shape()));
  }
  void all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    check_all_gather_v(*this, in, out, counts);
    if (in.impl_ptr() != out.impl_ptr()) out.copy_(in.view(out.shape()));
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op) override {
    reduce_scatter(in, out, op);
    return std::make_unique<DoneWork>();
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out) override {
    all_gather(in, out);
    return std::make_unique<DoneWork>();
  }
  void broadcast(Tensor& t, int root) override {
    check_tensor(*this, "broadcast", t);
    check_group_rank(*this, "broadcast", root, false);
  }
  void send(const Tensor&, int peer, int) override { check_group_rank(*this, "send", peer, true); }
  void recv(Tensor&, int peer, int) override { check_group_rank(*this, "recv", peer, true); }
  std::unique_ptr<Work> send_async(const Tensor& t, int peer, int tag) override {
    send(t, peer, tag);
    return nullptr;
  }
  std::unique_ptr<Work> recv_async(Tensor& t, int peer, int tag) override {
    recv(t, peer, tag);
    return nullptr;
  }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator(std::string name, int world_rank) {
  return std::make_unique<SelfCommunicator>(std::move(name), world_rank);
}

}  // namespace ternion::parallel
