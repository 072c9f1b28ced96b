// Incremental, bounded reader of an XMPP client's opening stream header.
//
// It only peeks: the caller keeps every byte it fed and replays them to the backend verbatim.
// feed() may be called with any split of the input, down to one byte at a time; the verdict is
// the same for every split (it is a byte-at-a-time state machine that never looks back).
// After Done, Reject or TlsClientHello the sniffer is finished: further feed() calls ignore their
// bytes and return the same verdict.
//
// Accepted input: [UTF-8 BOM] [XML declaration, only at the very start] whitespace* then the root
// start tag <P:stream ...> (any prefix P bound by an xmlns:P on the root itself) or
// <stream xmlns='http://etherx.jabber.org/streams' ...>. Attributes use either quote style;
// entity and character references in values are decoded; names and values must be valid UTF-8.
//
// Verdicts (first problem found wins, as early in the byte stream as it is certain):
//   first byte 0x16 (TLS handshake record)              -> TlsClientHello
//   a UTF-16 byte order mark, or an XML declaration whose
//     encoding is not UTF-8 (case-insensitive)           -> Reject UnsupportedEncoding
//   "<!" (DOCTYPE, ENTITY, comment, CDATA) anywhere, or
//     "<?" that is not the leading XML declaration       -> Reject RestrictedXml
//   anything else that is not well-formed (a byte that cannot start XML such as "GET ...",
//     invalid UTF-8, control characters, '<' in a value, an undefined entity, a duplicate
//     attribute, an unbound prefix, a malformed XML declaration)  -> Reject NotWellFormed
//   a root whose local name is not "stream" or whose namespace is not kStreamsNs
//                                                         -> Reject InvalidNamespace
//   a self-closing root <stream:stream/>                  -> Reject InvalidXml
//     (checked last: at the root's '>', well-formedness, then namespace, then emptiness)
//   max_header_bytes bytes read and the root's '>' not among them -> Reject PolicyViolation
// Attribute values are normalised as XML requires (literal tab, CR, LF, CRLF become a space).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stream_condition.hpp"

namespace xs::routing {

inline constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
inline constexpr std::string_view kClientNs = "jabber:client";
inline constexpr std::string_view kComponentNs = "jabber:component:accept";

struct StreamHeader {
    bool has_to = false;
    std::string to;          // the 'to' attribute, entities decoded, NOT normalised
    std::string content_ns;  // the root's default xmlns (e.g. jabber:client) when the root is
                             // prefixed; empty when there is none, and always empty for an
                             // unprefixed <stream xmlns='http://etherx.jabber.org/streams'>
    std::string prefix;      // the root's prefix ("stream" for <stream:stream>), empty if none
    std::string version;     // the 'version' attribute, empty if absent
    std::size_t consumed = 0;  // bytes from the first fed byte up to and including the header's '>'
};

enum class SniffStatus {
    NeedMore,        // header not complete yet, nothing wrong so far
    Done,            // header complete: see header()
    Reject,          // refuse with condition() (send a stream error)
    TlsClientHello,  // first byte is a TLS handshake record: close without XML
};

class StreamHeaderSniffer {
public:
    // max_header_bytes bounds everything up to the header's closing '>' (BOM and XML
    // declaration included). A header whose '>' is byte number max_header_bytes is accepted;
    // otherwise the sniffer rejects with PolicyViolation as soon as it has read byte number
    // max_header_bytes (the header can no longer fit), unless those bytes hold an earlier
    // verdict. Memory held is O(max_header_bytes).
    explicit StreamHeaderSniffer(std::size_t max_header_bytes = 4096);

    SniffStatus feed(std::string_view bytes);

    SniffStatus status() const { return status_; }
    const StreamHeader& header() const { return header_; }          // valid when Done
    StreamCondition condition() const { return condition_; }        // valid when Reject
    // Why, for logs (Reject, TlsClientHello): a short sentence ending in "(at byte N)". It may
    // quote decoded client names or values, 'like this'. It is valid UTF-8 without control
    // characters: in quoted names and values a C0 control, DEL or C1 control (U+0000..U+001F,
    // U+007F, U+0080..U+009F, whether literal or from a reference such as &#10;) is written
    // \u00xx (lower-case hex, e.g. \u000a, \u0082) and a backslash is doubled (\\). Escape it
    // (xml_escape) before echoing it in a <text/>.
    const std::string& detail() const { return detail_; }
    // Bytes examined so far; after a verdict, the number up to and including the byte that
    // decided it (bytes fed after the verdict are not counted).
    std::size_t bytes_seen() const { return seen_; }

private:
    enum class State : std::uint8_t;

    void step(unsigned char c);
    void step_non_ascii(unsigned char c);
    void reject(StreamCondition c, std::string why);
    void not_well_formed(std::string why);
    void finish_decl_name();
    void finish_decl_value();
    void finish_elem_name();
    void finish_attr_name();
    void attr_value_char(char c);
    void finish_entity();
    void finish_tag(bool self_closing);

    // Resumable character-level state machine; every buffer below is bounded by max_.
    std::size_t max_;
    std::size_t seen_ = 0;
    SniffStatus status_ = SniffStatus::NeedMore;
    StreamCondition condition_ = StreamCondition::NotWellFormed;
    std::string detail_;
    StreamHeader header_;

    State state_{};              // value 0 is the initial state
    bool decl_allowed_ = true;   // still at the very start (only a BOM so far)
    std::uint8_t match_ = 0;     // progress through a fixed byte sequence (BOM, "xml")
    std::uint8_t decl_stage_ = 0;  // XML declaration: 0 none, 1 version, 2 encoding, 3 standalone
    char quote_ = 0;             // the quote that opened the current value
    bool pending_cr_ = false;    // attribute value: last literal byte was CR (CRLF -> one space)
    std::uint8_t utf8_need_ = 0;  // continuation bytes still expected
    std::uint32_t utf8_cp_ = 0;   // code point being assembled
    std::uint32_t utf8_min_ = 0;  // smallest code point allowed for its length (overlongs)
    std::string name_;           // current element, attribute or declaration name
    std::string value_;          // current attribute value, decoded
    std::string entity_;         // current reference between '&' and ';'
    std::vector<std::pair<std::string, std::string>> attrs_;  // root attributes, in order
};

}  // namespace xs::routing
