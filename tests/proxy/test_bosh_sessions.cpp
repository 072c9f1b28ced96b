// The BOSH sid table shared by the workers: learned, refreshed by each hit, expired, bounded.
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "upstream/bosh_sessions.hpp"

using xs::upstream::BoshSessions;
using namespace std::chrono_literals;

TEST_CASE("bosh sessions: a learned sid names its backend until ttl after its last request", "[bosh]") {
    BoshSessions t(100, 10s);
    auto t0 = BoshSessions::Clock::now();
    t.learned("abc", "shard-1", t0);
    CHECK(t.owner("abc", t0 + 5s) == std::optional<std::string>("shard-1"));
    CHECK(t.owner("abc", t0 + 14s) == std::optional<std::string>("shard-1"));  // refreshed at 5 s
    CHECK(t.owner("ABC", t0 + 14s) == std::nullopt);  // sids are compared exactly
    CHECK(t.owner("abc", t0 + 25s) == std::nullopt);  // 11 s after the last hit
    CHECK(t.size() == 0);
    t.learned("abc", "shard-2", t0);
    t.learned("abc", "shard-3", t0);  // a new creation with the same sid: the latest wins
    CHECK(t.owner("abc", t0) == std::optional<std::string>("shard-3"));
    t.learned("", "shard-1", t0);
    CHECK(t.size() == 1);
}

TEST_CASE("bosh sessions: counts by backend skip expired entries", "[bosh]") {
    BoshSessions t(100, 10s);
    auto t0 = BoshSessions::Clock::now();
    t.learned("a", "shard-1", t0);
    t.learned("b", "shard-1", t0 + 5s);
    t.learned("c", "shard-2", t0);
    auto n = t.per_backend(t0 + 7s);
    CHECK(n["shard-1"] == 2);
    CHECK(n["shard-2"] == 1);
    n = t.per_backend(t0 + 12s);
    CHECK(n["shard-1"] == 1);
    CHECK(n.count("shard-2") == 0);
}

TEST_CASE("bosh sessions: the table is bounded; expired entries go first", "[bosh]") {
    BoshSessions t(50, 10s);
    auto t0 = BoshSessions::Clock::now();
    for (int i = 0; i < 50; ++i) t.learned("old" + std::to_string(i), "shard-1", t0);
    for (int i = 0; i < 10; ++i) t.learned("new" + std::to_string(i), "shard-2", t0 + 11s);
    CHECK(t.size() == 10);  // the 50 expired ones were dropped to make room
    for (int i = 0; i < 200; ++i) t.learned("live" + std::to_string(i), "shard-2", t0 + 12s);
    CHECK(t.size() <= 50);
    CHECK(t.owner("live199", t0 + 12s) == std::optional<std::string>("shard-2"));
}

TEST_CASE("bosh sessions: workers learn and look up concurrently", "[bosh]") {
    BoshSessions t(100000, 60s);
    std::atomic<int> wrong{0};  // Catch's assertions are not thread-safe: count, check after
    std::vector<std::thread> ths;
    for (int w = 0; w < 4; ++w)
        ths.emplace_back([&t, &wrong, w] {
            for (int i = 0; i < 2000; ++i) {
                std::string sid = std::to_string(w) + "-" + std::to_string(i);
                t.learned(sid, "shard-" + std::to_string(w));
                if (t.owner(sid) != std::optional<std::string>("shard-" + std::to_string(w))) ++wrong;
            }
        });
    for (auto& th : ths) th.join();
    CHECK(wrong == 0);
    CHECK(t.size() == 8000);
}
