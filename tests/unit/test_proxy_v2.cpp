// PROXY protocol v2 headers checked byte for byte against the layout of haproxy's
// proxy-protocol.txt section 2.2 (expected bytes written out by hand from the specification).
#include <catch2/catch.hpp>
#include <string>

#include "routing/proxy_v2.hpp"

using namespace xs::routing::proxy_v2;

namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int v : b) s.push_back(static_cast<char>(v));
    return s;
}

const std::string kSig = bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

Header tcp4() {
    Header h;
    h.source = Endpoint::v4({192, 0, 2, 1}, 56324);        // 0xDC04
    h.destination = Endpoint::v4({198, 51, 100, 7}, 5222);  // 0x1466
    return h;
}

// Walks the TLVs after the address block; returns false if their lengths do not add up.
bool tlvs_add_up(const std::string& hdr, std::size_t addr_len) {
    std::size_t len = (static_cast<unsigned char>(hdr[14]) << 8) | static_cast<unsigned char>(hdr[15]);
    if (hdr.size() != 16 + len) return false;
    std::size_t at = 16 + addr_len;
    while (at < hdr.size()) {
        if (at + 3 > hdr.size()) return false;
        std::size_t n = (static_cast<unsigned char>(hdr[at + 1]) << 8) | static_cast<unsigned char>(hdr[at + 2]);
        at += 3 + n;
    }
    return at == hdr.size();
}

}  // namespace

TEST_CASE("proxy v2: the signature constant", "[proxy_v2]") {
    CHECK(kSignature.size() == 12);
    CHECK(std::string(kSignature) == kSig);
}

TEST_CASE("proxy v2: TCP over IPv4, no TLVs", "[proxy_v2]") {
    auto h = build(tcp4());
    REQUIRE(h);
    CHECK(*h == kSig + bytes({0x21, 0x11, 0x00, 0x0C,  //
                              192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x14, 0x66}));
    CHECK(h->size() == 28);
}

TEST_CASE("proxy v2: TCP over IPv6, no TLVs", "[proxy_v2]") {
    Header h;
    h.source = Endpoint::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 1234);
    h.destination = Endpoint::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 5223);
    auto out = build(h);
    REQUIRE(out);
    CHECK(*out == kSig + bytes({0x21, 0x21, 0x00, 0x24,                                   //
                                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,  //
                                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,  //
                                0x04, 0xD2, 0x14, 0x67}));
    CHECK(out->size() == 16 + 36);
}

TEST_CASE("proxy v2: mixed families are sent as IPv6 with an IPv4-mapped address", "[proxy_v2]") {
    Header h;
    h.source = Endpoint::v4({203, 0, 113, 9}, 40000);  // 0x9C40
    h.destination = Endpoint::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 5222);
    auto out = build(h);
    REQUIRE(out);
    CHECK(*out == kSig + bytes({0x21, 0x21, 0x00, 0x24,                                  //
                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 203, 0, 113, 9,  //
                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,            //
                                0x9C, 0x40, 0x14, 0x66}));
    CHECK(Endpoint::v4({1, 2, 3, 4}, 7).as_v6().port == 7);
}

TEST_CASE("proxy v2: LOCAL (health checks) has no addresses", "[proxy_v2]") {
    Header h = tcp4();
    h.local = true;
    CHECK(build(h) == kSig + bytes({0x20, 0x00, 0x00, 0x00}));
    h.authority = std::string("a");  // not = "a": GCC 12 -O3 false -Wrestrict
    CHECK(build(h) == kSig + bytes({0x20, 0x00, 0x00, 0x04, 0x02, 0x00, 0x01, 'a'}));
}

TEST_CASE("proxy v2: AUTHORITY and SSL TLVs of a terminated TLS session", "[proxy_v2]") {
    Header h = tcp4();
    h.authority = "meet.example.com";  // 16 bytes
    SslInfo ssl;
    ssl.verify = 1;
    ssl.version = "TLSv1.3";                  // 7 bytes
    ssl.cipher = "TLS_AES_128_GCM_SHA256";    // 22 bytes
    h.ssl = ssl;
    auto out = build(h);
    REQUIRE(out);
    std::string expect = kSig + bytes({0x21, 0x11, 0x00, 12 + 19 + 43}) +
                         bytes({192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x14, 0x66}) +
                         bytes({0x02, 0x00, 0x10}) + "meet.example.com" +
                         bytes({0x20, 0x00, 0x28,               // SSL, 40 bytes of value
                                0x01,                           // client: PP2_CLIENT_SSL
                                0x00, 0x00, 0x00, 0x01,         // verify: no verified cert
                                0x21, 0x00, 0x07}) + "TLSv1.3" +
                         bytes({0x23, 0x00, 0x16}) + "TLS_AES_128_GCM_SHA256";
    CHECK(*out == expect);
    CHECK(tlvs_add_up(*out, 12));
}

TEST_CASE("proxy v2: every TLV in its documented order", "[proxy_v2]") {
    Header h = tcp4();
    h.alpn = "xmpp-client";
    h.authority = "x.example";
    h.unique_id = "id-1";
    SslInfo ssl;
    ssl.client = kClientSsl | kClientCertConn | kClientCertSess;
    ssl.verify = 0;
    ssl.version = "TLSv1.2";
    ssl.cn = "alice";
    ssl.cipher = "ECDHE-ECDSA-AES128-GCM-SHA256";
    ssl.sig_alg = "SHA256";
    ssl.key_alg = "EC256";
    h.ssl = ssl;
    h.extra.push_back({0xE0, "custom"});
    auto out = build(h);
    REQUIRE(out);
    REQUIRE(tlvs_add_up(*out, 12));
    std::string tlvs = out->substr(28);
    std::string expect = bytes({0x01, 0x00, 11}) + "xmpp-client" + bytes({0x02, 0x00, 9}) +
                         "x.example" + bytes({0x05, 0x00, 4}) + "id-1";
    std::string ssl_value = bytes({0x07, 0, 0, 0, 0}) + bytes({0x21, 0, 7}) + "TLSv1.2" +
                            bytes({0x22, 0, 5}) + "alice" + bytes({0x23, 0, 29}) +
                            "ECDHE-ECDSA-AES128-GCM-SHA256" + bytes({0x24, 0, 6}) + "SHA256" +
                            bytes({0x25, 0, 5}) + "EC256";
    expect += bytes({0x20, 0x00, static_cast<int>(ssl_value.size())}) + ssl_value;
    expect += bytes({0xE0, 0x00, 6}) + "custom";
    CHECK(tlvs == expect);
}

TEST_CASE("proxy v2: CRC32C", "[proxy_v2]") {
    // RFC 3720 / RFC 4960 check value.
    CHECK(crc32c("123456789") == 0xE3069283u);
    CHECK(crc32c("") == 0u);
    CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros

    Header h = tcp4();
    h.authority = "meet.example.com";
    h.crc32c = true;
    auto out = build(h);
    REQUIRE(out);
    REQUIRE(tlvs_add_up(*out, 12));
    // The CRC TLV is the last one; zero its value and recompute over the whole header.
    std::size_t at = out->size() - 7;
    CHECK(static_cast<unsigned char>((*out)[at]) == kTypeCrc32c);
    CHECK((*out)[at + 1] == 0);
    CHECK((*out)[at + 2] == 4);
    std::string zeroed = *out;
    zeroed.replace(at + 3, 4, std::string(4, '\0'));
    std::uint32_t want = crc32c(zeroed);
    auto b = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>((*out)[k])); };
    std::uint32_t got = (b(at + 3) << 24) | (b(at + 4) << 16) | (b(at + 5) << 8) | b(at + 6);
    CHECK(got == want);
}

TEST_CASE("proxy v2: limits are refused, output untouched", "[proxy_v2]") {
    std::string why;
    std::string out = "keep";
    Header h = tcp4();
    h.unique_id = std::string(128, 'u');
    CHECK(build(h, out, &why));
    out = "keep";
    h.unique_id = std::string(129, 'u');
    CHECK_FALSE(build(h, out, &why));
    CHECK(out == "keep");
    CHECK(why.find("unique id") != std::string::npos);

    h = tcp4();
    h.extra.push_back({0xE1, std::string(65536, 'x')});
    CHECK_FALSE(build(h, out, &why));
    CHECK(why.find("TLV 0xe1") != std::string::npos);

    h = tcp4();
    h.extra.push_back({0xE1, std::string(40000, 'x')});
    h.extra.push_back({0xE2, std::string(40000, 'x')});
    CHECK_FALSE(build(h, &why));
    CHECK(why.find("65535") != std::string::npos);
    CHECK(out == "keep");

    // The largest header that fits: 65535 bytes after the fixed part.
    h = tcp4();
    h.extra.push_back({0xE1, std::string(65535 - 12 - 3, 'x')});
    auto max = build(h);
    REQUIRE(max);
    CHECK(max->size() == 16 + 65535);
}
