// main() of the MPI test programs. See mpi_test_main.h.
#include "parallel/mpi_test_main.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "core/error.h"

namespace ternion::parallel::testing {
namespace {

// Set by main() for the duration of the tests; read through the accessors only.
Runtime* g_runtime = nullptr;
Communicator* g_world = nullptr;

// Non-zero ranks report only their failures, prefixed by the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.message());
  }

 private:
  int rank_;
};

}  // namespace

Runtime& runtime() {
  TN_CHECK(g_runtime, "mpi_test_main", "runtime() called outside the shared test main's run");
  return *g_runtime;
}

Communicator& world() {
  TN_CHECK(g_world, "mpi_test_main", "world() called outside the shared test main's run");
  return *g_world;
}

}  // namespace ternion::parallel::testing

int main(int argc, char** argv) {
  using namespace ternion::parallel;
  namespace own = ternion::parallel::testing;
  Runtime& rt = Runtime::init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (rt.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new own::RankFailurePrinter(rt.rank()));
  }
  const int rc = run_ranked([&] {
    CommOptions options;
    options.timeout = std::chrono::seconds(120);
    auto world = rt.world(options);
    own::g_runtime = &rt;
    own::g_world = world.get();
    const bool passed = RUN_ALL_TESTS() == 0;
    // Every rank's verdict decides: one failing rank fails the job.
    const bool all_passed = world->all_true(passed);
    if (rt.rank() == 0 && passed && !all_passed) {
      std::fprintf(stderr, "ternion: tests failed on another rank (see its [rank N] lines)\n");
    }
    own::g_world = nullptr;
    own::g_runtime = nullptr;
    return all_passed ? 0 : 1;
  });
  Runtime::shutdown();
  return rc;
}
