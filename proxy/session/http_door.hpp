// The HTTP front door (listeners with protocol = "http"): Jitsi Meet's XMPP over WebSocket
// (RFC 7395, `GET /xmpp-websocket?room=R`) and BOSH (XEP-0206, `POST /http-bind?room=R`). It
// reads one request head (routing/http_head), routes on the Host (the route's `domains`) and,
// for routes with hash_key = "room", on the room (routing/http_route_key), and replays the head
// with X-Forwarded-For appended and X-Forwarded-Proto set.
//
// Every request is an exchange of its own: the door frames the request body and the response
// (Content-Length, chunked, RFC 9112 6.3), so a keep-alive connection carries request after
// request, each routed on its own (a browser reuses one connection for BOSH sessions of several
// rooms), and a backend connection whose response was framed goes back to the worker's idle
// pool for the next request to that backend. A 101 to a WebSocket upgrade ends the exchanges:
// the session relays frames unchanged both ways. Refusals are HTTP responses.
#pragma once
#include <string>

#include "routing/bosh_body.hpp"
#include "routing/http_head.hpp"
#include "routing/http_response.hpp"
#include "session/front_door.hpp"

namespace xs::session {

class HttpDoor final : public FrontDoor {
public:
    // Heads are bounded apart from max_header_bytes: browsers send cookies and tokens.
    static constexpr std::size_t kMaxHeadBytes = 16 * 1024;

    explicit HttpDoor(const DoorContext& ctx) : ctx_(ctx), reader_(kMaxHeadBytes), resp_reader_(kMaxHeadBytes) {}
    std::string_view name() const override { return "http"; }
    // HTTPS (tls = "terminate"): TLS from the first byte, ALPN http/1.1 or none.
    Verdict start() override;
    Verdict tls_ready(std::string_view alpn) override;
    Verdict feed(std::string_view bytes) override;
    std::string refusal(routing::StreamCondition c, std::string_view domain,
                        std::string_view detail) const override;
    void refused(routing::StreamCondition c, ListenerCell& cell) override;

    bool exchanges() const override { return true; }
    std::size_t request(std::string_view bytes) override;
    Relayed response(std::string_view bytes, const config::BackendConfig& backend, ListenerCell& cell,
                     std::string& out) override;
    bool client_keeps() const override;
    bool backend_reusable() const override;
    Verdict next() override;
    bool idle() const override { return bytes_.empty(); }
    bool long_poll() const override { return long_poll_; }
    bool continues_session() const override { return long_poll_ && bosh_root_read() && bosh_reader_.body().has_sid; }

    // The HTTP status a refusal of this condition gets (when the door did not set one itself).
    static int status_for(routing::StreamCondition c);

private:
    Verdict refuse(int status, std::string detail);
    Relayed response_head(std::string_view bytes, const config::BackendConfig& backend, ListenerCell& cell,
                          std::string& out);
    void read_bosh_root(std::string_view body_bytes);
    bool bosh_root_read() const { return bosh_reader_.status() == routing::BoshStatus::Done; }
    // A BOSH session creation request (a root without sid).
    bool creating() const { return long_poll_ && bosh_root_read() && !bosh_reader_.body().has_sid; }

    DoorContext ctx_;
    routing::HttpRequestReader reader_;
    std::string bytes_;  // the current request's bytes read so far (head and what came with it)
    std::string kept_;   // bytes after the current request (pipelined): the next request's
    int status_ = 0;     // set when the door itself refused (400, 414, 431, 501, 505)
    bool tls_up_ = false;     // HTTPS: the handshake finished (refusals can be sent)

    // The exchange in flight.
    bool websocket_ = false;     // the routed request is a WebSocket upgrade
    bool client_keep_ = false;   // the client's request allows another one on its connection
    bool backend_keep_ = false;  // the request was sent as HTTP/1.1 keep-alive
    bool long_poll_ = false;     // a BOSH request (the backend may hold it)
    std::string method_;
    routing::BodyFramer req_body_ = routing::BodyFramer::none();
    routing::HttpResponseReader resp_reader_;
    std::string resp_head_;      // the response head's bytes until it is whole
    bool resp_head_done_ = false;
    bool resp_keep_ = false;     // the response allows another request on the backend connection
    routing::BodyFramer resp_body_ = routing::BodyFramer::none();

    // BOSH (XEP-0124): the request body's root <body/> gives `to` and `sid`. A request without a
    // room is routed by its session's owner (sid) or its `to`; the sid of a session creation is
    // learned from the response, for the requests that follow.
    routing::BoshBodyReader bosh_reader_{kBoshRootBytes};
    std::size_t bosh_fed_ = 0;   // body bytes given to bosh_reader_
    bool capture_ = false;       // keep the response body for its sid
    std::string captured_;
    static constexpr std::size_t kBoshRootBytes = 4096;
    static constexpr std::size_t kCaptureBytes = 16 * 1024;
};

// `head` (as render_backend_head returns it) with every Connection field removed and, unless
// `value` is empty, "Connection: VALUE" added.
std::string with_connection(std::string_view head, std::string_view value);
// A whole response head with "NAME: VALUE" added as its last field; empty when `head` does not
// hold the whole head.
std::string with_response_field(std::string_view head, std::string_view name, std::string_view value);

}  // namespace xs::session
