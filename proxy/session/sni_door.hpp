// Direct TLS passed through (XEP-0368): the ClientHello's SNI decides the route; ALPN, when
// offered, must include xmpp-client. The raw bytes are replayed and TLS runs end to end with
// the backend, so a refusal is a close: the proxy cannot speak inside that TLS.
#pragma once
#include <string>

#include "routing/client_hello.hpp"
#include "session/front_door.hpp"

namespace xs::session {

class SniDoor final : public FrontDoor {
public:
    explicit SniDoor(const DoorContext&) {}
    std::string_view name() const override { return "sni"; }
    Verdict feed(std::string_view bytes) override;
    Verdict tls_ready(std::string_view) override { return {}; }  // TLS stays end to end
    std::string refusal(routing::StreamCondition, std::string_view, std::string_view) const override {
        return {};
    }

private:
    routing::ClientHelloSniffer hello_;
    std::string replay_;
};

}  // namespace xs::session
