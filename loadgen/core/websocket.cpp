#include "websocket.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cctype>
#include <cstring>

#include "http_fields.hpp"
#include "sasl.hpp"
#include "xml_stream.hpp"

namespace xs::loadgen::ws {

using http::has_token;
using http::lower;
using http::trim;

namespace {

std::uint32_t random_u32() {
    std::uint32_t x = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&x), sizeof x) != 1) x = 0x5a5a5a5au;
    return x;
}

}  // namespace

std::string accept_key(std::string_view key) {
    std::string s(key);
    s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
    return sasl::base64_encode(std::string_view(reinterpret_cast<const char*>(md), sizeof md));
}

std::string make_key() {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        for (std::size_t i = 0; i < sizeof b; ++i) b[i] = static_cast<unsigned char>(random_u32() ^ i);
    return sasl::base64_encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

std::string with_query(std::string_view path, std::string_view param, std::string_view value) {
    std::string out(path);
    if (param.empty() || value.empty()) return out;
    out += path.find('?') == std::string_view::npos ? '?' : '&';
    out += param;
    out += '=';
    static const char* hex = "0123456789ABCDEF";
    for (unsigned char c : value) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string upgrade_request(std::string_view target, std::string_view host, std::string_view key) {
    std::string s = "GET ";
    s += target;
    s += " HTTP/1.1\r\nHost: ";
    s += host;
    s += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    s += key;
    s += "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
    return s;
}

UpgradeReader::Result UpgradeReader::fail(std::string kind, std::string msg) {
    kind_ = std::move(kind);
    error_ = std::move(msg);
    done_ = true;
    return Result::Error;
}

UpgradeReader::Result UpgradeReader::feed(std::string_view data, std::string_view key) {
    if (done_) return error_.empty() ? Result::Ok : Result::Error;
    std::size_t old = buf_.size();
    buf_.append(data);
    // Search from a little before the old end: the terminator may straddle the split.
    std::size_t from = old >= 3 ? old - 3 : 0;
    std::size_t end = buf_.find("\r\n\r\n", from);
    if (end == std::string::npos) {
        if (buf_.size() > max_)
            return fail("websocket:handshake", "response head over " + std::to_string(max_) + " bytes");
        return Result::NeedMore;
    }
    if (end > max_)
        return fail("websocket:handshake", "response head over " + std::to_string(max_) + " bytes");
    rest_ = buf_.substr(end + 4);
    std::string_view head(buf_.data(), end);
    std::size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    // HTTP/1.1 101 Switching Protocols
    if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ' ||
        !std::isdigit(static_cast<unsigned char>(line[9])) || !std::isdigit(static_cast<unsigned char>(line[10])) ||
        !std::isdigit(static_cast<unsigned char>(line[11])) || (line.size() > 12 && line[12] != ' '))
        return fail("websocket:handshake", "bad status line: " + std::string(line.substr(0, 80)));
    status_ = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status_ != 101) return fail("http:" + std::to_string(status_), std::string(line));
    bool upgrade = false, connection = false, accept_ok = false, accept_seen = false, proto_ok = true;
    std::string want = accept_key(key);
    std::size_t p = eol == std::string_view::npos ? head.size() : eol + 2;
    while (p < head.size()) {
        std::size_t e = head.find("\r\n", p);
        if (e == std::string_view::npos) e = head.size();
        std::string_view h = head.substr(p, e - p);
        p = e + 2;
        std::size_t colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return fail("websocket:handshake", "bad header line: " + std::string(h.substr(0, 80)));
        std::string name = lower(trim(h.substr(0, colon)));
        std::string_view value = trim(h.substr(colon + 1));
        if (name == "upgrade") upgrade = has_token(value, "websocket");
        else if (name == "connection") connection = has_token(value, "upgrade");
        else if (name == "sec-websocket-accept") {
            accept_seen = true;
            accept_ok = value == want;
        } else if (name == "sec-websocket-protocol") proto_ok = lower(value) == "xmpp";
    }
    if (!upgrade) return fail("websocket:handshake", "101 without Upgrade: websocket");
    if (!connection) return fail("websocket:handshake", "101 without Connection: Upgrade");
    if (!accept_seen) return fail("websocket:handshake", "101 without Sec-WebSocket-Accept");
    if (!accept_ok) return fail("websocket:accept", "Sec-WebSocket-Accept does not match the key");
    if (!proto_ok) return fail("websocket:handshake", "Sec-WebSocket-Protocol is not xmpp");
    done_ = true;
    buf_.clear();
    return Result::Ok;
}

std::string encode_frame(Opcode op, std::string_view payload, std::uint32_t mask) {
    std::string f;
    f.reserve(payload.size() + 14);
    f += static_cast<char>(0x80 | static_cast<std::uint8_t>(op));
    std::size_t n = payload.size();
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else if (n <= 0xffff) {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>((n >> 8) & 0xff);
        f += static_cast<char>(n & 0xff);
    } else {
        f += static_cast<char>(0x80 | 127);
        for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
    }
    unsigned char m[4] = {static_cast<unsigned char>(mask >> 24), static_cast<unsigned char>(mask >> 16),
                          static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
    f.append(reinterpret_cast<const char*>(m), 4);
    std::size_t start = f.size();
    f.append(payload);
    for (std::size_t i = 0; i < n; ++i) f[start + i] = static_cast<char>(f[start + i] ^ static_cast<char>(m[i & 3]));
    return f;
}

std::string encode_client_frame(Opcode op, std::string_view payload) {
    return encode_frame(op, payload, random_u32());
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string s;
    s += static_cast<char>(code >> 8);
    s += static_cast<char>(code & 0xff);
    s += reason;
    return s;
}

void FrameDecoder::feed(const char* data, std::size_t n) {
    if (failed_) return;
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(data, n);
}

void FrameDecoder::reset() {
    buf_.clear();
    pos_ = 0;
    message_.clear();
    in_message_ = false;
    payload_.clear();
    close_code_ = 0;
    error_.clear();
    failed_ = false;
}

FrameDecoder::Event FrameDecoder::fail(std::string msg) {
    failed_ = true;
    error_ = std::move(msg);
    return Event::Error;
}

FrameDecoder::Event FrameDecoder::next() {
    if (failed_) return Event::Error;
    for (;;) {
        std::size_t avail = buf_.size() - pos_;
        if (avail < 2) return Event::None;
        auto b0 = static_cast<unsigned char>(buf_[pos_]);
        auto b1 = static_cast<unsigned char>(buf_[pos_ + 1]);
        bool fin = b0 & 0x80;
        if (b0 & 0x70) return fail("reserved bits set");
        auto op = static_cast<Opcode>(b0 & 0x0f);
        bool control = (b0 & 0x08) != 0;
        if (b1 & 0x80) return fail("masked server frame");
        std::uint64_t len = b1 & 0x7f;
        std::size_t hdr = 2;
        if (len == 126) {
            if (avail < 4) return Event::None;
            len = (static_cast<std::uint64_t>(static_cast<unsigned char>(buf_[pos_ + 2])) << 8) |
                  static_cast<unsigned char>(buf_[pos_ + 3]);
            hdr = 4;
        } else if (len == 127) {
            if (avail < 10) return Event::None;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf_[pos_ + 2 + static_cast<std::size_t>(i)]);
            hdr = 10;
            if (len >> 63) return fail("frame length with the top bit set");
        }
        switch (op) {
            case Opcode::Continuation:
                if (!in_message_) return fail("continuation frame without a message");
                break;
            case Opcode::Text:
            case Opcode::Binary:
                if (in_message_) return fail("new data frame inside a fragmented message");
                break;
            case Opcode::Close:
            case Opcode::Ping:
            case Opcode::Pong:
                if (!fin) return fail("fragmented control frame");
                if (len > 125) return fail("control frame over 125 bytes");
                break;
            default:
                return fail("unknown opcode " + std::to_string(static_cast<int>(op)));
        }
        if (!control && message_.size() + len > max_)
            return fail("message over " + std::to_string(max_) + " bytes");
        if (avail < hdr + len) return Event::None;
        std::string_view body(buf_.data() + pos_ + hdr, static_cast<std::size_t>(len));
        pos_ += hdr + static_cast<std::size_t>(len);
        if (control) {
            payload_.assign(body);
            if (op == Opcode::Ping) return Event::Ping;
            if (op == Opcode::Pong) return Event::Pong;
            close_code_ = 0;
            if (payload_.size() == 1) return fail("close frame with a one-byte payload");
            if (payload_.size() >= 2) {
                close_code_ = static_cast<std::uint16_t>((static_cast<unsigned char>(payload_[0]) << 8) |
                                                         static_cast<unsigned char>(payload_[1]));
                payload_.erase(0, 2);
            }
            return Event::Close;
        }
        if (op != Opcode::Continuation) {
            in_message_ = true;
            message_op_ = op;
            message_.clear();
        }
        message_.append(body);
        if (!fin) continue;
        in_message_ = false;
        payload_.swap(message_);
        message_.clear();
        return message_op_ == Opcode::Text ? Event::Text : Event::Binary;
    }
}

std::string open_element(std::string_view domain) {
    std::string s = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='";
    s += xml::escape(domain);
    s += "' version='1.0'/>";
    return s;
}

std::string close_element() { return "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"; }

std::string with_client_ns(std::string_view e) {
    std::size_t name_end = 1;
    while (name_end < e.size() && e[name_end] != ' ' && e[name_end] != '>' && e[name_end] != '/' &&
           e[name_end] != '\t' && e[name_end] != '\r' && e[name_end] != '\n')
        ++name_end;
    std::string_view name = e.substr(0, name_end);
    if (name != "<iq" && name != "<message" && name != "<presence") return std::string(e);
    std::size_t tag_end = e.find('>');
    std::string_view tag = e.substr(0, tag_end);
    if (tag.find(" xmlns=") != std::string_view::npos) return std::string(e);
    std::string out;
    out.reserve(e.size() + 24);
    out += name;
    out += " xmlns='jabber:client'";
    out += e.substr(name_end);
    return out;
}

Framing classify(std::string_view m) {
    while (!m.empty() && std::isspace(static_cast<unsigned char>(m.front()))) m.remove_prefix(1);
    // An XML declaration may precede the element.
    if (m.starts_with("<?")) {
        auto e = m.find("?>");
        if (e != std::string_view::npos) m.remove_prefix(e + 2);
        while (!m.empty() && std::isspace(static_cast<unsigned char>(m.front()))) m.remove_prefix(1);
    }
    auto is = [&](std::string_view name) {
        if (!m.starts_with(name) || m.size() <= name.size()) return false;
        char c = m[name.size()];
        return c == ' ' || c == '/' || c == '>' || c == '\t' || c == '\r' || c == '\n';
    };
    if (is("<open")) return Framing::Open;
    if (is("<close")) return Framing::Close;
    return Framing::Stanza;
}

}  // namespace xs::loadgen::ws
