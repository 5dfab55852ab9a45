// Loading: a box of a global tensor reassembled from the datasets that cover it, whatever
// layout wrote them (FORMAT.md "Rank files"), and verify.
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "checkpoint/checkpoint.h"
#include "checkpoint/coverage.h"
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

Box box_of(const TensorInfo& ti) { return {ti.offsets, ti.shape}; }

// The part `part` of tensor t, which holds box `whole` of the global tensor.
Tensor view_of(Tensor t, const Box& whole, const Box& part) {
  for (int d = 0; d < whole.rank(); ++d) {
    const int64_t lo = part.offsets[d] - whole.offsets[d];
    t = t.slice(d, lo, lo + part.shape[d]);
  }
  return t;
}

bool same_values(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(DType::f32).contiguous(), y = b.to(DType::f32).contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

}  // namespace

struct Reader::Files {
  std::map<std::string, std::unique_ptr<RankFileReader>> open;  // by file name
  RankFileReader& get(const std::string& dir, const std::string& file) {
    auto& r = open[file];
    if (!r) r = std::make_unique<RankFileReader>((fs::path(dir) / file).string());
    return *r;
  }
};

Reader::Reader(const Manifest& m) : m_(m), files_(std::make_unique<Files>()) {}
Reader::~Reader() = default;

void read_tensor(const Manifest& m, const std::string& name, const Shape& global_shape,
                 const std::vector<int64_t>& offsets, Tensor& out) {
  Reader(m).read(name, global_shape, offsets, out);
}

void Reader::read(const std::string& name, const Shape& global_shape, const std::vector<int64_t>& offsets,
                  Tensor& out) {
  const Manifest& m = m_;
  const int nd = static_cast<int>(global_shape.size());
  bool request_ok = static_cast<int>(offsets.size()) == nd && out.ndim() == nd && out.is_contiguous() &&
                    out.device().is_cpu() && (out.dtype() == DType::f32 || out.dtype() == DType::f64);
  for (int d = 0; request_ok && d < nd; ++d)
    request_ok = offsets[d] >= 0 && offsets[d] + out.shape()[d] <= global_shape[d];
  TN_CHECK(request_ok, "checkpoint", "read_tensor('", name, "'): bad request: ", out.str(), " at offsets ",
           shape_str(Shape(offsets)), " of global shape ", shape_str(global_shape));
  const Box want{offsets, out.shape()};

  // Which datasets meet the box, and whether together they cover it: decided from the
  // manifest alone, before any data is read.
  std::vector<const TensorInfo*> pieces;
  std::vector<Box> boxes;
  bool found = false;
  for (const TensorInfo& ti : m.tensors) {
    if (!same_tensor(ti.name, name)) continue;
    found = true;
    TN_CHECK(ti.global_shape == global_shape, "checkpoint", "tensor '", name, "' in '",
             (fs::path(m.dir) / ti.file).string(), "' has global shape ", shape_str(ti.global_shape),
             "; this model expects ", shape_str(global_shape), " (the checkpoint was written for a different model)");
    if (std::optional<Box> common = intersect(box_of(ti), want)) {
      pieces.push_back(&ti);
      boxes.push_back(*common);
    }
  }
  TN_CHECK(found, "checkpoint", "checkpoint '", m.dir, "' has no tensor '", name, "'");
  const std::vector<Box> gaps = uncovered(want, boxes);
  if (!gaps.empty()) {
    int64_t missing = 0;
    for (const Box& g : gaps) missing += g.numel();
    fail("checkpoint", str_cat("checkpoint '", m.dir, "' does not cover tensor '", name, "' ", box_str(want),
                               " of global shape ", shape_str(global_shape), ": ", missing, " of its ",
                               want.numel(), " elements are in no dataset, the first of them in ",
                               box_str(gaps.front())));
  }

  for (size_t i = 0; i < pieces.size(); ++i) {
    const TensorInfo& ti = *pieces[i];
    const Box& mine = boxes[i];
    RankFileReader& file = files_->get(m.dir, ti.file);
    // The part of the dataset the box needs, or (a covered dataset; one without per-chunk
    // checksums) all of it; src holds box `held` of the global tensor.
    std::optional<Tensor> part;
    Box held = box_of(ti);
    if (!(mine == held)) {
      std::vector<int64_t> begin(mine.offsets);
      for (int d = 0; d < nd; ++d) begin[d] -= ti.offsets[d];
      part = file.read_part(ti, begin, mine.shape);
    }
    if (part) held = mine;
    const Tensor src = part ? *part : file.read(ti);
    bytes_read_ += static_cast<int64_t>(src.nbytes());
    // Where an earlier dataset already filled part of this one's box, both must agree.
    for (size_t j = 0; j < i; ++j) {
      const std::optional<Box> both = intersect(mine, boxes[j]);
      if (!both) continue;
      TN_CHECK(same_values(view_of(out, want, *both), view_of(src, held, *both)), "checkpoint",
               "tensor '", name, "' is stored twice over ", box_str(*both), " with different values: '",
               ti.name, "' in '", (fs::path(m.dir) / ti.file).string(), "' and '", pieces[j]->name, "' in '",
               (fs::path(m.dir) / pieces[j]->file).string(), "'");
    }
    Tensor dst = view_of(out, want, mine);
    dst.copy_(view_of(src, held, mine));
  }
}

int64_t verify(const Manifest& m) {
  for (const TensorInfo& ti : m.tensors) read_dataset(m.dir, ti);
  return static_cast<int64_t>(m.tensors.size());
}

std::vector<std::string> verify_report(const Manifest& m) {
  std::vector<std::string> problems;
  std::map<std::string, std::vector<const TensorInfo*>> tensors;  // by tensor name, datasets in order
  std::set<std::string> damaged;
  for (const TensorInfo& ti : m.tensors) {
    const std::string name = ti.name.substr(0, ti.name.find('@'));
    tensors[name].push_back(&ti);
    try {
      read_dataset(m.dir, ti);
    } catch (const Error& e) {
      problems.push_back(str_cat(ti.file, ": ", ti.name, ": ", e.what()));
      damaged.insert(name);
    }
  }
  for (const auto& [name, parts] : tensors) {
    const Shape& global = parts.front()->global_shape;
    bool shapes_agree = true;
    std::vector<Box> pieces;
    for (const TensorInfo* ti : parts) {
      if (ti->global_shape != global) {
        problems.push_back(str_cat(name, ": ", ti->file, " gives the global shape ", shape_str(ti->global_shape), ", ",
                                   parts.front()->file, " ", shape_str(global)));
        shapes_agree = false;
      }
      pieces.push_back(box_of(*ti));
    }
    if (!shapes_agree) continue;
    const Box whole{std::vector<int64_t>(global.size(), 0), global};
    const std::vector<Box> gaps = uncovered(whole, pieces);
    if (!gaps.empty()) {
      int64_t missing = 0;
      for (const Box& g : gaps) missing += g.numel();
      problems.push_back(str_cat(name, ": ", missing, " of its ", whole.numel(), " elements (global shape ",
                                 shape_str(global), ") are in no dataset, the first at ", box_str(gaps.front())));
      continue;
    }
    if (damaged.count(name)) continue;  // its checksum problem is reported above
    try {  // overlapping datasets must agree
      Tensor out = Tensor::empty(global, DType::f32);
      read_tensor(m, name, global, whole.offsets, out);
    } catch (const Error& e) {
      problems.push_back(str_cat(name, ": ", e.what()));
    }
  }
  return problems;
}

}  // namespace ternion::checkpoint
