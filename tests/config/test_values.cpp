#include <catch2/catch.hpp>

#include "config/values.hpp"

using namespace xs::config;
using std::chrono::milliseconds;

TEST_CASE("durations take a unit", "[config][duration]") {
    std::string why;
    CHECK(parse_duration("10s", &why) == milliseconds(10'000));
    CHECK(parse_duration("500ms", &why) == milliseconds(500));
    CHECK(parse_duration("2m", &why) == milliseconds(120'000));
    CHECK(parse_duration("1h", &why) == milliseconds(3'600'000));
    CHECK(parse_duration("1.5s", &why) == milliseconds(1'500));
    CHECK(parse_duration("0s", &why) == milliseconds(0));
    for (const char* bad : {"", "10", "s", "10 s", "-1s", "10x", "1.2.3s", "9999999h"}) {
        INFO(bad);
        why.clear();
        CHECK_FALSE(parse_duration(bad, &why));
        CHECK_FALSE(why.empty());
    }
}

TEST_CASE("host:port, with brackets for IPv6", "[config][address]") {
    std::string why;
    auto a = parse_host_port("127.0.0.1:5222", false, &why);
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 5222);
    auto b = parse_host_port("[::1]:15222", false, &why);
    REQUIRE(b);
    CHECK(b->host == "::1");
    CHECK(b->port == 15222);
    auto c = parse_host_port("prosody.internal:5222", false, &why);
    REQUIRE(c);
    CHECK(c->host == "prosody.internal");
    CHECK(parse_host_port("0.0.0.0:0", true, &why));
    for (const char* bad : {"127.0.0.1", ":5222", "::1:5222", "[::1]5222", "[::1", "h:65536", "h:0",
                            "h:x", "h:"}) {
        INFO(bad);
        why.clear();
        CHECK_FALSE(parse_host_port(bad, false, &why));
        CHECK_FALSE(why.empty());
    }
}
