// Reads the root <body/> start tag of a BOSH request (XEP-0124/0206) or of a backend's
// session-creation response: its `to`, `sid` and `rid` attributes, for routing a BOSH POST and
// remembering which backend owns a session. Not an XML parser: it reads up to the root start
// tag's '>' only and, like the stream-header sniffer, only peeks (the caller keeps the bytes).
// Incremental and bounded; the same verdict for every split of the input.
//
// Accepted: [UTF-8 BOM] [<?xml ...?> at the start, skipped up to "?>"] whitespace* then
// <body ...> or <body .../> (or <P:body ...> with xmlns:P on the element itself) whose namespace
// is kHttpBindNs. Attribute values use either quote; &lt; &gt; &amp; &quot; &apos; and
// character references (&#N; &#xN;) are decoded; a literal tab, CR or LF in a value becomes a
// space.
// Reject (detail "... (at byte N)"): another root element or namespace, "<!" or "<?" other than
// the leading declaration, a duplicate attribute, '<' or a bad reference in a value, a malformed
// tag, a control character (C0 except tab/CR/LF, or any from a reference) in to/sid/rid, a root
// not complete within max_bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xs::routing {

inline constexpr std::string_view kHttpBindNs = "http://jabber.org/protocol/httpbind";

struct BoshBody {
    bool has_to = false, has_sid = false, has_rid = false;
    std::string to, sid, rid;  // decoded, as sent (not normalised)
    std::size_t consumed = 0;  // bytes up to and including the root start tag's '>'
};

enum class BoshStatus { NeedMore, Done, Reject };

class BoshBodyReader {
public:
    explicit BoshBodyReader(std::size_t max_bytes = 4096);
    BoshStatus feed(std::string_view bytes);
    BoshStatus status() const { return status_; }
    const BoshBody& body() const { return body_; }      // valid when Done
    const std::string& detail() const { return detail_; }  // valid when Reject
    std::size_t bytes_seen() const { return seen_; }

private:
    enum class St : std::uint8_t;
    void step(unsigned char c);
    void reject(std::string why);
    void end_attr();
    void end_tag();

    std::size_t max_;
    std::size_t seen_ = 0;
    BoshStatus status_ = BoshStatus::NeedMore;
    std::string detail_;
    BoshBody body_;
    St st_{};
    std::uint8_t match_ = 0;   // BOM progress
    std::uint8_t decl_ = 0;    // bytes of "xml" + whitespace matched after a leading "<?"
    char quote_ = 0;
    bool in_entity_ = false;
    std::string elem_, name_, value_, entity_;
    std::string ns_default_, ns_prefixed_;  // xmlns and xmlns:<root prefix> values
    bool has_ns_default_ = false, has_ns_prefixed_ = false;
    std::string names_;  // attribute names seen, '\n'-separated (duplicate check)
};

// The sid of a complete session-creation response body; nullopt when the body cannot be read or
// has no sid.
std::optional<std::string> bosh_response_sid(std::string_view body);

}  // namespace xs::routing
