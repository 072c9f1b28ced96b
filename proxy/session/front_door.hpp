// The front-door seam: how a connection's first bytes are read and decided, one class per
// protocol (after sniproxy's `struct Protocol` and Envoy's listener filters). The session feeds
// the door what the client sends (plaintext: decrypted first when the door asked for TLS) and
// acts on each verdict; the door never touches a socket, a timer or TLS. The pure parsing lives
// in routing/; a door strings it together for one listener kind.
//
// Adding a protocol means adding a door (front_doors.cpp's make_front_door picks it from the
// listener) and, if it needs new parsing, a pure reader in routing/. The session is unchanged.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "metrics/worker_stats.hpp"
#include "routing/stream_condition.hpp"
#include "session/end_reason.hpp"

namespace xs::upstream {
class BoshSessions;
}
namespace xs::config {
struct Config;
struct ListenerConfig;
struct BackendConfig;
}  // namespace xs::config

namespace xs::session {

enum class Step {
    NeedMore,  // nothing decided: keep reading (header_timeout runs)
    StartTls,  // terminate TLS with the client now; the door gets plaintext from here on
    Route,     // decided: connect to a backend for `key`, replay `replay`
    Refuse,    // refuse with `condition`; refusal() renders the bytes this protocol speaks
    Close,     // not this protocol at all: close without a word (`close_reason`)
};

struct RouteKey {
    std::string match;      // the requested name as received (stream 'to', SNI, Host):
    bool has_match = false; // normalised by the session, then looked up in the route table
    std::string hash;       // what a route with hash_key = "room" ranks by (empty: the domain)
    std::string vnode;      // HTTP ?vnode=: only the route's backends of that visitor node
    std::string pin;        // a backend to try first (the owner of a BOSH session), if a candidate
};

struct Verdict {
    Step step = Step::NeedMore;
    // Bytes for the client, sent before acting on `step` (through TLS once it is up): the
    // STARTTLS offer and <proceed/>, for example.
    std::string reply;
    RouteKey key;                 // Route
    std::string replay;           // Route: the client's bytes to replay to the backend
    std::string sni_fallback;     // StartTls: certificate domain when the client sends no SNI
    routing::StreamCondition condition = routing::StreamCondition::PolicyViolation;  // Refuse
    std::string domain;           // Refuse: the domain asked for, when known
    std::string detail;           // Refuse, Close: why (logged; sent in <text/> where possible)
    EndReason close_reason = EndReason::NotXmpp;  // Close
};

// What the backend's bytes did to an HTTP exchange (FrontDoor::response()).
struct Relayed {
    enum class Step { More, Done, Upgraded, Bad };
    Step step = Step::More;
    std::size_t used = 0;  // Done: bytes of the input that were the response's (the rest is stray)
    metrics::LocalGauge* held = nullptr;  // Upgraded: incremented; the session decrements it at its end
    int status = 0;        // a response head completed in this call: its status (the final one)
    std::string detail;    // Bad: why (logged)
};

class SessionHost;

// Verdicts every door builds.
Verdict close_verdict(EndReason why, std::string detail);
Verdict route_verdict(std::string match, bool has_match, std::string replay);
// After a handshake: NeedMore when the client negotiated `wanted` or no ALPN, else Close.
Verdict alpn_verdict(std::string_view alpn, std::string_view wanted, std::string_view listener_kind);

// Everything a door may consult: the session's configuration snapshot and its host (for the
// ids of the proxy's own stream headers). Both outlive the door.
struct DoorContext {
    const config::Config& cfg;
    const config::ListenerConfig& listener;
    SessionHost& host;
    std::string client_ip;  // the peer's address, for X-Forwarded-For
    upstream::BoshSessions* bosh = nullptr;  // BOSH sid -> backend, shared by the workers
};

class FrontDoor {
public:
    virtual ~FrontDoor() = default;
    virtual std::string_view name() const = 0;

    // Before any byte: a Direct TLS terminating door answers StartTls at once.
    virtual Verdict start() { return {}; }
    // The client's bytes (plaintext; decrypted when TLS was started).
    virtual Verdict feed(std::string_view bytes) = 0;
    // Raw bytes on their way into TLS after StartTls: a door may drop what legitimately precedes
    // the ClientHello (whitespace after <starttls/>). Returns the bytes that are TLS.
    virtual std::string_view before_tls(std::string_view raw) { return raw; }
    // The handshake finished (`alpn`: the protocol negotiated, "" when the client offered none):
    // what the client sends next is plaintext for feed(). A door that cannot serve that protocol
    // answers Close.
    virtual Verdict tls_ready(std::string_view alpn) = 0;
    // The bytes that refuse a session in this door's protocol and phase, for refusals decided
    // by the door or later (no route, admission, every backend failed). Empty: close without a
    // word (TLS passed through, or TLS not up yet).
    virtual std::string refusal(routing::StreamCondition c, std::string_view domain,
                                std::string_view detail) const = 0;

    // Counting what only the door understands, on the listener's cell: a refusal was written.
    using ListenerCell = metrics::WorkerStats::ListenerCell;
    virtual void refused(routing::StreamCondition, ListenerCell&) {}

    // Request/response protocols (HTTP). A door whose exchanges() is true stays with the
    // session after routing: the client's bytes pass through request() and the backend's through
    // response() until the response ends; then, when both connections may be kept, the session
    // opens the door again with next() for the client's next request, routed on its own. Other
    // doors are freed when the backend first answers and the session relays raw bytes.
    virtual bool exchanges() const { return false; }
    // Client bytes after the routed head: how many of them belong to the current request (its
    // body) and go to the backend. The rest (a pipelined request) the door keeps for next().
    virtual std::size_t request(std::string_view bytes) { return bytes.size(); }
    // Backend bytes: appends to `out` what the client gets (the response head once whole, with
    // the door's rewrites; then body bytes as they come).
    // (Called only when exchanges(); a door without exchanges is freed at the first answer.)
    virtual Relayed response(std::string_view, const config::BackendConfig&, ListenerCell&, std::string&) {
        Relayed r;
        r.step = Relayed::Step::Bad;
        r.detail = "this door frames no exchanges";
        return r;
    }
    // After a Done response: whether the client's connection may carry another request, and
    // whether the backend's connection may serve another one (a framed keep-alive response to a
    // request the backend read whole).
    virtual bool client_keeps() const { return false; }
    virtual bool backend_reusable() const { return false; }
    // The next request: the verdict on what the door kept (NeedMore when nothing yet).
    virtual Verdict next() { return {}; }
    // Between exchanges: nothing of the next request read yet (an idle timeout closes quietly).
    virtual bool idle() const { return false; }
    // The routed request is a long poll the backend may hold (BOSH): its answer is awaited for
    // hold_timeout instead of backend_timeout.
    virtual bool long_poll() const { return false; }
    // The routed request continues a session the backend already has (a BOSH request with a
    // sid): it is not a join, so admission control (max_connecting, max_new_per_second, the
    // queue) does not apply to it.
    virtual bool continues_session() const { return false; }
};

// The door for a listener: plain XMPP header, STARTTLS terminate, Direct TLS terminate, Direct
// TLS passthrough by SNI, or HTTP (WebSocket and BOSH).
std::unique_ptr<FrontDoor> make_front_door(const DoorContext& ctx);

}  // namespace xs::session
