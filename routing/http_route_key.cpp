#include "http_route_key.hpp"

#include <vector>

namespace xs::routing {

std::string_view to_string(HttpEndpoint e) {
    switch (e) {
    case HttpEndpoint::WebSocket: return "websocket";
    case HttpEndpoint::Bosh: return "bosh";
    case HttpEndpoint::Other: return "other";
    }
    return "other";
}

namespace {

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decoded, lower-cased, checked parameter value; nullopt with *why on a problem.
std::optional<std::string> param_value(std::string_view name, std::string_view raw,
                                       std::string* why) {
    auto bad = [&](std::string_view w) -> std::optional<std::string> {
        if (why) *why = "?" + std::string(name) + "=: " + std::string(w);
        return std::nullopt;
    };
    auto v = percent_decode(raw);
    if (!v) return bad("bad percent-escape");
    if (v->empty()) return bad("empty");
    if (v->size() > kMaxRoomBytes) return bad("longer than " + std::to_string(kMaxRoomBytes) + " bytes");
    for (unsigned char c : *v)
        if (c < 0x20 || c == 0x7F) return bad("control character");
    return http::lower(*v);
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::optional<HttpRouteKey> http_route_key(const HttpRequestHead& head, std::string* why) {
    HttpRouteKey key;
    // Endpoint and path tenant.
    std::string_view path = head.path;
    std::string_view tenant_seg;
    auto endpoint_of = [](std::string_view last) {
        if (last == "xmpp-websocket") return HttpEndpoint::WebSocket;
        if (last == "http-bind") return HttpEndpoint::Bosh;
        return HttpEndpoint::Other;
    };
    if (path.size() > 1 && path.front() == '/') {
        const std::string_view rest = path.substr(1);
        const std::size_t slash = rest.find('/');
        if (slash == std::string_view::npos) {
            key.endpoint = endpoint_of(rest);
        } else if (slash > 0 && rest.find('/', slash + 1) == std::string_view::npos) {
            key.endpoint = endpoint_of(rest.substr(slash + 1));
            if (key.endpoint != HttpEndpoint::Other) tenant_seg = rest.substr(0, slash);
        }
    }
    if (!tenant_seg.empty()) {
        auto t = param_value("tenant path segment", tenant_seg, why);
        if (!t) return std::nullopt;
        key.tenant = *t;
    }
    // Query parameters.
    bool seen_room = false, seen_prefix = false, seen_vnode = false;
    std::string prefix;
    std::string_view q = head.query;
    while (!q.empty()) {
        const std::size_t amp = q.find('&');
        const std::string_view item = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        const std::size_t eq = item.find('=');
        const std::string_view name = item.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        std::string* dest = nullptr;
        bool* seen = nullptr;
        if (name == "room") dest = &key.room, seen = &seen_room;
        else if (name == "prefix") dest = &prefix, seen = &seen_prefix;
        else if (name == "vnode") dest = &key.vnode, seen = &seen_vnode;
        if (!dest) continue;
        if (*seen) {
            if (why) *why = "?" + std::string(name) + "= given twice";
            return std::nullopt;
        }
        *seen = true;
        auto v = param_value(name, value, why);
        if (!v) return std::nullopt;
        *dest = std::move(*v);
    }
    if (seen_prefix) {
        if (prefix.find('/') != std::string::npos) {
            if (why) *why = "?prefix=: contains '/'";
            return std::nullopt;
        }
        if (!key.tenant.empty() && key.tenant != prefix) {
            if (why) *why = "tenant in the path and ?prefix= differ";
            return std::nullopt;
        }
        key.tenant = prefix;
    }
    if (key.tenant.find('/') != std::string::npos) {
        if (why) *why = "tenant contains '/'";
        return std::nullopt;
    }
    if (!key.room.empty()) key.hash_key = key.tenant.empty() ? key.room : key.tenant + "/" + key.room;
    return key;
}

std::string render_backend_head(const HttpRequestHead& head, std::string_view client_ip,
                                bool https) {
    std::string ip;
    for (unsigned char c : client_ip)
        if (c > 0x20 && c < 0x7F) ip.push_back(static_cast<char>(c));
    std::size_t last_xff = head.headers.size();
    for (std::size_t i = 0; i < head.headers.size(); ++i)
        if (http::iequals(head.headers[i].name, "x-forwarded-for")) last_xff = i;
    std::string out;
    out.reserve(head.head_bytes + ip.size() + 64);
    out += head.method;
    out += ' ';
    out += head.target;
    out += head.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
    for (std::size_t i = 0; i < head.headers.size(); ++i) {
        const HeaderField& f = head.headers[i];
        if (http::iequals(f.name, "x-forwarded-proto")) continue;
        out += f.raw;
        if (i == last_xff) {
            if (!f.value.empty()) out += ", ";
            out += ip;
        }
        out += "\r\n";
    }
    if (last_xff == head.headers.size()) out += "X-Forwarded-For: " + ip + "\r\n";
    out += https ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n";
    out += "\r\n";
    return out;
}

}  // namespace xs::routing
