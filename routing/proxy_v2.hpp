// Builder of a PROXY protocol version 2 header (haproxy's proxy-protocol.txt, section 2.2): the
// bytes the proxy writes to a backend before the client's first byte, so that the backend sees the
// client's real address and, when the proxy terminated TLS, what that TLS was.
//
// Pure: plain structs in, bytes out. Addresses are raw network-order byte arrays, so a caller turns
// a sockaddr_in / sockaddr_in6 into an Endpoint with a memcpy and an ntohs.
//
// Layout written (all integers big-endian):
//   12-byte signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//   ver_cmd            0x21 (version 2, PROXY) or 0x20 (version 2, LOCAL)
//   fam                0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 UNSPEC (LOCAL)
//   len (2 bytes)      bytes that follow: the address block plus every TLV
//   address block      src addr, dst addr, src port, dst port (12 or 36 bytes; none for LOCAL)
//   TLVs, in this order when present: ALPN (0x01), AUTHORITY (0x02), UNIQUE_ID (0x05),
//   SSL (0x20: client flags, verify, then sub-TLVs VERSION 0x21, CN 0x22, CIPHER 0x23,
//   SIG_ALG 0x24, KEY_ALG 0x25), the caller's extra TLVs, and last CRC32C (0x03) when asked for.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xs::routing::proxy_v2 {

inline constexpr std::string_view kSignature{"\r\n\r\n\0\r\nQUIT\n", 12};
inline constexpr std::size_t kFixedHeader = 16;      // signature, ver_cmd, fam, len
inline constexpr std::size_t kMaxPayload = 0xFFFF;   // len is 16 bits
inline constexpr std::size_t kMaxUniqueId = 128;

// TLV types of the specification.
enum TlvType : std::uint8_t {
    kTypeAlpn = 0x01,
    kTypeAuthority = 0x02,
    kTypeCrc32c = 0x03,
    kTypeNoop = 0x04,
    kTypeUniqueId = 0x05,
    kTypeSsl = 0x20,
    kSubtypeSslVersion = 0x21,
    kSubtypeSslCn = 0x22,
    kSubtypeSslCipher = 0x23,
    kSubtypeSslSigAlg = 0x24,
    kSubtypeSslKeyAlg = 0x25,
    kTypeNetns = 0x30,
};

// Bits of pp2_tlv_ssl.client.
inline constexpr std::uint8_t kClientSsl = 0x01;       // the client connected over TLS
inline constexpr std::uint8_t kClientCertConn = 0x02;  // it sent a certificate on this connection
inline constexpr std::uint8_t kClientCertSess = 0x04;  // ... at least once in this TLS session

struct Endpoint {
    bool ipv6 = false;
    std::array<std::uint8_t, 16> addr{};  // network order; IPv4 uses the first 4 bytes
    std::uint16_t port = 0;               // host order

    static Endpoint v4(std::array<std::uint8_t, 4> a, std::uint16_t port);
    static Endpoint v6(std::array<std::uint8_t, 16> a, std::uint16_t port);
    // IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d); IPv6 unchanged.
    Endpoint as_v6() const;
};

// PP2_TYPE_SSL: what the proxy knows about the TLS it terminated.
struct SslInfo {
    std::uint8_t client = kClientSsl;
    // Zero only if the client presented a certificate and it was verified (the specification:
    // "non-zero otherwise"), so the default says "no verified client certificate".
    std::uint32_t verify = 1;
    std::string version;  // PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3"; omitted when empty
    std::string cipher;   // PP2_SUBTYPE_SSL_CIPHER, e.g. "TLS_AES_128_GCM_SHA256"
    std::string cn;       // PP2_SUBTYPE_SSL_CN, the client certificate's CN
    std::string sig_alg;  // PP2_SUBTYPE_SSL_SIG_ALG, e.g. "SHA256"
    std::string key_alg;  // PP2_SUBTYPE_SSL_KEY_ALG, e.g. "EC256"
};

struct Tlv {
    std::uint8_t type = kTypeNoop;
    std::string value;
};

struct Header {
    // LOCAL: a connection the proxy made on its own behalf (a health check). No addresses and
    // family UNSPEC are sent; TLVs still are.
    bool local = false;
    Endpoint source;       // the client's address and port
    Endpoint destination;  // the address and port the client connected to (the listener)
    std::string alpn;       // PP2_TYPE_ALPN (the protocol negotiated with the client); "" omits
    std::string authority;  // PP2_TYPE_AUTHORITY (SNI or the stream's to); "" omits
    std::string unique_id;  // PP2_TYPE_UNIQUE_ID, at most 128 bytes; "" omits
    std::optional<SslInfo> ssl;
    std::vector<Tlv> extra;  // written as given, after the standard ones
    bool crc32c = false;     // append PP2_TYPE_CRC32C over the whole header
};

// Appends the header to `out`. When source and destination families differ, the IPv4 one is sent
// as IPv4-mapped IPv6 (as haproxy does). Returns false (and leaves `out` unchanged, *why set when
// given) if unique_id exceeds 128 bytes, a TLV value exceeds 65535 bytes, or everything after the
// fixed 16 bytes exceeds 65535 bytes.
bool build(const Header& h, std::string& out, std::string* why = nullptr);

// The header alone; nullopt on the errors above.
std::optional<std::string> build(const Header& h, std::string* why = nullptr);

// CRC32c (Castagnoli, RFC 4960 appendix B), as the CRC32C TLV carries it.
std::uint32_t crc32c(std::string_view bytes);

}  // namespace xs::routing::proxy_v2
