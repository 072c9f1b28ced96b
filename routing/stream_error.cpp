#include "routing/stream_error.hpp"

#include "routing/stream_header_sniffer.hpp"

namespace xs::routing {

namespace {
constexpr std::string_view kStreamsErrNs = "urn:ietf:params:xml:ns:xmpp-streams";
}

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '\'': out += "&apos;"; break;
        case '"': out += "&quot;"; break;
        case '\t':
        case '\n':
        case '\r': out += c; break;
        default:
            // Control characters are not allowed in XML 1.0, not even as references.
            out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
        }
    }
    return out;
}

std::string stream_header_bytes(std::string_view from_domain, std::string_view content_ns,
                                std::string_view stream_id) {
    std::string out = "<?xml version='1.0'?><stream:stream xmlns='";
    out += xml_escape(content_ns.empty() ? kClientNs : content_ns);
    out += "' xmlns:stream='";
    out += kStreamsNs;
    out += "' version='1.0'";
    if (!from_domain.empty()) {
        out += " from='";
        out += xml_escape(from_domain);
        out += '\'';
    }
    if (!stream_id.empty()) {
        out += " id='";
        out += xml_escape(stream_id);
        out += '\'';
    }
    out += '>';
    return out;
}

std::string stream_error_bytes(const StreamErrorSpec& spec) {
    std::string out;
    out.reserve(320 + spec.text.size() + spec.from_domain.size());
    if (spec.header) out += stream_header_bytes(spec.from_domain, spec.content_ns, spec.stream_id);
    out += "<stream:error><";
    out += to_string(spec.condition);
    out += " xmlns='";
    out += kStreamsErrNs;
    if (spec.condition == StreamCondition::SeeOtherHost && !spec.other_host.empty()) {
        out += "'>";
        out += xml_escape(spec.other_host);
        out += "</";
        out += to_string(spec.condition);
        out += '>';
    } else {
        out += "'/>";
    }
    if (!spec.text.empty()) {
        out += "<text xmlns='";
        out += kStreamsErrNs;
        out += "'>";
        out += xml_escape(spec.text);
        out += "</text>";
    }
    out += "</stream:error></stream:stream>";
    return out;
}

}  // namespace xs::routing
