// XMPP over WebSocket, client side, without sockets: the HTTP/1.1 upgrade request (RFC 6455
// section 4.1), the check of the server's 101 response and Sec-WebSocket-Accept, masked client
// frames, an incremental bounded decoder of server frames (text messages possibly fragmented
// into continuation frames, ping, pong, close), and the RFC 7395 framing elements <open/> and
// <close/>. tests/loadgen/test_websocket.cpp checks every split of the server's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xs::loadgen::ws {

inline constexpr std::string_view kNsFraming = "urn:ietf:params:xml:ns:xmpp-framing";

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), RFC 6455 section 4.2.2.
std::string accept_key(std::string_view key);
// A fresh Sec-WebSocket-Key: base64 of 16 random bytes (OpenSSL RAND_bytes).
std::string make_key();

// "/xmpp-websocket" + "?room=R" (or "&room=R" when the path has a query already), the value
// percent-encoded. An empty param or value leaves the path alone.
std::string with_query(std::string_view path, std::string_view param, std::string_view value);

// GET `target` with Host, Upgrade, Connection, Sec-WebSocket-Key, -Version: 13, -Protocol: xmpp.
std::string upgrade_request(std::string_view target, std::string_view host, std::string_view key);

// Reads the server's response head, bytes in any split. Bounded: a head longer than
// max_head_bytes is an error.
class UpgradeReader {
public:
    enum class Result { NeedMore, Ok, Error };
    explicit UpgradeReader(std::size_t max_head_bytes = 16 * 1024) : max_(max_head_bytes) {}

    // Appends bytes; once the head is complete, checks it against the key sent: status 101,
    // Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Accept, Sec-WebSocket-Protocol
    // xmpp (when present). After Ok, rest() holds the bytes that followed the head (frames).
    Result feed(std::string_view data, std::string_view key);

    int status() const { return status_; }          // 0 until a status line was read
    const std::string& error() const { return error_; }
    // "http:<status>" for a non-101 answer, "websocket:handshake" otherwise.
    const std::string& kind() const { return kind_; }
    std::string& rest() { return rest_; }

private:
    Result fail(std::string kind, std::string msg);
    std::size_t max_;
    std::string buf_;
    std::string rest_;
    int status_ = 0;
    std::string error_;
    std::string kind_;
    bool done_ = false;
};

enum class Opcode : std::uint8_t { Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 };

// One frame, FIN set, masked with `mask` (a client must mask every frame, RFC 6455 5.3).
std::string encode_frame(Opcode op, std::string_view payload, std::uint32_t mask);
// The same with a random mask.
std::string encode_client_frame(Opcode op, std::string_view payload);
// A close frame's payload: the status code, big endian, then the reason.
std::string close_payload(std::uint16_t code, std::string_view reason = {});

// Incremental decoder of the server's frames. next() yields whole messages: a text message
// (its fragments joined), a ping, a pong or a close; every split of the input gives the same
// events. Bounded: a message (or control payload) over max_message_bytes is an error, as are
// masked server frames, reserved bits, unknown opcodes, fragmented or long (>125) control
// frames, a continuation without a start, a new data frame inside a fragmented message.
class FrameDecoder {
public:
    enum class Event { None, Text, Binary, Ping, Pong, Close, Error };
    explicit FrameDecoder(std::size_t max_message_bytes = 1 << 20) : max_(max_message_bytes) {}

    void feed(const char* data, std::size_t n);
    void feed(std::string_view s) { feed(s.data(), s.size()); }
    Event next();

    // The payload of the last Text, Binary, Ping, Pong or Close event.
    std::string& payload() { return payload_; }
    // For Close: the status code (0 if none) and the reason.
    std::uint16_t close_code() const { return close_code_; }
    const std::string& error() const { return error_; }
    std::size_t buffered() const { return buf_.size() - pos_; }
    void reset();

private:
    Event fail(std::string msg);
    std::size_t max_;
    std::string buf_;
    std::size_t pos_ = 0;
    std::string message_;     // the fragments of a text/binary message so far
    bool in_message_ = false;
    Opcode message_op_ = Opcode::Text;
    std::string payload_;
    std::uint16_t close_code_ = 0;
    std::string error_;
    bool failed_ = false;
};

// RFC 7395 framing elements.
std::string open_element(std::string_view domain);
std::string close_element();
// RFC 7395 3.3.3: every stanza in a frame carries its namespace (the <open/> declares none;
// Prosody answers an <iq> without one with unsupported-stanza-type). Adds
// xmlns='jabber:client' to an iq, message or presence start tag that has no xmlns; anything
// else comes back as it was.
std::string with_client_ns(std::string_view element);
// What a server's text message is, judged by its first element's name.
enum class Framing { Open, Close, Stanza };
Framing classify(std::string_view message);

}  // namespace xs::loadgen::ws
