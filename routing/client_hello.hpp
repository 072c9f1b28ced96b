// Incremental, bounded reader of a TLS ClientHello: the SNI and ALPN a Direct TLS (XEP-0368)
// listener routes on, and the versions the client offers.
//
// It only peeks, like StreamHeaderSniffer: the caller keeps every byte it fed and replays them
// (passthrough) or hands them to the TLS engine (terminate). feed() may be called with any split of
// the input, down to one byte at a time; the verdict is the same for every split. After Done or
// Reject the sniffer is finished: further feed() calls ignore their bytes and return the same
// verdict.
//
// What it reads (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2):
//   TLS records of content type 22 (handshake), record version 3.x, each 1..16384 bytes of
//   payload; the handshake message they carry may span several records (and a record may be split
//   across reads). The first handshake message must be a ClientHello (type 1). Its body is parsed
//   once it is complete: legacy_version, random, session_id (<= 32), cipher_suites (even, >= 2),
//   compression_methods (>= 1), then optional extensions that must fill the body exactly, each type
//   at most once. Of the extensions, server_name (0), ALPN (16) and supported_versions (43) are
//   decoded and checked; the others are skipped by length.
//
// Verdicts (first problem found wins, as early in the byte stream as it is certain):
//   first byte is not 0x16 (e.g. XML, HTTP, an SSLv2-format hello)  -> Reject NotTls
//   a record that is not a handshake record, a record version whose major
//     is not 3, an empty record, a record longer than 16384           -> Reject BadRecord
//   a first handshake message that is not a ClientHello              -> Reject NotClientHello
//   a ClientHello that cannot fit in max_bytes (its declared length, or
//     max_bytes read without completing it)                          -> Reject TooLarge
//   a malformed ClientHello body or extension                         -> Reject Malformed
//   a complete, well-formed ClientHello                              -> Done
// Memory held is O(max_bytes): the handshake message is gathered (without record headers) into one
// buffer that never grows past max_bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xs::routing {

// TLS protocol version numbers as they appear on the wire.
inline constexpr std::uint16_t kTls10 = 0x0301;
inline constexpr std::uint16_t kTls11 = 0x0302;
inline constexpr std::uint16_t kTls12 = 0x0303;
inline constexpr std::uint16_t kTls13 = 0x0304;

// RFC 8701 GREASE values (0x0A0A, 0x1A1A, ... 0xFAFA): sent by clients to keep servers honest,
// never a real version, cipher or extension.
constexpr bool is_grease(std::uint16_t v) {
    return (v & 0x0F0F) == 0x0A0A && (v >> 8) == (v & 0xFF);
}

struct ClientHelloInfo {
    std::uint16_t record_version = 0;   // the first record's version (0x0301 for most clients)
    std::uint16_t legacy_version = 0;   // ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3)
    // supported_versions as sent, in order, GREASE included; empty when the extension is absent.
    std::vector<std::uint16_t> supported_versions;
    bool has_sni = false;
    // The host_name of server_name, as sent (ASCII, 1..255 bytes, no control characters);
    // NOT normalised: pass it through normalize_domain() before routing.
    std::string sni;
    bool has_alpn = false;
    std::vector<std::string> alpn;      // ALPN protocol names in the client's order
    std::size_t records = 0;            // records the ClientHello spanned
    std::size_t message_length = 0;     // the handshake message, its 4-byte header included
    // Bytes from the first fed byte up to and including the ClientHello's last byte (record
    // headers included). Bytes after it (the rest of its last record, later records) are not read.
    std::size_t consumed = 0;

    // The highest version the client offers: the largest non-GREASE supported_versions entry, or
    // legacy_version when the extension is absent.
    std::uint16_t max_version() const;
    // True if the client sent ALPN and `protocol` is among its names.
    bool offers_alpn(std::string_view protocol) const;
};

enum class HelloStatus {
    NeedMore,  // nothing wrong so far; feed more bytes
    Done,      // complete ClientHello: see info()
    Reject,    // see reject() and detail()
};

enum class HelloReject {
    NotTls,          // the first byte is not a TLS handshake record
    BadRecord,       // record layer: wrong content type, version, or length
    NotClientHello,  // the first handshake message is another type
    TooLarge,        // does not fit in max_bytes
    Malformed,       // the ClientHello body or one of its extensions is malformed
};
// "not-tls", "bad-record", "not-client-hello", "too-large", "malformed": a metric label.
std::string_view to_string(HelloReject r);

class ClientHelloSniffer {
public:
    // Bounds the bytes read (record headers included) before a verdict. A ClientHello whose last
    // byte is byte number max_bytes is accepted. 16 KiB holds any real-world ClientHello (post-
    // quantum key shares included) many times over.
    explicit ClientHelloSniffer(std::size_t max_bytes = 16 * 1024);

    HelloStatus feed(std::string_view bytes);

    HelloStatus status() const { return status_; }
    const ClientHelloInfo& info() const { return info_; }  // valid when Done
    HelloReject reject() const { return reject_; }         // valid when Reject
    // Why, for logs: a short sentence ending in "(at byte N)". Never quotes client bytes.
    const std::string& detail() const { return detail_; }
    // Bytes examined so far; after a verdict, up to and including the byte that decided it.
    std::size_t bytes_seen() const { return seen_; }

private:
    void fail(HelloReject r, std::string why);
    void on_record_header();
    void on_handshake_bytes();
    void parse_body();

    std::size_t max_;
    std::size_t seen_ = 0;
    HelloStatus status_ = HelloStatus::NeedMore;
    HelloReject reject_ = HelloReject::Malformed;
    std::string detail_;
    ClientHelloInfo info_;

    unsigned char header_[5] = {};  // the current record header
    std::uint8_t header_have_ = 0;  // bytes of header_ read so far
    std::size_t record_left_ = 0;   // payload bytes of the current record still to read
    std::size_t message_need_ = 0;  // total handshake bytes expected (0 until the header is read)
    std::string message_;           // the handshake message gathered so far (header included)
};

}  // namespace xs::routing
