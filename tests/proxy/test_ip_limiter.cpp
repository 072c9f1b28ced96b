// net::IpRateLimiter: one token bucket per source address (not port), IPv4 and IPv6 apart,
// idle addresses forgotten. Times are explicit ms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <string>

#include "net/ip_limiter.hpp"

using xs::net::IpRateLimiter;

namespace {

// An IPv4 or IPv6 socket address from text ("1.2.3.4" or "2001:db8::1").
struct Addr {
    sockaddr_storage ss{};
    Addr(const std::string& ip, uint16_t port = 40000) {
        if (ip.find(':') == std::string::npos) {
            auto* a = reinterpret_cast<sockaddr_in*>(&ss);
            a->sin_family = AF_INET;
            a->sin_port = htons(port);
            REQUIRE(inet_pton(AF_INET, ip.c_str(), &a->sin_addr) == 1);
        } else {
            auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
            a->sin6_family = AF_INET6;
            a->sin6_port = htons(port);
            REQUIRE(inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) == 1);
        }
    }
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

// How many connections from `a` are allowed at `now_ms`, trying up to `at_most`.
int allowed(IpRateLimiter& l, const Addr& a, uint64_t now_ms, int at_most = 1000) {
    int n = 0;
    while (n < at_most && l.allow(a.sa(), now_ms)) ++n;
    return n;
}

constexpr uint64_t T0 = 1'000'000;  // a loop clock well past start-up

}  // namespace

TEST_CASE("IpRateLimiter: an address gets its burst at once, then is refused", "[ip_limiter]") {
    IpRateLimiter l(1, 3);
    Addr a("192.0.2.1");
    CHECK(l.allow(a.sa(), T0));
    CHECK(l.allow(a.sa(), T0));
    CHECK(l.allow(a.sa(), T0));
    CHECK_FALSE(l.allow(a.sa(), T0));
    CHECK_FALSE(l.allow(a.sa(), T0));
}

TEST_CASE("IpRateLimiter: burst 0 means max(1, 2 * rate)", "[ip_limiter]") {
    SECTION("rate 5: burst 10") {
        IpRateLimiter l(5, 0);
        CHECK(allowed(l, Addr("192.0.2.1"), T0) == 10);
    }
    SECTION("rate 0.2: burst 1") {
        IpRateLimiter l(0.2, 0);
        CHECK(allowed(l, Addr("192.0.2.1"), T0) == 1);
    }
}

TEST_CASE("IpRateLimiter: tokens come back at the rate, fractions kept, up to the burst", "[ip_limiter]") {
    IpRateLimiter l(4, 2);  // one token per 250 ms
    Addr a("2001:db8::7");
    CHECK(allowed(l, a, T0) == 2);
    CHECK(allowed(l, a, T0 + 125) == 0);  // half a token, kept
    CHECK(allowed(l, a, T0 + 250) == 1);
    CHECK(allowed(l, a, T0 + 1'000) == 2);  // 3 tokens' worth, capped at the burst of 2
    // A steady 4 per second gets through indefinitely; a fifth does not.
    int total = 0;
    for (uint64_t t = T0 + 1'250; t <= T0 + 11'000; t += 250) total += allowed(l, a, t, 2);
    CHECK(total == 40);
}

TEST_CASE("IpRateLimiter: the bucket is per address, whatever the source port", "[ip_limiter]") {
    IpRateLimiter l(1, 2);
    CHECK(allowed(l, Addr("192.0.2.1", 1000), T0) == 2);
    CHECK(allowed(l, Addr("192.0.2.1", 2000), T0) == 0);  // same address, other port
    CHECK(allowed(l, Addr("192.0.2.2", 1000), T0) == 2);  // another address
    CHECK(allowed(l, Addr("2001:db8::1", 1000), T0) == 2);
    CHECK(allowed(l, Addr("2001:db8::1", 3000), T0) == 0);
    CHECK(allowed(l, Addr("2001:db8::2", 1000), T0) == 2);
    CHECK(l.tracked() == 4);
}

TEST_CASE("IpRateLimiter: IPv4 and IPv6 addresses with the same trailing bytes are kept apart",
          "[ip_limiter]") {
    IpRateLimiter l(1, 2);
    CHECK(allowed(l, Addr("10.0.0.1"), T0) == 2);
    CHECK(allowed(l, Addr("::a00:1"), T0) == 2);           // IPv4-compatible form of 10.0.0.1
    CHECK(allowed(l, Addr("2001:db8::a00:1"), T0) == 2);   // same last 4 bytes
    CHECK(l.tracked() == 3);
}

TEST_CASE("IpRateLimiter: IPv4-mapped IPv6 addresses (a dual-stack listener) are limited per address",
          "[ip_limiter]") {
    // No mapping to plain IPv4 is done (a listener sees only one of the two forms); the mapped
    // form is limited like any address, one bucket per embedded IPv4 address.
    IpRateLimiter l(1, 2);
    CHECK(allowed(l, Addr("::ffff:198.51.100.1", 1000), T0) == 2);
    CHECK(allowed(l, Addr("::ffff:198.51.100.1", 2000), T0) == 0);
    CHECK(allowed(l, Addr("::ffff:198.51.100.2"), T0) == 2);
}

TEST_CASE("IpRateLimiter: other address families are not limited or tracked", "[ip_limiter]") {
    IpRateLimiter l(1, 1);
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    for (int i = 0; i < 10; ++i) CHECK(l.allow(reinterpret_cast<const sockaddr*>(&u), T0));
    CHECK(l.tracked() == 0);
}

TEST_CASE("IpRateLimiter: idle addresses whose bucket has refilled are forgotten", "[ip_limiter]") {
    // rate 1, burst 20: a bucket refills in 20 s, and that is also the pruning period.
    IpRateLimiter l(1, 20);
    Addr a("192.0.2.1"), b("192.0.2.2"), c("2001:db8::3");
    CHECK(allowed(l, a, T0) == 20);
    CHECK(allowed(l, b, T0 + 10'000) == 20);
    CHECK(l.tracked() == 2);
    // 20.002 s after a's last use: a is forgotten, b (10 s idle, half refilled) is kept.
    CHECK(allowed(l, c, T0 + 20'002) == 20);
    CHECK(l.tracked() == 2);
    CHECK(allowed(l, b, T0 + 20'002) == 10);  // b's state survived the prune
    CHECK(allowed(l, a, T0 + 20'002) == 20);  // a starts again from a full bucket
    CHECK(l.tracked() == 3);
}

TEST_CASE("IpRateLimiter: pruning waits at least 10 s between passes", "[ip_limiter]") {
    IpRateLimiter l(10, 1);  // refills in 100 ms, but prunes at most every 10 s
    for (int i = 1; i <= 50; ++i) CHECK(l.allow(Addr("10.1.0." + std::to_string(i)).sa(), T0));
    CHECK(l.tracked() == 50);
    l.allow(Addr("10.2.0.1").sa(), T0 + 5'000);
    CHECK(l.tracked() == 51);  // all idle and refilled, but not yet forgotten
    l.allow(Addr("10.2.0.2").sa(), T0 + 10'001);
    CHECK(l.tracked() == 1);   // only the new one
}

TEST_CASE("IpRateLimiter: a clock slightly behind the last one (another worker's loop) refills nothing",
          "[ip_limiter]") {
    // One limiter per listener is shared by every worker, each passing its own loop's uv_now(),
    // so times are not monotonic here: an older loop time must neither refill the bucket nor
    // make the address look idle enough to forget.
    IpRateLimiter l(1, 2);
    Addr a("192.0.2.9");
    CHECK(allowed(l, a, T0) == 2);
    CHECK(allowed(l, a, T0 - 1) == 0);
    CHECK(allowed(l, a, T0 - 3) == 0);
    CHECK(l.tracked() == 1);
    CHECK(allowed(l, a, T0 + 500) == 0);
    CHECK(allowed(l, a, T0 + 1'000) == 1);  // the refill counts from the latest time seen
}
