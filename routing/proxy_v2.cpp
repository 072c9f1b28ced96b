#include "proxy_v2.hpp"

namespace xs::routing::proxy_v2 {

namespace {

constexpr std::uint8_t kVersion2 = 0x20;
constexpr std::uint8_t kCmdLocal = 0x0;
constexpr std::uint8_t kCmdProxy = 0x1;
constexpr std::uint8_t kFamUnspec = 0x00;
constexpr std::uint8_t kFamTcp4 = 0x11;
constexpr std::uint8_t kFamTcp6 = 0x21;

void put8(std::string& s, std::uint32_t v) { s.push_back(static_cast<char>(v & 0xFF)); }
void put16(std::string& s, std::uint32_t v) {
    put8(s, v >> 8);
    put8(s, v);
}
void put32(std::string& s, std::uint32_t v) {
    put16(s, v >> 16);
    put16(s, v);
}

bool put_tlv(std::string& s, std::uint8_t type, std::string_view value, std::string* why) {
    if (value.size() > 0xFFFF) {
        if (why) {
            const char* hex = "0123456789abcdef";
            *why = std::string("TLV 0x") + hex[type >> 4] + hex[type & 15] +
                   " value longer than 65535 bytes";
        }
        return false;
    }
    put8(s, type);
    put16(s, static_cast<std::uint32_t>(value.size()));
    s.append(value);
    return true;
}

bool put_ssl(std::string& s, const SslInfo& ssl, std::string* why) {
    std::string v;
    put8(v, ssl.client);
    put32(v, ssl.verify);
    const std::pair<std::uint8_t, const std::string*> subs[] = {
        {kSubtypeSslVersion, &ssl.version}, {kSubtypeSslCn, &ssl.cn},
        {kSubtypeSslCipher, &ssl.cipher},   {kSubtypeSslSigAlg, &ssl.sig_alg},
        {kSubtypeSslKeyAlg, &ssl.key_alg},
    };
    for (const auto& [type, text] : subs)
        if (!text->empty() && !put_tlv(v, type, *text, why)) return false;
    return put_tlv(s, kTypeSsl, v, why);
}

}  // namespace

Endpoint Endpoint::v4(std::array<std::uint8_t, 4> a, std::uint16_t port) {
    Endpoint e;
    for (std::size_t i = 0; i < 4; ++i) e.addr[i] = a[i];
    e.port = port;
    return e;
}

Endpoint Endpoint::v6(std::array<std::uint8_t, 16> a, std::uint16_t port) {
    Endpoint e;
    e.ipv6 = true;
    e.addr = a;
    e.port = port;
    return e;
}

Endpoint Endpoint::as_v6() const {
    if (ipv6) return *this;
    std::array<std::uint8_t, 16> m{};
    m[10] = m[11] = 0xFF;
    for (std::size_t i = 0; i < 4; ++i) m[12 + i] = addr[i];
    return v6(m, port);
}

std::uint32_t crc32c(std::string_view bytes) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char c : bytes) {
        crc ^= c;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

bool build(const Header& h, std::string& out, std::string* why) {
    std::string body;  // everything after the fixed 16 bytes
    std::uint8_t fam = kFamUnspec;
    if (!h.local) {
        Endpoint src = h.source, dst = h.destination;
        if (src.ipv6 != dst.ipv6) {
            src = src.as_v6();
            dst = dst.as_v6();
        }
        std::size_t n = src.ipv6 ? 16 : 4;
        fam = src.ipv6 ? kFamTcp6 : kFamTcp4;
        body.append(reinterpret_cast<const char*>(src.addr.data()), n);
        body.append(reinterpret_cast<const char*>(dst.addr.data()), n);
        put16(body, src.port);
        put16(body, dst.port);
    }
    if (h.unique_id.size() > kMaxUniqueId) {
        if (why) *why = "unique id longer than 128 bytes";
        return false;
    }
    if (!h.alpn.empty() && !put_tlv(body, kTypeAlpn, h.alpn, why)) return false;
    if (!h.authority.empty() && !put_tlv(body, kTypeAuthority, h.authority, why)) return false;
    if (!h.unique_id.empty() && !put_tlv(body, kTypeUniqueId, h.unique_id, why)) return false;
    if (h.ssl && !put_ssl(body, *h.ssl, why)) return false;
    for (const Tlv& t : h.extra)
        if (!put_tlv(body, t.type, t.value, why)) return false;
    std::size_t crc_at = 0;
    if (h.crc32c) {
        crc_at = kFixedHeader + body.size() + 3;
        put_tlv(body, kTypeCrc32c, std::string(4, '\0'), why);
    }
    if (body.size() > kMaxPayload) {
        if (why) *why = "PROXY v2 header longer than 65535 + 16 bytes";
        return false;
    }

    std::string hdr;
    hdr.reserve(kFixedHeader + body.size());
    hdr.append(kSignature);
    put8(hdr, kVersion2 | (h.local ? kCmdLocal : kCmdProxy));
    put8(hdr, fam);
    put16(hdr, static_cast<std::uint32_t>(body.size()));
    hdr += body;
    if (h.crc32c) {
        std::string crc;
        put32(crc, crc32c(hdr));
        hdr.replace(crc_at, 4, crc);
    }
    out += hdr;
    return true;
}

std::optional<std::string> build(const Header& h, std::string* why) {
    std::string out;
    if (!build(h, out, why)) return std::nullopt;
    return out;
}

}  // namespace xs::routing::proxy_v2
