// PowerSGD at GPT-2 small's gradient shapes (12 layers, C = 768, V = 50304, T = 1024: 124M
// parameters, their shapes from model::Gpt), under mpirun, against the plain all-reduce of
// the same gradients in the same run. Per rank r in 1, 2, 4, 8: the bytes one step sends on
// the group (Communicator::bytes_sent), their ratio to the plain all-reduce's beside the
// analytic ratio Ψ / (Σ (n+m)·r' + uncompressed), the step's time, of which the compression
// (the products and the orthonormalisation: the step's time outside the collectives), and the
// link bandwidth below which PowerSGD's step is faster than the plain all-reduce:
// B = (plain bytes - PowerSGD bytes) / compression time.
// Usage: mpirun -np 2 powersgd_bench [REPS=3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/gpt.h"
#include "parallel/powersgd.h"
#include "parallel/runtime.h"

using namespace ternion;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  parallel::Runtime& rt = parallel::Runtime::init(&argc, &argv);
  return parallel::run_ranked([&] {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 3;
    auto world = rt.world();
    model::GptConfig gc;
    gc.vocab_size = 50304;
    gc.block_size = 1024;
    gc.n_layer = 12;
    gc.n_head = 12;
    gc.n_embd = 768;
    model::Gpt gpt(gc);
    std::vector<std::string> names;
    std::vector<Shape> shapes;
    std::vector<Tensor> grads;
    int64_t psi = 0;
    for (const auto& p : gpt.parameters()) {
      names.push_back(p.name);
      shapes.push_back(p.tensor.shape());
      Tensor g = Tensor::empty(p.tensor.shape());
      init_normal(g, 100 + static_cast<uint64_t>(rt.rank()), p.name, 0.0, 1e-3);
      grads.push_back(g);
      psi += g.numel();
    }
    // The plain all-reduce of every gradient in one buffer (what data parallelism sends).
    Tensor flat = Tensor::empty({psi});
    int64_t at = 0;
    for (const Tensor& g : grads) {
      flat.slice(0, at, at + g.numel()).copy_(g.view({g.numel()}));
      at += g.numel();
    }
    world->all_reduce(flat, parallel::ReduceOp::kAvg);  // warm-up
    double plain_s = 1e30;
    int64_t plain_bytes = 0;
    for (int i = 0; i < reps; ++i) {
      const int64_t b0 = world->bytes_sent();
      world->barrier();
      const double t0 = now_s();
      world->all_reduce(flat, parallel::ReduceOp::kAvg);
      plain_s = std::min(plain_s, now_s() - t0);
      plain_bytes = world->bytes_sent() - b0;
    }
    if (rt.rank() == 0) {
      std::printf("# PowerSGD at GPT-2 small shapes (%lld parameters), %d ranks, best of %d steps\n",
                  static_cast<long long>(psi), rt.size(), reps);
      std::printf("# plain all-reduce: %lld bytes counted, %.1f ms\n", static_cast<long long>(plain_bytes), plain_s * 1e3);
      std::printf("%4s %12s %9s %9s %9s %11s %13s\n", "rank", "bytes", "1/ratio", "analytic", "step_ms",
                  "compress_ms", "break-even");
    }
    for (const int r : {1, 2, 4, 8}) {
      parallel::PowerSgdOptions o;
      o.rank = r;
      parallel::PowerSgd psgd(*world, names, shapes, DType::f32, Device::cpu(), o, 1);
      psgd.reduce(grads);  // warm-up
      double best = 1e30, compress = 0;
      int64_t bytes = 0;
      for (int i = 0; i < reps; ++i) {
        const int64_t b0 = world->bytes_sent();
        const double c0 = world->blocking_seconds();
        world->barrier();
        const double t0 = now_s();
        psgd.reduce(grads);
        const double s = now_s() - t0;
        if (s < best) {
          best = s;
          compress = s - (world->blocking_seconds() - c0);
        }
        bytes = world->bytes_sent() - b0;
      }
      const double analytic = static_cast<double>(psi) /
                              static_cast<double>(psgd.low_rank_elements() + psgd.uncompressed_elements());
      // PowerSGD wins on a link of bandwidth B when compress + bytes/B < plain_bytes/B.
      const double break_even = static_cast<double>(plain_bytes - bytes) / std::max(compress, 1e-9);
      if (rt.rank() == 0)
        std::printf("%4d %12lld %9.1f %9.1f %9.1f %11.1f %10.2f GB/s\n", r, static_cast<long long>(bytes),
                    static_cast<double>(plain_bytes) / static_cast<double>(bytes), analytic, best * 1e3, compress * 1e3,
                    break_even / 1e9);
    }
    return 0;
  });
}
