// Argument checks shared by every Communicator backend, so that misuse reads the same
// whichever backend a tensor lands on. Each throws ternion::Error("[op] ...") naming the
// group and the offending shapes; none communicates.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "parallel/communicator.h"

namespace ternion::parallel {

void check_tensor(const Communicator& c, const char* op, const Tensor& t);
// in.numel() == size() * out.numel(), same dtype and device.
void check_reduce_scatter(const Communicator& c, const Tensor& in, const Tensor& out);
// out.numel() == size() * in.numel(), same dtype and device.
void check_all_gather(const Communicator& c, const Tensor& in, const Tensor& out);
// counts.size() == size(), counts >= 0, in.numel() == counts[rank()], out.numel() == sum.
void check_all_gather_v(const Communicator& c, const Tensor& in, const Tensor& out,
                        const std::vector<int64_t>& counts);
// 0 <= r < size() (a root or a peer); a peer must not be this rank.
void check_group_rank(const Communicator& c, const char* op, int r, bool is_peer);
// Each op: a defined contiguous tensor, a peer other than this rank, 0 <= tag <= kMaxTag.
void check_p2p(const Communicator& c, const std::vector<P2POp>& ops);
// "send" or "recv" for a single op, else "exchange" (names in errors and timeouts).
const char* p2p_name(const std::vector<P2POp>& ops);

}  // namespace ternion::parallel
