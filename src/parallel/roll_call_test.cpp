// describe_timeout(): the message for every case a roll call can find, without MPI. The
// exchange itself runs in tests/e2e/comm_fault.sh (stall: a rank that answers but never
// arrives; stop: one that is SIGSTOPped and cannot answer).
#include <gtest/gtest.h>

#include "parallel/roll_call.h"

namespace ternion::parallel {
namespace {

using namespace std::chrono_literals;

// A timed-out all_reduce, call #3, on group rank `self` of a group of world ranks `w`;
// every peer was asked and answered that it is waiting in the same call, unless a test
// changes it.
TimeoutFacts waiting_all(std::vector<int> w, int self = 0, std::string group = "") {
  TimeoutFacts f;
  f.op = "all_reduce";
  f.group = group.empty() ? "group world (world ranks 0,1,2,3)" : group;
  f.timeout = 5s;
  f.answer_wait = 1s;
  f.call = 3;
  f.world_ranks = std::move(w);
  f.self = self;
  f.peers.resize(f.world_ranks.size());
  for (TimeoutFacts::Peer& p : f.peers) {
    p.asked = p.answered = true;
    p.reached = 3;
    p.call_name = "all_reduce";
  }
  return f;
}

TEST(roll_call, RankListsCompressRuns) {
  EXPECT_EQ(rank_list({}), "");
  EXPECT_EQ(rank_list({3}), "3");
  EXPECT_EQ(rank_list({1, 5}), "1,5");
  EXPECT_EQ(rank_list({0, 1}), "0,1");
  EXPECT_EQ(rank_list({0, 1, 2}), "0-2");
  EXPECT_EQ(rank_list({0, 1, 2, 3, 5, 7, 8, 9, 11, 12}), "0-3,5,7-9,11,12");
}

TEST(roll_call, AStoppedRankIsNamedAsNotArriving) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3});
  f.peers[1].answered = false;
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: world rank 1 did not "
            "arrive (no answer within 1 s: stalled or dead); this rank and world ranks 2,3 were waiting");
}

TEST(roll_call, ARankThatAnswersButIsBehindIsNamedAsAlive) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3}, 2);
  f.peers[1].reached = 2;
  f.peers[1].call_name = "";
  f.peers[3].reached = 1;
  f.peers[3].call_name = "";
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: world rank 3 did not "
            "arrive (it answers but has issued only 1 of this group's calls: computing, or waiting elsewhere: in a "
            "send or receive, or in another group); world rank 1 did not arrive (it answers but has issued only 2 "
            "of this group's calls: computing, or waiting elsewhere: in a send or receive, or in another group); "
            "this rank and world rank 0 were waiting");
}

TEST(roll_call, MembersAreNamedByWorldRank) {
  TimeoutFacts f = waiting_all({1, 3, 5, 7}, 0, "group dp (world ranks 1,3,5,7)");
  f.peers[2].answered = false;
  f.peers[3].answered = false;
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] timed out after 5 s in group dp (world ranks 1,3,5,7) at call #3: world ranks 5,7 did not "
            "arrive (no answer within 1 s: stalled or dead); this rank and world rank 3 were waiting");
}

TEST(roll_call, ADifferentCallAtTheSameNumberIsNamed) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3});
  f.peers[2].call_name = "broadcast";
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: world rank 2 issued "
            "broadcast as call #3, not all_reduce (the ranks issue this group's calls in different orders); this "
            "rank and world ranks 1,3 were waiting");
}

TEST(roll_call, EveryoneThereSaysSo) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3});
  f.peers[3].reached = 4;  // a broadcast's root may have gone on
  f.peers[3].call_name = "";
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: every member reached "
            "this call, yet it did not complete (a network fault, or sizes or roots that differ between the ranks); "
            "this rank and world ranks 1-3 were waiting");
}

TEST(roll_call, AnErrorElsewhereIsNotATimeout) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3});
  f.peers[1].answered = false;
  f.peers[1].ended = Ending::kError;
  f.peers[2].answered = false;  // silent too, but the error is the news
  const std::string m = describe_timeout(f);
  EXPECT_EQ(m,
            "[all_reduce] in group world (world ranks 0,1,2,3) at call #3: stopped waiting: world rank 1 failed "
            "with an error (see its message)");
  EXPECT_EQ(m.find("timed out"), std::string::npos);
}

TEST(roll_call, TheLateRankBlamesNoPeer) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3}, 1);
  for (int r : {0, 2, 3}) {
    f.peers[static_cast<size_t>(r)].answered = false;  // they have ended the job meanwhile
    f.peers[static_cast<size_t>(r)].gave_up_on_us = true;
  }
  f.stalled = 7240ms;
  const std::string m = describe_timeout(f);
  EXPECT_EQ(m,
            "[all_reduce] in group world (world ranks 0,1,2,3) at call #3: this rank arrived late: world ranks 0,2,3 "
            "had already timed out waiting for it (this process was not running for 7.2 s: stopped, by SIGSTOP or "
            "a debugger, or starved of CPU)");
  EXPECT_EQ(m.find("did not arrive"), std::string::npos);
  f.stalled = 0ms;  // late without a pause of its own: busy elsewhere
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] in group world (world ranks 0,1,2,3) at call #3: this rank arrived late: world ranks 0,2,3 "
            "had already timed out waiting for it");
}

TEST(roll_call, PeersThatEndedAfterTimingOutCountAsWaitingOrNot) {
  TimeoutFacts f = waiting_all({0, 1, 2, 3}, 3);
  f.peers[0].answered = false;
  f.peers[0].ended = Ending::kTimeout;  // it timed out in this call first and aborted
  f.peers[1].answered = false;
  f.peers[2].answered = false;
  f.peers[2].ended = Ending::kTimeout;
  f.peers[2].reached = 2;  // it timed out before issuing this call
  EXPECT_EQ(describe_timeout(f),
            "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: world rank 1 did not "
            "arrive (no answer within 1 s: stalled or dead); world rank 2 did not arrive (it ended the job, having "
            "timed out in a call before this one); this rank and world rank 0 were waiting");
}

TEST(roll_call, PointToPointNamesThePartsAndThePeers) {
  TimeoutFacts f;
  f.op = "recv";
  f.group = "group pp (world ranks 4,5)";
  f.timeout = 600s;
  f.answer_wait = 5s;
  f.world_ranks = {4, 5};
  f.self = 1;
  f.peers.resize(2);
  f.peers[0].asked = true;
  f.parts = {{0, true}};
  EXPECT_EQ(describe_timeout(f),
            "[recv] timed out after 600 s in group pp (world ranks 4,5): the receive from world rank 4 did not "
            "complete; world rank 4 did not answer within 5 s (stalled or dead)");

  TimeoutFacts x = waiting_all({0, 1, 2, 3});
  x.op = "exchange";
  x.call = 0;
  x.parts = {{1, false}, {1, true}, {2, true}};
  x.peers[2].answered = false;
  x.peers[1].reached = 7;
  EXPECT_EQ(describe_timeout(x),
            "[exchange] timed out after 5 s in group world (world ranks 0,1,2,3): the send to and receive from "
            "world rank 1 and the receive from world rank 2 did not complete; world rank 2 did not answer within "
            "1 s (stalled or dead); world rank 1 answers but has not posted the matching side (busy elsewhere, or "
            "sends and receives between the two in different orders or sizes)");
}

TEST(roll_call, LargeGroupsStayShort) {
  std::vector<int> w(1024);
  for (int i = 0; i < 1024; ++i) w[static_cast<size_t>(i)] = i;
  TimeoutFacts f = waiting_all(w, 0, "group dp (world ranks 0-1023)");
  for (int r = 1000; r < 1024; ++r) f.peers[static_cast<size_t>(r)].answered = false;
  const std::string m = describe_timeout(f);
  EXPECT_NE(m.find("world ranks 1000-1023 did not arrive (no answer"), std::string::npos) << m;
  EXPECT_NE(m.find("this rank and world ranks 1-999 were waiting"), std::string::npos) << m;
  EXPECT_LT(m.size(), 300u) << m;
}

}  // namespace
}  // namespace ternion::parallel
