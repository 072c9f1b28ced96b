#include "session/session_log.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "config/config.hpp"
#include "util/log.hpp"

namespace xs::session {
namespace {

std::string peer_of(const sockaddr* client) {
    if (!client || (client->sa_family != AF_INET && client->sa_family != AF_INET6)) return "-";
    config::SocketAddress a;
    a.len = client->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(&a.storage, client, a.len);
    return a.to_string();
}

void kv(std::string& out, std::string_view key, std::string_view value) {
    out.append(" ").append(key).append("=");
    if (value.empty()) {
        out.append("-");
        return;
    }
    // Control characters (a config name may hold any) are quoted and escaped too, so that a
    // value can neither end the line nor add keys.
    auto odd = [](unsigned char c) {
        return c < 0x20 || c == 0x7f || c == ' ' || c == '"' || c == '=' || c == '\\';
    };
    if (std::none_of(value.begin(), value.end(), odd)) {
        out.append(value);
        return;
    }
    out.push_back('"');
    for (unsigned char c : value) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c == '\n') {
            out.append("\\n");
        } else if (c == '\t') {
            out.append("\\t");
        } else if (c == '\r') {
            out.append("\\r");
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\x%02x", c);
            out.append(buf);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
}

void json(std::string& out, std::string_view key, std::string_view value, bool first = false) {
    out.append(first ? "\"" : ",\"").append(key).append("\":\"");
    for (unsigned char c : value) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c < 0x20) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            out.append(buf);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    out.push_back('"');
}

void json_num(std::string& out, std::string_view key, uint64_t v) {
    out.append(",\"").append(key).append("\":").append(std::to_string(v));
}

}  // namespace

std::string SessionLog::format(const SessionLogEntry& e) const {
    // One string built with reserve() and append() (no assignment of a literal, no operator+):
    // GCC 12 at -O3 reports a false -Wrestrict inside std::string otherwise.
    std::string out;
    out.reserve(256);
    std::string client = peer_of(e.client);
    if (format_ == config::LogFormat::Json) {
        out.push_back('{');
        json(out, "event", "session_end", true);
        json(out, "client", client);
        json(out, "listener", e.listener);
        json(out, "domain", e.domain);
        json(out, "route", e.route);
        json(out, "backend", e.backend);
        json_num(out, "duration_ms", e.duration_ms);
        json_num(out, "bytes_to_backend", e.bytes_to_backend);
        json_num(out, "bytes_to_client", e.bytes_to_client);
        json(out, "reason", e.reason);
        if (!e.condition.empty()) json(out, "condition", e.condition);
        out.push_back('}');
        return out;
    }
    out.append("session_end");
    kv(out, "client", client);
    kv(out, "listener", e.listener);
    kv(out, "domain", e.domain);
    kv(out, "route", e.route);
    kv(out, "backend", e.backend);
    kv(out, "duration_ms", std::to_string(e.duration_ms));
    kv(out, "bytes_to_backend", std::to_string(e.bytes_to_backend));
    kv(out, "bytes_to_client", std::to_string(e.bytes_to_client));
    kv(out, "reason", e.reason);
    if (!e.condition.empty()) kv(out, "condition", e.condition);
    return out;
}

void SessionLog::roll(uint64_t now_ms) {
    if (now_ms - window_ms_ < 1000) return;
    window_ms_ = now_ms;
    routine_ = errors_ = 0;
}

void SessionLog::write(const SessionLogEntry& e, uint64_t now_ms) {
    roll(now_ms);
    bool keep = e.error ? errors_++ < kErrorRate : routine_++ < routine_rate_;
    if (!keep) {
        if (dropped_routine_ + dropped_errors_ == 0) dropped_since_ms_ = now_ms;
        ++(e.error ? dropped_errors_ : dropped_routine_);
        return;
    }
    if (e.error) log::warn(format(e));
    else log::info(format(e));
}

void SessionLog::flush_summary(uint64_t now_ms) {
    if (dropped_routine_ + dropped_errors_ == 0) return;
    auto line = "session_end lines not written in the last " +
                std::to_string((now_ms - dropped_since_ms_) / 1000 + 1) + " s: " +
                std::to_string(dropped_routine_) + " routine, " + std::to_string(dropped_errors_) +
                " errors (see the xmpp_shard_session_ends_total metric)";
    if (dropped_errors_ > 0) log::warn(line);
    else log::info(line);
    dropped_routine_ = dropped_errors_ = 0;
}

}  // namespace xs::session
