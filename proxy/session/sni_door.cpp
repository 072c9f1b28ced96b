#include "session/sni_door.hpp"

namespace xs::session {

Verdict SniDoor::feed(std::string_view bytes) {
    replay_.append(bytes);
    switch (hello_.feed(bytes)) {
        case routing::HelloStatus::NeedMore:
            return {};
        case routing::HelloStatus::Reject:
            return close_verdict(EndReason::NotXmpp, "Direct TLS: not a ClientHello: " + hello_.detail());
        case routing::HelloStatus::Done:
            break;
    }
    const auto& info = hello_.info();
    if (info.has_alpn && !info.offers_alpn("xmpp-client"))
        return close_verdict(EndReason::NotXmpp, "Direct TLS: ALPN offered without xmpp-client");
    return route_verdict(info.sni, info.has_sni, std::move(replay_));
}

}  // namespace xs::session
