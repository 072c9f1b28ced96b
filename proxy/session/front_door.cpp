#include "session/front_door.hpp"

namespace xs::session {

Verdict close_verdict(EndReason why, std::string detail) {
    Verdict v;
    v.step = Step::Close;
    v.close_reason = why;
    v.detail = std::move(detail);
    return v;
}

Verdict route_verdict(std::string match, bool has_match, std::string replay) {
    Verdict v;
    v.step = Step::Route;
    v.key.match = std::move(match);
    v.key.has_match = has_match;
    v.replay = std::move(replay);
    return v;
}

Verdict alpn_verdict(std::string_view alpn, std::string_view wanted, std::string_view listener_kind) {
    if (alpn.empty() || alpn == wanted) return {};
    return close_verdict(EndReason::NotXmpp,
                         "ALPN " + std::string(alpn) + " on an " + std::string(listener_kind) + " listener");
}

}  // namespace xs::session
