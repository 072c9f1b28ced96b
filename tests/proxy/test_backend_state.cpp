// upstream::BackendState: health (rise/fall, passive mark-down), live session count, and
// admission (max_connecting slots, the max_new_per_second token bucket). Times are explicit ms.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "upstream/backend_state.hpp"

using xs::config::BackendConfig;
using xs::upstream::BackendRegistry;
using xs::upstream::BackendState;

namespace {

BackendConfig admission(unsigned max_connecting, double max_new_per_second) {
    BackendConfig c;
    c.max_connecting = max_connecting;
    c.max_new_per_second = max_new_per_second;
    return c;
}

// Takes slots (releasing each at once, so only the rate limits) until one is refused.
int admitted_at(BackendState& s, const BackendConfig& c, uint64_t now_ms, int at_most = 100000) {
    int n = 0;
    while (n < at_most && s.try_acquire(c, now_ms)) {
        s.release();
        ++n;
    }
    return n;
}

void take_down(BackendState& s) {
    s.check_failed(1);
    REQUIRE_FALSE(s.up());
}

}  // namespace

TEST_CASE("BackendState: a new backend is up, with no failures, sessions or attempts", "[backend_state]") {
    BackendState s("alpha");
    CHECK(s.name() == "alpha");
    CHECK(s.up());
    CHECK(s.consecutive_failures() == 0);
    CHECK(s.sessions() == 0);
    CHECK(s.connecting() == 0);
}

TEST_CASE("BackendState: goes down at the fall-th consecutive failure and reports the change once",
          "[backend_state]") {
    BackendState s("b");
    CHECK_FALSE(s.check_failed(3));
    CHECK_FALSE(s.check_failed(3));
    CHECK(s.up());
    CHECK(s.consecutive_failures() == 2);
    CHECK(s.check_failed(3));  // the change
    CHECK_FALSE(s.up());
    CHECK_FALSE(s.check_failed(3));  // already down: no change
    CHECK_FALSE(s.up());
    CHECK(s.consecutive_failures() == 4);
}

TEST_CASE("BackendState: a pass resets the failure count", "[backend_state]") {
    BackendState s("b");
    s.check_failed(3);
    s.check_failed(3);
    CHECK_FALSE(s.check_passed(2));  // up already: no change
    CHECK(s.consecutive_failures() == 0);
    CHECK_FALSE(s.check_failed(3));
    CHECK_FALSE(s.check_failed(3));
    CHECK(s.up());  // two failures since the pass, not four
    CHECK(s.check_failed(3));
    CHECK_FALSE(s.up());
}

TEST_CASE("BackendState: comes back up at the rise-th consecutive pass", "[backend_state]") {
    BackendState s("b");
    take_down(s);
    CHECK_FALSE(s.check_passed(3));
    CHECK_FALSE(s.check_passed(3));
    CHECK_FALSE(s.up());
    CHECK(s.consecutive_failures() == 0);  // a pass resets failures even while down
    CHECK(s.check_passed(3));
    CHECK(s.up());
    CHECK_FALSE(s.check_passed(3));  // already up: no change
    CHECK(s.up());
}

TEST_CASE("BackendState: a failure while down restarts the count of passes", "[backend_state]") {
    BackendState s("b");
    take_down(s);
    s.check_passed(3);
    s.check_passed(3);
    CHECK_FALSE(s.check_failed(3));  // down already: no change
    CHECK_FALSE(s.check_passed(3));
    CHECK_FALSE(s.check_passed(3));
    CHECK_FALSE(s.up());  // two passes since the failure, not four
    CHECK(s.check_passed(3));
    CHECK(s.up());
}

TEST_CASE("BackendState: passes counted while up do not shorten a later recovery", "[backend_state]") {
    BackendState s("b");
    for (int i = 0; i < 5; ++i) s.check_passed(3);
    SECTION("after active checks took it down") {
        CHECK(s.check_failed(1));
    }
    SECTION("after a passive mark-down") {
        CHECK(s.mark_down_now());
    }
    CHECK_FALSE(s.check_passed(3));
    CHECK_FALSE(s.check_passed(3));
    CHECK_FALSE(s.up());
    CHECK(s.check_passed(3));
    CHECK(s.up());
}

TEST_CASE("BackendState: rise 0 (unchecked backends) and rise 1 bring it up on the first pass",
          "[backend_state]") {
    unsigned rise = GENERATE(0u, 1u);
    BackendState s("b");
    take_down(s);
    CHECK(s.check_passed(rise));
    CHECK(s.up());
}

TEST_CASE("BackendState: mark_down_now takes an up backend down at once, reporting the change once",
          "[backend_state]") {
    BackendState s("b");
    CHECK(s.mark_down_now());
    CHECK_FALSE(s.up());
    CHECK(s.consecutive_failures() == 1);
    CHECK_FALSE(s.mark_down_now());  // already down
    CHECK_FALSE(s.up());
    CHECK(s.consecutive_failures() == 2);
    // Passes before another refusal do not count: the recovery starts over.
    s.check_passed(2);
    CHECK_FALSE(s.mark_down_now());
    CHECK_FALSE(s.check_passed(2));
    CHECK_FALSE(s.up());
    CHECK(s.check_passed(2));
    CHECK(s.up());
}

TEST_CASE("BackendState: sessions() counts started minus ended sessions", "[backend_state]") {
    BackendState s("b");
    for (int i = 0; i < 5; ++i) s.session_started();
    CHECK(s.sessions() == 5);
    s.session_ended();
    s.session_ended();
    CHECK(s.sessions() == 3);
    // Independent of health and of admission slots.
    s.mark_down_now();
    CHECK(s.try_acquire(admission(0, 0), 0));
    CHECK(s.sessions() == 3);
}

TEST_CASE("BackendState: max_connecting bounds the attempts in flight, and release frees a slot",
          "[backend_state]") {
    BackendState s("b");
    const auto c = admission(2, 0);
    CHECK(s.try_acquire(c, 0));
    CHECK(s.try_acquire(c, 0));
    CHECK(s.connecting() == 2);
    CHECK_FALSE(s.try_acquire(c, 0));
    CHECK_FALSE(s.try_acquire(c, 5000));  // time does not free slots
    CHECK(s.connecting() == 2);
    s.release();
    CHECK(s.connecting() == 1);
    CHECK(s.try_acquire(c, 0));
    CHECK_FALSE(s.try_acquire(c, 0));
}

TEST_CASE("BackendState: a surplus release does not make the slot count negative", "[backend_state]") {
    BackendState s("b");
    const auto c = admission(2, 0);
    s.release();
    s.release();
    CHECK(s.connecting() == 0);
    CHECK(s.try_acquire(c, 0));
    CHECK(s.try_acquire(c, 0));
    CHECK_FALSE(s.try_acquire(c, 0));
}

TEST_CASE("BackendState: max_connecting 0 means no limit on attempts", "[backend_state]") {
    BackendState s("b");
    const auto c = admission(0, 0);
    for (int i = 0; i < 10000; ++i) REQUIRE(s.try_acquire(c, 0));
    CHECK(s.connecting() == 10000);
}

TEST_CASE("BackendState: max_new_per_second 0 means no rate limit", "[backend_state]") {
    BackendState s("b");
    CHECK(admitted_at(s, admission(0, 0), 1000, 10000) == 10000);
}

TEST_CASE("BackendState: the new-session bucket holds a tenth of a second's worth and refills at the rate",
          "[backend_state]") {
    BackendState s("b");
    const auto c = admission(0, 100);  // burst 10
    CHECK(admitted_at(s, c, 1'000) == 10);
    CHECK(admitted_at(s, c, 1'000) == 0);
    CHECK(admitted_at(s, c, 1'030) == 3);   // 30 ms at 100/s
    CHECK(admitted_at(s, c, 1'040) == 1);
    CHECK(admitted_at(s, c, 1'040) == 0);
    CHECK(admitted_at(s, c, 61'040) == 10);  // a long idle refills to the burst, no more
    // Over one second of steady arrivals, about the rate gets through.
    int total = 0;
    for (uint64_t t = 61'050; t <= 62'040; t += 10) total += admitted_at(s, c, t);
    CHECK(total == 100);
}

TEST_CASE("BackendState: below 10 per second the burst is one session", "[backend_state]") {
    BackendState s("b");
    const auto c = admission(0, 4);  // one token per 250 ms, burst max(1, 0.4) = 1
    CHECK(admitted_at(s, c, 10'000) == 1);
    CHECK(admitted_at(s, c, 10'125) == 0);  // half a token (kept)
    CHECK(admitted_at(s, c, 10'250) == 1);
    CHECK(admitted_at(s, c, 20'000) == 1);  // capped at 1
}

TEST_CASE("BackendState: the first attempt finds a full bucket whatever the clock reads", "[backend_state]") {
    uint64_t start = GENERATE(uint64_t{0}, uint64_t{123'456'789});
    BackendState s("b");
    CHECK(admitted_at(s, admission(0, 50), start) == 5);
}

TEST_CASE("BackendState: an attempt refused for want of a slot takes no token", "[backend_state]") {
    BackendState s("b");
    const auto c = admission(1, 100);  // burst 10
    REQUIRE(s.try_acquire(c, 0));      // 9 tokens left, the only slot taken
    for (int i = 0; i < 20; ++i) CHECK_FALSE(s.try_acquire(c, 0));
    s.release();
    CHECK(admitted_at(s, c, 0) == 9);
}

TEST_CASE("BackendState: a clock slightly behind the last one (another worker's loop) refills nothing",
          "[backend_state]") {
    // One BackendState is shared by every worker and each passes its own loop's uv_now(), so the
    // times seen here are not monotonic: a worker whose loop time is a little older must not
    // find a refilled bucket.
    BackendState s("b");
    const auto c = admission(0, 100);  // burst 10, one token per 10 ms
    CHECK(admitted_at(s, c, 5'000) == 10);
    CHECK(admitted_at(s, c, 4'999) == 0);
    CHECK(admitted_at(s, c, 4'990) == 0);
    CHECK(admitted_at(s, c, 5'000) == 0);
    CHECK(admitted_at(s, c, 5'010) == 1);  // the refill counts from the latest time seen
}

TEST_CASE("BackendRegistry: one state per name, kept for the life of the registry", "[backend_state]") {
    BackendRegistry r;
    auto a = r.get("a");
    REQUIRE(a);
    CHECK(a->name() == "a");
    a->mark_down_now();
    a->session_started();
    auto again = r.get("a");
    CHECK(again == a);
    CHECK_FALSE(again->up());
    CHECK(again->sessions() == 1);
    auto b = r.get("b");
    CHECK(b != a);
    CHECK(b->up());
}
