// What a backend sends back over HTTP/1.1: an incremental, bounded response head reader, a body
// framing tracker (where a message body ends on a keep-alive connection, RFC 9112 6.3), and the
// proxy's own small refusal response. Pure; the same verdicts for every split of the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http_head.hpp"
#include "http_lines.hpp"

namespace xs::routing {

struct HttpResponseHead {
    int version_minor = 1;   // HTTP/1.0 -> 0, HTTP/1.1 -> 1
    int status = 0;          // 100..599
    std::string reason;      // reason phrase as sent (may be empty)
    bool has_content_length = false;
    std::uint64_t content_length = 0;
    bool chunked = false;    // Transfer-Encoding whose last coding is chunked
    bool has_transfer_encoding = false;
    bool conn_keep_alive = false, conn_close = false, conn_upgrade = false;
    std::string upgrade;     // Upgrade values joined with ", " (on 101: the protocol switched to)
    std::vector<HeaderField> headers;
    std::size_t head_bytes = 0;
    bool keep_alive = true;  // 1.1 unless close; 1.0 only with keep-alive (the body framing
                             // can still force a close: see BodyFramer::until_close)
};

// Response head reader. Line rules as http_lines.hpp (bare LF, obs-fold, controls: refused).
// Refused (Reject, with detail()): a status line that is not "HTTP/1.x SP 3DIGIT SP reason"
// (reason may be empty, the second SP may be missing), a status outside 100..599, a version
// other than HTTP/1.0 and HTTP/1.1, two Content-Length fields, a Content-Length that is not
// 1*18DIGIT, Content-Length together with Transfer-Encoding, max_head_bytes read without the
// end of the head, more than 100 fields. Transfer-Encoding lists are accepted (several fields
// are joined); chunked must then be the last coding, else the body runs until close.
class HttpResponseReader {
public:
    explicit HttpResponseReader(std::size_t max_head_bytes = 16384);
    HeadStatus feed(std::string_view bytes);
    HeadStatus status() const { return lines_.status(); }
    const HttpResponseHead& head() const { return head_; }
    const std::string& detail() const { return lines_.detail(); }
    std::size_t bytes_seen() const { return lines_.bytes_seen(); }

private:
    void finish();
    http::HeadLines lines_;
    HttpResponseHead head_;
};

enum class BodyStatus { NeedMore, Done, Reject };

// Tracks a message body after its head. feed() returns how many of `bytes` belong to the body;
// the rest (after Done) is the next message. Chunked bodies are decoded as a state machine:
// chunk-size (hex, at most 15 digits), optional SP/HTAB then optional extensions starting with
// ';' (the line up to kMaxLineBytes, no controls but HTAB), CRLF, data, CRLF, ..., the last chunk "0", trailer fields (each a header line,
// kMaxTrailerBytes in all), the empty line. Bare LF, a missing CRLF after chunk data, a bad
// size: Reject. UntilClose never completes: the body ends when the connection does.
class BodyFramer {
public:
    enum class Kind { None, Length, Chunked, UntilClose };
    static constexpr std::size_t kMaxLineBytes = 4096;
    static constexpr std::size_t kMaxTrailerBytes = 16384;

    static BodyFramer none() { return BodyFramer(Kind::None, 0); }
    static BodyFramer length(std::uint64_t n) { return BodyFramer(Kind::Length, n); }
    static BodyFramer chunked() { return BodyFramer(Kind::Chunked, 0); }
    static BodyFramer until_close() { return BodyFramer(Kind::UntilClose, 0); }

    std::size_t feed(std::string_view bytes);
    BodyStatus status() const { return status_; }
    Kind kind() const { return kind_; }
    std::uint64_t body_bytes() const { return total_; }  // framed bytes consumed so far
    const std::string& detail() const { return detail_; }

private:
    enum class St : std::uint8_t { Size, SizeWs, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf };
    BodyFramer(Kind k, std::uint64_t n);
    void reject(std::string why);
    bool step_chunked(unsigned char c);

    Kind kind_;
    BodyStatus status_ = BodyStatus::NeedMore;
    std::uint64_t remaining_ = 0;  // Length: bytes left; Chunked: chunk data left
    std::uint64_t total_ = 0;
    std::string detail_;
    St st_ = St::Size;
    std::size_t digits_ = 0, line_ = 0, trailer_ = 0;
    bool last_chunk_ = false;
    std::string trailer_line_;
};

// RFC 9112 6.3 for a response to `request_method`: none for HEAD, 1xx, 204, 304 and a 2xx
// answer to CONNECT (and 101: the connection switches protocol); chunked when the last coding
// is chunked; UntilClose for another Transfer-Encoding; Length for Content-Length; UntilClose
// otherwise.
BodyFramer response_body_framing(const HttpResponseHead& head, std::string_view request_method);
// A request body: chunked, Content-Length, or none.
BodyFramer request_body_framing(const HttpRequestHead& head);

// The standard reason phrase of a status ("Bad Request"), "Error" when unknown.
std::string_view http_reason_phrase(int status);
// "HTTP/1.1 STATUS REASON", Content-Type: text/plain; charset=utf-8, Content-Length,
// Connection: close, and `detail` plus "\n" as the body. An empty reason_text takes
// http_reason_phrase(status); control characters in reason_text and detail are replaced by
// spaces (the detail may quote a client).
std::string http_error_response(int status, std::string_view reason_text = {},
                                std::string_view detail = {});

}  // namespace xs::routing
