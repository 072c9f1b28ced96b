// Shared pieces of the HTTP/1.1 head readers (http_head, http_response): the strict,
// byte-at-a-time splitter of a message head into its start line and header fields, and small
// token helpers. Pure, bounded, no allocation beyond the head itself.
//
// Line rules (RFC 9112, strict where the RFC allows leniency, because a proxy must never read a
// head differently from the backend behind it):
//   - lines end with CRLF; a bare CR or a bare LF is refused (400);
//   - NUL and other control characters (except HTAB) are refused (400) wherever they appear;
//   - a header line starting with SP or HTAB (obs-fold, or whitespace before the first field)
//     is refused (400); so is a line without ':' and a field name that is not a token
//     (whitespace between name and colon included);
//   - field values are trimmed of SP/HTAB on both sides; obs-text (bytes >= 0x80) is kept;
//   - more than max_fields header fields -> 431; max_head_bytes read without the empty line that
//     ends the head -> 431 (a head whose last LF is byte number max_head_bytes is accepted);
//   - the second space-separated field of the start line (a request's target) longer than
//     max_second_field -> the status given (414 for requests), decided at the byte that exceeds it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xs::routing {

struct HeaderField {
    std::string name;   // as sent (case kept)
    std::string value;  // as sent, without the surrounding SP/HTAB
    std::string raw;    // the whole line as sent, without its CRLF
};

enum class HeadStatus { NeedMore, Done, Reject };

namespace http {

bool is_tchar(unsigned char c);
bool is_token(std::string_view s);
bool iequals(std::string_view a, std::string_view b);  // ASCII case-insensitive
std::string lower(std::string_view s);                   // ASCII lower-case
std::string_view trim_ows(std::string_view s);
// A comma-separated list (RFC 9110 5.6.1): elements trimmed of OWS, empty elements dropped.
std::vector<std::string_view> split_list(std::string_view s);
// `s` made safe for a log line: printable ASCII kept (backslash doubled), any other byte written
// \xNN, cut to `max` input bytes with "..." appended.
std::string printable(std::string_view s, std::size_t max = 64);
// Decimal digits only (no sign, no space), at most 18 digits: nullopt-like false otherwise.
bool parse_decimal(std::string_view s, std::uint64_t& out);

class HeadLines {
public:
    HeadLines(std::size_t max_head_bytes, std::size_t max_fields, std::size_t max_second_field,
              int second_field_status, bool allow_leading_empty_lines);

    HeadStatus feed(std::string_view bytes);
    HeadStatus status() const { return status_; }
    // Valid once Done.
    const std::string& start_line() const { return start_line_; }
    const std::vector<HeaderField>& fields() const { return fields_; }
    std::vector<HeaderField>& fields() { return fields_; }
    std::size_t leading_empty_lines() const { return leading_; }
    // Bytes examined; after a verdict, up to and including the deciding byte (= head bytes when
    // Done).
    std::size_t bytes_seen() const { return seen_; }
    int reject_status() const { return reject_status_; }
    const std::string& detail() const { return detail_; }

    // For the readers' semantic checks after Done: turns Done into Reject.
    void fail(int status, std::string_view why);

private:
    void step(unsigned char c);
    void end_line();

    std::size_t max_, max_fields_, max_second_, second_status_;
    bool allow_leading_;
    std::size_t seen_ = 0;
    HeadStatus status_ = HeadStatus::NeedMore;
    int reject_status_ = 0;
    std::string detail_;
    bool in_fields_ = false;
    bool pending_cr_ = false;
    std::size_t spaces_ = 0;   // start line: spaces so far
    std::size_t second_ = 0;   // start line: bytes of its second field so far
    std::size_t leading_ = 0;
    std::string line_;
    std::string start_line_;
    std::vector<HeaderField> fields_;
};

}  // namespace http
}  // namespace xs::routing
