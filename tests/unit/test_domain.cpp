#include <catch2/catch.hpp>

#include "routing/domain.hpp"

using namespace xs::routing;

TEST_CASE("normalize_domain lower-cases and strips one trailing dot", "[domain]") {
    CHECK(normalize_domain("example.com") == "example.com");
    CHECK(normalize_domain("Meet.EXAMPLE.com") == "meet.example.com");
    CHECK(normalize_domain("example.com.") == "example.com");
    CHECK(normalize_domain("localhost") == "localhost");
    CHECK(normalize_domain("a_b.example-1.com") == "a_b.example-1.com");
    CHECK(normalize_domain("127.0.0.1") == "127.0.0.1");
    CHECK(normalize_domain("B\xC3\x9C" "CHER.example") == "b\xC3\x9C" "cher.example");  // ASCII only
    CHECK(normalize_domain("\xF0\x9F\x98\x80.example") == "\xF0\x9F\x98\x80.example");
    CHECK(normalize_domain("xn--bcher-kva.example") == "xn--bcher-kva.example");
}

TEST_CASE("normalize_domain enforces lengths", "[domain]") {
    std::string label63(63, 'a');
    CHECK(normalize_domain(label63 + ".com") == label63 + ".com");
    CHECK_FALSE(normalize_domain(label63 + "a.com"));
    // 253 bytes: 3 labels of 63 and one of 61, with 3 dots.
    std::string d253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    REQUIRE(d253.size() == 253);
    CHECK(normalize_domain(d253) == d253);
    CHECK(normalize_domain(d253 + ".") == d253);
    CHECK_FALSE(normalize_domain(d253 + "b"));
    CHECK(normalize_domain("a") == "a");
}

TEST_CASE("normalize_domain refuses malformed names with a reason", "[domain]") {
    for (const char* bad : {"", ".", "..", "example.com..", ".example.com", "a..b", "-a.com",
                            "a-.com", "a.-b", "exa mple.com", "a/b", "user@example.com",
                            "example.com:5222", "*.example.com", "[::1]", "a\tb",
                            "\xC3(.com", "\xC0\xAF.com", "\xED\xA0\x80.com", "\x80"}) {
        std::string why;
        INFO("'" << bad << "'");
        CHECK_FALSE(normalize_domain(bad, &why));
        CHECK_FALSE(why.empty());
    }
    CHECK_FALSE(normalize_domain(std::string("a\0b", 3)));
}

TEST_CASE("parse_pattern: exact, wildcard, any", "[domain]") {
    auto any = parse_pattern("*");
    REQUIRE(any);
    CHECK(any->kind == PatternKind::Any);
    CHECK(any->text.empty());

    auto wild = parse_pattern("*.Example.COM.");
    REQUIRE(wild);
    CHECK(wild->kind == PatternKind::Wildcard);
    CHECK(wild->text == "example.com");

    auto exact = parse_pattern("Meet.Example.com");
    REQUIRE(exact);
    CHECK(exact->kind == PatternKind::Exact);
    CHECK(exact->text == "meet.example.com");

    for (const char* bad : {"", "**", "*.", "*.*", "a.*.com", "*a.com", "a*.com", "*.a*.com",
                            "example.*", "*example.com", "*..com", "*.-x.com"}) {
        std::string why;
        INFO("'" << bad << "'");
        CHECK_FALSE(parse_pattern(bad, &why));
        CHECK_FALSE(why.empty());
    }
}

TEST_CASE("matches: wildcards need at least one more label", "[domain]") {
    auto wild = *parse_pattern("*.example.com");
    CHECK(matches(wild, "a.example.com"));
    CHECK(matches(wild, "a.b.example.com"));
    CHECK_FALSE(matches(wild, "example.com"));
    CHECK_FALSE(matches(wild, "badexample.com"));
    CHECK_FALSE(matches(wild, "a.example.org"));
    CHECK_FALSE(matches(wild, ".example.com"));

    auto exact = *parse_pattern("example.com");
    CHECK(matches(exact, "example.com"));
    CHECK_FALSE(matches(exact, "a.example.com"));

    auto any = *parse_pattern("*");
    CHECK(matches(any, "example.com"));
    CHECK(matches(any, "localhost"));
}
