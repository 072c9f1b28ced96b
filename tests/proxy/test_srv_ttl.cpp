// The smallest TTL of a DNS answer's records of one type (upstream/srv_resolver.hpp), on
// messages built here byte by byte: compressed names, other record types, truncation.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "upstream/srv_resolver.hpp"

using xs::upstream::dns_min_ttl;

namespace {

constexpr uint16_t kSrv = 33, kA = 1;

struct Msg {
    std::vector<unsigned char> b;
    void u16(unsigned v) { b.push_back(static_cast<unsigned char>(v >> 8)); b.push_back(static_cast<unsigned char>(v)); }
    void u32(uint32_t v) { u16(v >> 16); u16(v & 0xffff); }
    void name(std::initializer_list<const char*> labels) {
        for (const char* l : labels) {
            b.push_back(static_cast<unsigned char>(std::char_traits<char>::length(l)));
            for (const char* p = l; *p; ++p) b.push_back(static_cast<unsigned char>(*p));
        }
        b.push_back(0);
    }
    void pointer(unsigned at) { u16(0xC000 | at); }
    void rr(uint16_t type, uint32_t ttl, std::size_t rdlen) {
        pointer(12);
        u16(type);
        u16(1);
        u32(ttl);
        u16(static_cast<unsigned>(rdlen));
        for (std::size_t i = 0; i < rdlen; ++i) b.push_back(0);
    }
};

Msg header(unsigned answers) {
    Msg m;
    m.u16(0x1234); m.u16(0x8180); m.u16(1); m.u16(answers); m.u16(0); m.u16(0);
    m.name({"_xmpp-client", "_tcp", "shards", "test"});
    m.u16(kSrv); m.u16(1);
    return m;
}

}  // namespace

TEST_CASE("the smallest TTL among the answer's records of the type", "[proxy][srv]") {
    Msg m = header(3);
    m.rr(kSrv, 30, 20);
    m.rr(kA, 2, 4);      // another type: not counted
    m.rr(kSrv, 12, 22);
    auto t = dns_min_ttl(m.b.data(), m.b.size(), kSrv);
    REQUIRE(t);
    CHECK(*t == 12);
    CHECK(dns_min_ttl(m.b.data(), m.b.size(), kA) == 2u);
    CHECK_FALSE(dns_min_ttl(m.b.data(), m.b.size(), 28));  // none of that type
}

TEST_CASE("a TTL with the top bit set counts as zero (RFC 2181)", "[proxy][srv]") {
    Msg m = header(1);
    m.rr(kSrv, 0x80000005u, 6);
    CHECK(dns_min_ttl(m.b.data(), m.b.size(), kSrv) == 0u);
}

TEST_CASE("truncated or malformed messages give no TTL", "[proxy][srv]") {
    Msg m = header(2);
    m.rr(kSrv, 30, 20);
    m.rr(kSrv, 40, 20);
    for (std::size_t cut = 0; cut < m.b.size(); ++cut)
        CHECK_FALSE(dns_min_ttl(m.b.data(), cut, kSrv));
    CHECK(dns_min_ttl(m.b.data(), m.b.size(), kSrv) == 30u);
    Msg bad = header(1);
    bad.b.push_back(0x80);  // a label length with the reserved 10 prefix
    CHECK_FALSE(dns_min_ttl(bad.b.data(), bad.b.size(), kSrv));
    CHECK_FALSE(dns_min_ttl(nullptr, 0, kSrv));
}
