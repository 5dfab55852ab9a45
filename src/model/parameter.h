// A model parameter as one rank holds it: which part of the global tensor is here, and how
// that part is held across the parallel groups. Initialisation, init_from, checkpoint
// staging and loading, weight export and the gradient norm all go through this one
// description, so none of them assumes a whole replica per rank.
//
// The part is a list of boxes of the global tensor. `tensor` holds the boxes stacked along
// dim 0 in list order: box k is rows [row_begin(k), row_begin(k) + boxes[k].shape[0]) of
// `tensor`. Every box has the tensor's trailing dims. Examples, global c_attn.weight
// [3C, C] over tp ranks r of t:
//   whole:             one box {offsets (0, 0), shape (3C, C)}
//   column-parallel:   three boxes {(j·C + r·C/t, 0), (C/t, C)} for j = q, k, v
//   row-parallel c_proj.weight [C, C]: one box {(0, r·C/t), (C, C/t)}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ternion::model {

struct Box {
  Shape offsets;  // of the box's first element in the global tensor
  Shape shape;
  int64_t numel() const { return shape_numel(shape); }
  bool operator==(const Box&) const = default;
};

// "[0:4, 8:16]": the box as index ranges, for messages and `checkpoint inspect`.
std::string box_str(const Box& b);
// The box of `t` (a tensor of the global shape) as a strided view.
Tensor box_view(const Tensor& t, const Box& b);

struct Parameter {
  std::string name;     // nanoGPT state_dict name, e.g. "transformer.h.5.attn.c_attn.weight"
  Tensor tensor;        // this rank's part: the boxes stacked along dim 0 (undefined when only described)
  Shape local_shape;    // tensor's shape: the boxes stacked along dim 0, then the padding rows
  Shape global_shape;   // shape of the whole parameter
  std::vector<Box> boxes;
  // Every tp rank holds the same values (LayerNorm parameters, row-parallel biases); the
  // gradient norm and checkpoints count tp rank 0's copy only.
  bool tp_replicated = false;
  // A copy of a parameter another part of the model owns under the same name (the head's
  // wte on the last pipeline stage). Initialised identically; its gradient is summed into
  // the owner's over the embedding group; never counted or written on its own.
  bool tied_copy = false;
  // Whether this rank's copy is the one counted: not a tied copy, and tp rank 0 when
  // tp-replicated. Set by the model that builds the parameter.
  bool primary = true;
  double init_std = 0;    // N(0, init_std) for weights; 0 with init_value for LN/bias
  double init_value = 0;
  bool weight_decay = false;  // AdamW decays parameters with two or more dims
  // Each tp rank computes only a part of this tp-replicated parameter's gradient (with
  // sequence parallelism it saw only its own tokens): the step sums the gradient over tp
  // before anything reads it.
  bool grad_summed_over_tp = false;
  // Rows of `tensor` after the boxes that belong to no box (the vocabulary padding of a
  // tensor-parallel wte): zero, never read by the model, stored or exported.
  int64_t padding_rows = 0;

  // Box k's rows of `tensor` (a view).
  Tensor part(size_t k) const;
  int64_t row_begin(size_t k) const;
  // One box covering the whole global tensor.
  bool is_whole() const;
};

// Validates the boxes against the global shape (inside it, the trailing dims of every box
// equal, no two boxes overlapping) and allocates the stacked tensor (f32, uninitialised)
// on `device`, with `padding_rows` more rows after the boxes (zero). Throws naming the parameter
// and the box.
// allocate = false: the parameter is only described (local_shape; no tensor), as a planner
// needs for models that fit no machine.
Parameter make_parameter(std::string name, Shape global_shape, std::vector<Box> boxes, Device device,
                         int64_t padding_rows = 0, bool allocate = true);
// The whole tensor as one box.
std::vector<Box> whole_box(const Shape& global_shape);
// Rows [begin, end) of dim `dim` of the global shape (the other dims whole).
Box range_box(const Shape& global_shape, int dim, int64_t begin, int64_t end);

// A contiguous range [begin, end) of `tensor`'s elements (row-major, the boxes stacked,
// padding rows after them) as pieces that are each a box of the global tensor and contiguous
// in `tensor`: per box it crosses, a partial first row, a block of whole rows, a partial
// last row (recursively for more dims). Padding elements are in no piece. How a ZeRO shard,
// a flat range of a flat buffer, is written as checkpoint datasets (FORMAT.md).
struct FlatPiece {
  Box box;                 // in the global tensor
  int64_t local_begin = 0;  // flat index in `tensor` of the piece's first element
  bool operator==(const FlatPiece&) const = default;
};
std::vector<FlatPiece> flat_range_pieces(const Parameter& p, int64_t begin, int64_t end);

// Initial values as a pure function of (seed, name, global index): N(0, init_std) box by
// box at its global offsets, or init_value; padding rows 0. Drawn on the host, copied to
// the device.
void init_parameter(Parameter& p, uint64_t seed);

// Copies this rank's boxes out of `full` (the whole global tensor, any host float dtype).
void load_from_full(Parameter& p, const Tensor& full);
// Writes this rank's boxes into `full` (the whole global tensor, host f32), leaving the
// rest untouched.
void store_into_full(const Parameter& p, Tensor& full);

}  // namespace ternion::model
