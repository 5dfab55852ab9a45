// Loading: a slice of a global tensor reassembled from the datasets of its name, whatever
// layout wrote them (FORMAT.md "Rank files"), and verify.
#include <algorithm>
#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "checkpoint/rank_file.h"
#include "core/error.h"

namespace ternion::checkpoint {

namespace fs = std::filesystem;

namespace {

// "<name>" itself, or one of several boxes of it in one file: "<name>@<k>".
bool same_tensor(const std::string& dataset, const std::string& name) {
  if (dataset == name) return true;
  return dataset.size() > name.size() + 1 && dataset.starts_with(name) && dataset[name.size()] == '@';
}

}  // namespace

void read_tensor(const Manifest& m, const std::string& name, const Shape& global_shape,
                 const std::vector<int64_t>& offsets, Tensor& out) {
  const int nd = static_cast<int>(global_shape.size());
  TN_CHECK(static_cast<int>(offsets.size()) == nd && out.ndim() == nd && out.is_contiguous() &&
               out.device().is_cpu(),
           "checkpoint", "read_tensor('", name, "'): bad request ", out.str());
  int64_t covered = 0;
  bool found = false;
  for (const TensorInfo& ti : m.tensors) {
    if (!same_tensor(ti.name, name)) continue;
    found = true;
    TN_CHECK(ti.global_shape == global_shape, "checkpoint", "tensor '", name, "' in '",
             (fs::path(m.dir) / ti.file).string(), "' has global shape ", shape_str(ti.global_shape),
             "; this model expects ", shape_str(global_shape),
             " (the checkpoint was written for a different model)");
    // Intersection of the dataset's box with the requested box.
    std::vector<int64_t> lo(nd), hi(nd);
    bool empty = false;
    for (int d = 0; d < nd; ++d) {
      lo[d] = std::max(ti.offsets[d], offsets[d]);
      hi[d] = std::min(ti.offsets[d] + ti.shape[d], offsets[d] + out.shape()[d]);
      if (lo[d] >= hi[d]) empty = true;
    }
    if (empty && out.numel() > 0) continue;
    Tensor src = read_dataset(m.dir, ti);
    if (empty) continue;
    Tensor dst = out;
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) {
      src = src.slice(d, lo[d] - ti.offsets[d], hi[d] - ti.offsets[d]);
      dst = dst.slice(d, lo[d] - offsets[d], hi[d] - offsets[d]);
      n *= hi[d] - lo[d];
    }
    dst.copy_(src);
    covered += n;
  }
  TN_CHECK(found, "checkpoint", "checkpoint '", m.dir, "' has no tensor '", name, "'");
  TN_CHECK(covered >= out.numel(), "checkpoint", "checkpoint '", m.dir, "' holds only ", covered, " of the ",
           out.numel(), " elements of tensor '", name, "' requested at offsets ", shape_str(Shape(offsets)));
}

int64_t verify(const Manifest& m) {
  for (const TensorInfo& ti : m.tensors) read_dataset(m.dir, ti);
  return static_cast<int64_t>(m.tensors.size());
}

}  // namespace ternion::checkpoint
