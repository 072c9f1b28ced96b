// Incremental, bounded reader of an HTTP/1.1 request head (RFC 9112), for the HTTP front door
// (Jitsi Meet's XMPP-over-WebSocket upgrades and BOSH requests).
//
// It only peeks: the caller keeps every byte; head().head_bytes of them are the head, the rest
// is the start of the body (or of a pipelined request). feed() takes any split of the input; the
// verdict, the head and the detail are the same for every split (a byte-at-a-time state machine
// that never looks back; decisions are taken at the byte that makes them certain). After Done or
// Reject further feed() calls ignore their bytes. Memory held is O(max_head_bytes).
//
// A hand parser, not libhttp-parser: http_parser 2.9.4 accepts obs-fold (reporting the folded
// part as another value chunk), "Host : a", bare LF and "Transfer-Encoding: chunked, identity"
// without saying so, all of which a proxy must refuse. It serves as an oracle in the tests.
//
// Refusals (reject_status(), detail() "... (at byte N)"), first problem in the byte stream wins:
//   400  bare CR or LF, NUL or another control character (HTAB allowed in values), obs-fold,
//        whitespace before the first field or between a field name and ':', a line without ':',
//        a field name that is not a token; a request line that is not
//        "METHOD SP origin-form SP HTTP/x.y" (method a token, target starting with '/', visible
//        ASCII only, no '#'); an empty line before the request line is skipped (RFC 9112 2.2);
//        HTTP/1.1 without Host, or two Host fields, or a Host that is not domain[:port] (port
//        1..65535) or [IPv6]:port; any two Content-Length fields (even equal ones), a
//        Content-Length that is not 1*18DIGIT; Content-Length together with Transfer-Encoding;
//        a Transfer-Encoding other than exactly one field whose value is "chunked"
//        (case-insensitive, surrounding OWS allowed): "chunked, identity", "gzip, chunked",
//        "identity", two fields; Transfer-Encoding in an HTTP/1.0 request; two
//        Sec-WebSocket-Key or Sec-WebSocket-Version fields; a Sec-WebSocket-Protocol element
//        that is not a token.
//   414  a request target longer than max_target_bytes (decided at its first excess byte).
//   431  max_head_bytes read without the end of the head; more than kMaxFields fields.
//   501  a method other than GET, HEAD, POST, OPTIONS (a token: CONNECT, PUT, PRI, ...).
//   505  a version HTTP/D.D other than 1.0 and 1.1 (HTTP/2.0, HTTP/0.9, HTTP/1.2).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http_lines.hpp"

namespace xs::routing {

struct HttpRequestHead {
    std::string method;      // GET, HEAD, POST or OPTIONS
    std::string target;      // the request target as sent (origin-form)
    std::string path;        // target before '?'
    std::string query;       // target after the first '?', without it; empty if none
    bool has_query = false;
    int version_minor = 1;   // HTTP/1.0 -> 0, HTTP/1.1 -> 1
    std::string host;        // Host without port, lower-cased, validated; empty when absent (1.0)
    std::string host_port;   // the port as sent, empty if none
    bool conn_keep_alive = false, conn_close = false, conn_upgrade = false;
    std::vector<std::string> connection;  // every Connection token, lower-cased, in order
    std::string upgrade;     // Upgrade field values joined with ", "; empty if none
    std::string ws_key;      // Sec-WebSocket-Key, empty if none
    std::string ws_version;  // Sec-WebSocket-Version, empty if none
    std::vector<std::string> ws_protocols;  // Sec-WebSocket-Protocol tokens, in order
    bool has_content_length = false;
    std::uint64_t content_length = 0;
    bool chunked = false;    // Transfer-Encoding: chunked
    std::vector<HeaderField> headers;  // every header field, in order
    std::size_t leading_empty_lines = 0;  // CRLFs skipped before the request line
    std::size_t head_bytes = 0;  // bytes up to and including the empty line's LF
    bool keep_alive = true;  // 1.1: unless Connection: close; 1.0: only with keep-alive

    // GET with Connection: upgrade and an Upgrade whose first protocol is "websocket".
    bool websocket_upgrade() const;
    // The first value of a field (case-insensitive name), or nullptr.
    const std::string* field(std::string_view name) const;
};

class HttpRequestReader {
public:
    static constexpr std::size_t kMaxFields = 100;

    explicit HttpRequestReader(std::size_t max_head_bytes = 16384,
                               std::size_t max_target_bytes = 8192);

    HeadStatus feed(std::string_view bytes);
    HeadStatus status() const { return lines_.status(); }
    const HttpRequestHead& head() const { return head_; }  // valid when Done
    int reject_status() const { return lines_.reject_status(); }  // valid when Reject
    const std::string& detail() const { return lines_.detail(); }  // Reject: why, for logs
    std::size_t bytes_seen() const { return lines_.bytes_seen(); }

private:
    void finish();
    bool parse_request_line();
    bool parse_fields();

    http::HeadLines lines_;
    HttpRequestHead head_;
};

// Host validation as the reader does it: "name[:port]" (name as normalize_domain accepts it,
// lower-cased) or "[v6]:port"; false (and *why) otherwise.
bool parse_http_host(std::string_view raw, std::string& host, std::string& port,
                     std::string* why = nullptr);

}  // namespace xs::routing
