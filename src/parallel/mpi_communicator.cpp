// MPI backend: the collectives and point-to-point operations as functions an MpiEngine
// runs (mpi_engine.h), and the communicator that issues them. See mpi_communicator.h.
#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <type_traits>

#include "parallel/comm_checks.h"
#include "parallel/mpi_engine.h"
#include "parallel/nccl_communicator.h"

namespace ternion::parallel {

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return str_cat("MPI error ", code);
  return std::string(buf, static_cast<size_t>(len));
}

namespace {

int64_t g_max_count = INT_MAX;

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::bf16:
    case DType::f16:
    case DType::u16: return MPI_UINT16_T;  // moved as bits; reduced in f32 (see below)
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
  }
  return MPI_BYTE;
}

bool is_half(DType d) { return d == DType::bf16 || d == DType::f16; }
MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM; }
char* bytes(const Tensor& t) { return t.numel() ? static_cast<char*>(t.raw_data()) : nullptr; }

// kAvg after a sum: divide by the group size (integers truncate). Never sees bf16/f16,
// which are averaged in their f32 staging buffer.
void divide(Tensor& t, int n) {
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_arithmetic_v<T>) {
      T* p = t.data<T>();
      for (int64_t i = 0, e = t.numel(); i < e; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(n));
    }
  });
}

// ---- the operations, as functions the engine runs ----

void allreduce_chunks(const MpiEngine& e, const Tensor& t, ReduceOp op) {
  const int64_t n = t.numel();
  const size_t es = dtype_size(t.dtype());
  for (int64_t off = 0; off < n; off += g_max_count) {
    const int k = static_cast<int>(std::min(g_max_count, n - off));
    TN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, bytes(t) + off * es, k, mpi_type(t.dtype()), mpi_op(op),
                               e.comm()),
                 e.describe());
  }
}

void bcast_chunks(const MpiEngine& e, char* p, int64_t n, DType d, int root) {
  const size_t es = dtype_size(d);
  for (int64_t off = 0; off < n; off += g_max_count) {
    const int k = static_cast<int>(std::min(g_max_count, n - off));
    TN_MPI_CHECK(MPI_Bcast(p + off * es, k, mpi_type(d), root, e.comm()), e.describe());
  }
}

OpFn all_reduce_fn(const MpiEngine& e, Tensor t, ReduceOp op, int size) {
  return [&e, t, op, size](Requests&) mutable {
    Tensor buf = is_half(t.dtype()) ? t.to(DType::f32) : t;
    allreduce_chunks(e, buf, op);
    if (op == ReduceOp::kAvg) divide(buf, size);
    if (buf.impl_ptr() != t.impl_ptr()) t.copy_(buf);
  };
}

OpFn reduce_scatter_fn(const MpiEngine& e, Tensor in, Tensor out, ReduceOp op, int size) {
  return [&e, in, out, op, size](Requests&) mutable {
    const bool half = is_half(in.dtype());
    Tensor src = half ? in.to(DType::f32) : in;
    Tensor dst = half ? Tensor::empty(out.shape(), DType::f32) : out;
    const int64_t blk = dst.numel();
    const MPI_Datatype type = mpi_type(dst.dtype());
    if (blk <= g_max_count) {
      TN_MPI_CHECK(MPI_Reduce_scatter_block(bytes(src), bytes(dst), static_cast<int>(blk), type,
                                            mpi_op(op), e.comm()),
                   e.describe());
    } else {  // each block in chunks, reduced to its owner
      const size_t es = dtype_size(dst.dtype());
      for (int r = 0; r < size; ++r) {
        for (int64_t off = 0; off < blk; off += g_max_count) {
          const int k = static_cast<int>(std::min(g_max_count, blk - off));
          TN_MPI_CHECK(MPI_Reduce(bytes(src) + (r * blk + off) * es, bytes(dst) + off * es, k, type,
                                  mpi_op(op), r, e.comm()),
                       e.describe());
        }
      }
    }
    if (op == ReduceOp::kAvg) divide(dst, size);
    if (half) out.copy_(dst);
  };
}

// Uneven gather; equal counts are the all_gather of counts above the per-call limit.
OpFn all_gather_v_fn(const MpiEngine& e, Tensor in, Tensor out, std::vector<int64_t> counts, int rank) {
  return [&e, in, out, counts = std::move(counts), rank](Requests&) {
    const MPI_Datatype type = mpi_type(in.dtype());
    const size_t es = dtype_size(in.dtype());
    std::vector<int64_t> displs(counts.size(), 0);
    for (size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
    const int64_t total = displs.back() + counts.back();
    if (total <= g_max_count) {
      std::vector<int> c(counts.begin(), counts.end()), d(displs.begin(), displs.end());
      TN_MPI_CHECK(MPI_Allgatherv(bytes(in), c[static_cast<size_t>(rank)], type, bytes(out), c.data(),
                                  d.data(), type, e.comm()),
                   e.describe());
      return;
    }
    // Above MPI's int counts: every rank broadcasts its part in chunks.
    if (in.numel()) std::memcpy(bytes(out) + displs[static_cast<size_t>(rank)] * es, bytes(in), in.nbytes());
    for (size_t r = 0; r < counts.size(); ++r) {
      bcast_chunks(e, bytes(out) + displs[r] * es, counts[r], in.dtype(), static_cast<int>(r));
    }
  };
}

OpFn all_gather_fn(const MpiEngine& e, Tensor in, Tensor out, int size, int rank) {
  if (in.numel() > g_max_count) {
    return all_gather_v_fn(e, in, out, std::vector<int64_t>(static_cast<size_t>(size), in.numel()), rank);
  }
  return [&e, in, out](Requests&) {
    const MPI_Datatype type = mpi_type(in.dtype());
    TN_MPI_CHECK(MPI_Allgather(bytes(in), static_cast<int>(in.numel()), type, bytes(out),
                               static_cast<int>(in.numel()), type, e.comm()),
                 e.describe());
  };
}

// Every op of an exchange posted before any completes. Sends carry their tag; receives
// take the next message from their peer whatever its tag (MPI_ANY_TAG: issue-order
// matching, as NCCL's) and check the tag and size they got once complete.
OpFn exchange_fn(const MpiEngine& e, std::vector<P2POp> ops, const char* name) {
  return [&e, ops = std::move(ops), name](Requests& reqs) {
    struct Expect {
      int peer, tag, count;
      MPI_Datatype type;
      bool recv;
    };
    auto expect = std::make_shared<std::vector<Expect>>();
    for (const P2POp& op : ops) {
      const Tensor& t = op.tensor;
      const bool recv = op.kind == P2POp::Kind::kRecv;
      const MPI_Datatype type = mpi_type(t.dtype());
      const int64_t n = t.numel();
      const size_t es = dtype_size(t.dtype());
      // Chunks of one message stay in order (MPI's non-overtaking rule).
      for (int64_t off = 0; off < n; off += g_max_count) {
        const int k = static_cast<int>(std::min(g_max_count, n - off));
        MPI_Request r;
        if (recv) {
          TN_MPI_CHECK(MPI_Irecv(bytes(t) + off * es, k, type, op.peer, MPI_ANY_TAG, e.comm(), &r), e.describe());
        } else {
          TN_MPI_CHECK(MPI_Isend(bytes(t) + off * es, k, type, op.peer, op.tag, e.comm(), &r), e.describe());
        }
        reqs.list.push_back(r);
        reqs.parts.push_back(P2PPart{op.peer, recv});
        expect->push_back(Expect{op.peer, op.tag, k, type, recv});
      }
    }
    reqs.on_complete = [&e, expect, name](const std::vector<MPI_Status>& statuses) {
      for (size_t i = 0; i < statuses.size(); ++i) {
        const Expect& x = (*expect)[i];
        if (!x.recv) continue;
        int got = 0;
        MPI_Get_count(&statuses[i], x.type, &got);
        if (statuses[i].MPI_TAG != x.tag || got != x.count) {
          fatal(str_cat(name, " in ", e.describe(), ": a receive of ", x.count, " elements with tag ", x.tag,
                        " from group rank ", x.peer, " got the peer's next message: ", got,
                        " elements with tag ", statuses[i].MPI_TAG,
                        "; sends and receives between two ranks must be issued in the same order with the "
                        "same sizes (NCCL matches by order and carries no tag)"));
        }
      }
    };
  };
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name, std::vector<int> world_ranks, int rank,
                  const CommOptions& options)
      : Communicator(std::move(name), std::move(world_ranks), rank) {
    engine_ = std::make_shared<MpiEngine>(comm, describe(), this->world_ranks(), options.timeout);
    if (options.device.is_cuda()) {  // every member is here: make the NCCL communicator now
      check_nccl_available(describe());
      const int device = options.device.index;
      engine_->run_blocking("nccl_init", [this, device, options](Requests&) {
        nccl_ = make_nccl_communicator(engine_->comm(), describe(), this->rank(), size(), device, options,
                                       engine_->roll_call());
      });
    }
  }
  ~MpiCommunicator() override {
    nccl_.reset();  // before the MPI communicator it was bootstrapped over
  }

 protected:
  std::unique_ptr<Work> do_all_reduce(Tensor& t, ReduceOp op, bool blocking) override {
    if (t.device().is_cuda()) return nccl("all_reduce").all_reduce(t, op);
    return run("all_reduce", all_reduce_fn(*engine_, t, op, size()), blocking);
  }
  std::unique_ptr<Work> do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, bool blocking) override {
    if (in.device().is_cuda()) return nccl("reduce_scatter").reduce_scatter(in, out, op);
    return run("reduce_scatter", reduce_scatter_fn(*engine_, in, out, op, size()), blocking);
  }
  std::unique_ptr<Work> do_all_gather(const Tensor& in, Tensor& out, bool blocking) override {
    if (in.device().is_cuda()) return nccl("all_gather").all_gather(in, out);
    return run("all_gather", all_gather_fn(*engine_, in, out, size(), rank()), blocking);
  }
  void do_all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    if (in.device().is_cuda()) return nccl("all_gather_v").all_gather_v(in, out, counts)->wait();
    engine_->run_blocking("all_gather_v", all_gather_v_fn(*engine_, in, out, counts, rank()));
  }
  void do_broadcast(Tensor& t, int root) override {
    if (t.device().is_cuda()) return nccl("broadcast").broadcast(t, root)->wait();
    const MpiEngine& e = *engine_;
    engine_->run_blocking("broadcast", [&e, t, root](Requests&) {
      bcast_chunks(e, bytes(t), t.numel(), t.dtype(), root);
    });
  }
  std::unique_ptr<Work> do_exchange(const std::vector<P2POp>& ops) override {
    const char* name = p2p_name(ops);
    const bool cuda = ops.front().tensor.device().is_cuda();
    for (const P2POp& op : ops) {
      TN_CHECK(op.tensor.device().is_cuda() == cuda, name, "an exchange moves host or CUDA tensors, not both (",
               op.tensor.str(), " on ", op.tensor.device().str(), ") in ", describe());
    }
    if (cuda) return nccl(name).exchange(ops);
    return make_mpi_work(engine_, engine_->submit(name, OpKind::kPointToPoint, exchange_fn(*engine_, ops, name)));
  }
  void do_barrier() override {
    const MpiEngine& e = *engine_;
    engine_->run_blocking("barrier", [&e](Requests&) { TN_MPI_CHECK(MPI_Barrier(e.comm()), e.describe()); });
  }

 private:
  std::unique_ptr<Work> run(const char* name, OpFn fn, bool blocking) {
    if (blocking) {
      engine_->run_blocking(name, std::move(fn));
      return nullptr;
    }
    return make_mpi_work(engine_, engine_->submit(name, OpKind::kCollective, std::move(fn)));
  }

  // The group's NCCL communicator; a group made for host tensors refuses CUDA ones rather
  // than initialise NCCL from one call that not every member makes.
  NcclCommunicator& nccl(const char* op) {
    if (!nccl_) {
      check_nccl_available(describe());
      fail(op, describe() + " got a CUDA tensor but was created for host tensors: create the group with "
                            "CommOptions::device set to the CUDA device (ParallelContext::create does), so "
                            "that every member makes its NCCL communicator at once");
    }
    return *nccl_;
  }

  std::shared_ptr<MpiEngine> engine_;
  std::unique_ptr<NcclCommunicator> nccl_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, std::string name,
                                                    std::vector<int> world_ranks,
                                                    const CommOptions& options) {
  int rank = 0;
  TN_MPI_CHECK(MPI_Comm_rank(comm, &rank), name);
  return std::make_unique<MpiCommunicator>(comm, std::move(name), std::move(world_ranks), rank, options);
}

void set_mpi_max_count_for_testing(int64_t n) { g_max_count = n; }

}  // namespace ternion::parallel
