// Sharded, asynchronous, atomically committed checkpoints in HDF5 (see FORMAT.md).
//
//   Checkpointer ckpt(run_dir, group, options);
//   ckpt.save(std::move(state));   // blocks only to stage copies; writes in the background
//   ckpt.poll();                   // at each step boundary: commits a finished save
//   ckpt.finish();                 // waits for and commits the save in flight
//   Manifest m = read_manifest(latest_checkpoint(run_dir));
//   read_tensor(m, "param/<name>", global_shape, offsets, out);   // verifies checksums
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ternion::checkpoint {

// What a checkpoint needs from the ranks that write it together. Every member is called
// collectively (every rank, same order). local() is the single-process group.
struct Group {
  int rank = 0;
  int size = 1;
  std::function<bool(bool)> all_true;  // logical AND over the ranks
  std::function<std::vector<std::string>(const std::string&)> all_gather;  // one string per rank
  static Group local();
};

// One dataset: a tensor, or the slice of a global tensor this rank holds.
struct Entry {
  std::string name;                // "param/<nanoGPT name>", "optim/exp_avg/<name>", ...
  Tensor data;                     // host, f32, contiguous (the staging copy)
  Shape global_shape;              // the whole tensor's shape
  std::vector<int64_t> offsets;    // of data's first element in the global tensor
  // Instead of data: a live host f32 tensor the save copies into data itself, on its
  // background thread when async (Checkpointer::wait_staged says when it is done).
  Tensor source;
};

// Entry for a whole (unsharded) tensor; copies `t` to a host f32 staging tensor.
Entry whole(std::string name, const Tensor& t);
// The same, but a host f32 tensor is staged later by the save (Entry::source): the caller
// must not change t until Checkpointer::wait_staged() returns. Device tensors are copied now.
Entry deferred(std::string name, const Tensor& t);

struct State {
  int64_t step = 0;                         // optimizer steps completed
  std::vector<Entry> tensors;               // what this rank writes (may be empty)
  std::map<std::string, int64_t> scalars;   // e.g. optim.step, data.step, data.sample
  std::string config_yaml;                  // the resolved config
  std::map<std::string, std::string> layout;  // e.g. dp: 4, order: tp-dp-pp
};

// The seam between a save and its rank file: called as the file is written, so that tests
// inject failures, torn files and slow disks through a fake (checkpoint/fault_injection.h).
// The default does nothing. Called on the thread that writes the file (the background
// writer of an async save), one save at a time; an exception fails this rank's save the way
// a failing write does (nothing is committed, every rank's save() or finish() throws).
class RankFileHooks {
 public:
  virtual ~RankFileHooks() = default;
  // Before dataset `index` (0-based, State::tensors order) called `name` is written to `path`.
  virtual void before_dataset(const std::string& /*path*/, int /*index*/, const std::string& /*name*/) {}
  // After `path` is written and closed; before it is fsynced and its size is checked.
  virtual void after_file(const std::string& /*path*/) {}
};

struct Options {
  bool async = true;
  int keep = 2;  // complete checkpoints kept; older ones are deleted after a commit
  std::shared_ptr<RankFileHooks> hooks = nullptr;  // none
};

struct SaveTiming {
  int64_t step = -1;
  double blocking_s = 0;  // time save() blocked the caller
  double total_s = 0;     // from save() until committed
  int64_t bytes = 0;      // written by this rank
};

class Checkpointer {
 public:
  Checkpointer(std::string run_dir, Group group, Options options);
  ~Checkpointer();  // waits for the save in flight (committing it when all ranks can)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Collective. Waits for (and commits) the previous save, then starts this one: the
  // caller's state is already staged (host copies), so this returns once the background
  // writer has it (async) or after the commit (sync).
  void save(State state);
  // Returns once the save in flight has copied its deferred entries (Entry::source): from
  // then on the caller may change those tensors. Immediate without one. Not collective.
  void wait_staged();
  // Collective, cheap: commits the save in flight when every rank's writer has finished.
  // Returns the timing of a save committed by this call.
  std::optional<SaveTiming> poll();
  // Collective: waits for the save in flight and commits it.
  std::optional<SaveTiming> finish();

  std::string checkpoints_dir() const;

 private:
  struct Pending;
  std::optional<SaveTiming> commit();
  std::string run_dir_;
  Group group_;
  Options options_;
  std::unique_ptr<Pending> pending_;
};

// --- Loading -------------------------------------------------------------------------

struct TensorInfo {
  std::string file;
  std::string name;
  std::string dtype;
  Shape global_shape;
  std::vector<int64_t> offsets;
  Shape shape;
  uint64_t xxh64 = 0;
};

struct Manifest {
  std::string dir;
  int64_t format_version = 0;
  std::string ternion_version;
  int64_t step = 0;
  int64_t world_size = 0;
  std::map<std::string, std::string> layout;
  std::map<std::string, int64_t> scalars;
  std::string config_yaml;
  std::map<std::string, int64_t> file_bytes;  // file -> size
  std::vector<TensorInfo> tensors;
};

// Reads and checks dir/manifest.yaml (format name and version, files present and not
// shorter than recorded). Throws naming the file and the problem.
Manifest read_manifest(const std::string& dir);

// Fills `out` (host f32 or f64, contiguous, shape = the slice) with the box of global
// tensor `name` that starts at `offsets`, assembled from the datasets of that name that
// meet the box (whatever layout wrote them), verifying each one's checksum. Every element
// of the box must be in some dataset, and datasets that overlap must hold the same values
// there. Throws naming the tensor and: the first uncovered box and how many elements are
// missing; the two files whose datasets disagree; a different global shape; a checksum.
void read_tensor(const Manifest& m, const std::string& name, const Shape& global_shape,
                 const std::vector<int64_t>& offsets, Tensor& out);

// read_tensor for many boxes of one checkpoint, as a resume loads them: each rank file is
// opened once, at its first read, and stays open until the reader goes; of each dataset
// that meets a box only that part is read (an HDF5 hyperslab, whose chunks HDF5 verifies
// with their Fletcher-32 checksums as it reads them, FORMAT.md), so a rank reads about what
// it holds, not the checkpoint. A dataset the box covers whole, or one written without the
// filter, is read whole and checked against the manifest's XXH64.
class Reader {
 public:
  explicit Reader(const Manifest& m);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  // As read_tensor.
  void read(const std::string& name, const Shape& global_shape, const std::vector<int64_t>& offsets, Tensor& out);
  // Bytes of tensor data read from the files so far.
  int64_t bytes_read() const { return bytes_read_; }

 private:
  struct Files;
  const Manifest& m_;
  std::unique_ptr<Files> files_;
  int64_t bytes_read_ = 0;
};

// Verifies every tensor's checksum; returns the number verified. Throws on the first failure.
int64_t verify(const Manifest& m);

// Everything wrong with a checkpoint whose manifest reads, without stopping at the first
// problem: each dataset's checksum (and that it reads), and for each tensor that its
// datasets agree on the global shape, cover it exactly and hold the same values where they
// overlap. One line per problem, naming the tensor and the file or files; empty when the
// checkpoint is sound (`ternion checkpoint verify`).
std::vector<std::string> verify_report(const Manifest& m);

// <run_dir>/checkpoints/<latest>, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);
// Complete checkpoints under run_dir, newest first.
std::vector<std::string> complete_checkpoints(const std::string& run_dir);

}  // namespace ternion::checkpoint
