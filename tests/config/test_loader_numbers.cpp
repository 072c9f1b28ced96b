// Integers, numbers and booleans: a value of the wrong TOML type, out of range or NaN is
// reported at its position, and the config is not loaded. The loader checks a node's type
// before reading it: toml++'s node::value<int64_t>() on a float such as 4e166 is a static_cast
// from double, undefined behaviour beyond the int64 range. That cast lives in the packaged
// libtomlplusplus.so (extern templates), so only the fuzz build, which compiles toml++
// header-only under UBSan, sees it: tests/fuzz/regressions/fuzz_config/float-*.
#include <catch2/catch.hpp>

#include <string>

#include "config/loader.hpp"

using namespace xs::config;

namespace {

// A complete file whose [proxy] holds `proxy_line`, whose listener holds `listener_line` and
// whose backend holds `backend_line` (lines 2, 6 and 10).
std::string file(const std::string& proxy_line, const std::string& listener_line = "",
                 const std::string& backend_line = "") {
    return "[proxy]\n" + proxy_line + "\n[[listener]]\nname = \"c2s\"\nbind = \"127.0.0.1:0\"\n" +
           listener_line + "\n[[backend]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\n" +
           backend_line + "\n[[route]]\ndomains = [\"*\"]\nbackends = [\"b\"]\n";
}

std::vector<std::string> errors_of(const std::string& text) {
    auto r = load_config_string(text, "t.toml");
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    if (!out.empty()) CHECK_FALSE(r.config);
    return out;
}

}  // namespace

TEST_CASE("the helper's file loads as it is", "[config][numbers]") {
    auto r = load_config_string(file("workers = 3", "per_ip_rate = 2", "drain = true"), "t.toml");
    REQUIRE(r.errors.empty());
    CHECK(r.config->proxy.workers == 3);
    CHECK(r.config->listeners[0].per_ip_rate == 2.0);  // an integer is a number too
    CHECK(r.config->backends[0].drain);
}

TEST_CASE("a float where an integer is expected is an error at FILE:LINE:COL",
          "[config][numbers]") {
    auto e = errors_of(file("workers = 4e166"));
    INFO(Catch::Detail::stringify(e));
    REQUIRE(e.size() == 1);
    CHECK(e[0] == "t.toml:2:11: 'workers' must be an integer from 0 to 256");

    for (const char* v : {"-4e166", "2.0", "nan", "inf", "true", "\"2\""}) {
        INFO(v);
        auto f = errors_of(file(std::string("workers = ") + v));
        REQUIRE(f.size() == 1);
        CHECK(f[0] == "t.toml:2:11: 'workers' must be an integer from 0 to 256");
    }
    auto m = errors_of(file("", "", "max_connecting = 4e166"));
    REQUIRE(m.size() == 1);
    CHECK(m[0] == "t.toml:10:18: 'max_connecting' must be an integer from 0 to 1000000");
}

TEST_CASE("a number outside its range, NaN or not a number is an error", "[config][numbers]") {
    for (const char* v : {"nan", "-nan", "inf", "1e300", "-0.5", "true", "\"1\""}) {
        INFO(v);
        auto e = errors_of(file("", std::string("per_ip_rate = ") + v));
        REQUIRE(e.size() == 1);
        CHECK(e[0] == "t.toml:6:15: 'per_ip_rate' must be a number from 0 to 1000000");
    }
}

TEST_CASE("a boolean must be a boolean", "[config][numbers]") {
    auto e = errors_of(file("", "", "drain = 1"));
    REQUIRE(e.size() == 1);
    CHECK(e[0] == "t.toml:10:9: 'drain' must be true or false");
}
