#include "train/gather.h"

#include <map>
#include <sstream>

namespace ternion::train {

namespace {

// One piece: "name global_shape... | offsets... | shape..." (names hold no spaces).
std::string describe(const model::Parameter& p, const model::Box& b) {
  std::ostringstream o;
  const auto list = [&](const Shape& s) {
    o << s.size();
    for (int64_t v : s) o << ' ' << v;
  };
  o << p.name << ' ';
  list(p.global_shape);
  o << ' ';
  list(b.offsets);
  o << ' ';
  list(b.shape);
  o << '\n';
  return o.str();
}

struct Piece {
  std::string name;
  Shape global_shape;
  model::Box box;
};

std::vector<Piece> parse(const std::string& text) {
  std::vector<Piece> out;
  std::istringstream in(text);
  std::string name;
  const auto list = [&](Shape& s) {
    size_t n = 0;
    in >> n;
    s.resize(n);
    for (auto& v : s) in >> v;
  };
  while (in >> name) {
    Piece p;
    p.name = name;
    list(p.global_shape);
    list(p.box.offsets);
    list(p.box.shape);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::vector<checkpoint::NamedTensor> gather_whole_weights(const model::Gpt& gpt, parallel::ParallelContext& ctx) {
  // This rank's pieces: its primary boxes, from dp rank 0's replica only.
  std::string mine;
  std::vector<Tensor> data;
  int64_t count = 0;
  if (ctx.coord.dp == 0) {
    for (const model::Parameter& p : gpt.parameters()) {
      if (!p.primary) continue;
      for (size_t k = 0; k < p.boxes.size(); ++k) {
        mine += describe(p, p.boxes[k]);
        data.push_back(p.part(k).to(Device::cpu()).to(DType::f32).contiguous());
        count += data.back().numel();
      }
    }
  }
  parallel::Communicator& world = *ctx.world;
  const std::vector<std::string> all = world.all_gather_strings(mine);
  if (world.rank() != 0) {
    if (count > 0) {
      Tensor flat = Tensor::empty({count});
      int64_t at = 0;
      for (const Tensor& t : data) {
        flat.slice(0, at, at + t.numel()).copy_(t.view({t.numel()}));
        at += t.numel();
      }
      world.send(flat, 0);
    }
    return {};
  }
  // Rank 0: stages in pipeline order, each rank's pieces in its parameter order.
  std::vector<int> ranks(all.size());
  for (size_t r = 0; r < ranks.size(); ++r) ranks[r] = static_cast<int>(r);
  std::stable_sort(ranks.begin(), ranks.end(), [&](int a, int b) {
    return parallel::coord_of(ctx.layout, a).pp < parallel::coord_of(ctx.layout, b).pp;
  });
  std::vector<checkpoint::NamedTensor> out;
  std::map<std::string, size_t> index;
  std::map<std::string, int64_t> covered;
  for (int r : ranks) {
    const std::vector<Piece> pieces = parse(all[r]);
    int64_t n = 0;
    for (const Piece& p : pieces) n += p.box.numel();
    Tensor flat;
    if (r == 0) {
      flat = Tensor::empty({n});
      int64_t at = 0;
      for (const Tensor& t : data) {
        flat.slice(0, at, at + t.numel()).copy_(t.view({t.numel()}));
        at += t.numel();
      }
    } else if (n > 0) {
      flat = Tensor::empty({n});
      world.recv(flat, r);
    }
    int64_t at = 0;
    for (const Piece& p : pieces) {
      auto [it, fresh] = index.try_emplace(p.name, out.size());
      if (fresh) out.push_back({p.name, Tensor::zeros(p.global_shape)});
      Tensor& full = out[it->second].tensor;
      TN_CHECK(full.shape() == p.global_shape, "export", "ranks disagree on the shape of ", p.name, ": ",
               shape_str(full.shape()), " and ", shape_str(p.global_shape));
      Tensor dst = model::box_view(full, p.box);
      dst.copy_(flat.slice(0, at, at + p.box.numel()).view(p.box.shape));
      at += p.box.numel();
      covered[p.name] += p.box.numel();
    }
  }
  // Primary boxes partition each tensor (model::Parameter): a shortfall is a hole.
  for (const auto& nt : out)
    TN_CHECK(covered[nt.name] == nt.tensor.numel(), "export", "the ranks hold ", covered[nt.name], " of the ",
             nt.tensor.numel(), " elements of ", nt.name);
  return out;
}

}  // namespace ternion::train
