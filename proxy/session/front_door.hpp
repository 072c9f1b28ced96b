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

    // Counting what only the door understands, on the listener's cell: a refusal was written;
    // the backend's first bytes arrived (the session relays from then on and frees the door).
    // answered() may return a gauge it incremented, which the session decrements when it ends,
    // and may put into `rewritten` what the client gets instead of `first` (`backend`: the
    // backend's config, e.g. for a response header naming it); empty: `first` unchanged.
    using ListenerCell = metrics::WorkerStats::ListenerCell;
    virtual void refused(routing::StreamCondition, ListenerCell&) {}
    virtual metrics::LocalGauge* answered(std::string_view, const config::BackendConfig&, ListenerCell&,
                                          std::string&) {
        return nullptr;
    }
};

// The door for a listener: plain XMPP header, STARTTLS terminate, Direct TLS terminate, Direct
// TLS passthrough by SNI, or HTTP (WebSocket and BOSH).
std::unique_ptr<FrontDoor> make_front_door(const DoorContext& ctx);

}  // namespace xs::session
