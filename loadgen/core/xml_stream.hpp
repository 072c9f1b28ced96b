// Incremental XMPP stream parser: bytes in any split -> the stream header, each top-level
// stanza as a small element tree, and the stream's end. No sockets; feed() is resumable and the
// events are the same for every split of the input (tests/loadgen checks random splits).
//
// Scope: what XMPP servers send. Handles the XML declaration, comments and processing
// instructions between stanzas (skipped), CDATA sections, the five predefined entities and
// character references. Namespaces are not resolved: names keep their prefix as written and
// local_name() strips it; xmlns is an ordinary attribute.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xs::loadgen::xml {

struct Element {
    std::string name;  // qualified name as written, e.g. "stream:features"
    std::vector<std::pair<std::string, std::string>> attrs;  // values entity-decoded
    std::string text;                                        // concatenated character data
    std::vector<Element> children;

    std::string_view local_name() const;
    // Attribute by exact name; nullptr if absent.
    const std::string* attr(std::string_view key) const;
    std::string_view attr_or(std::string_view key, std::string_view dflt = {}) const;
    // First direct child with this local name (and namespace, when xmlns is not empty).
    const Element* child(std::string_view local, std::string_view xmlns = {}) const;
    // First descendant (depth-first, self excluded) with this local name and namespace.
    const Element* find(std::string_view local, std::string_view xmlns = {}) const;
};

class StreamParser {
public:
    enum class Event { None, StreamOpen, Stanza, StreamClose, Error };

    explicit StreamParser(std::size_t max_stanza_bytes = 1 << 20);

    // Append bytes. Then call next() until it returns Event::None (needs more bytes).
    void feed(const char* data, std::size_t n);
    void feed(std::string_view s) { feed(s.data(), s.size()); }

    // The next event. After StreamOpen, header() holds the root element (no children);
    // after Stanza, stanza() holds it (movable: the caller may take it); after Error, error()
    // says why and every later call returns Error.
    Event next();

    const Element& header() const { return header_; }
    Element& stanza() { return stanza_; }
    const std::string& error() const { return error_; }
    // Raw bytes of the last complete stanza (for byte counting).
    std::size_t last_stanza_bytes() const { return last_bytes_; }

    // Forget everything (a stream restart after STARTTLS or SASL): buffered bytes are dropped.
    void reset();

private:
    enum class Tok { Incomplete, Text, Open, Close, Empty, Skip, Bad };

    Tok scan(std::size_t& end);
    bool parse_tag(std::string_view tag, Element& out, bool& self_closing, std::string& err);
    Event fail(std::string msg);
    void compact();

    std::string buf_;
    std::size_t pos_ = 0;         // next unconsumed byte in buf_
    std::size_t stanza_start_ = 0;
    int depth_ = 0;               // 0 outside the root, 1 inside it, >1 inside a stanza
    bool in_error_ = false;
    std::size_t max_stanza_;
    std::size_t last_bytes_ = 0;
    Element header_;
    Element stanza_;
    std::vector<Element*> open_;  // the open elements of the current stanza
    std::string error_;
};

// Entity decoding ("&lt;" "&#x41;" ...). Returns false on an unknown or malformed reference.
bool decode_entities(std::string_view in, std::string& out);
// Escaping for text and attribute values (both quote styles).
std::string escape(std::string_view in);

}  // namespace xs::loadgen::xml
