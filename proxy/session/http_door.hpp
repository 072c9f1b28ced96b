// The HTTP front door (listeners with protocol = "http"): Jitsi Meet's XMPP over WebSocket
// (RFC 7395, `GET /xmpp-websocket?room=R`) and BOSH (XEP-0206, `POST /http-bind?room=R`). It
// reads one request head (routing/http_head), routes on the Host (the route's `domains`) and,
// for routes with hash_key = "room", on the room (routing/http_route_key), and replays the head
// with X-Forwarded-For appended and X-Forwarded-Proto set. After a WebSocket upgrade the
// session relays frames unchanged both ways. A BOSH request is sent with `Connection: close`, so
// every request of a browser's keep-alive connection is routed on its own (the browser opens
// the next connection for the next request). Refusals are HTTP responses.
#pragma once
#include <string>

#include "routing/http_head.hpp"
#include "session/front_door.hpp"

namespace xs::session {

class HttpDoor final : public FrontDoor {
public:
    // Heads are bounded apart from max_header_bytes: browsers send cookies and tokens.
    static constexpr std::size_t kMaxHeadBytes = 16 * 1024;

    explicit HttpDoor(const DoorContext& ctx) : ctx_(ctx), reader_(kMaxHeadBytes) {}
    std::string_view name() const override { return "http"; }
    // HTTPS (tls = "terminate"): TLS from the first byte, ALPN http/1.1 or none.
    Verdict start() override;
    Verdict tls_ready(std::string_view alpn) override;
    Verdict feed(std::string_view bytes) override;
    std::string refusal(routing::StreamCondition c, std::string_view domain,
                        std::string_view detail) const override;
    void refused(routing::StreamCondition c, ListenerCell& cell) override;
    metrics::LocalGauge* answered(std::string_view first, const config::BackendConfig& backend,
                                  ListenerCell& cell, std::string& rewritten) override;

    // The HTTP status a refusal of this condition gets (when the door did not set one itself).
    static int status_for(routing::StreamCondition c);

private:
    Verdict refuse(int status, std::string detail);

    DoorContext ctx_;
    routing::HttpRequestReader reader_;
    std::string bytes_;  // everything read, for the body bytes after the head
    int status_ = 0;     // set when the door itself refused (400, 414, 431, 501, 505)
    bool websocket_ = false;  // the routed request is a WebSocket upgrade
    bool tls_up_ = false;     // HTTPS: the handshake finished (refusals can be sent)
};

// `head` (as render_backend_head returns it) with every Connection field replaced by
// "Connection: close".
std::string with_connection_close(std::string_view head);
// `first` (the start of a response) with "NAME: VALUE" added as the head's last field; empty when
// `first` does not hold the whole head.
std::string with_response_field(std::string_view first, std::string_view name, std::string_view value);

}  // namespace xs::session
