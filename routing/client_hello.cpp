#include "client_hello.hpp"

#include <algorithm>

namespace xs::routing {

namespace {

constexpr unsigned char kHandshakeRecord = 22;
constexpr unsigned char kClientHelloType = 1;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecordPayload = 16384;  // 2^14 (RFC 8446 section 5.1)
constexpr std::size_t kMessageHeader = 4;         // type + 24-bit length

constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint16_t kExtSupportedVersions = 43;

// Bounds-checked big-endian reader over a complete buffer. Any read past the end sets `bad` and
// yields zeros / empty views, so parsing code checks `bad` once per step.
struct Reader {
    std::string_view data;
    std::size_t pos = 0;
    bool bad = false;

    std::size_t left() const { return data.size() - pos; }
    bool take(std::size_t n, std::string_view* out) {
        if (bad || n > left()) {
            bad = true;
            if (out) *out = {};
            return false;
        }
        if (out) *out = data.substr(pos, n);
        pos += n;
        return true;
    }
    unsigned u8() {
        std::string_view b;
        return take(1, &b) ? static_cast<unsigned char>(b[0]) : 0;
    }
    unsigned u16() {
        unsigned hi = u8();
        return (hi << 8) | u8();
    }
    // A length-prefixed vector: the prefix is `prefix` bytes (1 or 2).
    std::string_view vec(int prefix) {
        std::size_t n = prefix == 1 ? u8() : u16();
        std::string_view v;
        take(n, &v);
        return v;
    }
};

// RFC 6066 host_name: ASCII without controls or spaces (normalize_domain does the real check).
bool plausible_host_name(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7F;
    });
}

}  // namespace

std::uint16_t ClientHelloInfo::max_version() const {
    std::uint16_t best = 0;
    for (std::uint16_t v : supported_versions)
        if (!is_grease(v)) best = std::max(best, v);
    return supported_versions.empty() ? legacy_version : best;
}

bool ClientHelloInfo::offers_alpn(std::string_view protocol) const {
    return std::find(alpn.begin(), alpn.end(), protocol) != alpn.end();
}

std::string_view to_string(HelloReject r) {
    switch (r) {
        case HelloReject::NotTls: return "not-tls";
        case HelloReject::BadRecord: return "bad-record";
        case HelloReject::NotClientHello: return "not-client-hello";
        case HelloReject::TooLarge: return "too-large";
        case HelloReject::Malformed: return "malformed";
    }
    return "malformed";
}

ClientHelloSniffer::ClientHelloSniffer(std::size_t max_bytes) : max_(max_bytes) {}

void ClientHelloSniffer::fail(HelloReject r, std::string why) {
    status_ = HelloStatus::Reject;
    reject_ = r;
    detail_ = std::move(why) + " (at byte " + std::to_string(seen_) + ")";
    message_.clear();
    message_.shrink_to_fit();
}

HelloStatus ClientHelloSniffer::feed(std::string_view bytes) {
    std::size_t i = 0;
    while (status_ == HelloStatus::NeedMore && i < bytes.size()) {
        if (header_have_ < kRecordHeader) {
            header_[header_have_++] = static_cast<unsigned char>(bytes[i++]);
            ++seen_;
            on_record_header();
        } else {
            // Payload: copy up to the end of the record, the end of the message, or the next
            // point where the message header is checked (its type byte, then its length), so
            // that every verdict falls on the same byte for every split.
            std::size_t want = message_need_      ? message_need_ - message_.size()
                               : message_.empty() ? 1
                                                  : kMessageHeader - message_.size();
            std::size_t n = std::min({record_left_, bytes.size() - i, want});
            message_.append(bytes.data() + i, n);
            i += n;
            seen_ += n;
            record_left_ -= n;
            if (record_left_ == 0) header_have_ = 0;
            on_handshake_bytes();
        }
        if (status_ != HelloStatus::NeedMore) break;
        // The ClientHello can no longer end by byte max_: even if no further record header came,
        // its last byte would lie beyond. (seen_ + still is constant while payload is copied, so
        // the verdict falls on the same byte for every split.)
        std::size_t still = message_need_ ? message_need_ - message_.size()
                                          : kMessageHeader - message_.size();
        if (seen_ + still > max_)
            fail(HelloReject::TooLarge,
                 "the ClientHello does not fit in " + std::to_string(max_) + " bytes");
    }
    return status_;
}

void ClientHelloSniffer::on_record_header() {
    const bool first = info_.records == 0;
    switch (header_have_) {
        case 1:
            if (header_[0] != kHandshakeRecord) {
                if (first) fail(HelloReject::NotTls, "not a TLS handshake record");
                else fail(HelloReject::BadRecord, "a non-handshake record inside the ClientHello");
            }
            return;
        case 2:
            if (header_[1] != 3) fail(HelloReject::BadRecord, "record version major is not 3");
            return;
        case 3:
            if (first) info_.record_version = static_cast<std::uint16_t>(0x0300 | header_[2]);
            return;
        case 5: {
            std::size_t len = (std::size_t{header_[3]} << 8) | header_[4];
            if (len == 0) return fail(HelloReject::BadRecord, "empty handshake record");
            if (len > kMaxRecordPayload)
                return fail(HelloReject::BadRecord, "record longer than 16384 bytes");
            record_left_ = len;
            ++info_.records;
            return;
        }
        default:
            return;
    }
}

void ClientHelloSniffer::on_handshake_bytes() {
    if (message_need_ == 0) {
        if (!message_.empty() && static_cast<unsigned char>(message_[0]) != kClientHelloType)
            return fail(HelloReject::NotClientHello, "the first handshake message is not a ClientHello");
        if (message_.size() < kMessageHeader) return;
        auto b = [&](std::size_t k) { return std::size_t{static_cast<unsigned char>(message_[k])}; };
        std::size_t body = (b(1) << 16) | (b(2) << 8) | b(3);
        message_need_ = kMessageHeader + body;
        if (seen_ + body > max_) {
            return fail(HelloReject::TooLarge, "ClientHello of " + std::to_string(message_need_) +
                                                   " bytes exceeds " + std::to_string(max_));
        }
        message_.reserve(message_need_);
    }
    if (message_.size() == message_need_) parse_body();
}

void ClientHelloSniffer::parse_body() {
    Reader r{std::string_view(message_).substr(kMessageHeader)};
    auto malformed = [&](const char* why) { fail(HelloReject::Malformed, why); };

    info_.legacy_version = static_cast<std::uint16_t>(r.u16());
    r.take(32, nullptr);  // random
    std::string_view session_id = r.vec(1);
    std::string_view ciphers = r.vec(2);
    std::string_view compression = r.vec(1);
    if (r.bad) return malformed("truncated ClientHello");
    if (session_id.size() > 32) return malformed("session id longer than 32 bytes");
    if (ciphers.size() < 2 || ciphers.size() % 2 != 0) return malformed("bad cipher suite list");
    if (compression.empty()) return malformed("empty compression method list");

    if (r.left() > 0) {
        std::string_view exts = r.vec(2);
        if (r.bad || r.left() != 0)
            return malformed("the extensions do not fill the ClientHello exactly");
        Reader e{exts};
        std::vector<std::uint16_t> types;
        while (e.left() > 0) {
            auto type = static_cast<std::uint16_t>(e.u16());
            std::string_view body = e.vec(2);
            if (e.bad) return malformed("truncated extension");
            types.push_back(type);
            Reader x{body};
            if (type == kExtServerName) {
                std::string_view list = x.vec(2);
                if (x.bad || x.left() != 0 || list.empty()) return malformed("bad server_name list");
                Reader l{list};
                unsigned name_type = l.u8();
                std::string_view name = l.vec(2);
                if (l.bad || l.left() != 0 || name_type != 0)
                    return malformed("server_name must hold exactly one host_name");
                if (!plausible_host_name(name)) return malformed("server_name is not an ASCII host name");
                info_.has_sni = true;
                info_.sni.assign(name);
            } else if (type == kExtAlpn) {
                std::string_view list = x.vec(2);
                if (x.bad || x.left() != 0 || list.empty()) return malformed("bad ALPN list");
                Reader l{list};
                while (l.left() > 0) {
                    std::string_view name = l.vec(1);
                    if (l.bad || name.empty()) return malformed("bad ALPN protocol name");
                    info_.alpn.emplace_back(name);
                }
                info_.has_alpn = true;
            } else if (type == kExtSupportedVersions) {
                std::string_view list = x.vec(1);
                if (x.bad || x.left() != 0 || list.empty() || list.size() % 2 != 0)
                    return malformed("bad supported_versions list");
                Reader l{list};
                while (l.left() > 0) info_.supported_versions.push_back(static_cast<std::uint16_t>(l.u16()));
            }
        }
        std::sort(types.begin(), types.end());
        if (std::adjacent_find(types.begin(), types.end()) != types.end())
            return malformed("an extension appears twice");
    }

    info_.message_length = message_need_;
    info_.consumed = seen_;
    status_ = HelloStatus::Done;
    message_.clear();
    message_.shrink_to_fit();
}

}  // namespace xs::routing
