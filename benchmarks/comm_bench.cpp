// All-reduce (f32, sum, in place) through Ternion's communicator beside raw MPI_Allreduce
// on the same buffers in the same run, 4 KiB .. 64 MiB. Run under mpirun (see
// scripts/bench_comm.sh). Reports time per call (the slowest rank's, median of interleaved
// batches), algbw = bytes / time and busbw = algbw * 2(n-1)/n (nccl-tests' definition),
// and Ternion's time over MPI's. "async" is all_reduce_async + wait, i.e. through the
// communication thread; "blocking" runs inline when the thread is idle.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "parallel/runtime.h"

using namespace ternion;
using namespace ternion::parallel;

namespace {

double seconds_of(int iters, const std::function<void()>& fn) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Runtime& rt = Runtime::init(&argc, &argv);
  return run_ranked([&] {
    const int n = rt.size();
    const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
    auto world = rt.world();
    MPI_Comm raw;
    MPI_Comm_split(MPI_COMM_WORLD, 0, rt.rank(), &raw);  // made as Runtime makes groups
    if (rt.rank() == 0) {
      std::printf("# all_reduce f32 sum in place, %d ranks, median of %d interleaved batches\n", n, reps);
      std::printf("%10s %10s %9s %9s %10s %9s %6s %10s %6s\n", "bytes", "mpi_us", "algbw", "busbw",
                  "tern_us", "busbw", "ratio", "async_us", "ratio");
    }
    for (int64_t bytes = 4096; bytes <= (64 << 20); bytes *= 4) {
      const int64_t count = bytes / 4;
      Tensor t = Tensor::full({count}, 1.0);
      // Validate before timing: a sum of ones is the group size everywhere.
      world->all_reduce(t, ReduceOp::kSum);
      std::vector<float> v = t.to_vector<float>();
      if (v.front() != n || v.back() != n) throw Error("[comm_bench] all_reduce gave a wrong sum");
      float* p = t.data<float>();
      const int iters = static_cast<int>(std::clamp<int64_t>((256 << 20) / bytes, 5, 2000));
      std::vector<double> mpi, tern, async;
      for (int r = 0; r < reps + 1; ++r) {  // the first round warms up
        double a = seconds_of(iters, [&] { MPI_Allreduce(MPI_IN_PLACE, p, static_cast<int>(count), MPI_FLOAT, MPI_SUM, raw); });
        double b = seconds_of(iters, [&] { world->all_reduce(t, ReduceOp::kSum); });
        double c = seconds_of(iters, [&] { world->all_reduce_async(t, ReduceOp::kSum)->wait(); });
        if (r) {
          mpi.push_back(a);
          tern.push_back(b);
          async.push_back(c);
        }
      }
      const double m = median(mpi), tb = median(tern), ta = median(async);
      const double bus = 2.0 * (n - 1) / n;
      if (rt.rank() == 0) {
        std::printf("%10lld %10.1f %9.3f %9.3f %10.1f %9.3f %6.3f %10.1f %6.3f\n",
                    static_cast<long long>(bytes), m * 1e6, bytes / m / 1e9, bytes / m / 1e9 * bus, tb * 1e6,
                    bytes / tb / 1e9 * bus, tb / m, ta * 1e6, ta / m);
      }
    }
    if (rt.rank() == 0) std::printf("# algbw, busbw in GB/s; ratio = Ternion time / MPI time\n");
    MPI_Comm_free(&raw);
    return 0;
  });
}
