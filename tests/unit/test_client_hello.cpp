// ClientHelloSniffer against ClientHellos made by the real OpenSSL client (over memory BIOs), fed
// whole, byte by byte and in random splits; then truncated, garbage, oversize and malformed input
// (synthetic hellos built here byte by byte), and random mutations of real ones.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "routing/client_hello.hpp"

using namespace xs::routing;

namespace {

struct HelloOptions {
    std::string sni;
    std::vector<std::string> alpn;
    int max_version = 0;            // e.g. TLS1_2_VERSION; 0: OpenSSL's default (TLS 1.3)
    unsigned max_fragment = 0;      // SSL_set_max_send_fragment (>= 512): split into records
};

// The first flight of a real OpenSSL client: its ClientHello record(s).
std::string real_client_hello(std::string sni = {}, std::vector<std::string> alpn = {},
                              int max_version = 0, unsigned max_fragment = 0) {
    const HelloOptions o{std::move(sni), std::move(alpn), max_version, max_fragment};
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          SSL_CTX_free);
    REQUIRE(ctx);
    if (o.max_version) {
        SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
        if (o.max_version < TLS1_2_VERSION)
            SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
    }
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), rbio, wbio);
    SSL_set_connect_state(ssl.get());
    if (!o.sni.empty()) REQUIRE(SSL_set_tlsext_host_name(ssl.get(), o.sni.c_str()) == 1);
    if (!o.alpn.empty()) {
        std::string wire;
        for (const auto& p : o.alpn) wire += static_cast<char>(p.size()) + p;
        REQUIRE(SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned>(wire.size())) == 0);
    }
    if (o.max_fragment) REQUIRE(SSL_set_max_send_fragment(ssl.get(), o.max_fragment) == 1);
    int rc = SSL_do_handshake(ssl.get());
    REQUIRE(rc < 0);
    REQUIRE(SSL_get_error(ssl.get(), rc) == SSL_ERROR_WANT_READ);
    std::string out(static_cast<std::size_t>(BIO_ctrl_pending(wbio)), '\0');
    REQUIRE(BIO_read(wbio, out.data(), static_cast<int>(out.size())) == static_cast<int>(out.size()));
    return out;
}

struct Verdict {
    HelloStatus status;
    HelloReject reject;
    std::string detail;
    std::size_t seen;
    std::string sni;
    std::vector<std::string> alpn;
    std::vector<std::uint16_t> versions;
    std::size_t consumed;
    bool operator==(const Verdict&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Verdict& v) {
    os << "{status " << static_cast<int>(v.status) << ", " << to_string(v.reject) << ", '"
       << v.detail << "', seen " << v.seen << ", sni '" << v.sni << "', " << v.alpn.size()
       << " alpn, " << v.versions.size() << " versions, consumed " << v.consumed << "}";
    return os;
}

Verdict verdict(const ClientHelloSniffer& s) {
    const auto& i = s.info();
    bool done = s.status() == HelloStatus::Done;
    return {s.status(), s.status() == HelloStatus::Reject ? s.reject() : HelloReject::Malformed,
            s.detail(), s.bytes_seen(), done ? i.sni : "", done ? i.alpn : std::vector<std::string>{},
            done ? i.supported_versions : std::vector<std::uint16_t>{}, done ? i.consumed : 0};
}

Verdict feed_whole(std::string_view bytes, std::size_t max = 16384) {
    ClientHelloSniffer s(max);
    s.feed(bytes);
    return verdict(s);
}

// Feeds `bytes` in random pieces (1 .. 64 bytes, sometimes empty) chosen by `seed`.
Verdict feed_split(std::string_view bytes, unsigned seed, std::size_t max = 16384) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> piece(0, 64);
    ClientHelloSniffer s(max);
    std::size_t at = 0;
    while (at < bytes.size()) {
        std::size_t n = std::min(piece(rng), bytes.size() - at);
        s.feed(bytes.substr(at, n));
        at += n;
    }
    return verdict(s);
}

Verdict feed_bytewise(std::string_view bytes, std::size_t max = 16384) {
    ClientHelloSniffer s(max);
    for (char c : bytes) s.feed(std::string_view(&c, 1));
    return verdict(s);
}

void check_split_independent(const std::string& bytes, std::size_t max = 16384) {
    Verdict whole = feed_whole(bytes, max);
    CHECK(feed_bytewise(bytes, max) == whole);
    for (unsigned seed = 1; seed <= 50; ++seed) CHECK(feed_split(bytes, seed, max) == whole);
}

// Synthetic ClientHellos for the malformed cases: body pieces joined, then wrapped.
std::string u16(std::size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }
std::string vec8(const std::string& s) { return static_cast<char>(s.size()) + s; }
std::string vec16(const std::string& s) { return u16(s.size()) + s; }
std::string ext(unsigned type, const std::string& body) { return u16(type) + vec16(body); }

std::string hello_body(const std::string& extensions, bool with_exts = true,
                       const std::string& session_id = std::string(32, 's'),
                       const std::string& ciphers = u16(0x1301),
                       const std::string& compression = std::string(1, '\0')) {
    std::string b = u16(0x0303) + std::string(32, 'r') + vec8(session_id) + vec16(ciphers) +
                    vec8(compression);
    if (with_exts) b += vec16(extensions);
    return b;
}

std::string wrap(const std::string& body, unsigned type = 1) {
    std::string msg = static_cast<char>(type) + std::string(1, static_cast<char>(body.size() >> 16)) +
                      u16(body.size() & 0xFFFF) + body;
    return std::string("\x16\x03\x01", 3) + u16(msg.size()) + msg;
}

std::string sni_ext(const std::string& name) {
    return ext(0, vec16(std::string(1, '\0') + vec16(name)));
}
std::string alpn_ext(const std::vector<std::string>& names) {
    std::string l;
    for (const auto& n : names) l += vec8(n);
    return ext(16, vec16(l));
}

}  // namespace

TEST_CASE("client hello: a real TLS 1.3 ClientHello with SNI and ALPN", "[client_hello]") {
    std::string hello = real_client_hello("meet.example.com", {"xmpp-client"});
    ClientHelloSniffer s;
    REQUIRE(s.feed(hello) == HelloStatus::Done);
    const auto& i = s.info();
    CHECK(i.has_sni);
    CHECK(i.sni == "meet.example.com");
    CHECK(i.has_alpn);
    CHECK(i.alpn == std::vector<std::string>{"xmpp-client"});
    CHECK(i.offers_alpn("xmpp-client"));
    CHECK_FALSE(i.offers_alpn("h2"));
    CHECK(i.record_version == kTls10);
    CHECK(i.legacy_version == kTls12);
    CHECK(i.max_version() == kTls13);
    CHECK(std::find(i.supported_versions.begin(), i.supported_versions.end(), kTls13) !=
          i.supported_versions.end());
    CHECK(i.records == 1);
    CHECK(i.consumed == hello.size());
    CHECK(i.message_length + 5 == hello.size());
    CHECK(s.bytes_seen() == hello.size());
    // Finished: later bytes are ignored and the verdict stays.
    CHECK(s.feed("garbage") == HelloStatus::Done);
    CHECK(s.bytes_seen() == hello.size());
    check_split_independent(hello);
}

TEST_CASE("client hello: versions, no SNI, several ALPN names", "[client_hello]") {
    SECTION("TLS 1.2 at most: no supported_versions") {
        std::string hello = real_client_hello("a.example", {}, TLS1_2_VERSION);
        auto v = feed_whole(hello);
        REQUIRE(v.status == HelloStatus::Done);
        ClientHelloSniffer s;
        s.feed(hello);
        CHECK(s.info().supported_versions.empty());
        CHECK(s.info().legacy_version == kTls12);
        CHECK(s.info().max_version() == kTls12);
        CHECK_FALSE(s.info().has_alpn);
    }
    SECTION("TLS 1.1 at most (what the proxy must refuse) is still parsed") {
        std::string hello = real_client_hello("a.example", {}, TLS1_1_VERSION);
        ClientHelloSniffer s;
        REQUIRE(s.feed(hello) == HelloStatus::Done);
        CHECK(s.info().max_version() == kTls11);
        CHECK(s.info().sni == "a.example");
    }
    SECTION("no SNI, no ALPN") {
        ClientHelloSniffer s;
        REQUIRE(s.feed(real_client_hello()) == HelloStatus::Done);
        CHECK_FALSE(s.info().has_sni);
        CHECK(s.info().sni.empty());
        CHECK_FALSE(s.info().has_alpn);
    }
    SECTION("ALPN names keep the client's order") {
        ClientHelloSniffer s;
        REQUIRE(s.feed(real_client_hello("x.example", {"h2", "xmpp-client", "http/1.1"})) ==
                HelloStatus::Done);
        CHECK(s.info().alpn == std::vector<std::string>{"h2", "xmpp-client", "http/1.1"});
    }
    SECTION("SNI is reported as sent, not normalised") {
        ClientHelloSniffer s;
        REQUIRE(s.feed(real_client_hello("Meet.Example.COM")) == HelloStatus::Done);
        CHECK(s.info().sni == "Meet.Example.COM");
    }
}

TEST_CASE("client hello: a ClientHello spanning several records, in any split", "[client_hello]") {
    std::vector<std::string> many;
    for (int k = 0; k < 120; ++k) many.push_back("proto-" + std::to_string(1000 + k));
    many.push_back("xmpp-client");
    std::string hello = real_client_hello("big.example", many, 0, 512);
    ClientHelloSniffer s;
    REQUIRE(s.feed(hello) == HelloStatus::Done);
    CHECK(s.info().records >= 3);
    CHECK(s.info().alpn.size() == many.size());
    CHECK(s.info().offers_alpn("xmpp-client"));
    CHECK(s.info().sni == "big.example");
    CHECK(s.info().consumed == hello.size());
    check_split_independent(hello);

    // Every proper prefix needs more, whatever its split.
    for (std::size_t n = 0; n < hello.size(); n += 7) {
        INFO("prefix " << n);
        CHECK(feed_whole(std::string_view(hello).substr(0, n)).status == HelloStatus::NeedMore);
    }
}

TEST_CASE("client hello: the bound is exact", "[client_hello]") {
    std::string hello = real_client_hello("meet.example.com", {"xmpp-client"});
    CHECK(feed_whole(hello, hello.size()).status == HelloStatus::Done);
    auto v = feed_whole(hello, hello.size() - 1);
    CHECK(v.status == HelloStatus::Reject);
    CHECK(v.reject == HelloReject::TooLarge);
    check_split_independent(hello, hello.size() - 1);
    // Decided at the length field: 5 record header bytes + 4 handshake header bytes.
    auto small = feed_whole(hello, 100);
    CHECK(small.reject == HelloReject::TooLarge);
    CHECK(small.seen == 9);

    // A declared length beyond the bound is refused at once, before the body arrives.
    std::string huge = std::string("\x16\x03\x01\x40\x00\x01\x01\x00\x00", 9);
    auto h = feed_whole(huge);
    CHECK(h.reject == HelloReject::TooLarge);
    CHECK(h.seen == 9);
    CHECK(h.detail.find("(at byte 9)") != std::string::npos);

    // Records that never finish the message (a 3000-byte body sent one byte per record): refused
    // when its end can no longer lie within the bound.
    std::string endless("\x16\x03\x01\x00\x04\x01\x00\x0b\xb8", 9);
    for (int k = 0; k < 3000; ++k) endless += std::string("\x16\x03\x01\x00\x01\x00", 6);
    auto e = feed_whole(endless, 4096);
    CHECK(e.reject == HelloReject::TooLarge);
    CHECK(e.seen <= 4096);
}

TEST_CASE("client hello: not TLS, bad records, other handshake messages", "[client_hello]") {
    auto reject = [](std::string_view bytes) {
        auto v = feed_whole(bytes);
        CHECK(v.status == HelloStatus::Reject);
        return v;
    };
    CHECK(reject("<?xml version='1.0'?><stream:stream").reject == HelloReject::NotTls);
    CHECK(reject("GET / HTTP/1.1\r\n").reject == HelloReject::NotTls);
    CHECK(reject("<?xml").seen == 1);
    CHECK(reject(std::string("\x80\x2e\x01\x00\x02", 5)).reject == HelloReject::NotTls);  // SSLv2
    CHECK(reject(std::string("\x17\x03\x03\x00\x05hello", 10)).reject == HelloReject::NotTls);
    CHECK(reject(std::string("\x16\x02\x00", 3)).reject == HelloReject::BadRecord);
    auto empty = reject(std::string("\x16\x03\x01\x00\x00", 5));
    CHECK(empty.reject == HelloReject::BadRecord);
    CHECK(empty.seen == 5);
    CHECK(reject(std::string("\x16\x03\x01\x40\x01", 5)).reject == HelloReject::BadRecord);
    CHECK(reject(std::string("\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9)).reject ==
          HelloReject::NotClientHello);
    CHECK(reject(wrap(hello_body(""), 2)).reject == HelloReject::NotClientHello);

    // A record of another type between the records of a ClientHello.
    std::vector<std::string> many(60, "some-protocol-name");
    std::string multi = real_client_hello("x.example", many, 0, 512);
    std::size_t first_len = (static_cast<unsigned char>(multi[3]) << 8) | static_cast<unsigned char>(multi[4]);
    std::string alert = multi;
    alert[5 + first_len] = 0x15;
    auto a = reject(alert);
    CHECK(a.reject == HelloReject::BadRecord);
    CHECK(a.seen == 5 + first_len + 1);
    check_split_independent(alert);
}

TEST_CASE("client hello: malformed bodies and extensions", "[client_hello]") {
    std::string good_exts = sni_ext("a.example") + alpn_ext({"xmpp-client"}) +
                            ext(43, vec8(u16(0x7a7a) + u16(kTls13) + u16(kTls12)));
    SECTION("the synthetic baseline is accepted, GREASE ignored by max_version") {
        ClientHelloSniffer s;
        REQUIRE(s.feed(wrap(hello_body(good_exts))) == HelloStatus::Done);
        CHECK(s.info().sni == "a.example");
        CHECK(s.info().supported_versions.size() == 3);
        CHECK(is_grease(0x7a7a));
        CHECK_FALSE(is_grease(kTls13));
        CHECK(s.info().max_version() == kTls13);
        // No extensions block at all is allowed (old clients).
        CHECK(feed_whole(wrap(hello_body("", false))).status == HelloStatus::Done);
    }
    auto malformed = [](const std::string& bytes) {
        auto v = feed_whole(bytes);
        INFO(v.detail);
        CHECK(v.status == HelloStatus::Reject);
        CHECK(v.reject == HelloReject::Malformed);
        check_split_independent(bytes);
    };
    SECTION("fixed fields") {
        malformed(wrap(hello_body(good_exts, true, std::string(33, 's'))));
        malformed(wrap(hello_body(good_exts, true, std::string(32, 's'), std::string(3, '\1'))));
        malformed(wrap(hello_body(good_exts, true, std::string(32, 's'), "")));
        malformed(wrap(hello_body(good_exts, true, std::string(32, 's'), u16(0x1301), "")));
        malformed(wrap(std::string(20, '\3')));  // truncated
        malformed(wrap(""));
    }
    SECTION("extension block") {
        malformed(wrap(hello_body(good_exts) + "x"));            // bytes after the extensions
        std::string b = hello_body(good_exts);
        b.pop_back();                                           // block shorter than declared
        malformed(wrap(b));
        malformed(wrap(hello_body(good_exts + sni_ext("b.example"))));  // duplicate
        malformed(wrap(hello_body(u16(0x1234) + u16(10) + "short")));   // truncated extension
    }
    SECTION("server_name") {
        malformed(wrap(hello_body(sni_ext(""))));
        malformed(wrap(hello_body(sni_ext("a b.example"))));
        malformed(wrap(hello_body(sni_ext(std::string("a\0b", 3)))));
        malformed(wrap(hello_body(sni_ext("b\xC3\xBC.example"))));
        malformed(wrap(hello_body(sni_ext(std::string(256, 'a')))));
        malformed(wrap(hello_body(ext(0, ""))));
        malformed(wrap(hello_body(ext(0, vec16("")))));
        malformed(wrap(hello_body(ext(0, vec16(std::string(1, '\1') + vec16("a.example"))))));
        malformed(wrap(hello_body(ext(0, vec16(std::string(1, '\0') + vec16("a.example") +
                                               std::string(1, '\0') + vec16("b.example"))))));
        malformed(wrap(hello_body(ext(0, vec16(std::string(1, '\0') + vec16("a.example")) + "x"))));
        CHECK(feed_whole(wrap(hello_body(sni_ext(std::string(255, 'a'))))).status ==
              HelloStatus::Done);
    }
    SECTION("ALPN") {
        malformed(wrap(hello_body(alpn_ext({"xmpp-client", ""}))));
        malformed(wrap(hello_body(ext(16, vec16("")))));
        malformed(wrap(hello_body(ext(16, vec16(std::string(1, '\x09') + "short")))));
        malformed(wrap(hello_body(ext(16, ""))));
    }
    SECTION("supported_versions") {
        malformed(wrap(hello_body(ext(43, vec8(std::string(3, '\3'))))));
        malformed(wrap(hello_body(ext(43, vec8("")))));
        malformed(wrap(hello_body(ext(43, vec8(u16(kTls13)) + "x"))));
    }
}

TEST_CASE("client hello: mutations of real hellos give split-independent verdicts", "[client_hello]") {
    std::vector<std::string> seeds = {
        real_client_hello("meet.example.com", {"xmpp-client"}),
        real_client_hello("t.example", {"a", "b"}, TLS1_2_VERSION),
        real_client_hello("big.example", std::vector<std::string>(40, "name-of-a-protocol"), 0, 512),
    };
    std::mt19937 rng(12345);
    int done = 0, rejected = 0;
    for (int round = 0; round < 3000; ++round) {
        std::string m = seeds[static_cast<std::size_t>(round) % seeds.size()];
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng() & 0xFF);
        if (rng() % 4 == 0) m.resize(rng() % m.size());
        Verdict whole = feed_whole(m, 4096);
        Verdict split = feed_split(m, static_cast<unsigned>(round), 4096);
        REQUIRE(split == whole);
        if (whole.status == HelloStatus::Done) ++done;
        if (whole.status == HelloStatus::Reject) ++rejected;
        CHECK(whole.seen <= 4096);
    }
    CHECK(done > 0);
    CHECK(rejected > 0);
}

TEST_CASE("client hello: reject labels", "[client_hello]") {
    CHECK(to_string(HelloReject::NotTls) == "not-tls");
    CHECK(to_string(HelloReject::BadRecord) == "bad-record");
    CHECK(to_string(HelloReject::NotClientHello) == "not-client-hello");
    CHECK(to_string(HelloReject::TooLarge) == "too-large");
    CHECK(to_string(HelloReject::Malformed) == "malformed");
}
