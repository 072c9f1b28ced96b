#include "session/http_door.hpp"

#include "config/config.hpp"
#include "routing/http_lines.hpp"
#include "routing/http_response.hpp"
#include "routing/http_route_key.hpp"

namespace xs::session {

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
    if (key->endpoint == routing::HttpEndpoint::WebSocket && head.websocket_upgrade()) {
        bool xmpp = false;
        for (const auto& p : head.ws_protocols) xmpp = xmpp || p == "xmpp";
        if (!xmpp) return refuse(400, "WebSocket upgrade without Sec-WebSocket-Protocol: xmpp (RFC 7395)");
    }
    Verdict v = route_verdict(head.host, !head.host.empty(), {});
    v.key.hash = key->hash_key;
    v.key.vnode = key->vnode;
    std::string out = routing::render_backend_head(head, ctx_.client_ip,
                                                   ctx_.listener.tls == config::TlsMode::Terminate);
    websocket_ = head.websocket_upgrade();
    if (!websocket_) out = with_connection_close(out);
    out.append(bytes_, head.head_bytes, std::string::npos);  // body bytes read with the head
    v.replay = std::move(out);
    return v;
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

namespace {

void count_status(int status, FrontDoor::ListenerCell& cell) {
    if (status >= 100 && status <= 599)
        cell.http_responses[static_cast<metrics::HttpClass>(status / 100 - 1)].add();
}

}  // namespace

void HttpDoor::refused(StreamCondition c, ListenerCell& cell) {
    count_status(status_ != 0 ? status_ : status_for(c), cell);
}

// The status line of the backend's answer ("HTTP/1.1 101 ..."): counted by class; a 101 to a
// WebSocket upgrade counts as a WebSocket session until the session ends.
metrics::LocalGauge* HttpDoor::answered(std::string_view first, const config::BackendConfig& backend,
                                        ListenerCell& cell, std::string& rewritten) {
    if (first.size() < 12 || first.substr(0, 7) != "HTTP/1.") return nullptr;
    if (!ctx_.listener.shard_header.empty())
        rewritten = with_response_field(first, ctx_.listener.shard_header,
                                        backend.shard.empty() ? backend.name : backend.shard);
    int status = 0;
    for (char c : first.substr(9, 3)) {
        if (c < '0' || c > '9') return nullptr;
        status = status * 10 + (c - '0');
    }
    count_status(status, cell);
    if (status != 101 || !websocket_) return nullptr;
    cell.websockets.add(1);
    return &cell.websockets;
}

std::string with_response_field(std::string_view first, std::string_view name, std::string_view value) {
    std::size_t end = first.find("\r\n\r\n");
    if (end == std::string_view::npos) return {};
    std::string out(first.substr(0, end + 2));
    out.append(name).append(": ").append(value).append("\r\n");
    out.append(first.substr(end + 2));
    return out;
}

std::string with_connection_close(std::string_view head) {
    std::string out;
    std::size_t pos = 0;
    while (pos < head.size()) {
        std::size_t eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos) eol = head.size();
        std::string_view line = head.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.empty()) {
            out += "Connection: close\r\n\r\n";
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
