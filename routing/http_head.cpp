#include "http_head.hpp"

#include <cctype>
#include <optional>

#include "domain.hpp"

namespace xs::routing {

using http::iequals;
using http::printable;

bool HttpRequestHead::websocket_upgrade() const {
    if (method != "GET" || !conn_upgrade) return false;
    const auto protos = http::split_list(upgrade);
    if (protos.empty()) return false;
    std::string_view first = protos.front();
    first = first.substr(0, first.find('/'));  // "websocket/13" would still be websocket
    return iequals(first, "websocket");
}

const std::string* HttpRequestHead::field(std::string_view name) const {
    for (const HeaderField& f : headers)
        if (iequals(f.name, name)) return &f.value;
    return nullptr;
}

bool parse_http_host(std::string_view raw, std::string& host, std::string& port,
                     std::string* why) {
    auto bad = [&](std::string w) {
        if (why) *why = std::move(w);
        return false;
    };
    std::string_view name = raw, p;
    if (!raw.empty() && raw.front() == '[') {
        const std::size_t close = raw.find(']');
        if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
        name = raw.substr(0, close + 1);
        std::string_view rest = raw.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("junk after the IPv6 literal");
            p = rest.substr(1);
            if (p.empty()) return bad("empty port");
        }
        if (name.size() < 4) return bad("empty IPv6 literal");
        for (char c : name.substr(1, name.size() - 2))
            if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'))
                return bad("not an IPv6 literal");
        host = http::lower(name);
    } else {
        const std::size_t colon = raw.rfind(':');
        if (colon != std::string_view::npos) {
            name = raw.substr(0, colon);
            p = raw.substr(colon + 1);
            if (p.empty()) return bad("empty port");
        }
        std::string w;
        auto n = normalize_domain(name, &w);
        if (!n) return bad("not a domain: " + w);
        host = *n;
    }
    if (!p.empty()) {
        std::uint64_t v = 0;
        if (p.size() > 5 || !http::parse_decimal(p, v) || v == 0 || v > 65535)
            return bad("bad port");
    }
    port = std::string(p);
    return true;
}

HttpRequestReader::HttpRequestReader(std::size_t max_head_bytes, std::size_t max_target_bytes)
    : lines_(max_head_bytes, kMaxFields, max_target_bytes, 414, true) {}

HeadStatus HttpRequestReader::feed(std::string_view bytes) {
    if (lines_.status() != HeadStatus::NeedMore) return lines_.status();
    if (lines_.feed(bytes) == HeadStatus::Done) finish();
    return lines_.status();
}

void HttpRequestReader::finish() {
    head_.head_bytes = lines_.bytes_seen();
    head_.leading_empty_lines = lines_.leading_empty_lines();
    if (!parse_request_line() || !parse_fields()) {
        head_ = HttpRequestHead{};
        return;
    }
    head_.headers = std::move(lines_.fields());
}

bool HttpRequestReader::parse_request_line() {
    const std::string_view line = lines_.start_line();
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        lines_.fail(400, "request line is not 'METHOD SP target SP version': '" +
                             printable(line) + "'");
        return false;
    }
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!http::is_token(method)) {
        lines_.fail(400, "method is not a token: '" + printable(method) + "'");
        return false;
    }
    if (target.empty() || target.front() != '/') {
        lines_.fail(400, "request target is not in origin-form: '" + printable(target) + "'");
        return false;
    }
    for (unsigned char c : target) {
        if (c <= 0x20 || c >= 0x7F || c == '#') {
            lines_.fail(400, "request target has a byte not allowed: '" + printable(target) + "'");
            return false;
        }
    }
    const bool shape = version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
                       version[5] >= '0' && version[5] <= '9' && version[6] == '.' &&
                       version[7] >= '0' && version[7] <= '9';
    if (!shape) {
        lines_.fail(400, "malformed HTTP version: '" + printable(version) + "'");
        return false;
    }
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
        lines_.fail(505, "HTTP version not supported: '" + std::string(version) + "'");
        return false;
    }
    if (method != "GET" && method != "HEAD" && method != "POST" && method != "OPTIONS") {
        lines_.fail(501, "method not supported: '" + printable(method) + "'");
        return false;
    }
    head_.method = std::string(method);
    head_.target = std::string(target);
    const std::size_t q = target.find('?');
    head_.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) {
        head_.has_query = true;
        head_.query = std::string(target.substr(q + 1));
    }
    head_.version_minor = version[7] - '0';
    return true;
}

bool HttpRequestReader::parse_fields() {
    int hosts = 0, lengths = 0, encodings = 0, keys = 0, versions = 0;
    std::string te;
    for (const HeaderField& f : lines_.fields()) {
        const std::string& n = f.name;
        if (iequals(n, "host")) {
            if (++hosts > 1) return lines_.fail(400, "two Host fields"), false;
            std::string why;
            if (!parse_http_host(f.value, head_.host, head_.host_port, &why))
                return lines_.fail(400, "bad Host '" + printable(f.value) + "': " + printable(why, 200)), false;
        } else if (iequals(n, "content-length")) {
            if (++lengths > 1) return lines_.fail(400, "two Content-Length fields"), false;
            if (!http::parse_decimal(f.value, head_.content_length))
                return lines_.fail(400, "bad Content-Length '" + printable(f.value) + "'"), false;
            head_.has_content_length = true;
        } else if (iequals(n, "transfer-encoding")) {
            if (++encodings > 1) return lines_.fail(400, "two Transfer-Encoding fields"), false;
            te = f.value;
        } else if (iequals(n, "connection")) {
            for (std::string_view t : http::split_list(f.value)) {
                std::string l = http::lower(t);
                head_.conn_keep_alive |= l == "keep-alive";
                head_.conn_close |= l == "close";
                head_.conn_upgrade |= l == "upgrade";
                head_.connection.push_back(std::move(l));
            }
        } else if (iequals(n, "upgrade")) {
            if (!head_.upgrade.empty() && !f.value.empty()) head_.upgrade += ", ";
            head_.upgrade += f.value;
        } else if (iequals(n, "sec-websocket-key")) {
            if (++keys > 1) return lines_.fail(400, "two Sec-WebSocket-Key fields"), false;
            head_.ws_key = f.value;
        } else if (iequals(n, "sec-websocket-version")) {
            if (++versions > 1) return lines_.fail(400, "two Sec-WebSocket-Version fields"), false;
            head_.ws_version = f.value;
        } else if (iequals(n, "sec-websocket-protocol")) {
            for (std::string_view t : http::split_list(f.value)) {
                if (!http::is_token(t))
                    return lines_.fail(400, "Sec-WebSocket-Protocol element is not a token: '" +
                                                printable(t) + "'"), false;
                head_.ws_protocols.emplace_back(t);
            }
        }
    }
    if (head_.version_minor == 1 && hosts == 0)
        return lines_.fail(400, "HTTP/1.1 request without Host"), false;
    if (encodings) {
        if (head_.version_minor == 0)
            return lines_.fail(400, "Transfer-Encoding in an HTTP/1.0 request"), false;
        if (lengths)
            return lines_.fail(400, "Content-Length together with Transfer-Encoding"), false;
        if (!iequals(te, "chunked"))
            return lines_.fail(400, "Transfer-Encoding other than 'chunked': '" + printable(te) +
                                        "'"), false;
        head_.chunked = true;
    }
    head_.keep_alive = head_.version_minor == 1 ? !head_.conn_close
                                                : head_.conn_keep_alive && !head_.conn_close;
    return true;
}

}  // namespace xs::routing
