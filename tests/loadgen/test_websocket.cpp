#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "core/websocket.hpp"

using namespace xs::loadgen::ws;

namespace {

// A server frame (unmasked), optionally not FIN; length in the 7-bit, 16-bit or 64-bit form.
std::string server_frame(Opcode op, std::string_view payload, bool fin = true, int force_len_bytes = 0) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | static_cast<int>(op));
    std::size_t n = payload.size();
    if (force_len_bytes == 8 || (force_len_bytes == 0 && n > 0xffff)) {
        f += static_cast<char>(127);
        for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
    } else if (force_len_bytes == 2 || (force_len_bytes == 0 && n >= 126)) {
        f += static_cast<char>(126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xff);
    } else {
        f += static_cast<char>(n);
    }
    f += payload;
    return f;
}

struct Ev {
    FrameDecoder::Event e;
    std::string payload;
    std::uint16_t code = 0;
    bool operator==(const Ev& o) const { return e == o.e && payload == o.payload && code == o.code; }
};

std::vector<Ev> drain(FrameDecoder& d) {
    std::vector<Ev> out;
    for (;;) {
        auto e = d.next();
        if (e == FrameDecoder::Event::None) return out;
        out.push_back({e, e == FrameDecoder::Event::Error ? d.error() : d.payload(),
                       e == FrameDecoder::Event::Close ? d.close_code() : std::uint16_t(0)});
        if (e == FrameDecoder::Event::Error) return out;
    }
}

std::vector<Ev> decode_split(const std::string& bytes, const std::vector<std::size_t>& cuts) {
    FrameDecoder d;
    std::vector<Ev> out;
    std::size_t prev = 0;
    for (std::size_t c : cuts) {
        d.feed(bytes.data() + prev, c - prev);
        auto ev = drain(d);
        out.insert(out.end(), ev.begin(), ev.end());
        prev = c;
    }
    d.feed(bytes.data() + prev, bytes.size() - prev);
    auto ev = drain(d);
    out.insert(out.end(), ev.begin(), ev.end());
    return out;
}

// Unmasks a client frame; returns {opcode, payload}; checks FIN and the mask bit.
std::pair<int, std::string> unmask(const std::string& f) {
    REQUIRE(f.size() >= 6);
    auto b0 = static_cast<unsigned char>(f[0]), b1 = static_cast<unsigned char>(f[1]);
    REQUIRE((b0 & 0x80) != 0);
    REQUIRE((b1 & 0x80) != 0);
    std::uint64_t n = b1 & 0x7f;
    std::size_t p = 2;
    if (n == 126) {
        n = (static_cast<unsigned char>(f[2]) << 8) | static_cast<unsigned char>(f[3]);
        p = 4;
    } else if (n == 127) {
        n = 0;
        for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(f[2 + static_cast<std::size_t>(i)]);
        p = 10;
    }
    std::string mask = f.substr(p, 4);
    p += 4;
    REQUIRE(f.size() == p + n);
    std::string out = f.substr(p);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(out[i] ^ mask[i & 3]);
    return {b0 & 0x0f, out};
}

}  // namespace

TEST_CASE("Sec-WebSocket-Accept of the RFC 6455 example key", "[websocket]") {
    // RFC 6455 sections 1.3 and 4.2.2 (the often quoted "s3pPLMBiTxaQ9kxGmrzo+xOo4YQ=" is not
    // base64(SHA-1(key + GUID)): Python's hashlib agrees with this one).
    CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    std::string k1 = make_key(), k2 = make_key();
    CHECK(k1.size() == 24);
    CHECK(k1 != k2);
}

TEST_CASE("the upgrade request carries the target, Host and the WebSocket headers", "[websocket]") {
    CHECK(with_query("/xmpp-websocket", "room", "r1") == "/xmpp-websocket?room=r1");
    CHECK(with_query("/acme/xmpp-websocket", "room", "a b&c") == "/acme/xmpp-websocket?room=a%20b%26c");
    CHECK(with_query("/xmpp-websocket?x=1", "room", "r") == "/xmpp-websocket?x=1&room=r");
    CHECK(with_query("/xmpp-websocket", "", "r") == "/xmpp-websocket");
    CHECK(with_query("/xmpp-websocket", "room", "") == "/xmpp-websocket");
    std::string r = upgrade_request("/xmpp-websocket?room=r1", "meet.example.com", "KEY==");
    CHECK(r.starts_with("GET /xmpp-websocket?room=r1 HTTP/1.1\r\n"));
    CHECK(r.find("\r\nHost: meet.example.com\r\n") != std::string::npos);
    CHECK(r.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
    CHECK(r.find("\r\nConnection: Upgrade\r\n") != std::string::npos);
    CHECK(r.find("\r\nSec-WebSocket-Key: KEY==\r\n") != std::string::npos);
    CHECK(r.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
    CHECK(r.find("\r\nSec-WebSocket-Protocol: xmpp\r\n") != std::string::npos);
    CHECK(r.ends_with("\r\n\r\n"));
}

TEST_CASE("the 101 response is checked in every split", "[websocket]") {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    const std::string ok =
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
    const std::string frames = server_frame(Opcode::Text, "<open/>");
    const std::string all = ok + frames;
    for (std::size_t cut = 0; cut <= all.size(); ++cut) {
        UpgradeReader u;
        auto r1 = u.feed(std::string_view(all).substr(0, cut), key);
        if (cut < ok.size()) {
            REQUIRE(r1 == UpgradeReader::Result::NeedMore);
            REQUIRE(u.feed(std::string_view(all).substr(cut), key) == UpgradeReader::Result::Ok);
        } else {
            REQUIRE(r1 == UpgradeReader::Result::Ok);
            u.rest() += all.substr(cut);
        }
        CHECK(u.status() == 101);
        CHECK(u.rest() == frames);
    }
}

TEST_CASE("bad upgrade responses are refused by kind", "[websocket]") {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    auto check = [&](const std::string& resp, const std::string& kind) {
        UpgradeReader u;
        REQUIRE(u.feed(resp, key) == UpgradeReader::Result::Error);
        CHECK(u.kind() == kind);
    };
    check("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "http:503");
    check("HTTP/1.1 501 Not Implemented\r\n\r\n", "http:501");
    check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", "websocket:accept");
    check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
          "websocket:handshake");
    check("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "websocket:handshake");
    check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
          "websocket:handshake");
    check("SSH-2.0-OpenSSH\r\n\r\n", "websocket:handshake");
    UpgradeReader small(64);
    CHECK(small.feed(std::string(100, 'x'), key) == UpgradeReader::Result::Error);
    CHECK(small.kind() == "websocket:handshake");
}

TEST_CASE("client frames are masked, FIN, with the three length forms", "[websocket]") {
    std::string f = encode_frame(Opcode::Text, "Hello", 0x37fa213d);
    // RFC 6455 5.7: a masked "Hello".
    CHECK(f == std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
    for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 200000u}) {
        std::string payload(n, 'a');
        for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>('a' + i % 26);
        auto [op, out] = unmask(encode_client_frame(Opcode::Text, payload));
        CHECK(op == 1);
        CHECK(out == payload);
    }
    auto [op, out] = unmask(encode_client_frame(Opcode::Close, close_payload(1000, "bye")));
    CHECK(op == 8);
    CHECK(out == std::string("\x03\xe8" "bye", 5));
}

TEST_CASE("server frames decode the same in every split", "[websocket]") {
    std::string big(70000, 'x');
    std::string mid(300, 'y');
    std::string bytes = server_frame(Opcode::Text, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>") +
                        server_frame(Opcode::Text, "<message>", false) +
                        server_frame(Opcode::Ping, "p1") +  // control frame inside a fragmented message
                        server_frame(Opcode::Continuation, "<body>hi</body>", false) +
                        server_frame(Opcode::Continuation, "</message>") +
                        server_frame(Opcode::Text, mid) + server_frame(Opcode::Text, big) +
                        server_frame(Opcode::Text, "short", true, 8) +
                        server_frame(Opcode::Pong, "") +
                        server_frame(Opcode::Close, close_payload(1001, "going away"));
    std::vector<Ev> want = {
        {FrameDecoder::Event::Text, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"},
        {FrameDecoder::Event::Ping, "p1"},
        {FrameDecoder::Event::Text, "<message><body>hi</body></message>"},
        {FrameDecoder::Event::Text, mid},
        {FrameDecoder::Event::Text, big},
        {FrameDecoder::Event::Text, "short"},
        {FrameDecoder::Event::Pong, ""},
        {FrameDecoder::Event::Close, "going away", 1001},
    };
    CHECK(decode_split(bytes, {}) == want);
    // Every single cut of the head part (all the frames but the big one's middle) and byte by byte.
    std::size_t head = bytes.size() - big.size() - 40;
    for (std::size_t c = 1; c < bytes.size(); c += (c < 400 || c > head) ? 1 : 997)
        REQUIRE(decode_split(bytes, {c}) == want);
    std::vector<std::size_t> every;
    for (std::size_t c = 1; c < bytes.size(); ++c) every.push_back(c);
    CHECK(decode_split(bytes, every) == want);
    std::mt19937 rng(7);
    for (int t = 0; t < 200; ++t) {
        std::vector<std::size_t> cuts;
        std::size_t p = 0;
        while (true) {
            p += 1 + rng() % 300;
            if (p >= bytes.size()) break;
            cuts.push_back(p);
        }
        REQUIRE(decode_split(bytes, cuts) == want);
    }
}

TEST_CASE("protocol violations and oversized messages are errors", "[websocket]") {
    auto err = [](const std::string& bytes, std::size_t max = 1 << 20) {
        FrameDecoder d(max);
        d.feed(bytes);
        auto ev = drain(d);
        return !ev.empty() && ev.back().e == FrameDecoder::Event::Error;
    };
    std::string masked = encode_frame(Opcode::Text, "x", 1);
    CHECK(err(masked));
    CHECK(err(std::string("\xc1\x01x", 3)));                                 // RSV1
    CHECK(err(std::string("\x83\x01x", 3)));                                 // opcode 3
    CHECK(err(server_frame(Opcode::Continuation, "x")));                     // no message
    CHECK(err(server_frame(Opcode::Text, "a", false) + server_frame(Opcode::Text, "b")));
    CHECK(err(server_frame(Opcode::Ping, "x", false)));                      // fragmented control
    CHECK(err(server_frame(Opcode::Ping, std::string(126, 'x'))));           // long control
    CHECK(err(server_frame(Opcode::Close, "x")));                            // 1-byte close
    CHECK(err(server_frame(Opcode::Text, std::string(101, 'x')), 100));
    // Fragments adding up past the bound; detected from the header, before the payload.
    CHECK(err(server_frame(Opcode::Text, std::string(60, 'x'), false) +
              server_frame(Opcode::Continuation, std::string(60, 'x')).substr(0, 2), 100));
    CHECK(!err(server_frame(Opcode::Text, std::string(100, 'x')), 100));
    // A 64-bit length beyond the bound fails without waiting for the bytes.
    FrameDecoder d(1000);
    d.feed(std::string("\x81\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 10));
    CHECK(d.next() == FrameDecoder::Event::Error);
    CHECK(d.next() == FrameDecoder::Event::Error);
}

TEST_CASE("RFC 7395 framing elements", "[websocket]") {
    CHECK(open_element("meet.example.com") ==
          "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='meet.example.com' version='1.0'/>");
    CHECK(close_element() == "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    CHECK(classify("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='x' version='1.0'/>") == Framing::Open);
    CHECK(classify("<?xml version='1.0'?>\n<open/>") == Framing::Open);
    CHECK(classify(" <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>") == Framing::Close);
    CHECK(classify("<close/>") == Framing::Close);
    CHECK(classify("<opening/>") == Framing::Stanza);
    CHECK(classify("<message/>") == Framing::Stanza);
    CHECK(classify("<stream:features/>") == Framing::Stanza);
}

TEST_CASE("stanzas in frames carry jabber:client", "[websocket]") {
    CHECK(with_client_ns("<iq type='set' id='b'><bind/></iq>") ==
          "<iq xmlns='jabber:client' type='set' id='b'><bind/></iq>");
    CHECK(with_client_ns("<presence/>") == "<presence xmlns='jabber:client'/>");
    CHECK(with_client_ns("<message to='a'><body>x xmlns='y'</body></message>") ==
          "<message xmlns='jabber:client' to='a'><body>x xmlns='y'</body></message>");
    CHECK(with_client_ns("<message xmlns='jabber:client' to='a'/>") == "<message xmlns='jabber:client' to='a'/>");
    CHECK(with_client_ns("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>") ==
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK(with_client_ns("<iqx/>") == "<iqx/>");
}
