#include "session/sni_door.hpp"

namespace xs::session {

Verdict SniDoor::feed(std::string_view bytes) {
    replay_.append(bytes);
    Verdict v;
    switch (hello_.feed(bytes)) {
        case routing::HelloStatus::NeedMore:
            return v;
        case routing::HelloStatus::Reject:
            v.step = Step::Close;
            v.close_reason = EndReason::NotXmpp;
            v.detail = "Direct TLS: not a ClientHello: " + hello_.detail();
            return v;
        case routing::HelloStatus::Done:
            break;
    }
    const auto& info = hello_.info();
    if (info.has_alpn && !info.offers_alpn("xmpp-client")) {
        v.step = Step::Close;
        v.close_reason = EndReason::NotXmpp;
        v.detail = "Direct TLS: ALPN offered without xmpp-client";
        return v;
    }
    v.step = Step::Route;
    v.key.match = info.sni;
    v.key.has_match = info.has_sni;
    v.replay = std::move(replay_);
    return v;
}

}  // namespace xs::session
