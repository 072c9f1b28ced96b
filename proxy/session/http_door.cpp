#include "session/http_door.hpp"

#include "config/config.hpp"
#include "session/host.hpp"
#include "upstream/bosh_sessions.hpp"
#include "routing/http_lines.hpp"
#include "routing/http_route_key.hpp"

namespace xs::session {

using routing::BodyFramer;
using routing::BodyStatus;
using routing::HeadStatus;
using routing::StreamCondition;

Verdict HttpDoor::refuse(int status, std::string detail) {
    status_ = status;
    Verdict v;
    v.step = Step::Refuse;
    v.condition = status == 408 ? StreamCondition::ConnectionTimeout : StreamCondition::BadFormat;
    v.detail = std::move(detail);
    return v;
}

Verdict HttpDoor::start() {
    Verdict v;
    if (ctx_.listener.tls == config::TlsMode::Terminate) v.step = Step::StartTls;
    return v;
}

Verdict HttpDoor::tls_ready(std::string_view alpn) {
    tls_up_ = true;
    return alpn_verdict(alpn, "http/1.1", "HTTP");
}

Verdict HttpDoor::feed(std::string_view bytes) {
    bytes_.append(bytes);
    switch (reader_.feed(bytes)) {
        case HeadStatus::NeedMore:
            return {};
        case HeadStatus::Reject:
            return refuse(reader_.reject_status(), reader_.detail());
        case HeadStatus::Done:
            break;
    }
    const routing::HttpRequestHead& head = reader_.head();
    std::string why;
    auto key = routing::http_route_key(head, &why);
    if (!key) return refuse(400, why);
    websocket_ = head.websocket_upgrade();
    if (key->endpoint == routing::HttpEndpoint::WebSocket && websocket_) {
        bool xmpp = false;
        for (const auto& p : head.ws_protocols) xmpp = xmpp || p == "xmpp";
        if (!xmpp) return refuse(400, "WebSocket upgrade without Sec-WebSocket-Protocol: xmpp (RFC 7395)");
    }
    Verdict v = route_verdict(head.host, !head.host.empty(), {});
    v.key.hash = key->hash_key;
    v.key.vnode = key->vnode;
    if (key->endpoint == routing::HttpEndpoint::Bosh && head.method == "POST" && !websocket_) {
        std::string_view body = std::string_view(bytes_).substr(head.head_bytes);
        read_bosh_root(body.substr(std::min(bosh_fed_, body.size())));
        // Without a room the body decides: wait for its root tag (bounded, under header_timeout).
        bool more = head.has_content_length && body.size() < head.content_length && body.size() < kBoshRootBytes;
        if (key->hash_key.empty() && bosh_reader_.status() == routing::BoshStatus::NeedMore && more) return {};
        if (bosh_root_read()) {
            const routing::BoshBody& root = bosh_reader_.body();
            std::optional<std::string> owner;
            if (root.has_sid && ctx_.bosh) owner = ctx_.bosh->owner(root.sid);  // also keeps it alive
            if (key->hash_key.empty()) {
                if (owner) v.key.pin = *owner;
                else if (!root.has_sid && root.has_to && !root.to.empty()) v.key.match = root.to;
            }
        }
    }
    std::string out = routing::render_backend_head(head, ctx_.client_ip,
                                                   ctx_.listener.tls == config::TlsMode::Terminate);
    method_ = head.method;
    long_poll_ = key->endpoint == routing::HttpEndpoint::Bosh && !websocket_;
    std::string_view rest = std::string_view(bytes_).substr(head.head_bytes);
    if (websocket_) {
        // Frames before the 101 would break RFC 6455; whatever came is passed on as it is.
        client_keep_ = backend_keep_ = false;
        req_body_ = BodyFramer::none();
        out.append(rest);
    } else {
        // Connection is hop-by-hop: the backend connection is the proxy's own, kept alive
        // for HTTP/1.1 whatever the client asked for its connection.
        client_keep_ = head.keep_alive;
        backend_keep_ = head.version_minor == 1;
        out = with_connection(out, backend_keep_ ? "" : "close");
        req_body_ = routing::request_body_framing(head);
        std::size_t n = req_body_.feed(rest);
        if (req_body_.status() == BodyStatus::Reject) return refuse(400, "request body: " + req_body_.detail());
        out.append(rest.substr(0, n));
        kept_.assign(rest.substr(n));
    }
    v.replay = std::move(out);
    return v;
}

// Body bytes read so far (once each): the BOSH root's reader takes them until it decides.
void HttpDoor::read_bosh_root(std::string_view body_bytes) {
    if (bosh_reader_.status() != routing::BoshStatus::NeedMore) return;
    bosh_fed_ += body_bytes.size();
    bosh_reader_.feed(body_bytes);
}

std::size_t HttpDoor::request(std::string_view bytes) {
    if (websocket_) return bytes.size();
    std::size_t n = 0;
    if (req_body_.status() == BodyStatus::NeedMore) n = req_body_.feed(bytes);
    if (long_poll_) read_bosh_root(bytes.substr(0, n));
    // A malformed chunked body goes on as far as it was framed; neither connection is reused.
    if (req_body_.status() != BodyStatus::Reject) kept_.append(bytes.substr(n));
    return n;
}

Verdict HttpDoor::next() {
    reader_ = routing::HttpRequestReader(kMaxHeadBytes);
    resp_reader_ = routing::HttpResponseReader(kMaxHeadBytes);
    bytes_.clear();
    resp_head_.clear();
    resp_head_done_ = false;
    resp_keep_ = false;
    resp_body_ = BodyFramer::none();
    bosh_reader_ = routing::BoshBodyReader(kBoshRootBytes);
    bosh_fed_ = 0;
    capture_ = false;
    std::string().swap(captured_);
    status_ = 0;
    websocket_ = false;
    std::string kept = std::move(kept_);
    kept_.clear();
    if (kept.empty()) return {};
    return feed(kept);
}

bool HttpDoor::client_keeps() const {
    return client_keep_ && req_body_.status() == BodyStatus::Done &&
           resp_body_.kind() != BodyFramer::Kind::UntilClose;
}

bool HttpDoor::backend_reusable() const {
    return backend_keep_ && resp_keep_ && req_body_.status() == BodyStatus::Done &&
           resp_body_.kind() != BodyFramer::Kind::UntilClose;
}

int HttpDoor::status_for(StreamCondition c) {
    switch (c) {
        case StreamCondition::HostUnknown: return 404;
        case StreamCondition::ConnectionTimeout: return 408;
        case StreamCondition::RemoteConnectionFailed: return 502;
        case StreamCondition::PolicyViolation:  // admission and per-address rate refusals
        case StreamCondition::SeeOtherHost: return 503;
        default: return 400;
    }
}

std::string HttpDoor::refusal(StreamCondition c, std::string_view, std::string_view detail) const {
    if (ctx_.listener.tls == config::TlsMode::Terminate && !tls_up_) return {};  // mid-handshake
    int status = status_ != 0 ? status_ : status_for(c);
    return routing::http_error_response(status, {}, detail);
}

void HttpDoor::refused(StreamCondition c, ListenerCell& cell) {
    metrics::count_http_status(cell.http_responses, status_ != 0 ? status_ : status_for(c));
}

// The backend's bytes: the head is gathered until whole (then rewritten and counted by
// status class), the body passes as it comes, framed, until the response ends.
Relayed HttpDoor::response(std::string_view bytes, const config::BackendConfig& backend, ListenerCell& cell,
                           std::string& out) {
    std::size_t head_part = 0;
    int status = 0;
    if (!resp_head_done_) {
        Relayed r = response_head(bytes, backend, cell, out);
        if (r.step != Relayed::Step::Done) return r;
        head_part = r.used;  // the rest is body
        status = r.status;
    }
    std::string_view body = bytes.substr(head_part);
    std::size_t n = resp_body_.feed(body);
    out.append(body.substr(0, n));
    if (capture_) {
        captured_.append(body.substr(0, std::min(n, kCaptureBytes - std::min(kCaptureBytes, captured_.size()))));
    }
    Relayed r;
    r.status = status;
    if (resp_body_.status() == BodyStatus::Reject) {
        r.step = Relayed::Step::Bad;
        r.detail = "response body: " + resp_body_.detail();
    } else if (resp_body_.status() == BodyStatus::Done) {
        r.step = Relayed::Step::Done;
        r.used = head_part + n;
        if (capture_ && ctx_.bosh)
            if (auto sid = routing::bosh_response_sid(captured_)) ctx_.bosh->learned(*sid, backend.name);
    }
    return r;
}

// Gathers the response head. Done (used: the bytes of `bytes` that were head) when a final
// head was written to `out`; Upgraded on a 101 to a WebSocket upgrade (all of `bytes` in `out`).
Relayed HttpDoor::response_head(std::string_view bytes, const config::BackendConfig& backend,
                                ListenerCell& cell, std::string& out) {
    Relayed r;
    std::size_t before = resp_head_.size();  // earlier bytes of this head
    resp_head_.append(bytes);
    switch (resp_reader_.feed(bytes)) {
        case HeadStatus::NeedMore:
            return r;
        case HeadStatus::Reject:
            r.step = Relayed::Step::Bad;
            r.detail = "response head: " + resp_reader_.detail();
            return r;
        case HeadStatus::Done:
            break;
    }
    const routing::HttpResponseHead& h = resp_reader_.head();
    std::size_t used = h.head_bytes - before;
    std::string head = resp_head_.substr(0, h.head_bytes);
    if (!ctx_.listener.shard_header.empty())
        head = with_response_field(head, ctx_.listener.shard_header,
                                   backend.shard.empty() ? backend.name : backend.shard);
    metrics::count_http_status(cell.http_responses, h.status);
    r.status = h.status;
    if (h.status == 101 && websocket_) {
        out += head;
        out.append(bytes.substr(used));
        r.step = Relayed::Step::Upgraded;
        r.used = bytes.size();
        cell.websockets.add(1);
        r.held = &cell.websockets;
        return r;
    }
    if (h.status < 200 && h.status != 101) {  // interim (100 Continue, 103): the final head follows
        out += head;
        resp_head_.clear();
        resp_reader_ = routing::HttpResponseReader(kMaxHeadBytes);
        Relayed rest = response_head(bytes.substr(used), backend, cell, out);
        if (rest.step == Relayed::Step::Done || rest.step == Relayed::Step::Upgraded) rest.used += used;
        return rest;
    }
    if (h.status == 101) {
        r.step = Relayed::Step::Bad;
        r.detail = "101 Switching Protocols to a request that asked for no upgrade";
        return r;
    }
    // A refused upgrade, or a backend that closes after answering (its Connection field reaches
    // the client): the client's connection closes after this response too.
    // Draining: the client learns from this response that the connection ends with it.
    if (websocket_ || !h.keep_alive || ctx_.host.draining()) client_keep_ = false;
    if (!client_keep_ && !h.conn_close) head = with_response_field(head, "Connection", "close");
    resp_keep_ = h.keep_alive;
    resp_body_ = routing::response_body_framing(h, method_);
    capture_ = creating() && h.status == 200 && resp_body_.kind() == BodyFramer::Kind::Length;
    resp_head_done_ = true;
    std::string().swap(resp_head_);
    out += head;
    r.step = Relayed::Step::Done;
    r.used = used;
    return r;
}

std::string with_response_field(std::string_view head, std::string_view name, std::string_view value) {
    std::size_t end = head.find("\r\n\r\n");
    if (end == std::string_view::npos) return {};
    std::string out(head.substr(0, end + 2));
    out.append(name).append(": ").append(value).append("\r\n");
    out.append(head.substr(end + 2));
    return out;
}

std::string with_connection(std::string_view head, std::string_view value) {
    std::string out;
    std::size_t pos = 0;
    while (pos < head.size()) {
        std::size_t eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos) eol = head.size();
        std::string_view line = head.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.empty()) {
            if (!value.empty()) out.append("Connection: ").append(value).append("\r\n");
            out += "\r\n";
            out.append(head.substr(std::min(pos, head.size())));
            return out;
        }
        if (line.size() >= 11 && routing::http::iequals(line.substr(0, 11), "connection:")) continue;
        out.append(line);
        out += "\r\n";
    }
    return out;
}

}  // namespace xs::session
