// Unsharded model weights in HDF5: one float32 dataset per parameter at the file's root,
// named by its nanoGPT state_dict name, plus the model's sizes as root attributes
// (vocab_size, block_size, n_layer, n_head, n_embd) so a file is self-describing.
// This is the format `model.init_from` reads, `ternion sample` loads, and the
// checkpoint export writes; h5py reads it as {name: array}.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ternion::checkpoint {

struct NamedTensor {
  std::string name;
  Tensor tensor;  // any floating dtype; stored as f32
};

// Writes path.tmp, fsyncs it, renames it over path and fsyncs the directory (io::publish):
// after a crash, path is the previous file or the complete new one. On failure (a full disk
// included) path.tmp is removed and a previous file at path is intact. Throws before writing
// anything when path is a directory.
void write_weights(const std::string& path, const std::vector<NamedTensor>& tensors,
                   const std::map<std::string, int64_t>& attributes);

// Fills each tensor (f32 or f64, CPU, contiguous) from the dataset of its name.
// Throws naming the file and every missing dataset or wrong shape.
void read_weights(const std::string& path, std::vector<NamedTensor>& tensors);

// Root integer attributes (the model sizes). Throws naming the file when unreadable.
std::map<std::string, int64_t> read_weight_attributes(const std::string& path);

}  // namespace ternion::checkpoint
