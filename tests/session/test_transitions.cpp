// The state transition table that set_state() asserts, and ARCHITECTURE.md's copy of it.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "session/session.hpp"

using namespace xs::session;

TEST_CASE("the transition table", "[transitions]") {
    CHECK(allowed(State::Opening, State::Connecting));
    CHECK(allowed(State::Opening, State::Queued));
    CHECK(allowed(State::AwaitingBackend, State::Connecting));  // failover
    CHECK(allowed(State::Relaying, State::Closing));
    CHECK(allowed(State::Refusing, State::Closed));
    CHECK_FALSE(allowed(State::Relaying, State::Refusing));  // no refusal once relaying
    CHECK_FALSE(allowed(State::Closing, State::Relaying));
    CHECK_FALSE(allowed(State::Queued, State::AwaitingBackend));
    CHECK_FALSE(allowed(State::Closed, State::Opening));
    for (int s = 0; s < static_cast<int>(kStateCount) - 1; ++s)
        CHECK(allowed(static_cast<State>(s), State::Closed));  // finish() is always possible
}

TEST_CASE("ARCHITECTURE.md carries the table set_state() enforces", "[transitions]") {
    std::ifstream f(std::string(XS_SOURCE_DIR) + "/ARCHITECTURE.md");
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string doc = ss.str();
    const std::string begin = "<!-- session-transitions:begin -->\n", end = "<!-- session-transitions:end -->";
    auto a = doc.find(begin), b = doc.find(end);
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    INFO("regenerate the section from render_transitions():\n" << render_transitions());
    CHECK(doc.substr(a + begin.size(), b - a - begin.size()) == render_transitions());
}
