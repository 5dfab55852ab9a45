// Internal to src/checkpoint: manifest.yaml (FORMAT.md "Manifest"), written by rank 0 from
// the file records every rank gathers to it; read back by read_manifest (checkpoint.h).
#pragma once

#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"

namespace ternion::checkpoint {

// One rank file's entry under `files:`.
struct FileRecord {
  std::string file;  // rank_RRRRR.h5, relative to the checkpoint directory
  int rank = 0;
  int64_t bytes = 0;  // size after fsync
  std::vector<TensorInfo> tensors;
};

// A record as one YAML map: what a rank sends to rank 0 for the manifest.
std::string record_yaml(const FileRecord& r);

// The text of manifest.yaml for `state` (its step, scalars, config and layout), written by
// `world_size` ranks; `records` holds record_yaml() of each rank's file, "" for a rank that
// wrote none.
std::string manifest_yaml(const State& state, int world_size, const std::vector<std::string>& records);

// "9f3c…": 16 hex digits, as the manifest records checksums.
std::string hex64(uint64_t v);

}  // namespace ternion::checkpoint
