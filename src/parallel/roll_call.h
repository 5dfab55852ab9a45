// The message a rank prints when one of its calls times out, from what it learnt of the
// other members of the group (TimeoutFacts): who never reached the call, who is behind,
// who issued another call, who waited, and whether another rank's error or this rank's own
// lateness explains the wait instead. Gathering the facts is the RollCall's (next).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ternion::parallel {

// One send or receive of a point-to-point operation that did not complete.
struct P2PPart {
  int peer;  // group rank
  bool recv;
};

// What a peer announced: nothing, that it is ending the job for an error, or after a timeout.
enum class Ending : int64_t { kNo = 0, kError = 1, kTimeout = 2 };

// What one rank knows when its call times out (the input of describe_timeout()).
struct TimeoutFacts {
  struct Peer {
    bool asked = false;     // this rank asked it where it is
    bool answered = false;
    int64_t reached = 0;    // collective calls it had issued in the group (answer or notice)
    std::string call_name;  // what its call #call was ("" if it had not issued it)
    Ending ended = Ending::kNo;  // it announced that it is ending the job
    bool gave_up_on_us = false;  // it timed out waiting for this rank, which was behind or stopped
  };
  std::string op;                // "all_reduce", "recv", ...
  std::string group;             // "group dp (world ranks 0,2)"
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds answer_wait{0};
  int64_t call = 0;              // collective call number; 0 for point-to-point
  std::vector<int> world_ranks;  // member i's world rank
  int self = 0;                  // this rank's group rank
  std::vector<Peer> peers;       // by group rank (this rank's entry unused)
  std::vector<P2PPart> parts;    // point-to-point: the parts that did not complete
  std::chrono::milliseconds stalled{0};  // this process was not running for this long
};

// "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: world
// rank 1 did not arrive (no answer within 1 s: stalled or dead); this rank and world ranks
// 2,3 were waiting". Never says "timed out" when a peer ended the job with an error, nor
// blames peers when this rank was the late one. Pure: tested without MPI.
std::string describe_timeout(const TimeoutFacts& f);
// "0,2,3" or "0-5,7" (runs of three or more as ranges).
std::string rank_list(const std::vector<int>& ranks);

}  // namespace ternion::parallel
