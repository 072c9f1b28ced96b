// The exact bytes the proxy writes when it refuses a stream (RFC 6120 section 4.9.1.2):
// its own stream header, <stream:error> with the condition and a text, </stream:stream>.
#pragma once
#include <string>
#include <string_view>

#include "stream_condition.hpp"

namespace xs::routing {

struct StreamErrorSpec {
    StreamCondition condition = StreamCondition::HostUnknown;
    // Normalised domain the client asked for; becomes the header's 'from'. Empty: omitted.
    std::string_view from_domain;
    // The client's content namespace when known; "jabber:client" otherwise.
    std::string_view content_ns = "jabber:client";
    // Optional human-readable text (escaped on output). Empty: no <text/>.
    std::string_view text;
    // With SeeOtherHost: the alternate host ("host" or "host:port"), escaped on output.
    std::string_view other_host;
    // Stream id for the header; empty: no id attribute.
    std::string_view stream_id;
    // False when the proxy has already sent its own stream header on this stream (after a
    // STARTTLS offer): then only <stream:error/> and </stream:stream> are written.
    bool header = true;
};

// The proxy's own opening stream header: <?xml version='1.0'?><stream:stream ...>.
std::string stream_header_bytes(std::string_view from_domain, std::string_view content_ns,
                                std::string_view stream_id);

// Header + error + closing tag, ready to write to the client.
std::string stream_error_bytes(const StreamErrorSpec& spec);

// Escapes &, <, >, ' and " for use inside a single- or double-quoted attribute or text.
// Control characters that XML 1.0 forbids (below 0x20 except tab, LF, CR) become '?'.
// The input is expected to be UTF-8; it is not validated.
std::string xml_escape(std::string_view s);

}  // namespace xs::routing
