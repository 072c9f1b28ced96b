// The session's states and the transitions set_state() allows. ARCHITECTURE.md carries
// render_transitions()'s output; a unit test keeps the two equal, so the diagram cannot drift.
#include <array>
#include <string>

#include "session/session.hpp"

namespace xs::session {

namespace {

using S = State;

struct Row {
    State from;
    std::array<State, 5> to;
    std::size_t n;
    const char* why;
};

// Every state may also go to Closed (finish(), the only exit), which the table leaves implicit.
constexpr std::array<Row, kStateCount - 1> kTable{{
    {S::Opening, {S::Queued, S::Connecting, S::Refusing}, 3,
     "the door decided: a slot is free (connect) or not (queue); or refused"},
    {S::Queued, {S::Connecting, S::Refusing}, 2, "admitted; or queue_timeout / queue full"},
    {S::Connecting, {S::AwaitingBackend, S::Queued, S::Refusing}, 3,
     "connected; a failed attempt moves to the next candidate (connect again, or queue); none left"},
    {S::AwaitingBackend, {S::Relaying, S::Connecting, S::Queued, S::Refusing}, 4,
     "the backend answered; or it failed and the next candidate is tried; none left"},
    {S::Relaying, {S::Closing, S::Opening}, 2,
     "one side finished (EOF): flush to the other; or an HTTP response ended on a keep-alive "
     "connection: the door reads the next request"},
    {S::Closing, {}, 0, "flushed, or close_linger passed"},
    {S::Refusing, {}, 0, "the client closed, or close_linger passed"},
}};

}  // namespace

std::string_view to_string(State s) {
    switch (s) {
        case State::Opening: return "opening";
        case State::Queued: return "queued";
        case State::Connecting: return "connecting";
        case State::AwaitingBackend: return "awaiting_backend";
        case State::Relaying: return "relaying";
        case State::Closing: return "closing";
        case State::Refusing: return "refusing";
        case State::Closed: return "closed";
    }
    return "?";
}

bool allowed(State from, State to) {
    if (from == State::Closed) return false;
    if (to == State::Closed) return true;
    for (const Row& r : kTable) {
        if (r.from != from) continue;
        for (std::size_t i = 0; i < r.n; ++i)
            if (r.to[i] == to) return true;
        return false;
    }
    return false;
}

std::string render_transitions() {
    std::string out = "| from | to (and always `closed`) | when |\n| --- | --- | --- |\n";
    for (const Row& r : kTable) {
        out += "| `" + std::string(to_string(r.from)) + "` | ";
        for (std::size_t i = 0; i < r.n; ++i) {
            if (i) out += ", ";
            out += "`" + std::string(to_string(r.to[i])) + "`";
        }
        if (r.n == 0) out += "-";
        out += " | " + std::string(r.why) + " |\n";
    }
    return out;
}

}  // namespace xs::session
