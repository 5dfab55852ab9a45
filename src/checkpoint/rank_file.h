// Internal to src/checkpoint: one rank's HDF5 file (FORMAT.md "Rank files"), written by a
// save and read by read_tensor and verify.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "checkpoint/checkpoint.h"
#include "checkpoint/manifest.h"

namespace ternion::checkpoint {

// "rank_00003.h5".
std::string rank_file_name(int rank);

// XXH64 (seed 0) of a contiguous host f32 tensor's bytes.
uint64_t checksum(const Tensor& t);

// Writes state.tensors to dir/rank_file_name(rank) and fsyncs it; returns its record.
// Calls hooks (may be null) before each dataset and after the file is closed. Throws
// ternion::Error naming the file (and the dataset) on any failure, including a file whose
// size on disk differs from what HDF5 wrote. HDF5's lock is held per dataset, not for the
// whole file, so a data loader on another thread is never held up for long.
// REQUIRES: every entry is a contiguous host f32 tensor.
FileRecord write_rank_file(const std::filesystem::path& dir, int rank, const State& state, RankFileHooks* hooks);

// Reads dataset ti.name of ti.file (under checkpoint directory `dir`) in full: f32, shape
// ti.shape. Throws naming the file and tensor when it cannot be read, its shape differs
// from the manifest's, or its checksum does not match.
Tensor read_dataset(const std::string& dir, const TensorInfo& ti);

// One rank file opened for reading, kept open for many reads (Reader, read_tensor.cpp).
class RankFileReader {
 public:
  explicit RankFileReader(std::string path);
  ~RankFileReader();
  RankFileReader(const RankFileReader&) = delete;
  RankFileReader& operator=(const RankFileReader&) = delete;
  // Dataset ti in full, its XXH64 checked against the manifest's (as read_dataset).
  Tensor read(const TensorInfo& ti);
  // Elements [begin, begin + shape) of dataset ti (a hyperslab) when the dataset was written
  // chunked with HDF5's Fletcher-32 filter, which HDF5 checks on every chunk it reads;
  // nullopt when it was not (a checkpoint written before chunking), where only a whole read
  // can be verified.
  std::optional<Tensor> read_part(const TensorInfo& ti, const std::vector<int64_t>& begin, const Shape& shape);

 private:
  std::string path_;
  int64_t file_ = -1;  // hid_t
};

}  // namespace ternion::checkpoint
